"""Write-back: idempotent per as-of, atomic across tables, and the latest-scores view."""

from __future__ import annotations

from datetime import date

import ibis
import pandas as pd
import pytest

from serving.writeback import (
    DRIVERS_SCHEMA,
    KPIS_SCHEMA,
    SCORES_SCHEMA,
    WriteRefused,
    describe_schema_problems,
    rebuild_table,
    replace_as_of_rows,
    write_kpis,
    write_scores,
)


def _scores(as_of: str, accounts: list[str], probability: float) -> pd.DataFrame:
    return pd.DataFrame({
        "account_id": accounts, "as_of": pd.Timestamp(as_of), "churn_probability": probability, "risk_tier": "low",
        "risk_rank": range(1, len(accounts) + 1), "health_score": None, "mrr": 10.0, "top_reasons": "r",
        "recommended_action": None, "owner_role": None, "urgency": None, "due_by": None, "playbook": None, "arm": None,
        "renewal_date": None,
        "days_to_renewal": None, "billing_period_months": None, "previous_as_of": None,
        "previous_probability": None, "previous_tier": None, "probability_change": None,
        "tier_since": pd.Timestamp(as_of), "days_in_tier": 0,
        "model_name": "m", "model_version": "1", "scored_at": pd.Timestamp("2024-05-01"),
    })


def _drivers(as_of: str, accounts: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"account_id": accounts, "as_of": pd.Timestamp(as_of), "rank": 1, "feature": "f",
                         "role": "cause", "value": 1.0, "contribution": 0.5, "probability_points": 4.0,
                         "direction": "raises risk", "reason": "r"})


def _rows(con, table: str) -> pd.DataFrame:
    return con.table(table).execute().sort_values(["as_of", "account_id"]).reset_index(drop=True)


def test_same_as_of_twice_replaces_rows_without_duplicates(duckdb_con):
    write_scores(duckdb_con, _scores("2024-04-01", ["a", "b"], 0.2), _drivers("2024-04-01", ["a"]),
                 [date(2024, 4, 1)])
    write_scores(duckdb_con, _scores("2024-05-01", ["a", "b", "c"], 0.3), _drivers("2024-05-01", ["a"]),
                 [date(2024, 5, 1)])
    first = _rows(duckdb_con, "churn_scores")
    write_scores(duckdb_con, _scores("2024-05-01", ["a", "b", "c"], 0.3), _drivers("2024-05-01", ["a"]),
                 [date(2024, 5, 1)])
    pd.testing.assert_frame_equal(_rows(duckdb_con, "churn_scores"), first)
    assert len(first) == 5
    latest = duckdb_con.table("churn_scores_latest").execute()
    assert set(latest.account_id) == {"a", "b", "c"} and set(latest.as_of) == {pd.Timestamp("2024-05-01")}


def test_a_failed_write_leaves_every_table_as_it_was(duckdb_con):
    write_scores(duckdb_con, _scores("2024-04-01", ["a", "b"], 0.2), _drivers("2024-04-01", ["a"]),
                 [date(2024, 4, 1)])
    scores, drivers = _rows(duckdb_con, "churn_scores"), _rows(duckdb_con, "churn_score_drivers")
    broken = _drivers("2024-04-01", ["a"]).assign(rank="not a number")  # fails after the scores delete+insert
    with pytest.raises(Exception):  # noqa: B017 - any engine error must roll back
        write_scores(duckdb_con, _scores("2024-04-01", ["x"], 0.9), broken, [date(2024, 4, 1)])
    pd.testing.assert_frame_equal(_rows(duckdb_con, "churn_scores"), scores)
    pd.testing.assert_frame_equal(_rows(duckdb_con, "churn_score_drivers"), drivers)


def test_an_older_table_without_new_columns_is_a_clear_error(duckdb_con):
    duckdb_con.create_table("churn_scores", schema=ibis.schema({"account_id": "string", "as_of": "date"}))
    with pytest.raises(ValueError, match="churn_scores: lacks column"):
        replace_as_of_rows(duckdb_con, {"churn_scores": (_scores("2024-04-01", ["a"], 0.1), SCORES_SCHEMA)},
                           [date(2024, 4, 1)])


