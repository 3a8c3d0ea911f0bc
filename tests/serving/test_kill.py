"""A writer killed with SIGKILL in the middle of publishing leaves the previous scores exactly as they were, and
a second writer started meanwhile fails cleanly instead of mixing rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import ibis
import pandas as pd

from serving.writeback import write_scores
from tests.e2e import REPO
from tests.serving.test_writeback import _drivers, _rows, _scores

WRITER = textwrap.dedent("""
    import sys, time
    from datetime import date
    from pathlib import Path
    import pandas as pd
    from pipelines.warehouse import WarehouseError, connect_warehouse
    from serving.writeback import write_scores
    from tests.serving.test_writeback import _drivers, _scores

    path, release = sys.argv[1], Path(sys.argv[2])
    try:
        con = connect_warehouse(f"duckdb://{path}", threads=1)
    except WarehouseError as exc:
        print(f"REFUSED {exc}", flush=True)
        sys.exit(1)
    accounts = [f"n{i}" for i in range(5000)]

    def hold():
        print("IN_TRANSACTION", flush=True)
        while not release.exists():
            time.sleep(0.05)

    write_scores(con, _scores("2024-04-01", accounts, 0.9), _drivers("2024-04-01", accounts), [date(2024, 4, 1)],
                 before_commit=hold)
    print("COMMITTED", flush=True)
""")


def _start_writer(warehouse: Path, release: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(warehouse), str(release)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def _published(warehouse: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    con = ibis.duckdb.connect(str(warehouse))
    try:
        return _rows(con, "churn_scores"), _rows(con, "churn_score_drivers")
    finally:
        con.disconnect()


def _seed(warehouse: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    con = ibis.duckdb.connect(str(warehouse))
    write_scores(con, _scores("2024-04-01", ["a", "b", "c"], 0.2), _drivers("2024-04-01", ["a", "b"]),
                 [date(2024, 4, 1)])
    con.disconnect()
    return _published(warehouse)


def test_sigkill_inside_the_write_transaction_keeps_the_previous_scores(tmp_path):
    warehouse, release = tmp_path / "warehouse.duckdb", tmp_path / "release"
    before = _seed(warehouse)
    writer = _start_writer(warehouse, release)
    assert writer.stdout.readline().strip() == "IN_TRANSACTION", writer.stderr.read()
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    after = _published(warehouse)
    pd.testing.assert_frame_equal(after[0], before[0])
    pd.testing.assert_frame_equal(after[1], before[1])


def test_a_second_writer_fails_cleanly_while_the_first_publishes(tmp_path):
    warehouse, release = tmp_path / "warehouse.duckdb", tmp_path / "release"
    _seed(warehouse)
    first = _start_writer(warehouse, release)
    assert first.stdout.readline().strip() == "IN_TRANSACTION", first.stderr.read()
    second = _start_writer(warehouse, tmp_path / "never")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 1 and out.startswith("REFUSED warehouse.url: cannot open"), out + err
    assert "Traceback" not in out + err
    release.touch()
    assert first.stdout.readline().strip() == "COMMITTED"
    first.wait(timeout=30)
    scores, drivers = _published(warehouse)
    assert len(scores) == 5000 and set(scores.churn_probability) == {0.9}   # the first writer's rows, whole
    assert len(drivers) == 5000
