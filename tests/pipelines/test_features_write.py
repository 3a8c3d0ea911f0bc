"""Writing churn_features when the warehouse stands in the way: a view of the user's on it, a view or another tool's
table by that name. Each is one StageError naming the table and what refused, and the warehouse is left as it was
(never a traceback, never the user's objects dropped)."""

from __future__ import annotations

import threading
import time
from datetime import date

import duckdb
import ibis
import pandas as pd
import pytest

from pipelines.errors import StageError
from pipelines.features_run import write_features
from pipelines.warehouse import count_of
from serving.tables import FEATURES_TABLE
from tests.conftest import tiny_accounts, ts
from tests.e2e import TINY, WAREHOUSE, churn, write_params

OLD = ibis.schema({"account_id": "string", "as_of": "date", "label": "int8", "mrr": "float64",
                   "events_7d": "float64", "events_90d": "float64"})
NEW = ibis.schema({"account_id": "string", "as_of": "date", "label": "int8", "mrr": "float64",
                   "events_7d": "float64", "events_180d": "float64"})
DATES = [date(2024, 4, 1)]


def _frame(schema: ibis.Schema) -> pd.DataFrame:
    frame = pd.DataFrame({"account_id": ["a", "b"], "as_of": pd.Timestamp("2024-04-01"), "label": [0, 1],
                          "mrr": [10.0, 20.0]})
    return frame.assign(**{c: [1.0, 2.0] for c in schema.names if c not in frame})


def _rows(con: ibis.BaseBackend, name: str) -> pd.DataFrame:
    return con.table(name).execute().sort_values(list(con.table(name).columns)).reset_index(drop=True)


def _seeded(con: ibis.BaseBackend) -> pd.DataFrame:
    assert write_features(con, _frame(OLD), OLD, DATES, single=False) is False
    return _rows(con, FEATURES_TABLE)


@pytest.mark.postgres
def test_a_rebuild_keeps_what_the_warehouse_holds_on_the_table_and_stops_at_a_view_on_a_dropped_column(postgres_con):
    """The rebuild alters the table in place: the grants, indexes, comments and views the warehouse keeps on it stay.
    A view of the user's reading a column the new feature set drops makes PostgreSQL refuse: one line naming the
    view, rolled back (its hint, DROP ... CASCADE, would drop the user's view: it is not repeated)."""
    _seeded(postgres_con)
    for sql in (f"CREATE VIEW my_view AS SELECT account_id, events_7d FROM {FEATURES_TABLE}",
                f"CREATE INDEX my_index ON {FEATURES_TABLE} (account_id)",
                f"COMMENT ON TABLE {FEATURES_TABLE} IS 'for the BI team'",
                f"GRANT SELECT ON {FEATURES_TABLE} TO PUBLIC"):
        postgres_con.raw_sql(sql).close()

    def kept() -> list:
        return [postgres_con.raw_sql(sql).fetchall() for sql in (
            "SELECT indexname FROM pg_indexes WHERE indexname = 'my_index'",
            f"SELECT obj_description('{FEATURES_TABLE}'::regclass)",
            f"SELECT privilege_type FROM information_schema.table_privileges WHERE table_name = '{FEATURES_TABLE}' "
            "AND grantee = 'PUBLIC'",
            "SELECT COUNT(*) FROM my_view")]

    assert kept() == [[("my_index",)], [("for the BI team",)], [("SELECT",)], [(2,)]]
    assert write_features(postgres_con, _frame(NEW), NEW, DATES, single=False) is True
    assert list(postgres_con.table(FEATURES_TABLE).columns) == list(NEW.names)
    assert kept() == [[("my_index",)], [("for the BI team",)], [("SELECT",)], [(2,)]]

    before = _rows(postgres_con, FEATURES_TABLE)
    postgres_con.raw_sql(f"CREATE VIEW wide_view AS SELECT account_id, events_180d FROM {FEATURES_TABLE}").close()
    with pytest.raises(StageError) as refused:
        write_features(postgres_con, _frame(OLD), OLD, DATES, single=False)
    message = str(refused.value)
    assert message.startswith("churn_features: the warehouse refused the rebuild: cannot drop column events_180d")
    assert "view wide_view depends on column events_180d" in message and "nothing was written" in message
    assert "\n" not in message and "CASCADE" not in message
    pd.testing.assert_frame_equal(_rows(postgres_con, FEATURES_TABLE), before)
    assert list(postgres_con.table(FEATURES_TABLE).columns) == list(NEW.names)