def _kpis(rows: list[tuple]) -> pd.DataFrame:
    month, segment, kpi, value = zip(*rows, strict=True)
    return pd.DataFrame({"month": pd.to_datetime(list(month)), "segment": list(segment), "kpi": list(kpi),
                         "value": list(value), "numerator": list(value), "denominator": None})


KPI_ROWS = [("2024-01-01", "all", "mrr", 100.0), ("2024-02-01", "all", "mrr", 120.0),
            ("2024-01-01", "all", "logo_churn_rate", 0.02), ("2024-01-01", "SMB", "mrr", 40.0)]


def _kpi_rows(con, table: str = "churn_kpis") -> pd.DataFrame:
    return con.table(table).execute().sort_values(["month", "segment", "kpi"]).reset_index(drop=True)


def test_kpis_are_replaced_whole_and_the_latest_view_holds_each_kpis_newest_month(duckdb_con):
    write_kpis(duckdb_con, _kpis([("2023-12-01", "all", "nps", 10.0)]))
    write_kpis(duckdb_con, _kpis(KPI_ROWS))
    first = _kpi_rows(duckdb_con)
    write_kpis(duckdb_con, _kpis(KPI_ROWS))
    pd.testing.assert_frame_equal(_kpi_rows(duckdb_con), first)
    assert len(first) == 4 and "nps" not in set(first.kpi)   # a KPI no longer computed is gone
    latest = _kpi_rows(duckdb_con, "churn_kpis_latest")
    # Churn settles later than MRR: each KPI and segment keeps its own newest month.
    assert list(zip(latest.month.astype(str), latest.segment, latest.kpi, strict=True)) == [
        ("2024-01-01", "SMB", "mrr"), ("2024-01-01", "all", "logo_churn_rate"), ("2024-02-01", "all", "mrr")]


def test_a_failed_kpi_write_leaves_the_table_and_view_as_they_were(duckdb_con):
    write_kpis(duckdb_con, _kpis(KPI_ROWS))
    before, latest = _kpi_rows(duckdb_con), _kpi_rows(duckdb_con, "churn_kpis_latest")

    def fail():
        raise RuntimeError("killed before the commit")

    with pytest.raises(RuntimeError, match="killed"):
        write_kpis(duckdb_con, _kpis([("2024-03-01", "all", "mrr", 1.0)]), before_commit=fail)
    pd.testing.assert_frame_equal(_kpi_rows(duckdb_con), before)
    pd.testing.assert_frame_equal(_kpi_rows(duckdb_con, "churn_kpis_latest"), latest)


# What churn_scores and churn_score_drivers held before the history columns (and probability_points) existed.
OLD_SCORE_COLUMNS = ["account_id", "as_of", "churn_probability", "risk_tier", "risk_rank", "health_score", "mrr",
                     "top_reasons", "recommended_action", "owner_role", "model_name", "model_version", "scored_at"]
OLD_DRIVER_COLUMNS = ["account_id", "as_of", "rank", "feature", "value", "contribution", "direction", "reason"]


def _older_tables(con) -> None:
    """churn_scores and churn_score_drivers as an older version wrote them, with one as-of of rows."""
    old_scores = ibis.schema({c: SCORES_SCHEMA[c] for c in OLD_SCORE_COLUMNS})
    old_drivers = ibis.schema({c: DRIVERS_SCHEMA[c] for c in OLD_DRIVER_COLUMNS})
    con.create_table("churn_scores", ibis.memtable(_scores("2024-04-01", ["a", "b"], 0.2)[OLD_SCORE_COLUMNS].assign(
        as_of=date(2024, 4, 1)), schema=old_scores))
    con.create_table("churn_score_drivers", ibis.memtable(_drivers("2024-04-01", ["a"])[OLD_DRIVER_COLUMNS].assign(
        as_of=date(2024, 4, 1)), schema=old_drivers))
    con.raw_sql("CREATE VIEW churn_scores_latest AS SELECT * FROM churn_scores")


