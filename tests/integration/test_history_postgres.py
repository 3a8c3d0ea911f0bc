"""The history columns on a real PostgreSQL server: tables an older version wrote gain the columns inside the
publishing transaction, the tier run is rebuilt from their rows in the warehouse, and a failed publish leaves them
as they were; the same hand-built history as tests/serving/test_history.py on DuckDB."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest

from pipelines.warehouse import connect_warehouse
from serving.history import HISTORY_COLUMNS
from serving.writeback import DRIVERS_SCHEMA, SCORES_SCHEMA, read_previous_scorings, write_scores
from tests.serving.test_history import (
    APR,
    DEC,
    FEB,
    JAN,
    MAR,
    UPGRADE,
    _day,
    _publish,
    _published,
    assert_history,
    scoring,
)

pytestmark = pytest.mark.postgres

OLD_SCORES = [c for c in SCORES_SCHEMA.names if c not in HISTORY_COLUMNS]
OLD_DRIVERS = [c for c in DRIVERS_SCHEMA.names if c != "probability_points"]


@pytest.fixture
def con(postgres_schema):
    con = connect_warehouse(postgres_schema.url, threads=1)
    yield con
    con.disconnect()


def _older_tables(con) -> None:
    """churn_scores (December to February), churn_score_drivers and the latest view as an older version left them."""
    frame = pd.concat([scoring(d, rows) for d, rows in UPGRADE.items()], ignore_index=True)[OLD_SCORES]
    old = ibis.schema({c: SCORES_SCHEMA[c] for c in OLD_SCORES})
    con.create_table("churn_scores", ibis.memtable(frame, schema=old))
    con.create_table("churn_score_drivers", schema=ibis.schema({c: DRIVERS_SCHEMA[c] for c in OLD_DRIVERS}))
    con.raw_sql('CREATE VIEW churn_scores_latest AS SELECT * FROM churn_scores '
                'WHERE as_of = (SELECT MAX(as_of) FROM churn_scores)').close()


def test_publishing_scoring_after_scoring_writes_the_history_on_postgres(con):
    for as_of in (JAN, FEB, MAR):
        _publish(con, as_of)
    rows = _published(con)
    for as_of in (JAN, FEB, MAR):
        assert_history(rows, as_of)
    _publish(con, MAR)
    pd.testing.assert_frame_equal(_published(con), rows)


def test_an_older_postgres_table_is_migrated_when_scores_are_published(con):
    _older_tables(con)
    previous = read_previous_scorings(con, [MAR]).set_index("account_id")
    assert previous.tier_since.to_dict() == {"a": DEC, "f": FEB, "g": FEB, "h": JAN}
    _publish(con, MAR)
    assert list(con.table("churn_scores").columns) == OLD_SCORES + HISTORY_COLUMNS
    assert "probability_points" in con.table("churn_score_drivers").columns
    rows = _published(con)
    older = rows[[_day(d) != MAR for d in rows.as_of]]
    assert len(older) == 10 and older[HISTORY_COLUMNS].isna().all().all()
    latest = con.table("churn_scores_latest").execute().set_index("account_id")
    assert list(latest.columns)[-len(HISTORY_COLUMNS):] == HISTORY_COLUMNS
    assert (_day(latest.at["a", "tier_since"]), latest.at["a", "days_in_tier"]) == (DEC, 90)
    _publish(con, APR, [("a", 0.70, "high")])
    april = _published(con)
    assert april[[_day(d) == APR for d in april.as_of]].days_in_tier.tolist() == [121]


def test_a_failed_publish_leaves_an_older_postgres_table_as_it_was(con):
    _older_tables(con)

    def fail():
        raise RuntimeError("killed before the commit")

    with pytest.raises(RuntimeError, match="killed"):
        write_scores(con, scoring(MAR).assign(**dict.fromkeys(HISTORY_COLUMNS)),
                     pd.DataFrame(columns=list(DRIVERS_SCHEMA.names)), [MAR], before_commit=fail)
    assert list(con.table("churn_scores").columns) == OLD_SCORES
    assert list(con.table("churn_score_drivers").columns) == OLD_DRIVERS
    assert sorted({_day(d) for d in _published(con).as_of}) == [DEC, JAN, FEB]


def test_a_postgres_column_of_another_type_is_a_clear_error(con):
    con.create_table("churn_scores", schema=ibis.schema({"account_id": "string", "as_of": "date",
                                                         "risk_rank": "string"}))
    with pytest.raises(ValueError, match="table churn_scores: column risk_rank is string, not integer"):
        write_scores(con, scoring(MAR).assign(**dict.fromkeys(HISTORY_COLUMNS)),
                     pd.DataFrame(columns=list(DRIVERS_SCHEMA.names)), [MAR])
