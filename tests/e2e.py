"""End-to-end projects: a temporary folder holding a params file, a DuckDB warehouse filled by the synthetic
generator and an MLflow store, and the `churn` command line run on it (through typer's CliRunner).

The fixtures built on these (`simulated_warehouse`, `make_project`) live in tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import yaml
from click.testing import Result
from typer.testing import CliRunner

from pipelines.cli import app

REPO = Path(__file__).resolve().parents[1]
WAREHOUSE = "warehouse.duckdb"


@dataclass(frozen=True)
class Simulation:
    """The size and seed of a synthetic warehouse (`simulate:` in params.yaml)."""

    accounts: int = 300
    months: int = 16
    seed: int = 11
    start: str = "2024-01-01"   # the first day of the history (tests name dates relative to it)

    def as_params(self) -> dict[str, int | str]:
        return {"accounts": self.accounts, "months": self.months, "seed": self.seed, "start": self.start}


# The warehouses the end-to-end modules share (each simulated once per session, then copied):
TINY = Simulation(accounts=150, months=12, seed=7)     # enough to validate and build features
SMALL = Simulation(accounts=300, months=16, seed=11)   # enough to train and score
MEDIUM = Simulation(accounts=400, months=18, seed=11)  # more labelled history: the gate, backtests, behaviour


def apply_overrides(params: dict, overrides: Mapping[str, Any], root: Path) -> dict:
    """Return `params` with `overrides` applied.

    Args:
        overrides: a section, or a dotted path into one (`model.lightgbm`), to its new value. A dict merges one
            level deep into the dict already there (so `{"sources": {"tickets": None}}` switches off one table and
            keeps the others); any other value replaces it. `{root}` in a string value becomes the project folder.
    """
    params = yaml.safe_load(yaml.safe_dump(params))   # a deep copy
    for path, value in overrides.items():
        *parents, key = path.split(".")
        target = params
        for part in parents:
            target = target.setdefault(part, {})
        value = _fill_root(value, root)
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            target[key] = target[key] | value
        else:
            target[key] = value
    return params


def _fill_root(value, root: Path):
    if isinstance(value, str):
        return value.replace("{root}", str(root))
    if isinstance(value, dict):
        return {k: _fill_root(v, root) for k, v in value.items()}
    return value


def write_params(root: Path, overrides: Mapping[str, Any] | None = None, name: str = "params.yaml") -> Path:
    """Write the repository's params.yaml with the warehouse and the MLflow store inside `root`, then `overrides`
    (see `apply_overrides`); return the file's path."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["warehouse"]["url"] = f"duckdb://{root}/{WAREHOUSE}"
    params["mlflow"] |= {"tracking_uri": f"sqlite:///{root}/mlruns.db", "artifact_root": str(root / "mlruns")}
    path = root / name
    path.write_text(yaml.safe_dump(apply_overrides(params, overrides or {}, root)))
    return path


def invoke(params: Path | None, *args: str) -> Result:
    """Run `churn [--params PARAMS] ARGS` in-process, from the params file's folder (so the relative paths of
    params.yaml, such as `reports/`, land in the project and not in the repository), and return the result."""
    options = ["--params", str(params)] if params else []
    folder = params.parent if params else Path.cwd()
    with contextlib.chdir(folder):
        return CliRunner().invoke(app, [*options, *args])


def churn(params: Path | None, *args: str, expect: int = 0) -> str:
    """Run `churn`, assert it exits with `expect` (and, for an error, through an expected error rather than an
    unhandled exception), and return its output; a failure shows the output and the exception."""
    result = invoke(params, *args)
    shown = f"`churn {' '.join(args)}` exited {result.exit_code}, expected {expect}:\n{result.output}"
    assert result.exit_code == expect, shown + "\n" + repr(result.exception)
    if expect:
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            shown + "\nunhandled " + repr(result.exception)
    return result.output


def query(warehouse: Path, sql: str) -> pd.DataFrame:
    """The result of a query on a DuckDB warehouse file, opened read-only."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).df()


@dataclass(frozen=True)
class Project:
    """A project folder: `params` (params.yaml), the warehouse and the MLflow store beside it."""

    root: Path
    params: Path

    @property
    def warehouse(self) -> Path:
        return self.root / WAREHOUSE

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root}/mlruns.db"

    def churn(self, *args: str, expect: int = 0) -> str:
        return churn(self.params, *args, expect=expect)

    def query(self, sql: str) -> pd.DataFrame:
        return query(self.warehouse, sql)

    def variant(self, name: str, overrides: Mapping[str, Any]) -> Path:
        """Write `name` (e.g. `weak.yaml`) beside params.yaml: the same params (same warehouse, same MLflow store)
        with `overrides` applied."""
        params = yaml.safe_load(self.params.read_text())
        path = self.root / name
        path.write_text(yaml.safe_dump(apply_overrides(params, overrides, self.root)))
        return path


def simulate_warehouse(root: Path, simulation: Simulation) -> Path:
    """Simulate a warehouse into `root` through `churn simulate`; return the DuckDB file, made read-only so that
    a test copying it cannot change it by mistake."""
    churn(write_params(root, {"simulate": simulation.as_params()}), "simulate")
    warehouse = root / WAREHOUSE
    warehouse.chmod(0o444)
    return warehouse


def copy_warehouse(source: Path, root: Path) -> Path:
    """Copy a warehouse file into `root` (contents only, so the copy is writable)."""
    return Path(shutil.copyfile(source, root / WAREHOUSE))
