"""Features that travel: rates per day, user-day, seat-day and 100 of MRR, the mix of event types, and the event
names picked automatically; values computed by hand on a tiny warehouse."""

from __future__ import annotations

from datetime import date, datetime

import ibis
import pandas as pd
import pytest

from features.catalog import event_slug, mix_slugs, mix_specs, render_reason
from features.config import FeatureConfig
from features.feature_table import compute_feature_table, features_reading_events, select_features
from features.sources import load_sources
from features.vocabulary import (
    EventVocabulary,
    changed_settings,
    feature_settings,
    find_absent_events,
    pick_event_vocabulary,
)
from serving.explain import describe_driver, feature_label
from tests.conftest import ts
from tests.features.test_engagement import EVENTS, _events

AS_OF = date(2024, 3, 1)
CONFIG = FeatureConfig(windows=[7, 30], trend_window_days=7, core_events=["report", "automate"],
                       event_mix={"events": ["login", "report", "Export Report!"]})


@pytest.fixture
def warehouse(load_tables):
    # a: an old account with 4 seats and 400 MRR; b: no events; y: signed up 5 days before the as-of.
    accounts = pd.DataFrame({"account_id": ["a", "b", "y"], "created_at": ts("2023-06-01", "2023-06-01",
                                                                             "2024-02-25 15:00")})
    subs = pd.DataFrame({"account_id": ["a", "b", "y"], "start_at": ts("2023-12-01", "2023-12-01", "2024-02-25"),
                         "end_at": ts(None, None, None), "mrr": [400.0, 50.0, 0.0], "seats": [4.0, 0.0, 2.0]})
    young = [("y", "v1", "2024-02-26 10:00", "login"), ("y", "v1", "2024-02-26 10:05", "report"),
             ("y", "v2", "2024-02-29 09:00", "login")]
    return load_tables(accounts=accounts, subscriptions=subs, events=_events(EVENTS + young))


def _features(con, config=CONFIG) -> pd.DataFrame:
    grid = ibis.memtable(pd.DataFrame({"account_id": ["a", "b", "y"], "as_of": ts(*[str(AS_OF)] * 3)}))
    table, _ = compute_feature_table(load_sources(con, {}), grid, [AS_OF], config)
    return table.execute().set_index("account_id")


def test_rates_per_day_user_day_seat_day_and_mrr_by_hand(warehouse):
    a = _features(warehouse).loc["a"]
    # Last 7 days: 4 events on 2 days by u1 (Feb 28) and u2 (Feb 27): 2 user-days. Last 30: 7 events, 4 user-days.
    expected = {"events_per_day_7d": 4 / 7, "events_per_day_30d": 7 / 30, "active_day_share_7d": 2 / 7,
                "active_day_share_30d": 4 / 30, "events_per_user_day_7d": 2.0, "events_per_user_day_30d": 7 / 4,
                "seat_day_utilisation_7d": 2 / (4 * 7), "seat_day_utilisation_30d": 4 / (4 * 30),
                # The trend window (7 days): 2 user-days and 4 events a week, per 4 hundreds of MRR.
                "daily_users_per_100_mrr": 2 / 7 / 4, "daily_events_per_100_mrr": 4 / 7 / 4}
    for name, value in expected.items():
        assert a[name] == pytest.approx(value), name


def test_a_young_account_is_measured_on_its_days_since_sign_up(warehouse):
    y = _features(warehouse).loc["y"]
    # Signed up Feb 25 15:00: 5 calendar days to the as-of (Feb 25 → Mar 1 in a leap year), fewer than either window.
    assert y["events_per_day_7d"] == pytest.approx(3 / 5) and y["events_per_day_30d"] == pytest.approx(3 / 5)
    assert y["active_day_share_30d"] == pytest.approx(2 / 5)
    assert y["seat_day_utilisation_30d"] == pytest.approx(2 / (2 * 5))
    assert y["events_per_user_day_30d"] == pytest.approx(3 / 2)
    assert pd.isna(y["daily_users_per_100_mrr"])  # no MRR: no value for money to speak of


