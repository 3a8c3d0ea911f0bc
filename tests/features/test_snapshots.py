"""Snapshots and labels on tiny hand-built subscription tables, with exact expected rows."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from features.config import LabelConfig, SnapshotConfig
from features.snapshots import (
    build_as_of_dates,
    build_snapshots,
    compute_churn_dates,
    find_data_bounds,
    latest_as_of,
)
from features.sources import ContractError, load_sources
from tests.conftest import tiny_accounts, ts

DATA_END = datetime(2024, 12, 31)
LABEL = LabelConfig(horizon_days=30, grace_days=10)


def _snapshots(load_tables, subs: pd.DataFrame, as_ofs, label=LABEL, data_end=DATA_END, include_trials=False):
    accounts = tiny_accounts(*sorted(set(subs.account_id)))
    events = pd.DataFrame({"account_id": ["a"], "event_at": ts("2024-01-05"), "event_name": ["login"]})
    con = load_tables(accounts=accounts, subscriptions=subs, events=events)
    out = build_snapshots(load_sources(con, {}), as_ofs, label, data_end, include_trials).execute()
    out["as_of"] = out["as_of"].dt.date
    return {(r.account_id, r.as_of): (None if pd.isna(r.label) else int(r.label)) for r in out.itertuples()}


def subs(rows: list[tuple]) -> pd.DataFrame:
    account, start, end, mrr = zip(*rows, strict=True)
    return pd.DataFrame({"account_id": list(account), "start_at": ts(*start), "end_at": ts(*end),
                         "mrr": [float(m) for m in mrr]})


def test_population_is_accounts_covered_at_as_of(load_tables):
    got = _snapshots(load_tables, subs([
        ("a", "2024-01-01", None, 100),
        ("b", "2024-03-01", None, 50),          # starts after the first as-of
        ("c", "2024-01-01", "2024-02-01", 10),  # ends exactly at the as-of: not covering it
    ]), [date(2024, 2, 1), date(2024, 4, 1)])
    assert set(got) == {("a", date(2024, 2, 1)), ("a", date(2024, 4, 1)), ("b", date(2024, 4, 1))}


def test_label_is_churn_within_horizon_with_its_edges(load_tables):
    got = _snapshots(load_tables, subs([
        ("edge", "2024-01-01", "2024-03-02", 10),    # as-of 2024-02-01 + 30 days = 2024-03-02: inside
        ("late", "2024-01-01", "2024-03-03", 10),    # one day past the horizon
        ("now", "2024-01-01", "2024-02-01 00:00:01", 10),  # a second after the as-of: inside
    ]), [date(2024, 2, 1)])
    assert got == {("edge", date(2024, 2, 1)): 1, ("late", date(2024, 2, 1)): 0, ("now", date(2024, 2, 1)): 1}


def test_renewal_within_grace_is_not_churn_but_after_grace_is(load_tables):
    got = _snapshots(load_tables, subs([
        ("renew", "2024-01-01", "2024-02-15", 10), ("renew", "2024-02-25", None, 10),   # 10 days: grace
        ("gap", "2024-01-01", "2024-02-15", 10), ("gap", "2024-02-26", None, 10),       # 11 days: churn
    ]), [date(2024, 2, 1)])
    assert got == {("renew", date(2024, 2, 1)): 0, ("gap", date(2024, 2, 1)): 1}


def test_overlapping_rows_are_one_active_period(load_tables):
    got = _snapshots(load_tables, subs([
        ("a", "2024-01-01", "2024-02-10", 100),   # base plan ends but the add-on covers on
        ("a", "2024-01-15", "2024-05-01", 20),
    ]), [date(2024, 2, 1), date(2024, 4, 1)])
    assert got == {("a", date(2024, 2, 1)): 0, ("a", date(2024, 4, 1)): 1}


def test_reactivated_account_is_back_in_population_and_can_churn_again(load_tables):
    got = _snapshots(load_tables, subs([
        ("a", "2024-01-01", "2024-02-15", 10),
        ("a", "2024-06-01", "2024-08-20", 10),
    ]), [date(2024, 2, 1), date(2024, 4, 1), date(2024, 8, 1)])
    assert got == {("a", date(2024, 2, 1)): 1, ("a", date(2024, 8, 1)): 1}


def test_horizon_past_data_end_is_unlabelled_and_future_end_is_not_churn(load_tables):
    data_end = datetime(2024, 3, 15)
    got = _snapshots(load_tables, subs([
        ("future", "2024-01-01", "2025-06-30", 10),   # a term end after the data: never churn yet
        ("known", "2024-01-01", "2024-01-20", 10),
    ]), [date(2024, 1, 10), date(2024, 2, 1)], data_end=data_end)
    # 2024-01-10 + 30 + 10 grace = 2024-02-19 <= data end: labelled; 2024-02-01 + 40 = 2024-03-12: labelled too
    assert got == {("future", date(2024, 1, 10)): 0, ("known", date(2024, 1, 10)): 1,
                   ("future", date(2024, 2, 1)): 0}
    later = _snapshots(load_tables, subs([("future", "2024-01-01", "2025-06-30", 10)]),
                       [date(2024, 2, 10)], data_end=data_end)
    assert later == {("future", date(2024, 2, 10)): None}


def test_churn_is_known_only_grace_days_after_it(load_tables):
    con = load_tables(accounts=tiny_accounts("a"), subscriptions=subs([("a", "2024-01-01", "2024-03-10", 10)]),
                      events=pd.DataFrame({"account_id": ["a"], "event_at": ts("2024-01-05"), "event_name": ["x"]}))
    sources = load_sources(con, {})
    label = LabelConfig(horizon_days=30, grace_days=10)
    assert compute_churn_dates(sources, label, datetime(2024, 3, 19)).execute().empty
    known = compute_churn_dates(sources, label, datetime(2024, 3, 20)).execute()
    assert known.churn_at.tolist() == [pd.Timestamp("2024-03-10")]


def test_trial_only_accounts_are_left_out_unless_asked(load_tables):
    rows = subs([("trial", "2024-01-20", "2024-02-03", 0), ("paid", "2024-01-01", None, 10),
                 ("converted", "2024-01-20", "2024-02-03", 0), ("converted", "2024-02-03", None, 30)])
    rows["is_trial"] = [True, False, True, False]
    as_ofs = [date(2024, 2, 1), date(2024, 3, 1)]
    default = _snapshots(load_tables, rows, as_ofs)
    assert set(default) == {("paid", date(2024, 2, 1)), ("paid", date(2024, 3, 1)), ("converted", date(2024, 3, 1))}
    # The trial that never converts is an end with no renewal: with trials included it is a churn.
    everyone = _snapshots(load_tables, rows, as_ofs, include_trials=True)
    assert everyone[("trial", date(2024, 2, 1))] == 1
    assert everyone[("converted", date(2024, 2, 1))] == 0


def test_as_of_grid_lands_on_month_starts_and_ends_at_latest_supported_date():
    config = SnapshotConfig(every="1mo")
    dates = build_as_of_dates(config, datetime(2024, 1, 10, 9), datetime(2024, 6, 30, 17, 5), lookback_days=60)
    assert dates == [date(2024, 4, 1), date(2024, 5, 1), date(2024, 6, 1), date(2024, 7, 1)]
    assert latest_as_of(datetime(2024, 6, 30, 17, 5)) == date(2024, 7, 1)
    # Date-only data: the newest event at midnight is that day's; its events must be before the as-of.
    assert latest_as_of(datetime(2024, 6, 30)) == date(2024, 7, 1)
    weekly = build_as_of_dates(SnapshotConfig(every="2w", start=date(2024, 3, 1), end=date(2024, 3, 31)),
                               datetime(2024, 1, 1), datetime(2024, 6, 1), lookback_days=0)
    assert weekly == [date(2024, 3, 1), date(2024, 3, 15), date(2024, 3, 29)]


def test_bad_grid_step_is_rejected():
    with pytest.raises(ValueError, match="1month"):
        SnapshotConfig(every="1month")


def test_an_empty_events_table_is_a_contract_error_naming_the_table_and_rule(load_tables):
    """Not a bare ValueError: the CLI turns a ContractError into one line and exit 1 (`churn features` runs no
    validation first)."""
    events = pd.DataFrame({"account_id": pd.Series([], dtype=str), "event_at": ts(),
                           "event_name": pd.Series([], dtype=str)})
    subs = pd.DataFrame({"account_id": ["a"], "start_at": ts("2024-01-01"), "end_at": ts(None), "mrr": [1.0]})
    con = load_tables(accounts=tiny_accounts("a"), subscriptions=subs, events=events)
    with pytest.raises(ContractError, match=r"table events: no rows.*rule: events not empty"):
        find_data_bounds(load_sources(con, {}), SnapshotConfig())