def _write_while_another_run_alters(con: ibis.BaseBackend, url: str, schema: ibis.Schema,
                                    *alters: str) -> BaseException | None:
    """Write `schema`'s frame from a thread that plans its write, then waits for the table's lock, which another
    connection holds while it runs `alters` and commits; return what the write raised (None: it went through)."""
    other = ibis.connect(url)
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            write_features(con, _frame(schema), schema, DATES, single=False)
        except BaseException as exc:  # noqa: BLE001 - the main thread reads it
            outcome["error"] = exc

    try:
        with other.begin() as cursor:
            cursor.execute(f"LOCK TABLE {FEATURES_TABLE} IN EXCLUSIVE MODE")
            writer = threading.Thread(target=run)
            writer.start()
            deadline = time.monotonic() + 60
            while cursor.execute("SELECT COUNT(*) FROM pg_locks WHERE NOT granted").fetchone()[0] == 0:
                assert time.monotonic() < deadline and writer.is_alive(), outcome
                time.sleep(0.05)
            for alter in alters:
                cursor.execute(alter)
        writer.join(60)
    finally:
        other.disconnect()
    return outcome.get("error")


@pytest.mark.postgres
@pytest.mark.parametrize("schema", [OLD, NEW], ids=["write", "rebuild"])
def test_a_run_whose_table_another_run_reshaped_while_it_waited_writes_nothing(postgres_con, postgres_schema, schema):
    """Two runs on PostgreSQL: this one plans its write (or its rebuild) on the table's columns, then waits for its
    lock while another run (other params) adds a column and commits. Writing on would leave its rows null in that
    column, two feature sets in one table: it is refused in one line once it holds the lock, nothing written."""
    before = _seeded(postgres_con)
    error = _write_while_another_run_alters(postgres_con, postgres_schema.url, schema,
                                            f"ALTER TABLE {FEATURES_TABLE} ADD COLUMN events_30d DOUBLE PRECISION")
    assert isinstance(error, StageError), repr(error)
    assert str(error) == ("churn_features: another run changed its columns while this one waited to write (now has "
                          "events_30d); nothing was written; run the command again")
    after = _rows(postgres_con, FEATURES_TABLE)
    assert after["events_30d"].isna().all()
    pd.testing.assert_frame_equal(after.drop(columns="events_30d"), before)


@pytest.mark.postgres
def test_a_rebuild_another_run_already_made_while_this_one_waited_goes_through(postgres_con, postgres_schema):
    """Two runs after the same params change (a schedule and a user): the second finds the table already holding
    its columns once it has the lock, so it replaces the rows without altering anything."""
    _seeded(postgres_con)
    error = _write_while_another_run_alters(postgres_con, postgres_schema.url, NEW,
                                            f"ALTER TABLE {FEATURES_TABLE} DROP COLUMN events_90d",
                                            f"ALTER TABLE {FEATURES_TABLE} ADD COLUMN events_180d DOUBLE PRECISION")
    assert error is None
    assert sorted(postgres_con.table(FEATURES_TABLE).columns) == sorted(NEW.names)
    after = _rows(postgres_con, FEATURES_TABLE)[list(NEW.names)]
    pd.testing.assert_frame_equal(after, _frame(NEW)[list(NEW.names)], check_dtype=False)


def test_counts_read_a_sum_over_no_rows_as_zero():
    # Scoring's as-of has no label, an empty table no failing rows: SUM over them is NULL, given as None by DuckDB
    # and as NaN by Spark (which made `churn score`, and `churn validate` of an empty table, stop on Spark with
    # "cannot convert float NaN to integer").
    assert [count_of(v) for v in (None, float("nan"), pd.NA, 3.0, 7)] == [0, 0, 0, 3, 7]


def test_a_view_named_churn_features_is_one_line_and_stays(duckdb_con):
    before = _seeded(duckdb_con)
    duckdb_con.raw_sql(f"ALTER TABLE {FEATURES_TABLE} RENAME TO kept")
    duckdb_con.raw_sql(f"CREATE VIEW {FEATURES_TABLE} AS SELECT * FROM kept")
    for schema, verb in ((OLD, "write"), (NEW, "rebuild")):
        with pytest.raises(StageError, match=f"^churn_features: the warehouse refused the {verb}: ") as refused:
            write_features(duckdb_con, _frame(schema), schema, DATES, single=False)
        assert "\n" not in str(refused.value) and str(refused.value).endswith("; nothing was written")
    pd.testing.assert_frame_equal(_rows(duckdb_con, FEATURES_TABLE), before)
    pd.testing.assert_frame_equal(_rows(duckdb_con, "kept"), before)


