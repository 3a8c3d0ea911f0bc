"""The point-in-time helpers on tiny tables in a real DuckDB, with the rows each join must keep listed by hand."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pandas as pd
import pytest

from features.pit import (
    days_before,
    days_between,
    latest_before,
    open_before,
    rows_before,
    rows_open_before,
    rows_within,
    within,
)
from tests.conftest import tiny_accounts, ts

AS_OF = "2024-03-01"  # 2024 is a leap year: 30 days before the as-of is 01-31


def _grid(*pairs: tuple[str, str]) -> pd.DataFrame:
    accounts, as_ofs = zip(*pairs, strict=True)
    return pd.DataFrame({"account_id": list(accounts), "as_of": ts(*as_ofs)})


def _rows(*rows: tuple[str, str, str | None]) -> pd.DataFrame:
    """(row_id, account_id, at) rows."""
    ids, accounts, at = zip(*rows, strict=True)
    return pd.DataFrame({"row_id": list(ids), "account_id": list(accounts), "at": ts(*at)})


def _kept(con, joined: ir.Table) -> list[tuple[str, str, str]]:
    """The (account_id, as_of day, row_id) triples a join kept, sorted."""
    frame = con.execute(joined.select("account_id", "as_of", "row_id"))
    days = frame.as_of.dt.strftime("%Y-%m-%d")
    return sorted(zip(frame.account_id, days, frame.row_id, strict=True))


def test_days_before_counts_calendar_days_back_from_the_as_of(duckdb_con):
    assert duckdb_con.execute(days_before(ibis.timestamp(AS_OF), 30)) == pd.Timestamp("2024-01-31")
    assert duckdb_con.execute(days_before(ibis.timestamp(AS_OF), 0)) == pd.Timestamp(AS_OF)


def test_rows_before_keeps_only_rows_strictly_before_the_as_of(load_tables):
    con = load_tables(grid=_grid(("a", AS_OF), ("b", AS_OF), ("b", "2024-02-15")), rows=_rows(
        ("r1", "a", "2024-02-29 23:59:59"),  # one second before: in
        ("r2", "a", "2024-03-01 00:00:00"),  # exactly at the as-of: out
        ("r3", "a", "2024-03-02 00:00:00"),  # after: out
        ("r4", "a", "2020-01-01 00:00:00"),  # long before: in (no window)
        ("r5", "b", "2024-02-15 00:00:00"),  # before b's 03-01 as-of, at its 02-15 one
        ("r6", "c", "2024-02-01 00:00:00"),  # an account not in the grid
    ))
    joined = rows_before(con.table("grid"), con.table("rows"), "at")
    assert _kept(con, joined) == [("a", AS_OF, "r1"), ("a", AS_OF, "r4"), ("b", AS_OF, "r5")]


def test_rows_before_takes_further_join_conditions(load_tables):
    rows = _rows(("r1", "a", "2024-01-01"), ("r2", "a", "2024-02-01"), ("r3", "a", "2024-02-20")).assign(
        ended_at=ts(None, "2024-02-10", "2024-02-25"))
    con = load_tables(grid=_grid(("a", AS_OF)), rows=rows)
    grid, r = con.table("grid"), con.table("rows")
    # Like support's reach: rows not ended, or ended at most 20 days before the as-of (02-10).
    still_relevant = r.ended_at.isnull() | (r.ended_at >= days_before(grid.as_of, 20))
    assert _kept(con, rows_before(grid, r, "at", still_relevant)) == [("a", AS_OF, "r1"), ("a", AS_OF, "r2"),
                                                                      ("a", AS_OF, "r3")]
    still_relevant = r.ended_at.isnull() | (r.ended_at >= days_before(grid.as_of, 19))
    assert _kept(con, rows_before(grid, r, "at", still_relevant)) == [("a", AS_OF, "r1"), ("a", AS_OF, "r3")]


def test_rows_within_keeps_the_window_start_and_drops_the_as_of(load_tables):
    con = load_tables(grid=_grid(("a", AS_OF), ("a", "2024-02-01")), rows=_rows(
        ("r1", "a", "2024-01-31 00:00:00"),  # exactly 30 days before 03-01: in; before 02-01: in
        ("r2", "a", "2024-01-30 23:59:59"),  # one second earlier: out of 03-01's window, in 02-01's
        ("r3", "a", "2024-02-29 12:00:00"),  # in 03-01's window, after 02-01
        ("r4", "a", "2024-03-01 00:00:00"),  # at the as-of: out
        ("r5", "a", "2024-01-02 00:00:00"),  # exactly 30 days before 02-01: in
    ))
    joined = rows_within(con.table("grid"), con.table("rows"), "at", 30)
    assert _kept(con, joined) == [("a", "2024-02-01", "r1"), ("a", "2024-02-01", "r2"), ("a", "2024-02-01", "r5"),
                                  ("a", AS_OF, "r1"), ("a", AS_OF, "r3")]


def test_within_is_the_same_window_as_a_condition(load_tables):
    rows = _rows(("r1", "a", "2024-01-31"), ("r2", "a", "2024-01-30 23:59:59"), ("r3", "a", "2024-03-01"),
                 ("r4", "a", None)).assign(as_of=ts(*[AS_OF] * 4))
    t = load_tables(rows=rows).table("rows")
    frame = t.select("row_id", inside=within(t.at, t.as_of, 30)).order_by("row_id").execute()
    assert frame.inside.tolist() == [True, False, False, None]


def test_latest_before_takes_the_newest_row_before_the_as_of(load_tables):
    con = load_tables(grid=_grid(("a", AS_OF), ("a", "2024-02-20"), ("b", AS_OF)), rows=_rows(
        ("r1", "a", "2024-02-10 09:00"),
        ("r2", "a", "2024-02-20 10:00"),
        ("r3", "a", "2024-02-20 10:00"),  # the same time as r2, a higher id: the newest before 03-01
        ("r4", "a", "2024-03-01 00:00"),  # at the as-of: never the newest
    ).assign(user_id=["u1", "u2", "u1", "u2"]))
    grid, rows = con.table("grid"), con.table("rows")
    joined = latest_before(grid, rows, "at", ties=["row_id"])
    # The grid's columns, then the rows' (Ibis suffixes their copy of the key): no helper column is left.
    assert joined.columns == ("account_id", "as_of", "row_id", "account_id_right", "at", "user_id")
    # b has no rows: the inner join has nothing for it.
    assert _kept(con, joined) == [("a", "2024-02-20", "r1"), ("a", AS_OF, "r3")]
    per_user = latest_before(grid, rows, "at", ties=["row_id"], per=["user_id"])
    assert _kept(con, per_user) == [("a", "2024-02-20", "r1"), ("a", AS_OF, "r2"), ("a", AS_OF, "r3")]


def test_rows_open_before_reads_an_end_at_or_after_the_as_of_only_as_not_ended(load_tables):
    subs = pd.DataFrame({
        "row_id": ["s1", "s2", "s3", "s4", "s5"], "account_id": ["a"] * 5,
        "start_at": ts("2024-01-01", "2024-01-01", "2024-01-01", AS_OF, "2024-02-29"),
        "end_at": ts(None,               # open: in
                     AS_OF,              # ends at the as-of: still open just before it, in
                     "2024-02-29 23:59:59",  # ended one second before: out
                     None,               # starts at the as-of: out
                     "2024-02-29"),      # started and ended before: out
    })
    con = load_tables(grid=_grid(("a", AS_OF)), subs=subs)
    joined = rows_open_before(con.table("grid"), con.table("subs"), "start_at", "end_at")
    assert _kept(con, joined) == [("a", AS_OF, "s1"), ("a", AS_OF, "s2")]
    t = con.table("subs")
    flags = t.select("row_id", open=open_before(t.start_at, t.end_at, ibis.timestamp(AS_OF))).order_by("row_id")
    assert flags.execute().open.tolist() == [True, True, False, False, False]


def test_days_between_counts_calendar_days_as_floats(load_tables):
    accounts = tiny_accounts("a", "b", "c", "d").assign(  # created 2023-06-01
        seen_at=ts("2024-03-01 00:00", "2023-06-01 23:59", "2023-05-31 23:59", None))
    t = load_tables(accounts=accounts).table("accounts")
    days = t.select("account_id", days=days_between(t.seen_at, t.created_at)).order_by("account_id")
    frame = days.execute()
    assert days.schema()["days"] == ibis.dtype("float64")
    assert frame.days.tolist()[:3] == [274.0, 0.0, -1.0]  # 2023-06-01 to 2024-03-01; the time of day is ignored
    assert pd.isna(frame.days.iloc[3])


@pytest.mark.parametrize("helper", [rows_before, latest_before])
def test_a_grid_with_more_columns_keeps_them(load_tables, helper):
    grid = _grid(("a", AS_OF)).assign(label=[1])
    con = load_tables(grid=grid, rows=_rows(("r1", "a", "2024-02-01")))
    frame = helper(con.table("grid"), con.table("rows"), "at").execute()
    assert frame[["account_id", "label", "row_id"]].values.tolist() == [["a", 1, "r1"]]
