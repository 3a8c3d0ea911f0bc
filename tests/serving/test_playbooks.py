"""Playbooks: tier × driver group → recommended action and owner, as configured; invalid rules are clear errors."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from features.catalog import CATALOG, expand_catalog
from features.config import FeatureConfig
from serving.config import DEFAULT_RULES, DRIVER_GROUPS, ScoringConfig
from serving.playbooks import dominant_groups, recommend_actions
from serving.score import assign_tiers

SPECS = {s.name: s for s in expand_catalog(CATALOG, FeatureConfig(windows=[30]).windows_by_kind())}
RULES = [
    {"tier": "high", "group": "engagement", "action": "Adoption workshop", "owner_role": "CSM"},
    {"tier": "high", "group": "support", "action": "Escalate open tickets", "owner_role": "Support lead"},
    {"tier": "high", "group": "*", "action": "Executive sponsor call", "owner_role": "CS manager"},
    {"tier": "medium", "group": "commercial", "action": "Renewal preparation", "owner_role": "Account executive"},
]


def _config(rules=RULES, **scoring) -> ScoringConfig:
    return ScoringConfig.model_validate({"playbooks": {"rules": rules}, **scoring})


def test_each_tier_and_group_maps_as_configured():
    config = _config()
    tiers, groups = zip(*[(t, g) for t in ("high", "medium", "low") for g in (*DRIVER_GROUPS, None)], strict=True)
    actions = recommend_actions(np.array(tiers), np.array(groups, dtype=object), np.full(len(tiers), np.nan),
                                np.full(len(tiers), date(2024, 5, 1)), config.playbooks)
    got = {(t, g): (a, o) for t, g, a, o in zip(tiers, groups, actions.recommended_action, actions.owner_role,
                                                  strict=True)}
    for group in (*DRIVER_GROUPS, None):
        expected = {"engagement": ("Adoption workshop", "CSM"), "support": ("Escalate open tickets", "Support lead")}
        assert got[("high", group)] == expected.get(group, ("Executive sponsor call", "CS manager"))
        assert got[("medium", group)] == (("Renewal preparation", "Account executive") if group == "commercial"
                                          else (None, None))   # medium has no fallback: no action
        assert got[("low", group)] == (None, None)


def test_default_rules_give_every_high_and_medium_account_an_action():
    config = ScoringConfig()
    assert len(config.playbooks.rules) == len(DEFAULT_RULES)
    for tier in ("high", "medium"):
        for group in (*DRIVER_GROUPS, None):
            assert config.playbooks.find(tier, group) is not None
    assert config.playbooks.find("low", "engagement") is None


@pytest.mark.parametrize(("rule", "message"), [
    ({"tier": "urgent", "group": "support", "action": "Call", "owner_role": "CSM"},
     "rule 4 (tier 'urgent', group 'support'): unknown tier 'urgent' (tiers: high, medium, low)"),
    ({"tier": "high", "group": "billing", "action": "Call", "owner_role": "CSM"},
     "rule 4 (tier 'high', group 'billing'): unknown group 'billing' (choose from engagement, value, support, "
     "voice, commercial, or '*' for any)"),
    ({"tier": "medium", "group": "voice", "owner_role": "CSM"},
     "rule 4 (tier 'medium', group 'voice'): no action (give `action:` as text)"),
    ({"tier": "medium", "group": "voice", "action": "  ", "owner_role": "CSM"},
     "rule 4 (tier 'medium', group 'voice'): no action"),
    ({"tier": "medium", "group": "voice", "action": "Call"},
     "rule 4 (tier 'medium', group 'voice'): no owner_role"),
    ({"tier": "medium", "group": "voice", "action": "Call", "owner_role": "CSM", "priority": 1},
     "rule 4 (tier 'medium', group 'voice'): unknown key(s) priority"),
    ({"tier": "high", "group": "support", "action": "Call", "owner_role": "CSM"},
     "rule 4 (tier 'high', group 'support') repeats rule 2"),
])
def test_an_invalid_rule_is_a_clear_error_naming_it(rule, message):
    with pytest.raises(ValidationError) as error:
        _config([*RULES[:3], rule])
    assert message in str(error.value)


def test_the_top_tier_needs_a_fallback_rule():
    with pytest.raises(ValidationError, match="no fallback rule for the top tier 'high'"):
        _config(RULES[:2])
    # By capacity the top tier is the one with the smallest N.
    with pytest.raises(ValidationError, match="no fallback rule for the top tier 'urgent'"):
        _config(RULES, tiers_by="capacity", capacity={"urgent": 10, "high": 50, "medium": 100})


def test_tier_names_run_from_highest_risk_and_capacity_is_cumulative():
    assert _config().tier_names == ["high", "medium", "low"]
    config = _config(tiers_by="capacity", capacity={"medium": 4, "high": 2})
    assert config.tier_names == ["high", "medium", "low"]
    p = np.array([0.9, 0.1, 0.5, 0.3, 0.2, 0.05])
    assert assign_tiers(p, config).tolist() == ["high", "low", "high", "medium", "medium", "low"]
    with pytest.raises(ValidationError, match="distinct account counts"):
        _config(tiers_by="capacity", capacity={"high": 5, "medium": 5})
    with pytest.raises(ValidationError, match="lowest_tier 'high' is also a tier"):
        _config(lowest_tier="high")


def test_the_dominant_group_is_the_one_whose_cause_drivers_weigh_most():
    contributions = pd.DataFrame({
        "active_users_30d": [0.3, 0.1, -0.5], "sessions_trend": [0.3, 0.0, -0.1],   # engagement
        "open_high_priority_tickets": [0.5, 0.05, -0.2],                            # support
        "mrr_change_90d": [0.1, 0.2, -0.1],                                          # commercial (contraction)
        "bias": [-2.0, -2.0, -2.0]})
    assert dominant_groups(contributions, SPECS).tolist() == ["engagement", "commercial", None]


def test_a_price_increase_drives_the_commercial_playbooks():
    contributions = pd.DataFrame({"active_users_30d": [0.1], "price_increases_365d": [0.3], "bias": [-2.0]})
    assert dominant_groups(contributions, SPECS).tolist() == ["commercial"]


def test_context_never_picks_the_group_however_much_it_weighs():
    # A renewal 10 days out weighs most, but it says when the account can leave, not why: support drives it.
    contributions = pd.DataFrame({
        "days_to_renewal": [2.0, 1.5], "tenure_days": [0.8, 0.0], "plan": [0.5, 0.0], "mrr": [0.4, 0.0],
        "open_high_priority_tickets": [0.2, -0.1], "active_users_30d": [0.1, -0.2], "bias": [-2.0, -2.0]})
    assert dominant_groups(contributions, SPECS).tolist() == ["support", None]


URGENT_RULES = [
    {"tier": "high", "group": "support", "action": "Escalate open tickets", "owner_role": "Support lead",
     "urgent_action": "Escalate and call the decision maker before the renewal",
     "urgent_owner_role": "Support lead and AE"},
    {"tier": "high", "group": "*", "action": "Executive sponsor call", "owner_role": "CS manager"},
]


def test_a_renewal_within_urgent_days_gets_the_urgent_variant_and_a_due_date_before_the_renewal():
    config = _config(URGENT_RULES).playbooks.model_copy(update={"urgent_days": 30, "due_days": 14})
    as_of = date(2024, 5, 1)
    days = np.array([18.0, 31.0, np.nan, 1.0, 18.0])
    groups = np.array(["support", "support", "support", "support", "engagement"], dtype=object)
    got = recommend_actions(np.array(["high"] * 5), groups, days, np.full(5, as_of), config)
    assert got["urgency"].tolist() == ["urgent", "routine", "routine", "urgent", "urgent"]
    assert got["recommended_action"].tolist() == [
        "Escalate and call the decision maker before the renewal", "Escalate open tickets", "Escalate open tickets",
        "Escalate and call the decision maker before the renewal", "Executive sponsor call"]  # fallback: no variant
    assert got["owner_role"].tolist()[:2] == ["Support lead and AE", "Support lead"]
    # Due halfway to the renewal when that is sooner than due_days, else due_days; always before the renewal.
    assert got["due_by"].tolist() == [date(2024, 5, 10), date(2024, 5, 15), date(2024, 5, 15), date(2024, 5, 1),
                                      date(2024, 5, 10)]
    for due, d in zip(got["due_by"], days, strict=True):
        assert np.isnan(d) or due < as_of + timedelta(days=d)


def test_no_rule_no_urgency_and_no_due_date():
    got = recommend_actions(np.array(["low"]), np.array(["support"], dtype=object), np.array([5.0]),
                            np.array([date(2024, 5, 1)]), _config(URGENT_RULES).playbooks)
    assert got.iloc[0].tolist() == [None, None, None, None, None]


def test_an_urgent_variant_must_be_text():
    with pytest.raises(ValidationError, match=r"group 'support'\): `urgent_action:` must be text"):
        _config([{**URGENT_RULES[0], "urgent_action": 3}, URGENT_RULES[1]])


@pytest.mark.parametrize(("key", "text", "message"), [
    ("urgent_action", "Call\n=cmd|' /C calc'!A0", r"`urgent_action:` holds a line break or another control character"),
    ("urgent_owner_role", "AE\r", r"`urgent_owner_role:` holds a line break"),
    ("action", "Escalate\tnow", r"`action:` holds a line break"),
    ("action", "x" * 501, r"`action:` is 501 characters long \(at most 500\)"),
    ("urgent_action", "x" * 100_000, r"`urgent_action:` is 100,000 characters long \(at most 500\)"),
    ("owner_role", "y" * 101, r"`owner_role:` is 101 characters long \(at most 100\)"),
])
def test_a_rule_text_is_one_line_of_readable_length(key, text, message):
    # A paste error in params.yaml becomes every row's churn_scores text, report cell and export line.
    with pytest.raises(ValidationError, match=r"rule 1 \(tier 'high', group 'support'\): " + message):
        _config([{**URGENT_RULES[0], key: text}, URGENT_RULES[1]])


def test_an_urgent_action_without_its_owner_keeps_the_routine_owner():
    config = _config([{"tier": "high", "group": "*", "action": "Call", "owner_role": "CSM",
                       "urgent_action": "Call now"}])
    got = recommend_actions(np.array(["high", "high"]), np.array([None, None], dtype=object), np.array([3.0, 90.0]),
                            np.full(2, date(2024, 5, 1)), config.playbooks)
    assert got[["recommended_action", "owner_role", "urgency"]].to_numpy().tolist() == [
        ["Call now", "CSM", "urgent"], ["Call", "CSM", "routine"]]


def test_params_yaml_ships_the_default_rules():
    from pathlib import Path

    from pipelines.config import load_params

    playbooks = load_params(Path(__file__).parents[2] / "params.yaml").scoring.playbooks
    assert [r.model_dump(exclude_none=True) for r in playbooks.rules] == DEFAULT_RULES
    assert (playbooks.urgent_days, playbooks.due_days) == (30, 14)


def test_a_monthly_account_is_urgent_only_in_the_last_quarter_of_its_period():
    # Every monthly account is within 30 days of its renewal: with the plain 30-day window all would be urgent.
    config = _config(URGENT_RULES).playbooks.model_copy(update={"urgent_days": 30})
    days = np.array([20.0, 7.0, 20.0, 20.0, 40.0])
    periods = np.array([1, 1, 12, np.nan, 3], dtype=float)  # monthly, monthly, annual, unknown, quarterly (22 days)
    got = recommend_actions(np.array(["high"] * 5), np.array(["support"] * 5, dtype=object), days,
                            np.full(5, date(2024, 5, 1)), config, periods)
    assert got["urgency"].tolist() == ["routine", "urgent", "urgent", "urgent", "routine"]