def test_an_account_without_events_has_zero_rates_and_no_mix(warehouse):
    b = _features(warehouse).loc["b"]
    assert b["events_per_day_30d"] == 0 and b["active_day_share_7d"] == 0 and b["daily_events_per_100_mrr"] == 0
    assert pd.isna(b["events_per_user_day_7d"]) and pd.isna(b["seat_day_utilisation_7d"])  # no user-days, no seats
    assert pd.isna(b["mix_share_login"]) and pd.isna(b["mix_change_report"])


def test_mix_shares_and_their_change_by_hand(warehouse):
    f = _features(warehouse)
    a = f.loc["a"]
    # Last 7 days: login 2, report 2 of 4 events. The 7 days before: one login, the only event.
    assert a["mix_share_login"] == pytest.approx(0.5) and a["mix_change_login"] == pytest.approx(-50.0)
    assert a["mix_share_report"] == pytest.approx(0.5) and a["mix_change_report"] == pytest.approx(50.0)
    assert a["mix_share_export_report"] == 0
    y = f.loc["y"]
    assert y["mix_share_login"] == pytest.approx(2 / 3) and pd.isna(y["mix_change_login"])  # no week before


def test_event_names_become_safe_unique_identifiers():
    assert event_slug("Export Report!") == "export_report" and event_slug("2fa.enable") == "e_2fa_enable"
    assert event_slug("???") == "event" and len(event_slug("x" * 90)) == 40
    assert mix_slugs(["export report", "Export-Report", "login"]) == ["export_report", "export_report_2", "login"]
    for spec in mix_specs(["a {b}", "login"], 30):
        assert spec.name.isidentifier()
        render_reason(spec, 0.25)  # braces in an event name do not break the sentence


def test_mix_reasons_name_the_event_and_the_shares():
    share, change = mix_specs(["export_report"], 30)
    assert render_reason(share, 0.3) == "30% of product events were “export report” in the last 30 days"
    values = {"mix_share_export_report": 0.05}
    assert describe_driver(change, -25.0, row=values.get) == (
        "Share of “export report” events fell from 30% to 5% against the previous 30 days")
    assert render_reason(change, -25.0) == (
        "Share of “export report” events moved -25 points against the previous 30 days")
    assert feature_label(share) == "Share of “export report” events"


def test_picked_names_follow_accounts_for_core_and_value_and_volume_for_the_mix(load_tables):
    rows = [(acc, f"2024-01-0{day} 10:00", name) for acc, names in {
        "a": ["login", "report", "report", "report", "share", "export"], "b": ["login", "report", "share", "export"],
        "c": ["login", "report", "share"], "d": ["login", "admin_setup"]}.items()
        for day, name in enumerate(names, start=1)]
    account, at, name = zip(*rows, strict=True)
    events = pd.DataFrame({"account_id": account, "event_at": ts(*at), "event_name": name})
    late = pd.DataFrame({"account_id": ["d"] * 9, "event_at": ts(*["2024-02-10"] * 9),
                         "event_name": ["bulk_import"] * 9})
    subs = pd.DataFrame({"account_id": list("abcd"), "start_at": ts(*["2023-01-01"] * 4), "end_at": ts(*[None] * 4),
                         "mrr": [10.0] * 4})
    con = load_tables(accounts=pd.DataFrame({"account_id": list("abcd"), "created_at": ts(*["2023-01-01"] * 4)}),
                      subscriptions=subs, events=pd.concat([events, late], ignore_index=True))
    config = FeatureConfig(core_events_top=2, value_events_top=1, event_mix={"top": 2})
    picked = pick_event_vocabulary(load_sources(con, {}), config, datetime(2024, 2, 1))
    # Core: report (3 accounts), share (3); login left out. Value: export (2 accounts). Mix: login 4, report 5.
    assert picked == EventVocabulary(("report", "share"), ("export",), ("report", "login"),
                                     picked=("core_events", "value_events", "mix_events"))
    # Names the params give are kept; only the empty kinds are picked.
    given = FeatureConfig(core_events=["share"], value_events_top=1, event_mix={"events": ["export"]})
    assert pick_event_vocabulary(load_sources(con, {}), given, datetime(2024, 2, 1)) == EventVocabulary(
        ("share",), ("report",), ("export",), picked=("value_events",))
    # A name the warehouse lacks before the cut-off is found (bulk_import comes only after it).
    assert find_absent_events(load_sources(con, {}), EventVocabulary(("report", "gone"), (), ("bulk_import",)),
                              datetime(2024, 2, 1)) == ["bulk_import", "gone"]
    # And the login event, asked for beside them.
    assert find_absent_events(load_sources(con, {}), EventVocabulary(("report",)), datetime(2024, 2, 1),
                              also=("sign_in", "login")) == ["sign_in"]


