"""The whole pipeline on a real PostgreSQL server gives DuckDB's results on the same simulated warehouse.

`churn simulate` fills both warehouses, `churn train` trains once on PostgreSQL, and `churn features` and
`churn score` run on both with that champion. Each module run works in a fresh schema, dropped at the end.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from pipelines.config import load_params
from pipelines.simulate_run import SOURCE_TABLES
from pipelines.warehouse import connect_warehouse
from serving.writeback import WriteRefused, write_scores
from tests.conftest import fresh_postgres_schema
from tests.integration.conftest import assert_same_features, churn, sort_rows, write_params

pytestmark = pytest.mark.postgres

# Scores may differ only in the last bits of the probability (float arithmetic in a different process).
SCORE_TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def postgres_url():
    """A URL whose search path is a fresh schema on the test PostgreSQL server."""
    with fresh_postgres_schema("churn_it") as schema:
        yield schema.url


@pytest.fixture(scope="module")
def project(tmp_path_factory, postgres_url):
    """Params files for the same simulated warehouse in DuckDB and in PostgreSQL, sharing one MLflow store
    whose champion was trained on PostgreSQL."""
    root = tmp_path_factory.mktemp("postgres")
    duckdb = write_params(root / "duckdb.yaml", f"duckdb://{root}/warehouse.duckdb", root / "mlruns")
    postgres = write_params(root / "postgres.yaml", postgres_url, root / "mlruns")
    churn(duckdb, "simulate")
    churn(postgres, "simulate")
    trained = churn(postgres, "train")
    assert "model v1" in trained
    return SimpleNamespace(duckdb=duckdb, postgres=postgres)


def _read(params: Path, table: str) -> pd.DataFrame:
    con = connect_warehouse(load_params(params).warehouse.url, threads=1)
    try:
        return con.table(table).execute()
    finally:
        con.disconnect()


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys).reset_index(drop=True)


@pytest.fixture(scope="module")
def scored(project):
    """`churn score` on both warehouses with the one champion; the score tables each wrote."""
    for params in (project.duckdb, project.postgres):
        churn(params, "score")
    return {name: {engine: _read(getattr(project, engine), name) for engine in ("duckdb", "postgres")}
            for name in ("churn_scores", "churn_score_drivers", "churn_scores_latest")}


@pytest.mark.parametrize("table", [*SOURCE_TABLES, "sim_truth", "sim_causes"])
def test_simulate_writes_the_same_rows_to_postgres(project, table):
    duckdb, postgres = _read(project.duckdb, table), _read(project.postgres, table)
    assert len(postgres) > 0
    keys = list(duckdb.columns)
    pd.testing.assert_frame_equal(_sorted(postgres, keys), _sorted(duckdb, keys))


def test_validate_passes_on_postgres(project):
    assert "contract satisfied" in churn(project.postgres, "validate")


def test_feature_table_on_postgres_equals_duckdb(project):
    for params in (project.duckdb, project.postgres):
        churn(params, "features")
    duckdb, postgres = _read(project.duckdb, "churn_features"), _read(project.postgres, "churn_features")
    assert len(duckdb) > 500 and duckdb.label.notna().any() and duckdb.label.isna().any()
    assert list(postgres.columns) == list(duckdb.columns)
    assert_same_features(sort_rows(postgres), sort_rows(duckdb))


def test_scores_on_postgres_equal_duckdb(scored):
    for name, keys in (("churn_scores", ["account_id"]), ("churn_score_drivers", ["account_id", "feature"])):
        duckdb, postgres = (sort_rows(scored[name][e], ["as_of", *keys]) for e in ("duckdb", "postgres"))
        assert len(duckdb) > 50
        pd.testing.assert_frame_equal(postgres.drop(columns="scored_at", errors="ignore"),
                                      duckdb.drop(columns="scored_at", errors="ignore"),
                                      check_exact=False, rtol=0, atol=SCORE_TOLERANCE)
    latest = sort_rows(scored["churn_scores_latest"]["postgres"], ["account_id"])
    pd.testing.assert_frame_equal(latest, sort_rows(scored["churn_scores"]["postgres"], ["account_id"]))


def test_scoring_twice_on_postgres_leaves_the_same_rows(project, scored):
    churn(project.postgres, "score")
    for name, keys in (("churn_scores", ["account_id"]), ("churn_score_drivers", ["account_id", "feature"])):
        before = sort_rows(scored[name]["postgres"], ["as_of", *keys])
        after = sort_rows(_read(project.postgres, name), ["as_of", *keys])
        assert not after.duplicated(["as_of", *keys]).any()
        pd.testing.assert_frame_equal(after.drop(columns="scored_at", errors="ignore"),
                                      before.drop(columns="scored_at", errors="ignore"))


def test_a_write_failing_midway_on_postgres_changes_nothing(project, scored):
    """The drivers insert fails after the scores were deleted and re-inserted: the transaction rolls it all back."""
    before = {name: sort_rows(_read(project.postgres, name), ["as_of", "account_id"])
              for name in ("churn_scores", "churn_score_drivers")}
    as_of = before["churn_scores"].as_of.iloc[0]
    scores = before["churn_scores"].head(1).assign(churn_probability=0.99)
    drivers = before["churn_score_drivers"].head(1).assign(rank=0)
    url = load_params(project.postgres).warehouse.url
    con = connect_warehouse(url, threads=1)
    try:
        con.raw_sql("ALTER TABLE churn_score_drivers ADD CONSTRAINT rank_positive CHECK (rank > 0)").close()
        with pytest.raises(WriteRefused, match="^churn_scores, churn_score_drivers, churn_playbook_assignments: the "
                                               "warehouse refused the write: .*violates check constraint"):
            write_scores(con, scores, drivers, [pd.Timestamp(as_of).date()])
        con.raw_sql("ALTER TABLE churn_score_drivers DROP CONSTRAINT rank_positive").close()
    finally:
        con.disconnect()
    for name, frame in before.items():
        pd.testing.assert_frame_equal(sort_rows(_read(project.postgres, name), ["as_of", "account_id"]), frame)


def test_report_renders_from_the_postgres_scores(project, scored):
    output = churn(project.postgres, "report")
    path = Path(re.search(r"manager report (\S+)", output).group(1))
    assert path.is_file() and "</html>" in path.read_text()