def test_tables_written_by_an_older_version_gain_the_new_columns_when_scores_are_published(duckdb_con):
    _older_tables(duckdb_con)
    scores = _scores("2024-05-01", ["a", "c"], 0.3).assign(
        previous_as_of=pd.Timestamp("2024-04-01"), previous_probability=[0.2, None], previous_tier=["low", None],
        probability_change=[0.1, None], tier_since=pd.to_datetime(["2024-04-01", "2024-05-01"]), days_in_tier=[30, 0])
    write_scores(duckdb_con, scores, _drivers("2024-05-01", ["a"]), [date(2024, 5, 1)])
    assert list(duckdb_con.table("churn_scores").columns) == OLD_SCORE_COLUMNS + [
        c for c in SCORES_SCHEMA.names if c not in OLD_SCORE_COLUMNS]
    assert "probability_points" in duckdb_con.table("churn_score_drivers").columns
    rows = _rows(duckdb_con, "churn_scores")
    older, newer = rows[rows.as_of == pd.Timestamp("2024-04-01")], rows[rows.as_of == pd.Timestamp("2024-05-01")]
    assert len(older) == 2 and older[["previous_as_of", "tier_since", "days_in_tier"]].isna().all().all()
    assert newer.days_in_tier.tolist() == [30, 0] and newer.previous_tier.tolist()[0] == "low"
    assert newer.probability_change.tolist()[0] == pytest.approx(0.1)
    latest = duckdb_con.table("churn_scores_latest").execute()
    assert sorted(latest.account_id) == ["a", "c"] and latest.tier_since.notna().all()
    # Published again (a re-run of the same as-of): nothing more to add, the same rows.
    write_scores(duckdb_con, scores, _drivers("2024-05-01", ["a"]), [date(2024, 5, 1)])
    pd.testing.assert_frame_equal(_rows(duckdb_con, "churn_scores"), rows)


def test_any_column_the_schema_has_and_the_table_lacks_is_added(duckdb_con):
    """Generic: a column added to a schema later (here one this version does not know) is added the same way."""
    write_scores(duckdb_con, _scores("2024-04-01", ["a"], 0.2), _drivers("2024-04-01", ["a"]), [date(2024, 4, 1)])
    wider = ibis.schema(dict(SCORES_SCHEMA.items()) | {"renewal_date": "date", "urgency": "string"})
    scores = _scores("2024-05-01", ["a"], 0.3).assign(renewal_date=pd.Timestamp("2024-09-01"), urgency="now")
    replace_as_of_rows(duckdb_con, {"churn_scores": (scores, wider)}, [date(2024, 5, 1)], add_missing=True)
    rows = _rows(duckdb_con, "churn_scores")
    assert rows.urgency.tolist()[0] is None or pd.isna(rows.urgency.tolist()[0])
    assert rows.urgency.tolist()[1] == "now" and rows.renewal_date.tolist()[1] == pd.Timestamp("2024-09-01")


def test_a_failed_publish_leaves_an_older_table_without_the_new_columns(duckdb_con):
    _older_tables(duckdb_con)

    def fail():
        raise RuntimeError("killed before the commit")

    with pytest.raises(RuntimeError, match="killed"):
        write_scores(duckdb_con, _scores("2024-05-01", ["a"], 0.3), _drivers("2024-05-01", ["a"]),
                     [date(2024, 5, 1)], before_commit=fail)
    assert list(duckdb_con.table("churn_scores").columns) == OLD_SCORE_COLUMNS
    assert list(duckdb_con.table("churn_score_drivers").columns) == OLD_DRIVER_COLUMNS
    assert len(duckdb_con.table("churn_scores").execute()) == 2


def test_a_table_lacking_its_row_keys_or_holding_a_column_of_another_type_is_refused(duckdb_con):
    duckdb_con.create_table("churn_scores", schema=ibis.schema({"account_id": "string",
                                                                "churn_probability": "float64"}))
    with pytest.raises(ValueError, match=r"table churn_scores: lacks column\(s\) as_of \("):
        write_scores(duckdb_con, _scores("2024-04-01", ["a"], 0.1), _drivers("2024-04-01", ["a"]), [date(2024, 4, 1)])
    duckdb_con.create_table("churn_scores", schema=ibis.schema({"account_id": "string", "as_of": "date",
                                                                "churn_probability": "string"}), overwrite=True)
    with pytest.raises(ValueError, match="table churn_scores: column churn_probability is string, not floating"):
        write_scores(duckdb_con, _scores("2024-04-01", ["a"], 0.1), _drivers("2024-04-01", ["a"]), [date(2024, 4, 1)])
    assert list(duckdb_con.table("churn_scores").columns) == ["account_id", "as_of", "churn_probability"]
    assert "churn_score_drivers" not in duckdb_con.list_tables() or duckdb_con.table(
        "churn_score_drivers").count().execute() == 0


