"""The benchmark on a tiny config: JSON and machine info, cache reuse, pandas/DuckDB agreement, and its parts.

No test asserts on wall-clock time: the benchmark measures, the tests check what it reports and that it is right.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipelines.bench.pandas_notebook import (
    EngagementMismatch,
    check_agreement,
    compared_features,
    compute_engagement_pandas,
)
from pipelines.bench.process import StepFailed, run_step
from pipelines.bench.run import BenchConfig, ensure_warehouse, evaluate_targets, run_bench
from pipelines.bench.warehouse import WarehouseSpec, chunk_plan
from pipelines.config import load_params
from pipelines.progress import Progress
from tests.conftest import ts

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The bench run on a tiny config (150 accounts in two generator chunks, a 60-account scale point), then its
    warehouses asked for again as a second run does."""
    root = tmp_path_factory.mktemp("bench")
    params = load_params(ROOT / "params.yaml")
    params = params.model_copy(update={
        "warehouse": params.warehouse.model_copy(update={"threads": 1}),
        "model": params.model.model_copy(update={"validation_snapshots": 1, "calibration_snapshots": 1}),
    })
    config = BenchConfig(accounts=150, months=12, scale_accounts=[60], chunk_accounts=100, scoring_accounts=500,
                         cache_dir=root / "cache", output=root / "reports" / "bench.json")
    first = run_bench(params, config, Progress())
    written = json.loads(config.output.read_text())
    mtimes = {w["path"]: os.stat(w["path"]).st_mtime_ns for w in first["warehouses"]}
    second = [ensure_warehouse(params, config, n, Progress()) for n in config.scale_points]
    return {"params": params, "config": config, "first": first, "written": written, "mtimes": mtimes,
            "second": second}


@pytest.mark.slow
def test_bench_writes_json_with_every_measurement_and_machine_info(tiny):
    written = tiny["written"]
    assert {"machine", "config", "warehouses", "growth", "feature_build", "agreement", "training", "scoring",
            "targets", "all_targets_met"} <= set(written)
    machine = written["machine"]
    assert machine["cores"] >= 1 and machine["memory_gb"] > 0
    assert {"python", "duckdb", "lightgbm", "pandas", "date", "duckdb_threads", "lightgbm_threads"} <= set(machine)
    assert [row["accounts"] for row in written["growth"]] == [60, 150]
    build = written["feature_build"]
    assert build["accounts"] == 150 and build["events"] == written["warehouses"][-1]["events"] > 0
    assert build["rows"] > 0 and build["features"] > 20 and build["duckdb_peak_rss_gb"] > 0
    assert build["pandas_fits"] and build["pandas_seconds"] > 0 and build["speedup"] > 0
    assert written["training"]["rows"] > 0 and written["training"]["features"] == build["features"]
    assert written["scoring"]["accounts"] == 500 and written["scoring"]["drivers"] > 0
    assert [t["status"] in ("PASS", "MISS") for t in written["targets"]] == [True] * 3
    assert written["all_targets_met"] == all(t["status"] == "PASS" for t in written["targets"])


@pytest.mark.slow
def test_second_run_reuses_the_cached_warehouses(tiny):
    first, second = tiny["first"]["warehouses"], tiny["second"]
    assert [w["cached"] for w in first] == [False, False]
    assert [w["cached"] for w in second] == [True, True]
    assert [w["generated_at"] for w in second] == [w["generated_at"] for w in first]
    assert {p: os.stat(p).st_mtime_ns for p in tiny["mtimes"]} == tiny["mtimes"]
    assert first[-1]["chunks"] == 2 and first[0]["chunks"] == 1


@pytest.mark.slow
def test_chunks_get_distinct_ids(tiny):
    path = tiny["first"]["warehouses"][-1]["path"]
    with duckdb.connect(path, read_only=True) as con:
        accounts = con.sql("SELECT count(*), count(DISTINCT account_id) FROM accounts").fetchall()[0]
        orphans = con.sql("SELECT count(*) FROM events e ANTI JOIN users u USING (user_id)").fetchall()[0][0]
        ordered = con.sql("SELECT bool_and(event_at >= prev) FROM (SELECT event_at, lag(event_at) OVER () AS prev "
                          "FROM events)").fetchall()[0][0]
    assert accounts == (150, 150) and orphans == 0 and ordered


@pytest.mark.slow
def test_pandas_and_duckdb_engagement_agree_and_a_broken_value_is_caught(tiny):
    windows = list(tiny["params"].features.windows)
    agreement = tiny["first"]["agreement"]
    assert agreement["identical"] and agreement["rows"] > 0 and agreement["features"] == compared_features(windows)
    growth = tiny["first"]["growth"]
    assert [row["agreement_rows"] for row in growth] == [row["rows"] for row in growth]

    frame = pd.read_parquet(tiny["config"].cache_dir / "run" / "features_150.parquet")
    with duckdb.connect(tiny["first"]["warehouses"][-1]["path"], read_only=True) as con:
        events, subscriptions = con.sql("SELECT * FROM events").df(), con.sql("SELECT * FROM subscriptions").df()
    dates = sorted(frame["as_of"].dt.date.unique())
    notebook = compute_engagement_pandas(events, subscriptions, dates, windows)
    features = compared_features(windows)
    assert check_agreement(frame, notebook, features)["rows"] == len(frame)

    broken = notebook.copy()
    row = broken.index[broken["sessions_30d"] > 0][0]
    broken.loc[row, "sessions_30d"] += 1
    with pytest.raises(EngagementMismatch, match="sessions_30d: 1 rows differ"):
        check_agreement(frame, broken, features)


