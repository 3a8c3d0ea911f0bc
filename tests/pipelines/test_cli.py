"""The command line: every command answers --help, and expected errors are one line with a non-zero exit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e import churn

COMMANDS = ["simulate", "validate", "features", "train", "score", "outcomes", "report", "demo"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    assert "Usage" in churn(None, command, "--help")


def test_help_answers_without_importing_heavy_libraries():
    code = "import sys; from pipelines.cli import app; print(sorted(m for m in ('mlflow', 'great_expectations', " \
           "'lightgbm', 'ibis') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_bad_params_file_is_one_clear_line(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("modle:\n  seed: 1\n")
    output = churn(params, "train", expect=1)
    assert "modle: Extra inputs are not permitted" in output
    assert "Traceback" not in output


def test_a_warehouse_without_required_tables_is_named(tmp_path):
    import duckdb

    duckdb.connect(str(tmp_path / "empty.duckdb")).close()  # a warehouse file that holds no table
    params = tmp_path / "params.yaml"
    params.write_text(f"warehouse:\n  url: duckdb://{tmp_path}/empty.duckdb\n")
    output = churn(params, "validate", expect=1)
    assert "table accounts: required by the contract" in output


def test_a_mistyped_duckdb_path_is_an_error_and_creates_nothing(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(f"warehouse:\n  url: duckdb://{tmp_path}/typo/warehuose.duckdb\n")
    for command in ("validate", "features", "train", "outcomes", "report"):  # score checks its model store first
        output = churn(params, command, expect=1)
        assert "no DuckDB file at" in output and "churn simulate" in output, output
    assert not (tmp_path / "typo").exists()


def test_simulate_checks_its_options_like_the_params_file_and_writes_nothing(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(f"warehouse:\n  url: duckdb://{tmp_path}/warehouse.duckdb\n")
    output = churn(params, "simulate", "--accounts", "3", "--months", "2", expect=1)
    assert output.splitlines() == ["error: --accounts: Input should be greater than or equal to 20",
                                   "--months: Input should be greater than or equal to 6"]
    assert "less than or equal to 100000" in churn(params, "simulate", "--accounts", "1000000000000", expect=1)
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_simulate_seed_zero_is_a_seed_not_the_default(tmp_path):
    import duckdb

    firsts = {}
    for seed in ("0", "1"):
        params = tmp_path / f"params{seed}.yaml"
        params.write_text(f"warehouse:\n  url: duckdb://{tmp_path}/w{seed}.duckdb\nsimulate:\n  nowcast_paths: 0\n"
                          f"  seed: 1\n")
        churn(params, "simulate", "--accounts", "20", "--months", "6", "--seed", seed)
        with duckdb.connect(str(tmp_path / f"w{seed}.duckdb"), read_only=True) as con:
            firsts[seed] = con.sql("SELECT created_at FROM accounts ORDER BY account_id").fetchall()
    assert firsts["0"] != firsts["1"]


def test_running_out_of_memory_is_one_line(tmp_path, monkeypatch):
    import pipelines.simulate_run

    def out_of_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 7.28 TiB for an array with shape (1000000000000,)\nmore")

    monkeypatch.setattr(pipelines.simulate_run, "run_simulate", out_of_memory)
    params = tmp_path / "params.yaml"
    params.write_text(f"warehouse:\n  url: duckdb://{tmp_path}/warehouse.duckdb\n")
    assert churn(params, "simulate", expect=1).splitlines() == [
        "error: out of memory (Unable to allocate 7.28 TiB for an array with shape (1000000000000,)); give the run "
        "less data: fewer accounts, months or as-of dates"]
