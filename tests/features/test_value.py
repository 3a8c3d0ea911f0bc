"""Time-to-value features on a tiny hand-built warehouse, with values computed by hand."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pytest

from features.config import FeatureConfig, SourceTable
from features.sources import load_sources
from features.value import compute_value_features, find_unmatched_targets
from tests.conftest import ts

AS_OF, EARLIER = "2024-03-01", "2023-01-20"  # 2024 is a leap year: 2024-02 has 29 days
CONFIG = FeatureConfig(value_events=["create_report"], onboarding_milestones=["invite_team", "connect_data"],
                       core_events=["create_report", "run_automation", "share_report"])
ALL = ["tenure_days", "value_reached", "days_to_first_value", "onboarding_share", "days_to_onboard",
       "trial_to_paid_days", "days_to_first_expansion", "core_adoption_share", "core_adoption_median_days"]

ACCOUNTS = {"a": "2023-01-01", "late": "2023-06-01", "edge": "2024-01-01", "upsell": "2023-01-15",
            "new": AS_OF, "legacy": "2022-01-01"}  # legacy signed up before the event history began
# "ghost" is in the grid but has no account row and no data at all
EVENTS = [  # (account, time, event name)
    ("legacy", "2022-12-20", "login"),              # the event history's first event
    ("legacy", "2023-03-01", "create_report"),      # first value seen, but not when it first came: no day count
    ("legacy", "2023-04-01", "run_automation"),
    ("a", "2023-01-02", "login"),
    ("a", "2023-01-11", "create_report"),           # first value: day 10
    ("a", "2023-02-01", "create_report"),
    ("a", "2023-01-21", "run_automation"),          # core, day 20
    ("a", "2024-03-05", "share_report"),            # after the as-of
    ("late", "2023-06-06", "run_automation"),       # core, day 5
    ("late", "2024-03-10", "create_report"),        # value reached only after the as-of
    ("edge", "2024-01-05", "login"),
    ("edge", "2024-03-01 00:00", "create_report"),  # exactly at the as-of: not before it
]
MILESTONES = [  # (account, milestone, achieved)
    ("a", "invite_team", "2023-01-05"),
    ("a", "connect_data", "2023-01-15"),            # onboarded on day 14
    ("a", "invite_team", "2023-02-01"),             # repeated: the first achievement counts
    ("a", "other", "2023-06-01"),                   # not an onboarding milestone
    ("late", "invite_team", "2023-06-11"),
    ("late", "connect_data", "2024-03-02"),         # after the as-of
    ("edge", "connect_data", "2024-03-01"),         # exactly at the as-of
]
SUBSCRIPTIONS = [  # (account, start, end, mrr, is_trial)
    ("a", "2023-01-01", "2023-01-31", 0.0, True),  # trial, converted after 30 days
    ("a", "2023-01-31", None, 100.0, False),
    ("a", "2023-05-01", None, 50.0, False),         # add-on: first expansion, 90 days after the first paid start
    ("late", "2024-02-01", "2024-03-15", 0.0, True),  # converts after the as-of
    ("late", "2024-03-15", None, 100.0, False),
    ("late", "2024-04-01", None, 30.0, False),      # an expansion after the as-of
    ("edge", "2024-01-01", None, 0.0, True),        # a trial that never converts
    ("upsell", "2023-02-01", "2023-09-01", 100.0, False),  # paid before any trial: no trial-to-paid
    ("upsell", "2023-08-01", "2023-08-15", 0.0, True),
    ("upsell", "2023-09-01", None, 250.0, False),   # upgrade: expansion 212 days after the first paid start
]
NAN = float("nan")

EXPECTED = {  # (account, as_of) → the features of ALL, in order
    ("a", AS_OF): (425.0, 1.0, 10.0, 1.0, 14.0, 30.0, 90.0, 2 / 3, 15.0),
    ("a", EARLIER): (19.0, 1.0, 10.0, 1.0, 14.0, NAN, NAN, 1 / 3, 10.0),
    ("a", "2023-01-11"): (10.0, 0.0, NAN, 0.5, NAN, NAN, NAN, 0.0, NAN),  # the value event is at the as-of
    ("late", "2023-06-11"): (10.0, 0.0, NAN, 0.0, NAN, NAN, NAN, 1 / 3, 5.0),  # a milestone at the as-of
    ("late", AS_OF): (274.0, 0.0, NAN, 0.5, NAN, NAN, NAN, 1 / 3, 5.0),
    ("edge", AS_OF): (60.0, 0.0, NAN, 0.0, NAN, NAN, NAN, 0.0, NAN),
    ("upsell", AS_OF): (411.0, 0.0, NAN, 0.0, NAN, NAN, 212.0, 0.0, NAN),
    ("new", AS_OF): (NAN, 0.0, NAN, 0.0, NAN, NAN, NAN, 0.0, NAN),
    ("ghost", AS_OF): (NAN, 0.0, NAN, 0.0, NAN, NAN, NAN, 0.0, NAN),
    ("legacy", AS_OF): (790.0, 1.0, NAN, 0.0, NAN, NAN, NAN, 2 / 3, NAN),  # created before the history
    ("legacy", "2022-12-20"): (353.0, 0.0, NAN, 0.0, NAN, NAN, NAN, 0.0, NAN),  # no history before the as-of yet
}


def _tables(events=EVENTS, milestones=MILESTONES, subscriptions=SUBSCRIPTIONS, accounts=ACCOUNTS) -> dict:
    account, at, name = zip(*events, strict=True)
    m_account, milestone, achieved = zip(*milestones, strict=True)
    s_account, start, end, mrr, trial = zip(*subscriptions, strict=True)
    return {
        "accounts": pd.DataFrame({"account_id": list(accounts), "created_at": ts(*accounts.values())}),
        "events": pd.DataFrame({"account_id": list(account), "event_at": ts(*at), "event_name": list(name)}),
        "milestones": pd.DataFrame({"account_id": list(m_account), "milestone": list(milestone),
                                    "achieved_at": ts(*achieved)}),
        "subscriptions": pd.DataFrame({"account_id": list(s_account), "start_at": ts(*start), "end_at": ts(*end),
                                       "mrr": list(mrr), "is_trial": list(trial)}),
    }


def _grid() -> ir.Table:
    keys = sorted(EXPECTED)
    return ibis.memtable(pd.DataFrame({"account_id": [k[0] for k in keys], "as_of": ts(*[k[1] for k in keys])}))


def _features(con, config=CONFIG, sources_config=None) -> pd.DataFrame:
    out = compute_value_features(load_sources(con, sources_config or {}), _grid(), config).execute()
    out["as_of"] = out["as_of"].dt.strftime("%Y-%m-%d")
    return out.sort_values(["account_id", "as_of"]).reset_index(drop=True)


def _load(con, frames: dict[str, pd.DataFrame], database: str | None = None):
    for name, frame in frames.items():
        con.create_table(name, frame, database=database, overwrite=True)
    return con


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> pd.DataFrame:
    """The features of the full warehouse, computed once for the module."""
    con = ibis.duckdb.connect(str(tmp_path_factory.mktemp("value") / "warehouse.duckdb"), threads=1)
    out = _features(_load(con, _tables()))
    con.disconnect()
    return out


def test_value_features_exact_values(full):
    assert list(full.columns) == ["account_id", "as_of", *ALL]
    assert len(full) == len(EXPECTED)
    for (account, as_of), expected in EXPECTED.items():
        row = full[(full.account_id == account) & (full.as_of == as_of)].iloc[0]
        for name, value in zip(ALL, expected, strict=True):
            if np.isnan(value):
                assert pd.isna(row[name]), (account, as_of, name)
            else:
                assert row[name] == pytest.approx(value), (account, as_of, name)
    assert all(full[c].dtype == "float64" for c in ALL)


@pytest.mark.parametrize(("drop", "gone"), [("milestones", ["onboarding_share", "days_to_onboard"]),
                                            ("is_trial", ["trial_to_paid_days"])])
def test_a_missing_source_drops_only_its_features(load_tables, full, drop, gone):
    frames = _tables()
    if drop == "milestones":
        del frames["milestones"]
    else:
        frames["subscriptions"] = frames["subscriptions"].drop(columns=[drop])
    out = _features(load_tables(**frames))
    assert list(out.columns) == ["account_id", "as_of", *[c for c in ALL if c not in gone]]
    pd.testing.assert_frame_equal(out, full.drop(columns=gone))


def test_nothing_configured_gives_no_value_and_undefined_shares(load_tables, full):
    out = _features(load_tables(**_tables()), config=FeatureConfig())
    assert list(out.columns) == ["account_id", "as_of", *ALL]
    assert (out.value_reached == 0.0).all()
    for name in ("days_to_first_value", "onboarding_share", "days_to_onboard", "core_adoption_share",
                 "core_adoption_median_days"):
        assert out[name].isna().all(), name
    same = ["tenure_days", "trial_to_paid_days", "days_to_first_expansion"]
    pd.testing.assert_frame_equal(out[same], full[same])


def _future_changed(new_end: str | None) -> dict[str, pd.DataFrame]:
    """Everything at or after the as-of changed: events, milestones, end dates, new rows, creation dates."""
    names = ["create_report", "run_automation", "share_report"]
    events = [e for e in EVENTS if e[1] < AS_OF] + [  # future events dropped, others added
        (account, at, name) for account in [*ACCOUNTS, "ghost"] for at in (AS_OF, "2024-05-01 10:00")
        for name in names]
    milestones = [m for m in MILESTONES if m[2] < AS_OF] + [
        (account, name, at) for account in [*ACCOUNTS, "ghost"] for at in (AS_OF, "2024-04-01")
        for name in ("invite_team", "connect_data")]
    subs = [(acc, start, new_end if end is None or end >= AS_OF else end, mrr, trial)
            for acc, start, end, mrr, trial in SUBSCRIPTIONS]
    subs += [("ghost", AS_OF, None, 0.0, True), ("ghost", "2024-03-20", None, 90.0, False),
             ("edge", "2024-03-01 08:00", None, 40.0, False), ("a", "2024-03-02", None, 500.0, False),
             ("upsell", AS_OF, None, 10.0, True)]
    accounts = {**ACCOUNTS, "new": "2024-06-01", "ghost": "2024-03-05"}
    return _tables(events, milestones, subs, accounts)


@pytest.mark.parametrize("new_end", [None, AS_OF, "2025-04-05 13:00"])
def test_rows_at_or_after_the_as_of_change_nothing(load_tables, full, new_end):
    after = _features(load_tables(**_future_changed(new_end)))
    pd.testing.assert_frame_equal(full, after)


def test_a_change_before_the_as_of_is_seen(load_tables, full):
    """Guard against a comparison that cannot fail: an earlier value event changes the days to value."""
    events = [("a", "2023-01-08", "create_report") if e == ("a", "2023-01-11", "create_report") else e
              for e in EVENTS]
    after = _features(load_tables(**_tables(events=events)))
    assert not full.equals(after)
    assert after.loc[(after.account_id == "a") & (after.as_of == AS_OF), "days_to_first_value"].item() == 7.0


@pytest.mark.postgres
def test_postgres_gives_the_same_frame(full, postgres_schema):
    frames = _tables()
    con, schema = ibis.connect(postgres_schema.url), postgres_schema.name
    try:
        _load(con, frames, database=schema)
        mapping = {name: SourceTable(table=f"{schema}.{name}") for name in frames}
        pd.testing.assert_frame_equal(_features(con, sources_config=mapping), full)
    finally:
        con.disconnect()


OVERDUE_AS_OF = "2024-02-01"
OVERDUE_ACCOUNTS = [  # (account, created_at, segment, first value event or None) → expected days overdue
    ("slow", "2024-01-01", "SMB", None, 17.0),                   # 31 days old, target 14
    ("fast", "2024-01-01", "SMB", "2024-01-05", 0.0),             # reached: not overdue
    ("young", "2024-01-25", "SMB", None, 0.0),                    # 7 days old: still within its target
    ("big", "2023-12-01", "Enterprise", None, 32.0),              # no target of its own: '*' (30), 62 days old
    ("edge", "2024-01-01", "SMB", OVERDUE_AS_OF, 17.0),           # the value event at the as-of is not before it
    ("blank", "2024-01-01", None, None, 1.0),                     # no segment: '*'
    ("unborn", OVERDUE_AS_OF, "SMB", None, NAN),                  # created at the as-of: not known yet
]
TARGETS = FeatureConfig(value_events=["create_report"], ttv_targets={"SMB": 14, "*": 30})


def _overdue(con, config=TARGETS) -> pd.Series:
    grid = ibis.memtable(pd.DataFrame({"account_id": [a[0] for a in OVERDUE_ACCOUNTS],
                                       "as_of": ts(*[OVERDUE_AS_OF] * len(OVERDUE_ACCOUNTS))}))
    out = compute_value_features(load_sources(con, {}), grid, config).execute()
    return out.set_index("account_id")["onboarding_overdue_days"] if "onboarding_overdue_days" in out else None


def _overdue_tables(segment: bool = True) -> dict[str, pd.DataFrame]:
    accounts = pd.DataFrame({"account_id": [a[0] for a in OVERDUE_ACCOUNTS],
                             "created_at": ts(*[a[1] for a in OVERDUE_ACCOUNTS]),
                             "segment": [a[2] for a in OVERDUE_ACCOUNTS]})
    valued = [a for a in OVERDUE_ACCOUNTS if a[3]]
    events = pd.DataFrame({"account_id": [a[0] for a in valued] + ["other"],
                           "event_at": ts(*[a[3] for a in valued], "2023-11-01"),   # the history starts before
                           "event_name": ["create_report"] * len(valued) + ["login"]})  # every sign-up here
    subs = pd.DataFrame({"account_id": ["slow"], "start_at": ts("2024-01-01"), "end_at": ts(None), "mrr": [10.0]})
    return {"accounts": accounts if segment else accounts.drop(columns="segment"), "events": events,
            "subscriptions": subs}


def test_onboarding_overdue_days_against_the_segment_targets(load_tables):
    got = _overdue(load_tables(**_overdue_tables()))
    expected = pd.Series({a[0]: a[4] for a in OVERDUE_ACCOUNTS}, name="onboarding_overdue_days")
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False, check_index_type=False)


def test_onboarding_overdue_days_without_a_target_or_value_events_is_empty(load_tables):
    con = load_tables(**_overdue_tables())
    no_default = _overdue(con, TARGETS.model_copy(update={"ttv_targets": {"SMB": 14}}))
    assert no_default[["big", "blank"]].isna().all() and no_default["slow"] == 17.0
    assert _overdue(con, TARGETS.model_copy(update={"value_events": []})).isna().all()
    assert _overdue(con, TARGETS.model_copy(update={"ttv_targets": {}})).isna().all()


def test_onboarding_overdue_days_needs_the_segment_column(load_tables):
    assert _overdue(load_tables(**_overdue_tables(segment=False))) is None


def test_targets_of_segments_no_account_has_are_found(load_tables):
    """A misspelt segment in features.ttv_targets silently applied to no one (its accounts fell to '*' or none)."""
    sources = load_sources(load_tables(**_overdue_tables()), {})
    config = TARGETS.model_copy(update={"ttv_targets": {"SMB": 14, "Smb": 10, "Enterprise ": 45, "*": 30}})
    assert find_unmatched_targets(sources, config) == ["Smb", "Enterprise "]
    assert find_unmatched_targets(sources, TARGETS) == []
    assert find_unmatched_targets(sources, TARGETS.model_copy(update={"ttv_targets": {"*": 30}})) == []
    no_segment = load_sources(load_tables(**_overdue_tables(segment=False)), {})
    assert find_unmatched_targets(no_segment, config) == []