def test_a_missing_event_leaves_out_exactly_the_features_that_read_it():
    vocabulary = EventVocabulary(("report",), ("export",), ("login", "report"))
    config = vocabulary.apply(CONFIG)
    lacking = features_reading_events(vocabulary, ["report"], config)
    assert set(lacking) == {"core_feature_share_7d", "core_feature_share_30d", "core_adoption_share",
                            "core_adoption_median_days", "mix_share_report", "mix_change_report"}
    assert lacking["mix_share_report"] == ["event 'report'"]
    feature_set = select_features(config, []).without(lacking)
    assert "mix_share_login" in feature_set.names and "mix_share_report" not in feature_set.names
    assert feature_set.left_out["core_adoption_share"] == ["event 'report'"]
    # A login event the warehouse never has (another vocabulary's `sign_in`) made logins per user 0 for everyone,
    # silently: they are left out and named.
    renamed = config.model_copy(update={"login_event": "sign_in"})
    assert features_reading_events(vocabulary, ["sign_in"], renamed) == {
        "logins_per_active_user_7d": ["event 'sign_in'"], "logins_per_active_user_30d": ["event 'sign_in'"]}


def test_the_settings_a_model_was_trained_with_are_compared_as_its_features_read_them():
    trained = feature_settings(FeatureConfig())
    assert trained["trend_window_days"] == 30 and trained["outcome_events"] == {"won": [], "lost": []}
    # Event names and how they are picked are the vocabulary's: scoring reads the model's, so they may differ.
    assert not {"core_events", "value_events", "core_events_top", "value_events_top", "event_mix"} & set(trained)
    everything = {"tickets", "surveys", "milestones", "users", "cs_actions", "features.outcome_events",
                  "features.login_event"}
    picking = FeatureConfig(core_events=["x"], value_events_top=1, event_mix={"events": ["y"], "top": 2})
    assert changed_settings(trained, picking, everything) == []
    # Lists are read as sets (priorities and roles in any case).
    reordered = FeatureConfig(windows=[90, 7, 30], high_priorities=["Urgent", "HIGH"], admin_roles=["owner", "admin"])
    assert changed_settings(trained, reordered, everything) == []
    retimed = FeatureConfig(trend_window_days=7, windows=[7, 30], ttv_targets={"SMB": 20}, survey_window_days=365)
    assert changed_settings(trained, retimed, everything) == [
        "features.survey_window_days: trained with 180, params say 365",
        "features.trend_window_days: trained with 30, params say 7",
        'features.ttv_targets: trained with {}, params say {"SMB": 20}',
        "features.windows: trained with [7, 30, 90], params say [7, 30]"]
    # A model without survey features does not care about the survey window; one without login features about
    # the login event.
    assert changed_settings(trained, retimed, everything - {"surveys"})[0].startswith("features.trend_window_days")
    assert changed_settings(trained, FeatureConfig(login_event="app_open"), everything - {"features.login_event"}) == []
    # A setting the model did not record (newer than the model) is not compared; nor is anything for a model that
    # recorded none.
    assert changed_settings({k: v for k, v in trained.items() if k != "trend_window_days"}, retimed,
                            everything - {"surveys"}) == [
        'features.ttv_targets: trained with {}, params say {"SMB": 20}',
        "features.windows: trained with [7, 30, 90], params say [7, 30]"]
    assert changed_settings({}, retimed, everything) == []
