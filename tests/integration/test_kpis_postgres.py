"""`churn kpis` on a real PostgreSQL server gives DuckDB's KPI table on the same simulated warehouse, row for row,
and its write-back (table, view, a second run) behaves there as on DuckDB.

The hand-built warehouse's exact values are checked on PostgreSQL in tests/features/test_kpis.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from pipelines.config import load_params
from pipelines.warehouse import connect_warehouse
from tests.conftest import fresh_postgres_schema
from tests.integration.conftest import churn, write_params

pytestmark = pytest.mark.postgres
KEYS = ["month", "segment", "kpi"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The same simulated warehouse in DuckDB and in a fresh PostgreSQL schema, with `churn kpis` run on both."""
    root = tmp_path_factory.mktemp("kpis_postgres")
    with fresh_postgres_schema("churn_kpis") as schema:
        duckdb = write_params(root / "duckdb.yaml", f"duckdb://{root}/warehouse.duckdb", root / "mlruns")
        postgres = write_params(root / "postgres.yaml", schema.url, root / "mlruns")
        for params in (duckdb, postgres):
            churn(params, "simulate")
        outputs = {name: churn(params, "kpis") for name, params in (("duckdb", duckdb), ("postgres", postgres))}
        yield SimpleNamespace(duckdb=duckdb, postgres=postgres, outputs=outputs)


def _read(params, table: str) -> pd.DataFrame:
    con = connect_warehouse(load_params(params).warehouse.url, threads=1)
    try:
        frame = con.table(table).execute()
    finally:
        con.disconnect()
    frame["month"] = pd.to_datetime(frame["month"])
    return frame.sort_values(KEYS).reset_index(drop=True)


def test_the_kpi_table_on_postgres_equals_duckdbs(project):
    duckdb, postgres = _read(project.duckdb, "churn_kpis"), _read(project.postgres, "churn_kpis")
    assert len(duckdb) > 1000 and duckdb.kpi.nunique() >= 50
    pd.testing.assert_frame_equal(postgres, duckdb, check_exact=True)
    # Both runs said the same: the same KPIs, months pending and headline.
    lines = {name: [line for line in out.splitlines() if not line.startswith(("✓", "…"))]
             for name, out in project.outputs.items()}
    assert lines["postgres"] == lines["duckdb"]


def test_the_latest_view_on_postgres_equals_duckdbs(project):
    duckdb, postgres = _read(project.duckdb, "churn_kpis_latest"), _read(project.postgres, "churn_kpis_latest")
    pd.testing.assert_frame_equal(postgres, duckdb, check_exact=True)
    assert not postgres.duplicated(["segment", "kpi"]).any()


def test_running_kpis_again_on_postgres_leaves_the_same_rows(project):
    before = _read(project.postgres, "churn_kpis")
    churn(project.postgres, "kpis")
    pd.testing.assert_frame_equal(_read(project.postgres, "churn_kpis"), before)