def test_a_kpi_table_of_another_shape_is_named_whole_and_left_as_it_was(duckdb_con):
    """Every reason an existing churn_kpis cannot take the rows, in one message; the table is not touched."""
    duckdb_con.raw_sql("CREATE TABLE churn_kpis (month VARCHAR, segment VARCHAR, kpi VARCHAR, value VARCHAR, "
                       "computed_at TIMESTAMP NOT NULL, note VARCHAR)")
    duckdb_con.raw_sql("INSERT INTO churn_kpis VALUES ('2024-01', 'all', 'mrr', 'lots', TIMESTAMP '2024-02-01', "
                       "NULL)")
    assert describe_schema_problems(duckdb_con, "churn_kpis", KPIS_SCHEMA) == [
        "lacks column(s) numerator, denominator", "column month is string, not date",
        "column value is string, not floating", "column computed_at (not ours) refuses NULL"]
    with pytest.raises(ValueError, match=r"^table churn_kpis: lacks column\(s\) numerator, denominator; column month "
                                         r"is string, not date; .*refuses NULL \(written by another version"):
        write_kpis(duckdb_con, _kpis(KPI_ROWS))
    assert duckdb_con.table("churn_kpis").execute().value.tolist() == ["lots"]


def test_engine_widths_are_not_a_different_shape(duckdb_con):
    # DuckDB reads a TIMESTAMP back as timestamp(6), PostgreSQL stores int8 as a smallint: the same kind.
    duckdb_con.raw_sql("CREATE TABLE t (as_of DATE, scored_at TIMESTAMP, label SMALLINT, mrr DECIMAL(18, 2))")
    wanted = ibis.schema({"as_of": "date", "scored_at": "timestamp", "label": "int8", "mrr": "decimal(38, 6)"})
    assert describe_schema_problems(duckdb_con, "t", wanted) == []
    assert describe_schema_problems(duckdb_con, "absent", wanted) == []


def test_a_rebuilt_table_takes_the_new_columns_whole_and_a_failed_rebuild_leaves_the_old_one(duckdb_con):
    old = ibis.schema({"account_id": "string", "as_of": "date", "events_7d": "float64", "plan": "string"})
    new = ibis.schema({"account_id": "string", "as_of": "date", "events_7d": "string", "events_180d": "float64"})
    rebuild_table(duckdb_con, "churn_features", pd.DataFrame(
        {"account_id": ["a", "b"], "as_of": pd.Timestamp("2024-04-01"), "events_7d": [1.0, 2.0], "plan": "x"}), old)
    frame = pd.DataFrame({"account_id": ["c"], "as_of": pd.Timestamp("2024-05-01"), "events_7d": ["7"],
                          "events_180d": [3.0]})

    def fail():
        raise RuntimeError("killed before the commit")

    with pytest.raises(RuntimeError, match="killed"):
        rebuild_table(duckdb_con, "churn_features", frame, new, before_commit=fail)
    assert duckdb_con.table("churn_features").schema() == old
    assert _rows(duckdb_con, "churn_features").account_id.tolist() == ["a", "b"]

    rebuild_table(duckdb_con, "churn_features", frame, new)
    assert duckdb_con.table("churn_features").schema() == new
    assert _rows(duckdb_con, "churn_features").to_dict("records") == [
        {"account_id": "c", "as_of": pd.Timestamp("2024-05-01"), "events_7d": "7", "events_180d": 3.0}]


def test_a_write_the_warehouse_refuses_is_one_line_naming_the_tables_for_every_stage(duckdb_con):
    """The refusal is turned into a line where every write goes through (the scores here), not per stage."""
    duckdb_con.raw_sql("CREATE TABLE elsewhere (account_id VARCHAR, as_of DATE)")
    duckdb_con.raw_sql("CREATE VIEW churn_scores AS SELECT * FROM elsewhere")
    with pytest.raises(WriteRefused) as refused:
        write_scores(duckdb_con, _scores("2024-04-01", ["a"], 0.1), _drivers("2024-04-01", ["a"]), [date(2024, 4, 1)])
    message = str(refused.value)
    assert message.startswith("churn_scores, churn_score_drivers: the warehouse refused the write: ")
    assert message.endswith("; nothing was written") and "\n" not in message
    assert duckdb_con.table("churn_score_drivers").count().execute() == 0   # created empty on first use, no row
