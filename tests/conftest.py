"""Shared fixtures: tiny hand-built warehouses in real DuckDB files, and simulated end-to-end projects."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import ibis
import pandas as pd
import pytest

from tests.e2e import SMALL, Project, Simulation, copy_warehouse, simulate_warehouse, write_params

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

POSTGRES_URL_ENV = "CHURN_TEST_POSTGRES_URL"

# Modules with a test of these marks take from ten seconds to two minutes each.
_LONG_MARKS = ("slow", "spark", "postgres")
# ... and these, of many short cases or of a property test building the features twelve times, most of a minute each.
_LONG_MODULES = ("test_point_in_time.py", "test_bad_inputs.py")


def pytest_collection_modifyitems(config, items):
    """Put the modules holding end-to-end, integration or many-case tests first, each module's tests in their order:
    the workers take whole modules (`--dist loadfile`), and a long module handed out last keeps one of them busy
    while the other has nothing left to do."""
    long = {item.path for item in items
            if item.path.name in _LONG_MODULES or any(item.get_closest_marker(m) for m in _LONG_MARKS)}
    items.sort(key=lambda item: item.path not in long)   # stable: each module's order is kept


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


@dataclass(frozen=True)
class PostgresSchema:
    name: str
    url: str  # the server's URL with this schema as its search path


@contextmanager
def fresh_postgres_schema(prefix: str) -> Iterator[PostgresSchema]:
    """A fresh schema on the PostgreSQL server of CHURN_TEST_POSTGRES_URL, dropped afterwards; the test skips,
    saying how to start a server, when the variable is not set."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_URL_ENV} is not set, so there is no PostgreSQL server to test against "
                    f"(`eval \"$(.ci/postgres.sh start)\"` starts one and sets it)")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    server = ibis.connect(url)
    server.create_database(name)
    # Ibis reads `postgres://user@host:port/database/schema` as that database with that schema first.
    parts = urlsplit(url)
    database = parts.path.strip("/").split("/")[0]
    try:
        yield PostgresSchema(name=name, url=urlunsplit(parts._replace(path=f"/{database}/{name}")))
    finally:
        server.drop_database(name, force=True, cascade=True)
        server.disconnect()


@pytest.fixture
def postgres_schema():
    """A fresh schema on the test PostgreSQL server (see `fresh_postgres_schema`)."""
    with fresh_postgres_schema("churn_test") as schema:
        yield schema


@pytest.fixture
def postgres_con(postgres_schema):
    """A connection whose search path is a fresh schema on the test PostgreSQL server."""
    con = ibis.connect(postgres_schema.url)
    yield con
    con.disconnect()


@pytest.fixture(scope="session")
def simulated_warehouse(tmp_path_factory) -> Callable[[Simulation], Path]:
    """A read-only synthetic warehouse per `Simulation`, simulated once per session (per xdist worker)."""
    built: dict[Simulation, Path] = {}

    def get(simulation: Simulation) -> Path:
        if simulation not in built:
            built[simulation] = simulate_warehouse(tmp_path_factory.mktemp("simulated"), simulation)
        return built[simulation]

    return get


@pytest.fixture(scope="session")
def make_project(tmp_path_factory, simulated_warehouse) -> Callable[..., Project]:
    """Make a project: a params.yaml (the repository's, with `overrides` applied; see `tests.e2e.apply_overrides`)
    pointing a warehouse and an MLflow store into a new folder (or `root`), and a writable copy of the simulated
    warehouse of `simulation` (None: no warehouse)."""

    def make(overrides: Mapping[str, Any] | None = None, *, simulation: Simulation | None = SMALL,
             name: str = "project", root: Path | None = None) -> Project:
        root = root or tmp_path_factory.mktemp(name)
        sizes = {"simulate": simulation.as_params()} if simulation else {}
        project = Project(root=root, params=write_params(root, sizes | dict(overrides or {})))
        if simulation:
            copy_warehouse(simulated_warehouse(simulation), root)
        return project

    return make
