"""Support-ticket features on a tiny hand-built warehouse, with values computed by hand."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest

from features.config import FeatureConfig
from features.sources import load_sources
from features.support import compute_support_features
from tests.conftest import tiny_accounts, ts

AS_OF = "2024-03-01"  # 2024 is a leap year: the 7-day window starts 02-23, 30 days 01-31, 90 days 2023-12-02
CONFIG = FeatureConfig()  # windows 7/30/90, support window 90 days, high priorities "high" and "urgent"
COLUMNS = ["account_id", "as_of", "tickets_7d", "tickets_30d", "tickets_90d", "open_tickets",
           "open_high_priority_tickets", "high_priority_tickets_90d", "median_resolution_hours_90d",
           "first_contact_resolution_rate_90d", "reopen_rate_90d", "ticket_csat_90d", "days_since_last_ticket"]
PRIORITY_COLUMNS = ["open_high_priority_tickets", "high_priority_tickets_90d"]

TICKETS = [  # (id, account, created, resolved, priority, first contact, reopened, csat)
    ("t1", "a", "2024-02-27 10:00", "2024-02-28 10:00", "High", True, False, 5.0),      # 24 h
    ("t2", "a", "2024-02-10 09:00", "2024-03-01 00:00", "urgent", True, True, 1.0),     # resolved at the as-of: open
    ("t3", "a", "2024-01-20 08:00", "2024-03-05 00:00", "low", False, True, 2.0),       # resolved later: open
    ("t4", "a", "2024-01-05 12:00", "2024-01-06 00:00", "normal", True, False, 3.0),    # 12 h
    ("t5", "a", "2023-11-01 00:00", "2023-12-15 00:00", "HIGH", False, True, None),     # 1056 h, opened long ago
    ("t6", "a", "2023-08-01 00:00", "2023-08-02 00:00", "high", True, True, 1.0),       # before every window
    ("t7", "a", "2024-03-01 00:00", None, "urgent", None, None, None),                  # at the as-of: never read
    ("t8", "a", "2024-03-03 00:00", "2024-03-04 00:00", "high", True, False, 5.0),      # after the as-of
    ("t9", "b", "2023-06-01 09:00", "2023-06-02 09:00", "high", True, False, 4.0),      # only an old ticket
]

EXPECTED_A = {
    "tickets_7d": 1.0, "tickets_30d": 2.0, "tickets_90d": 4.0,  # t1 | t1 t2 | t1 t2 t3 t4
    "open_tickets": 2.0, "open_high_priority_tickets": 1.0,    # t2 (urgent), t3 (low)
    "high_priority_tickets_90d": 2.0,                          # t1, t2; t5 was opened before the window
    "median_resolution_hours_90d": 24.0,                       # resolved in the window: t1 24, t4 12, t5 1056
    "first_contact_resolution_rate_90d": 2 / 3, "reopen_rate_90d": 1 / 3,
    "ticket_csat_90d": 4.0,                                    # t1 5, t4 3; t5 has no rating
    "days_since_last_ticket": 3.0,                             # t1 on 02-27
}
EXPECTED_B = {"tickets_7d": 0.0, "tickets_30d": 0.0, "tickets_90d": 0.0, "open_tickets": 0.0,
              "open_high_priority_tickets": 0.0, "high_priority_tickets_90d": 0.0,
              "median_resolution_hours_90d": None, "first_contact_resolution_rate_90d": None,
              "reopen_rate_90d": None, "ticket_csat_90d": None, "days_since_last_ticket": 274.0}
EXPECTED_C = {**EXPECTED_B, "days_since_last_ticket": None}  # no tickets at all


def _tickets(rows=TICKETS) -> pd.DataFrame:
    ticket, account, created, resolved, priority, fcr, reopened, csat = zip(*rows, strict=True)
    return pd.DataFrame({
        "ticket_id": list(ticket), "account_id": list(account), "created_at": ts(*created),
        "resolved_at": ts(*resolved), "priority": list(priority),
        "first_contact_resolved": pd.array(list(fcr), dtype="boolean"),
        "reopened": pd.array(list(reopened), dtype="boolean"), "csat": pd.array(list(csat), dtype="Float64"),
    })


def _warehouse(load_tables, tickets: pd.DataFrame):
    subs = pd.DataFrame({"account_id": ["a", "b", "c"], "start_at": ts(*["2023-01-01"] * 3),
                         "end_at": ts(None, None, None), "mrr": [1.0, 1.0, 1.0]})
    events = pd.DataFrame({"account_id": ["a"], "event_at": ts("2024-01-01"), "event_name": ["login"]})
    return load_tables(accounts=tiny_accounts("a", "b", "c"), subscriptions=subs, events=events, tickets=tickets)


def _features(con, rows=(("a", AS_OF), ("b", AS_OF), ("c", AS_OF)), config=CONFIG) -> pd.DataFrame:
    accounts, as_ofs = zip(*rows, strict=True)
    grid = ibis.memtable(pd.DataFrame({"account_id": list(accounts), "as_of": ts(*as_ofs)}))
    out = compute_support_features(load_sources(con, {}), grid, config).execute()
    return out.sort_values(["account_id", "as_of"]).reset_index(drop=True)


def _assert_values(row: pd.Series, expected: dict) -> None:
    for name, value in expected.items():
        if value is None:
            assert pd.isna(row[name]), name
        else:
            assert row[name] == pytest.approx(value), name


def test_columns_types_and_one_row_per_grid_row(load_tables):
    out = _features(_warehouse(load_tables, _tickets()))
    assert list(out.columns) == COLUMNS
    assert list(out.account_id) == ["a", "b", "c"]
    assert all(str(out[c].dtype) == "float64" for c in COLUMNS[2:])


def test_exact_values_with_tickets_resolved_at_and_after_the_as_of(load_tables):
    out = _features(_warehouse(load_tables, _tickets())).set_index("account_id")
    _assert_values(out.loc["a"], EXPECTED_A)


def test_no_tickets_in_the_windows_give_zero_counts_and_null_statistics(load_tables):
    out = _features(_warehouse(load_tables, _tickets())).set_index("account_id")
    _assert_values(out.loc["b"], EXPECTED_B)  # 2023-06-01 → 2024-03-01 is 274 days
    _assert_values(out.loc["c"], EXPECTED_C)


def test_each_as_of_sees_only_its_own_past(load_tables):
    con = _warehouse(load_tables, _tickets())
    out = _features(con, rows=(("a", "2024-02-28"), ("a", AS_OF))).set_index("as_of")
    early = out.loc[pd.Timestamp("2024-02-28")]
    # t1 was resolved at 10:00 on the as-of day: still open, its resolution not yet known.
    _assert_values(early, {"tickets_7d": 1.0, "open_tickets": 3.0, "open_high_priority_tickets": 2.0,
                           "median_resolution_hours_90d": 534.0, "ticket_csat_90d": 3.0,
                           "first_contact_resolution_rate_90d": 0.5, "reopen_rate_90d": 0.5,
                           "days_since_last_ticket": 1.0})
    _assert_values(out.loc[pd.Timestamp(AS_OF)], EXPECTED_A)


def test_priorities_are_compared_case_insensitively_against_the_configured_list(load_tables):
    config = FeatureConfig(high_priorities=["LOW"])
    out = _features(_warehouse(load_tables, _tickets()), config=config).set_index("account_id")
    _assert_values(out.loc["a"], {"open_high_priority_tickets": 1.0, "high_priority_tickets_90d": 1.0})


def test_a_warehouse_without_priority_leaves_out_only_the_priority_features(load_tables):
    out = _features(_warehouse(load_tables, _tickets().drop(columns="priority"))).set_index("account_id")
    assert list(out.columns) == [c for c in COLUMNS if c not in PRIORITY_COLUMNS and c != "account_id"]
    _assert_values(out.loc["a"], {k: v for k, v in EXPECTED_A.items() if k not in PRIORITY_COLUMNS})


def test_a_warehouse_with_only_required_columns_counts_every_ticket_as_open(load_tables):
    bare = _tickets()[["ticket_id", "account_id", "created_at"]]
    out = _features(_warehouse(load_tables, bare)).set_index("account_id")
    assert list(out.columns) == ["as_of", "tickets_7d", "tickets_30d", "tickets_90d", "open_tickets",
                                 "days_since_last_ticket"]
    _assert_values(out.loc["a"], {"tickets_7d": 1.0, "tickets_30d": 2.0, "tickets_90d": 4.0, "open_tickets": 6.0,
                                  "days_since_last_ticket": 3.0})


def _change_the_future(tickets: pd.DataFrame) -> pd.DataFrame:
    """Change only what is unknown at the as-of: tickets created at or after it, and outcomes resolved at or after."""
    as_of = pd.Timestamp(AS_OF)
    out = tickets[tickets.created_at < as_of].copy()
    unresolved = out.resolved_at.isna() | (out.resolved_at >= as_of)
    out.loc[unresolved, "resolved_at"] = ts(None, "2024-03-01 00:00", "2024-04-01")[: int(unresolved.sum())].values
    out.loc[unresolved, "csat"] = 5.0
    out.loc[unresolved, "reopened"] = ~out.loc[unresolved, "reopened"]
    out.loc[unresolved, "first_contact_resolved"] = ~out.loc[unresolved, "first_contact_resolved"]
    extra = _tickets([("n1", "c", "2024-03-01 00:00", None, "urgent", True, False, 1.0),
                      ("n2", "b", "2024-03-02 00:00", "2024-03-02 05:00", "high", False, True, 2.0),
                      ("n3", "a", "2024-03-10 00:00", None, "low", None, None, None)])
    return pd.concat([out, extra], ignore_index=True)


def test_future_rows_never_change_the_features(load_tables):
    base = _tickets()
    before = _features(_warehouse(load_tables, base))
    changed = _change_the_future(base)
    assert not changed.drop(columns="ticket_id").equals(base.drop(columns="ticket_id"))
    pd.testing.assert_frame_equal(before, _features(_warehouse(load_tables, changed)))
    past = base.assign(resolved_at=base.resolved_at.where(base.ticket_id != "t4", pd.Timestamp("2024-01-07")))
    assert not before.equals(_features(_warehouse(load_tables, past)))  # the check can fail