def test_another_tools_table_by_that_name_is_refused_not_dropped(duckdb_con):
    """A churn_features without account_id and as_of was not written by this project: a grid run must not drop it
    (rows and all) as a stale feature set, nor a single as-of write into it."""
    duckdb_con.raw_sql(f"CREATE TABLE {FEATURES_TABLE} (customer TEXT NOT NULL, note TEXT)")
    duckdb_con.raw_sql(f"INSERT INTO {FEATURES_TABLE} VALUES ('x', 'theirs')")
    for single in (False, True):
        with pytest.raises(StageError, match="^churn_features: lacks column[(]s[)] account_id, as_of: not a table "
                                             "`churn features` wrote"):
            write_features(duckdb_con, _frame(NEW), NEW, DATES, single=single)
    assert duckdb_con.table(FEATURES_TABLE).execute().to_dict("records") == [{"customer": "x", "note": "theirs"}]


@pytest.mark.slow
def test_one_as_of_reads_the_event_names_of_the_grid(make_project):
    """An event heavy only early in the data ranks into the mix on one early as-of's own events but not on the
    grid's: that as-of reads the grid's names, so it writes the grid's row for that date and is not refused as
    another feature set (which no grid rebuild would cure)."""
    project = make_project(simulation=TINY)
    with duckdb.connect(str(project.warehouse)) as con:
        con.execute("INSERT INTO events SELECT account_id, event_at + INTERVAL 1 SECOND, 'legacy_export', user_id, "
                    "session_id, duration_s, value FROM events WHERE event_name = 'login' AND event_at < '2024-04-01'")
    grid = project.churn("features")
    assert "legacy_export" not in grid
    as_of = "2024-04-01"
    before = project.query(f"SELECT * FROM churn_features WHERE as_of = '{as_of}' ORDER BY account_id")
    assert len(before)
    single = project.churn("features", "--as-of", as_of)
    assert "legacy_export" not in single and "1 as-of dates" in single
    after = project.query(f"SELECT * FROM churn_features WHERE as_of = '{as_of}' ORDER BY account_id")
    pd.testing.assert_frame_equal(after, before)


def test_a_history_shorter_than_the_look_back_is_one_line_naming_why(tmp_path):
    """Two months of data and a 90-day look-back give no as-of date: `churn features` (and train) stopped with a
    traceback of the ValueError; it is one line saying where the first as-of comes from."""
    con = ibis.duckdb.connect(str(tmp_path / WAREHOUSE), threads=1)
    try:
        con.create_table("accounts", tiny_accounts("a1"))
        con.create_table("subscriptions", pd.DataFrame({"account_id": ["a1"], "start_at": ts("2024-03-01"),
                                                        "end_at": ts(None), "mrr": [100.0], "seats": [3.0]}))
        con.create_table("events", pd.DataFrame({"account_id": ["a1", "a1"], "user_id": ["u1", "u1"],
                                                 "event_at": ts("2024-03-01", "2024-04-30"),
                                                 "event_name": ["login", "login"]}))
    finally:
        con.disconnect()
    params = write_params(tmp_path, {"sources": dict.fromkeys(("users", "tickets", "surveys", "milestones"))})
    for command in ("features", "train"):
        output = churn(params, command, expect=1)
        assert output.strip().splitlines()[-1] == (
            "error: snapshots: no as-of date between 2024-05-30 (the data's start plus the features' longest "
            "look-back of 90 days) and 2024-05-01 every 1mo (data runs 2024-03-01 to 2024-04-30)"), output
    # One as-of inside the data but within the look-back of its start: its windows would count the days before the
    # data as days without activity (it was stopped only by the drift guard, if at all).
    output = churn(params, "features", "--as-of", "2024-04-15", expect=1)
    assert output.strip().splitlines()[-1] == (
        "error: --as-of 2024-04-15: the engagement features look back 90 days (features.windows, twice "
        "features.trend_window_days), to before the data's start (2024-03-01); the earliest as-of they support is "
        "2024-05-30")
