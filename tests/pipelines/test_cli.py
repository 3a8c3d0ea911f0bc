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
