"""Shared fixtures: tiny hand-built warehouses in real DuckDB files."""

from __future__ import annotations

import os

import ibis
import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def ts(*values: str | None) -> pd.Series:
    """Timestamps (microsecond precision, NaT for None) from ISO strings."""
    return pd.Series(pd.to_datetime(list(values), format="ISO8601"), dtype="datetime64[us]")


def tiny_accounts(*ids: str) -> pd.DataFrame:
    return pd.DataFrame({"account_id": list(ids), "created_at": ts(*["2023-06-01"] * len(ids))})


@pytest.fixture
def duckdb_con(tmp_path):
    """A fresh DuckDB warehouse file."""
    con = ibis.duckdb.connect(str(tmp_path / "warehouse.duckdb"), threads=1)
    yield con
    con.disconnect()


@pytest.fixture
def load_tables(duckdb_con):
    """Write frames as warehouse tables and return the connection."""
    def _load(**frames: pd.DataFrame):
        for name, frame in frames.items():
            duckdb_con.create_table(name, frame, overwrite=True)
        return duckdb_con
    return _load
