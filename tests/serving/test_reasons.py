"""Reasons in words: exact sentences from the catalog templates, comparisons with retained accounts, the right
direction, and never a raw feature name."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from features.catalog import CATALOG, expand_catalog
from features.config import FeatureConfig
from serving.explain import (
    LOWERS,
    OVERALL,
    RAISES,
    Benchmarks,
    ExplainContext,
    compute_benchmarks,
    describe_driver,
    feature_label,
    rank_drivers,
)

WINDOWS = FeatureConfig().windows_by_kind()
SPECS = {s.name: s for s in expand_catalog(CATALOG, WINDOWS)}
IDENTIFIER = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")  # snake_case, as feature names are written
BENCHMARKS = Benchmarks(by="segment", values={
    OVERALL: {"seat_utilisation_30d": 0.61, "active_users_trend": 0.02, "last_nps_category": "promoter",
              "value_reached": 0.9, "days_since_last_activity": 2.0, "open_high_priority_tickets": 0.0},
    "Mid-Market": {"seat_utilisation_30d": 0.68, "value_reached": 0.96},
})


def test_reason_sentences_are_exact_with_the_account_value_and_a_comparison():
    row = {"active_users_30d": 12.0, "seats": 40.0}.get
    assert describe_driver(SPECS["seat_utilisation_30d"], 0.3, BENCHMARKS, "Mid-Market", row) == (
        "12 active users of 40 paid seats (30%) in the last 30 days (retained Mid-Market accounts: median 68%)")
    assert describe_driver(SPECS["active_users_trend"], -0.42, BENCHMARKS, "Mid-Market") == (
        "Active users fell 42% against the previous 30 days (retained accounts: median +2%)")
    assert describe_driver(SPECS["days_since_last_activity"], 21.0, BENCHMARKS, None) == (
        "No product activity for 21 days (retained accounts: median 2 days)")
    assert describe_driver(SPECS["value_reached"], 0.0, BENCHMARKS, "Mid-Market") == (
        "First value reached: no (retained Mid-Market accounts: 96% yes)")
    assert describe_driver(SPECS["last_nps_category"], "detractor", BENCHMARKS, "SMB") == (
        "Last NPS response was a detractor (retained accounts: mostly promoter)")
    assert describe_driver(SPECS["open_high_priority_tickets"], 2.0) == "2 high-priority tickets open"


def test_a_missing_value_is_said_in_words_without_a_comparison():
    assert describe_driver(SPECS["days_to_first_value"], None, BENCHMARKS) == "First value not reached yet"
    assert describe_driver(SPECS["days_since_last_activity"], np.nan, BENCHMARKS) == "No product activity on record"
    assert describe_driver(SPECS["csat_avg_180d"], None) == "No CSAT answer in the last 180 days"
    # Without the users and seats at hand, the catalog's own sentence.
    assert describe_driver(SPECS["seat_utilisation_30d"], 0.3) == "30% of paid seats used in the last 30 days"


TENURE = {"tenure_days": 730.0, "onboarding_share": 0.5}.get


@pytest.mark.parametrize(("feature", "value", "sentence"), [
    # never reached first value: not "Took 730 days to reach first value"
    ("days_to_first_value", None, "Has not reached first value in 730 days since sign-up"),
    ("value_reached", 0.0, "Has not reached first value in 730 days since sign-up"),
    # no core adoption: not "Core features took a median 730 days to adopt"
    ("core_adoption_median_days", None, "No core feature adopted yet (730 days since sign-up)"),
    ("core_adoption_share", 0.0, "No core feature adopted yet (730 days since sign-up)"),
    ("days_to_onboard", None, "Onboarding not complete after 730 days (50% of milestones done)"),
    # no survey answer
    ("detractor_share_180d", None, "No NPS answer in the last 180 days"),
    ("last_nps", None, "No NPS answer on record"),
    ("survey_responses_180d", 0.0, "No survey answers in the last 180 days"),
    # no tickets
    ("tickets_90d", 0.0, "No support tickets in the last 90 days"),
    ("median_resolution_hours_90d", None, "No tickets resolved in the last 90 days"),
    ("days_since_last_ticket", None, "No support ticket on record"),
    ("open_high_priority_tickets", 0.0, "No open high-priority tickets"),
    # zero usage
    ("active_days_30d", 0.0, "Not active on any of the last 30 days"),
    ("sessions_7d", 0.0, "No sessions in the last 7 days"),
    ("price_increases_365d", 0.0, "No price increases in the last year"),
])
def test_censored_missing_and_zero_values_read_as_what_they_are(feature, value, sentence):
    assert describe_driver(SPECS[feature], value, BENCHMARKS, None, TENURE) == sentence


@pytest.mark.parametrize(("feature", "sentence"), [
    # 0 days is a first value (onboarding, adoption) on the day of sign-up, not "has not reached first value".
    ("days_to_first_value", "Reached first value on the day of sign-up"),
    ("days_to_onboard", "Completed onboarding on the day of sign-up"),
    ("core_adoption_median_days", "Adopted core features on the day of sign-up (median)"),
    ("days_to_renewal", "Renewal due today"),
])
def test_zero_days_is_the_same_day_not_a_censored_value(feature, sentence):
    assert describe_driver(SPECS[feature], 0.0, BENCHMARKS, None, TENURE) == sentence


@pytest.mark.parametrize(("feature", "value", "sentence"), [
    ("session_minutes_30d", 42.4, "Sessions lasted 42 min on average over the last 30 days"),
    ("session_minutes_30d", 150.0, "Sessions lasted 2.5 hours on average over the last 30 days"),
    ("median_resolution_hours_90d", 20.0, "Tickets took a median 20 hours to resolve over the last 90 days"),
    ("median_resolution_hours_90d", 130.0, "Tickets took a median 5.4 days to resolve over the last 90 days"),
    ("days_to_renewal", 1.0, "Renewal due in 1 day"),
    ("billing_period_months", 12.0, "Billed every 12 months"),
    ("mrr_change_90d", -0.25, "MRR fell 25% against 90 days ago"),
    ("core_feature_share_30d", 0.4, "40% of core features used in the last 30 days"),
    # A count of one reads singular.
    ("downgrades_365d", 1.0, "1 downgrade in the last year"),
    ("price_increases_365d", 1.0, "1 price increase in the last year"),
    ("price_increases_365d", 2.0, "2 price increases in the last year"),
    ("open_high_priority_tickets", 1.0, "1 high-priority ticket open"),
    ("events_30d", 1.0, "1 product event in the last 30 days"),
    ("events_30d", 2.0, "2 product events in the last 30 days"),
])
def test_units_read_without_thinking(feature, value, sentence):
    assert describe_driver(SPECS[feature], value) == sentence


def test_benchmarks_are_medians_of_retained_accounts_by_segment_with_a_floor():
    frame = pd.DataFrame({
        "label": [0, 0, 0, 0, 1, 0],
        "segment": ["SMB", "SMB", "SMB", "Enterprise", "SMB", None],
        "active_users_30d": [2.0, 4.0, 9.0, 30.0, 0.0, 5.0],
        "value_reached": [1.0, 0.0, 1.0, 1.0, 0.0, 1.0],
        "plan": ["Growth", "Growth", "Starter", "Scale", "Starter", "Growth"],
    })
    specs = {k: SPECS[k] for k in ("active_users_30d", "value_reached", "plan", "last_nps")}
    benchmarks = compute_benchmarks(frame, specs, by="segment", min_rows=2)
    assert benchmarks.values[OVERALL] == {"active_users_30d": 5.0, "value_reached": 0.8, "plan": "Growth"}
    assert benchmarks.values["SMB"] == {"active_users_30d": 4.0, "value_reached": 2 / 3, "plan": "Growth"}
    assert "Enterprise" not in benchmarks.values  # one retained row: below the floor, the overall value applies
    assert benchmarks.lookup("active_users_30d", "Enterprise") == (5.0, None)
    assert benchmarks.lookup("active_users_30d", "SMB") == (4.0, "SMB")
    assert Benchmarks.from_dict(benchmarks.to_dict()) == benchmarks
    assert compute_benchmarks(frame.drop(columns="segment"), specs).by is None


def test_drivers_rank_risk_first_then_the_protective_factor_with_the_right_direction():
    contributions = pd.DataFrame({"active_users_30d": [0.5, -0.4], "events_30d": [0.2, -0.1],
                                  "days_since_last_activity": [-0.9, 0.3], "bias": [-2.0, -2.0]})
    values = pd.DataFrame({"active_users_30d": [2.0, 9.0], "events_30d": [40.0, 300.0],
                           "days_since_last_activity": [1.0, 12.0]})
    points = pd.DataFrame({"active_users_30d": [6.0, -3.0], "events_30d": [2.0, -1.0],
                           "days_since_last_activity": [-8.0, 2.5]})
    drivers = rank_drivers(contributions, values, ExplainContext(SPECS, top_n=2, protective=1), points=points)
    assert drivers[["row", "rank", "feature", "direction"]].values.tolist() == [
        [0, 1, "active_users_30d", RAISES], [0, 2, "events_30d", RAISES], [0, 3, "days_since_last_activity", LOWERS],
        [1, 1, "days_since_last_activity", RAISES], [1, 2, "active_users_30d", LOWERS]]
    assert drivers.probability_points.tolist() == [6.0, 2.0, -8.0, 2.5, -3.0]
    assert drivers.reason.tolist() == [
        "2 active users in the last 30 days", "40 product events in the last 30 days",
        "No product activity for 1 day", "No product activity for 12 days", "9 active users in the last 30 days"]


@pytest.mark.parametrize("seed", [0, 1])
def test_no_reason_or_label_contains_a_raw_feature_name(seed):
    rng = np.random.default_rng(seed)
    names = [n for n, s in SPECS.items() if not s.is_categorical]
    values = pd.DataFrame(rng.uniform(-1, 50, (20, len(names))), columns=names)
    values.iloc[::3, ::2] = np.nan  # missing values have their own sentences
    values["plan"], values["last_nps_category"] = "Growth", ["detractor", None] * 10
    values["seats"] = 40.0
    contributions = pd.DataFrame(rng.normal(0, 1, (20, len(SPECS))), columns=list(SPECS)).assign(bias=-2.0)
    benchmarks = compute_benchmarks(values.assign(label=0, segment="SMB"), SPECS, min_rows=1)
    drivers = rank_drivers(contributions, values,
                           ExplainContext(SPECS, top_n=len(SPECS), protective=len(SPECS), benchmarks=benchmarks),
                           segments=pd.Series(["SMB"] * 20))
    texts = drivers.reason.tolist() + [feature_label(s) for s in SPECS.values()]
    assert len(drivers) == 20 * len(SPECS)
    assert [t for t in texts if IDENTIFIER.search(t) or "{" in t] == []
    assert not any(name in " ".join(texts) for name in SPECS if "_" in name)


def test_every_catalog_feature_has_a_short_label():
    from serving.explain import FEATURE_LABELS, _base_name

    assert {_base_name(s) for s in SPECS.values()} <= set(FEATURE_LABELS)
    assert feature_label(SPECS["seat_utilisation_30d"]) == "Paid seats in use (last 30 days)"


COMMENT = "Exports <b>fail</b> | again & again;\nwe are [really] frustrated and looking at other tools for next year"


def test_a_negative_comment_driving_risk_is_quoted_on_one_line_cut_and_unescaped():
    values = pd.DataFrame({"last_comment_sentiment": [-0.72, 0.6], "last_nps": [3.0, 9.0],
                           "last_comment": [COMMENT, "Love it"]})
    contributions = pd.DataFrame({"last_comment_sentiment": [0.9, -0.4], "last_nps": [0.1, -0.2], "bias": 0.0})
    drivers = rank_drivers(contributions, values, ExplainContext(specs=SPECS, top_n=2, protective=1))
    reason = drivers[(drivers["row"] == 0) & (drivers["feature"] == "last_comment_sentiment")]["reason"].item()
    # Plain text in the warehouse: each output escapes it for its own format (tests/serving/test_report.py).
    assert reason == ("Latest survey comment reads negative (-0.72): “Exports <b>fail</b> | again & again, we are "
                      "[really] frustrated and looking at…”")
    assert len(reason.split("“")[1].rstrip("”")) <= 80 and "\n" not in reason and ";" not in reason
    positive = drivers[(drivers["row"] == 1) & (drivers["feature"] == "last_comment_sentiment")]["reason"].item()
    assert positive == "Latest survey comment reads positive (+0.60): “Love it”"
    # Without the words (a table from before comments were read) the template speaks.
    bare = rank_drivers(contributions, values.drop(columns="last_comment"), ExplainContext(specs=SPECS, top_n=1))
    assert bare["reason"].iloc[0] == "Latest survey comment scored -0.72 (-1 negative to 1 positive)"


def test_new_signals_read_in_words():
    assert describe_driver(SPECS["admins_lost_90d"], 1.0) == (
        "1 admin gone quiet (active in the last 90 days, not recently)")
    assert describe_driver(SPECS["cs_touches_90d"], 0.0) == "No CS touches in the last 90 days"
    assert describe_driver(SPECS["days_since_cs_touch"], None) == "No CS touch on record"
    assert describe_driver(SPECS["outcome_success_rate_90d"], 0.25) == "25% of outcomes won in the last 90 days"
    assert describe_driver(SPECS["days_to_first_outcome"], None, row={"tenure_days": 120.0}.get) == (
        "No outcome won with the product in 120 days since sign-up")
    assert describe_driver(SPECS["value_realised_trend"], -0.4) == (
        "Value realised fell 40% against the previous 30 days")
