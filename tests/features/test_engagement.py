"""Engagement features on a tiny hand-built warehouse, with values computed by hand."""

from __future__ import annotations

from datetime import date

import ibis
import numpy as np
import pandas as pd
import pytest

from features.config import FeatureConfig
from features.feature_table import compute_feature_table
from features.sources import load_sources
from tests.conftest import tiny_accounts, ts

AS_OF = date(2024, 3, 1)
CONFIG = FeatureConfig(windows=[7, 30], trend_window_days=7, login_event="login",
                       core_events=["report", "automate"], session_gap_minutes=30)

EVENTS = [  # (account, user, time, event name)
    ("a", "u1", "2024-02-28 09:00", "login"),
    ("a", "u1", "2024-02-28 09:10", "report"),
    ("a", "u1", "2024-02-28 10:00", "report"),     # 50 minutes later: a new session
    ("a", "u2", "2024-02-27 14:00", "login"),
    ("a", "u1", "2024-02-20 11:00", "login"),      # the trend's previous week
    ("a", "u2", "2024-02-10 08:00", "login"),
    ("a", "u2", "2024-02-10 08:20", "automate"),
    ("a", "u3", "2024-01-15 12:00", "login"),      # before every window
    ("a", "u1", "2024-03-01 00:00", "login"),      # at the as-of: never read
    ("a", "u4", "2024-03-05 09:00", "report"),     # after the as-of: never read
]


def _events(rows) -> pd.DataFrame:
    account, user, at, name = zip(*rows, strict=True)
    return pd.DataFrame({"account_id": list(account), "user_id": list(user), "event_at": ts(*at),
                         "event_name": list(name)})


def _features(con, config=CONFIG, as_of=AS_OF, accounts=("a", "b")) -> pd.DataFrame:
    grid = ibis.memtable(pd.DataFrame({"account_id": list(accounts),
                                       "as_of": ts(*[str(as_of)] * len(accounts))}))
    table, _ = compute_feature_table(load_sources(con, {}), grid, [as_of], config)
    return table.execute().set_index("account_id")


@pytest.fixture
def warehouse(load_tables):
    subs = pd.DataFrame({"account_id": ["a", "b"], "start_at": ts("2023-12-01", "2023-12-01"),
                         "end_at": ts(None, None), "mrr": [400.0, 50.0], "seats": [4.0, 0.0]})
    return load_tables(accounts=tiny_accounts("a", "b"), subscriptions=subs, events=_events(EVENTS))


def test_frequency_breadth_depth_and_trend_exact_values(warehouse):
    a = _features(warehouse).loc["a"]
    expected = {
        "events_7d": 4, "active_days_7d": 2, "active_users_7d": 2, "logins_per_active_user_7d": 1.0,
        "distinct_events_7d": 2, "core_feature_share_7d": 0.5, "seat_utilisation_7d": 0.5,
        "sessions_7d": 3, "session_minutes_7d": 10 / 3, "events_per_session_7d": 4 / 3,
        "events_30d": 7, "active_days_30d": 4, "active_users_30d": 2, "logins_per_active_user_30d": 2.0,
        "distinct_events_30d": 3, "core_feature_share_30d": 1.0, "seat_utilisation_30d": 0.5,
        "sessions_30d": 5, "session_minutes_30d": 6.0, "events_per_session_30d": 1.4,
        "days_since_last_activity": 2,  # 2024-02-28 → 2024-03-01 (a leap year)
        "active_users_trend": 1.0, "events_trend": 3.0, "sessions_trend": 2.0, "mrr": 400.0,
    }
    for name, value in expected.items():
        assert a[name] == pytest.approx(value), name


def test_no_events_and_zero_seats_give_zeros_and_no_ratios(warehouse):
    b = _features(warehouse).loc["b"]
    assert b["events_30d"] == 0 and b["active_users_7d"] == 0 and b["sessions_30d"] == 0
    for ratio in ("seat_utilisation_30d", "logins_per_active_user_30d", "events_per_session_7d",
                  "session_minutes_30d", "days_since_last_activity", "events_trend"):
        assert pd.isna(b[ratio]), ratio


def test_days_since_last_activity_reaches_beyond_every_window(warehouse):
    short = FeatureConfig(windows=[7], trend_window_days=7, core_events=["report"])  # reads 14 days back
    a = _features(warehouse, config=short, as_of=date(2024, 2, 10)).loc["a"]
    assert a["days_since_last_activity"] == 26  # last event 2024-01-15; 2024-02-10 08:00 is after the as-of
    assert a["events_7d"] == 0