def _events(*rows: tuple[str, str, str, str, str]) -> pd.DataFrame:
    account, at, name, user, session = zip(*rows, strict=True)
    return pd.DataFrame({"account_id": list(account), "event_at": ts(*at), "event_name": list(name),
                         "user_id": list(user), "session_id": list(session)})


def test_pandas_engagement_features_by_hand():
    events = _events(
        ("A", "2024-01-02 10:00", "login", "u1", "s1"),     # 30 days before the as-of: outside 7d, inside 30d
        ("A", "2024-01-28 09:00", "login", "u1", "s2"),
        ("A", "2024-01-28 09:05", "create_report", "u1", "s2"),
        ("A", "2024-01-31 23:59", "search", "u2", "s3"),
        ("A", "2024-02-01 00:00", "search", "u2", "s4"),    # at the as-of: never read
        ("B", "2023-12-20 12:00", "login", "u3", "s5"),     # before every window
    )
    subscriptions = pd.DataFrame({"account_id": ["A", "B", "C"],
                                  "start_at": ts("2023-01-01", "2023-01-01", "2024-03-01"),
                                  "end_at": ts(None, "2024-06-01", None), "is_trial": [False, False, False]})
    out = compute_engagement_pandas(events, subscriptions, [date(2024, 2, 1)], [7, 30])
    a, b = (out.set_index("account_id").loc[k] for k in ("A", "B"))
    assert list(out["account_id"]) == ["A", "B"]  # C starts after the as-of
    assert (a.active_days_7d, a.events_7d, a.active_users_7d, a.distinct_events_7d, a.sessions_7d) == (2, 3, 2, 3, 2)
    assert (a.active_days_30d, a.events_30d, a.sessions_30d, a.days_since_last_activity) == (3, 4, 3, 1)
    assert (b.events_30d, b.sessions_30d, b.days_since_last_activity) == (0, 0, 43)


def test_agreement_check_names_the_feature_and_missing_rows():
    keys = {"account_id": ["A", "B"], "as_of": pd.to_datetime(["2024-02-01", "2024-02-01"])}
    warehouse = pd.DataFrame({**keys, "events_7d": [3.0, 0.0], "days_since_last_activity": [1.0, np.nan]})
    assert check_agreement(warehouse, warehouse.copy(), ["events_7d", "days_since_last_activity"])["rows"] == 2
    with pytest.raises(EngagementMismatch, match="events_7d: 1 rows differ, e.g. B 2024-02-01"):
        check_agreement(warehouse, warehouse.assign(events_7d=[3.0, 1.0]), ["events_7d"])
    with pytest.raises(EngagementMismatch, match="1 .* rows are in only one implementation"):
        check_agreement(warehouse, warehouse.head(1), ["events_7d"])


def test_chunk_plan_splits_accounts_with_derived_seeds_and_the_key_follows_the_spec():
    spec = WarehouseSpec(accounts=10_001, months=15, seed=7, start=date(2024, 1, 1), chunk_accounts=4_000)
    plan = chunk_plan(spec)
    assert [n for n, _ in plan] == [3_334, 3_334, 3_333] and len({s for _, s in plan}) == 3
    assert chunk_plan(WarehouseSpec(500, 15, 7, date(2024, 1, 1), 4_000)) == [(500, 7)]
    assert spec.key() == WarehouseSpec(10_001, 15, 7, date(2024, 1, 1), 4_000).key()
    assert spec.key() != WarehouseSpec(10_001, 15, 8, date(2024, 1, 1), 4_000).key()


def test_steps_run_in_a_child_process_with_their_own_peak_memory():
    done = run_step("math:sqrt", 16.0)
    assert done.value == 4.0 and done.peak_rss_bytes > 0 and not done.killed
    with pytest.raises(StepFailed, match="math domain error"):
        run_step("math:sqrt", -1.0)
    hungry = run_step("os:urandom", 1_000_000_000, memory_limit_bytes=150_000_000)
    assert hungry.killed and hungry.value is None and hungry.peak_rss_bytes > 150_000_000


def test_speedup_target_falls_back_to_the_largest_scale_pandas_fit():
    config = BenchConfig()
    growth = [{"events": 5_000_000, "pandas_fits": True, "speedup": 12.0, "duckdb_peak_rss_gb": 1.0},
              {"events": 50_000_000, "pandas_fits": False, "duckdb_peak_rss_gb": 5.0}]
    speed, rss, scoring = evaluate_targets(config, growth, {"accounts": 100_000, "seconds": 59.0})
    assert (speed["status"], speed["value"]) == ("PASS", 12.0) and "did not fit" in speed["note"]
    assert rss["status"] == "MISS" and scoring["status"] == "PASS"
