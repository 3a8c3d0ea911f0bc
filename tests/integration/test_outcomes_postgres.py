"""The experiment and outcome tables on a real PostgreSQL server: the hand-built warehouse and score history of
tests/pipelines/outcome_warehouse.py, loaded into DuckDB and into a fresh PostgreSQL schema, give the same
churn_playbook_assignments, churn_outcomes, churn_model_performance, churn_playbook_effects and churn_missed; bad
cs_actions rows are refused there too, and a failed write leaves the tables as they were."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from pipelines.warehouse import connect_warehouse, write_tables
from serving.tables import ASSIGNMENTS_TABLE, EFFECTS_TABLE, MISSED_TABLE, OUTCOMES_TABLE, PERFORMANCE_TABLE
from serving.writeback import OUTCOME_SCHEMAS, write_outcomes
from tests.conftest import fresh_postgres_schema
from tests.e2e import churn, write_params
from tests.pipelines.outcome_warehouse import OVERRIDES, cs_actions, source_tables, write_history

pytestmark = pytest.mark.postgres
TABLES = {ASSIGNMENTS_TABLE: ["as_of", "account_id"], OUTCOMES_TABLE: ["as_of", "account_id"],
          PERFORMANCE_TABLE: ["as_of"], EFFECTS_TABLE: ["analysis", "playbook", "tier", "window"],
          MISSED_TABLE: ["account_id", "churn_date"]}


def _load(url: str, actions: pd.DataFrame) -> None:
    con = connect_warehouse(url, threads=1, create=True)
    try:
        write_tables(con, source_tables() | {"cs_actions": actions})
        write_history(con)
    finally:
        con.disconnect()


def _params(root: Path, name: str, url: str) -> Path:
    return write_params(root, OVERRIDES | {"warehouse": {"url": url}}, name)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("outcomes_postgres")
    with fresh_postgres_schema("churn_outcomes") as schema:
        urls = {"duckdb": f"duckdb://{root}/warehouse.duckdb", "postgres": schema.url}
        params = {engine: _params(root, f"{engine}.yaml", url) for engine, url in urls.items()}
        for url in urls.values():
            _load(url, cs_actions())
        outputs = {engine: churn(path, "outcomes") for engine, path in params.items()}
        yield SimpleNamespace(root=root, urls=urls, params=params, outputs=outputs, schema=schema)


def _read(url: str, table: str) -> pd.DataFrame:
    con = connect_warehouse(url, threads=1)
    try:
        frame = con.table(table).execute()
    finally:
        con.disconnect()
    frame = frame.drop(columns=["computed_at", "assigned_at"], errors="ignore")
    for column in frame.columns:
        if column in ("as_of", "churn_date", "window_start", "window_end", "last_as_of", "first_flagged_as_of"):
            frame[column] = pd.to_datetime(frame[column])
    return frame.sort_values(TABLES[table]).reset_index(drop=True)


@pytest.mark.parametrize("table", list(TABLES))
def test_each_experiment_and_outcome_table_on_postgres_equals_duckdbs(project, table):
    duckdb, postgres = _read(project.urls["duckdb"], table), _read(project.urls["postgres"], table)
    assert len(duckdb) > 0
    pd.testing.assert_frame_equal(postgres, duckdb, check_dtype=False, check_exact=False, rtol=1e-12)


def test_both_runs_say_the_same(project):
    lines = {engine: [line for line in out.splitlines() if not line.startswith(("✓", "…"))]
             for engine, out in project.outputs.items()}
    assert lines["postgres"] == lines["duckdb"]
    assert "scoring of 2024-11-01 pending" in project.outputs["postgres"]


def test_a_failed_write_on_postgres_leaves_the_outcome_tables_as_they_were(project):
    url = project.urls["postgres"]
    before = {name: _read(url, name) for name in TABLES if name != ASSIGNMENTS_TABLE}
    con = connect_warehouse(url, threads=1)
    try:
        def crash():
            raise RuntimeError("killed before the commit")

        with pytest.raises(RuntimeError, match="killed before the commit"):
            write_outcomes(con, {name: pd.DataFrame(columns=OUTCOME_SCHEMAS[name].names) for name in before},
                           before_commit=crash)
    finally:
        con.disconnect()
    for name, frame in before.items():
        pd.testing.assert_frame_equal(_read(url, name), frame)


def test_bad_cs_actions_rows_are_refused_on_postgres_and_nothing_is_written(tmp_path):
    bad = pd.concat([cs_actions(), cs_actions().iloc[:1].assign(account_id="ghost")], ignore_index=True)
    with fresh_postgres_schema("churn_bad_actions") as schema:
        _load(schema.url, bad)
        output = churn(_params(tmp_path, "postgres.yaml", schema.url), "outcomes", expect=1)
        assert "cs_actions.account_id foreign_key" in output.strip().splitlines()[-1]
        con = connect_warehouse(schema.url, threads=1)
        try:
            assert OUTCOMES_TABLE not in con.list_tables()
        finally:
            con.disconnect()