def test_session_ids_and_pre_aggregated_counts_are_used_when_given(load_tables):
    events = _events([("a", "u1", "2024-02-28 09:00", "login"), ("a", "u1", "2024-02-28 11:00", "report"),
                      ("a", "u1", "2024-02-28 12:00", "report")])
    events["session_id"] = ["s1", "s1", "s2"]
    events["event_count"] = [1, 5, 2]
    subs = pd.DataFrame({"account_id": ["a"], "start_at": ts("2024-01-01"), "end_at": ts(None), "mrr": [1.0]})
    con = load_tables(accounts=tiny_accounts("a"), subscriptions=subs, events=events)
    a = _features(con, accounts=("a",)).loc["a"]
    assert a["events_7d"] == 8
    assert a["sessions_7d"] == 2                       # by session_id, although 2 hours apart
    assert a["session_minutes_7d"] == pytest.approx(60.0)  # s1 spans 120 min, s2 a single event
    assert a["events_per_session_7d"] == pytest.approx(4.0)
    assert "seat_utilisation_7d" not in a.index        # no seats column: the feature is off


def _by_hand(events: pd.DataFrame, accounts: list[str], as_of: pd.Timestamp, config: FeatureConfig) -> pd.DataFrame:
    """The windowed distinct counts and trends of one as-of, straight from the events, one account at a time."""
    rows = []
    for account in accounts:
        before = events[(events.account_id == account) & (events.event_at < as_of)]
        row = {"account_id": account}
        for w in config.windows:
            inside = before[before.event_at >= as_of - pd.Timedelta(days=w)]
            core = inside.event_name.isin(config.core_events)
            row |= {f"active_days_{w}d": inside.event_at.dt.floor("D").nunique(),
                    f"active_users_{w}d": inside.user_id.nunique(),
                    f"distinct_events_{w}d": inside.event_name.nunique(),
                    f"core_feature_share_{w}d": inside[core].event_name.nunique() / len(config.core_events),
                    f"sessions_{w}d": len(inside.assign(day=inside.event_at.dt.floor("D"))
                                          .drop_duplicates(["user_id", "session_id", "day"]))}
        t = pd.Timedelta(days=config.trend_window_days)
        last = before[before.event_at >= as_of - t].user_id.nunique()
        previous = before[(before.event_at < as_of - t) & (before.event_at >= as_of - 2 * t)].user_id.nunique()
        row["active_users_trend"] = last / previous - 1 if previous else float("nan")
        row["days_since_last_activity"] = ((as_of - before.event_at.max().floor("D")).days
                                           if len(before) else float("nan"))
        rows.append(row)
    return pd.DataFrame(rows).set_index("account_id")


def test_windows_of_irregular_as_ofs_count_distinct_days_users_and_events_exactly(load_tables):
    """Users and event names are rolled up per period between window cuts, not per day: with as-ofs whose
    windows overlap and interleave at odd spacings, every distinct count still equals counting events by hand."""
    rng = np.random.default_rng(5)
    n, accounts = 3_000, ["a", "b", "c", "d"]
    start = pd.Timestamp("2024-01-01")
    events = pd.DataFrame({
        "account_id": rng.choice(accounts[:3], n),  # d: no events at all
        "user_id": [f"u{i}" for i in rng.integers(0, 25, n)],
        "event_at": (start + pd.to_timedelta(rng.integers(0, 200 * 24 * 60, n), unit="min")).astype("datetime64[us]"),
        "event_name": rng.choice(["login", "report", "automate", "export", "share", "invite"], n),
        "session_id": [f"s{i}" for i in rng.integers(0, 40, n)],
    })
    subs = pd.DataFrame({"account_id": accounts, "start_at": ts(*["2023-12-01"] * 4), "end_at": ts(*[None] * 4),
                         "mrr": [10.0] * 4})
    con = load_tables(accounts=tiny_accounts(*accounts), subscriptions=subs, events=events)
    config = FeatureConfig(windows=[5, 21, 45], trend_window_days=17, core_events=["report", "automate", "api"])
    as_ofs = [date(2024, 3, 3), date(2024, 3, 10), date(2024, 3, 29), date(2024, 5, 1), date(2024, 5, 2),
              date(2024, 7, 25)]
    grid = ibis.memtable(pd.DataFrame({"account_id": accounts * len(as_ofs),
                                       "as_of": ts(*[str(a) for a in as_ofs for _ in accounts])}))
    table, _ = compute_feature_table(load_sources(con, {}), grid, as_ofs, config)
    frame = table.execute()
    for as_of in as_ofs:
        expected = _by_hand(events, accounts, pd.Timestamp(as_of), config)
        actual = frame[frame.as_of == pd.Timestamp(as_of)].set_index("account_id").loc[accounts, expected.columns]
        pd.testing.assert_frame_equal(actual.astype("float64"), expected.loc[accounts].astype("float64"),
                                      check_names=False, obj=f"as of {as_of}")


def test_the_default_feature_config_with_no_event_vocabulary_computes_the_table(warehouse):
    """A params file without core_events, value_events or milestones: breadth counts no core feature, and the
    time-to-value features find no first value, rather than the build failing on an empty IN list."""
    a = _features(warehouse, config=FeatureConfig()).loc["a"]
    assert a["core_feature_share_30d"] == 0.0
    assert a["events_30d"] == 7
    assert pd.isna(a["days_to_first_value"])
