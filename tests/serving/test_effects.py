"""Playbook effects against their holdout: exact counts on hand-built rows, and on outcome tables drawn with known
effects (several seeds) the 95% intervals cover the truth, a −30% playbook is found at demo-like scale, and a
playbook that does nothing is not called one that works."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from serving.effects import (
    ALL,
    EFFECT_COLUMNS,
    HARMS,
    INTENT_TO_TREAT,
    NO_EVIDENCE,
    PER_PROTOCOL,
    PER_PROTOCOL_CAVEAT,
    WORKS,
    compare_arms,
    estimate_effects,
    first_exposures,
)

# The true relative effects on the churn probability (what the synthetic CS team's playbooks are meant to do).
TRUE_EFFECTS = {"adoption_workshop": -0.30, "onboarding_review": -0.20, "discount_call": 0.0}


def draw_outcomes(seed: int, accounts: int, holdout_share: float) -> pd.DataFrame:
    """One scoring's outcome rows with known effects: each account's baseline churn probability varies (Beta with
    mean 0.35, the high tier's rate), a treated account's is multiplied by 1 + the playbook's true effect."""
    rng = np.random.default_rng(seed)
    frames = []
    for playbook, effect in TRUE_EFFECTS.items():
        baseline = rng.beta(7, 13, accounts)
        arm = np.where(rng.random(accounts) < holdout_share, "holdout", "treatment")
        churned = (rng.random(accounts) < np.where(arm == "treatment", baseline * (1 + effect), baseline)).astype(int)
        frames.append(pd.DataFrame({
            "account_id": [f"{playbook}-{i}" for i in range(accounts)], "as_of": date(2024, 6, 1),
            "playbook": playbook, "arm": arm, "risk_tier": "high", "churned": churned,
            "churned_mrr": churned * rng.gamma(2.0, 400.0, accounts)}))
    return pd.concat(frames, ignore_index=True)


def pooled(effects: pd.DataFrame, analysis: str = INTENT_TO_TREAT) -> pd.DataFrame:
    rows = effects[(effects.analysis == analysis) & (effects.tier == ALL) & (effects.window == ALL)]
    return rows.set_index("playbook")


def test_the_95_percent_intervals_cover_the_true_effects_in_at_least_90_percent_of_seed_playbook_pairs():
    covered = []
    for seed in range(20):
        for accounts, share in ((1500, 0.1), (1500, 0.3)):
            effects = pooled(estimate_effects(draw_outcomes(seed, accounts, share)))
            for playbook, effect in TRUE_EFFECTS.items():
                covered.append(effects.at[playbook, "relative_low"] <= effect <= effects.at[playbook, "relative_high"])
    assert len(covered) == 120
    assert np.mean(covered) >= 0.90, np.mean(covered)


def test_a_minus_30_percent_playbook_excludes_0_at_demo_like_scale():
    """Demo-like: 1,500 accounts in the playbook over the pooled window, 30% of them held back."""
    for seed in range(10):
        effects = pooled(estimate_effects(draw_outcomes(seed, 1500, 0.3)))
        row = effects.loc["adoption_workshop"]
        assert row.verdict == WORKS and row.absolute_high < 0 and row.relative_high < 0, seed
        assert row.relative_low < -0.30 < row.relative_high or abs(row.relative_difference + 0.30) < 0.15, seed
        assert row.mrr_retained_per_treated > 0


def test_a_playbook_that_does_nothing_is_not_called_one_that_works():
    verdicts = [pooled(estimate_effects(draw_outcomes(seed, 1500, 0.1))).at["discount_call", "verdict"]
                for seed in range(100)]
    # A 95% interval excludes a true 0 on the side of "works" 2.5% of the time by chance alone (over 400 other
    # seeds: 1.5% works, 2.75% harms): a bound of 6% of 100 draws lets chance be, not a biased interval.
    assert verdicts.count(WORKS) / len(verdicts) <= 0.06
    assert verdicts.count(NO_EVIDENCE) / len(verdicts) >= 0.9


def test_counts_rates_differences_and_verdicts_on_hand_built_arms():
    row = compare_arms([1] * 10 + [0] * 90, [1] * 50 + [0] * 50, [100.0] * 10 + [0.0] * 90, [100.0] * 50 + [0.0] * 50)
    assert (row["treated"], row["holdout"], row["treated_churned"], row["holdout_churned"]) == (100, 100, 10, 50)
    assert row["treated_churn_rate"] == 0.1 and row["holdout_churn_rate"] == 0.5
    assert row["absolute_difference"] == pytest.approx(-0.4) and row["relative_difference"] == pytest.approx(-0.8)
    assert row["absolute_low"] < -0.4 < row["absolute_high"] < 0 and row["relative_low"] < -0.8 < row["relative_high"]
    assert row["verdict"] == WORKS and row["p_value"] < 1e-6
    assert row["mrr_retained_per_treated"] == pytest.approx(40.0) and row["mrr_retained_total"] == pytest.approx(4000)
    assert row["mrr_retained_low"] < 40 < row["mrr_retained_high"]
    assert compare_arms([1] * 50 + [0] * 50, [1] * 10 + [0] * 90)["verdict"] == HARMS
    same = compare_arms([1] * 30 + [0] * 70, [1] * 3 + [0] * 7)
    assert same["verdict"] == NO_EVIDENCE and same["absolute_difference"] == 0
    assert np.isnan(same["mrr_retained_per_treated"])   # no MRR given
    empty = compare_arms([1, 0, 0], [])
    assert empty["verdict"] == NO_EVIDENCE and np.isnan(empty["absolute_low"]) and empty["holdout"] == 0
    assert compare_arms([0] * 20, [0] * 5)["verdict"] == NO_EVIDENCE   # nobody churned: nothing to tell


def _rows(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["account_id", "as_of", "playbook", "arm", "risk_tier", "churned",
                                       "churned_mrr", "action_done"])


MAY, JUNE = date(2024, 5, 1), date(2024, 6, 1)


def test_an_account_counts_once_per_playbook_at_its_first_as_of():
    outcomes = _rows(("a", MAY, "p", "treatment", "medium", 1, 10.0, True),
                     ("a", JUNE, "p", "treatment", "high", 1, 10.0, True),
                     ("a", JUNE, "q", "holdout", "high", 1, 10.0, False),
                     ("b", JUNE, "p", "holdout", "high", 0, 0.0, False),
                     ("c", MAY, None, None, "low", 0, 0.0, None))
    first = first_exposures(outcomes)
    assert first[["account_id", "as_of", "playbook"]].values.tolist() == [["a", MAY, "p"], ["a", JUNE, "q"],
                                                                           ["b", JUNE, "p"]]
    effects = estimate_effects(outcomes)
    assert list(effects.columns) == EFFECT_COLUMNS
    itt = effects[effects.analysis == INTENT_TO_TREAT].set_index(["playbook", "tier", "window"])
    assert itt.loc[("p", ALL, ALL), ["treated", "holdout"]].tolist() == [1, 1]
    assert itt.loc[("p", "medium", ALL), ["treated", "holdout"]].tolist() == [1, 0]   # its tier at first exposure
    assert itt.loc[("p", ALL, "2024-06-01"), ["treated", "holdout"]].tolist() == [1, 1]
    assert itt.loc[("p", ALL, "2024-05-01"), ["treated", "holdout"]].tolist() == [1, 0]
    assert (itt.loc[("p", ALL, ALL), ["window_start", "window_end"]].tolist()) == [MAY, JUNE]
    assert itt.loc[("q", ALL, ALL), ["treated", "holdout"]].tolist() == [0, 1]
    assert set(effects.verdict) == {NO_EVIDENCE}


def test_the_per_protocol_view_keeps_done_treatments_and_untouched_holdouts_and_says_it_is_biased():
    outcomes = _rows(("a", MAY, "p", "treatment", "high", 0, 0.0, True),
                     ("b", MAY, "p", "treatment", "high", 1, 5.0, False),   # recommended, never done
                     ("c", MAY, "p", "holdout", "high", 1, 5.0, False),
                     ("d", MAY, "p", "holdout", "high", 0, 0.0, True))      # held back, acted on anyway
    effects = estimate_effects(outcomes)
    itt = pooled(effects).loc["p"]
    protocol = pooled(effects, PER_PROTOCOL).loc["p"]
    assert (itt.treated, itt.holdout, itt.treated_churned, itt.holdout_churned) == (2, 2, 1, 1)
    assert (protocol.treated, protocol.holdout, protocol.treated_churned, protocol.holdout_churned) == (1, 1, 0, 1)
    assert protocol.caveat == PER_PROTOCOL_CAVEAT and "biased" in protocol.caveat and pd.isna(itt.caveat)
    unknown = estimate_effects(outcomes.assign(action_done=None))
    assert set(unknown.analysis) == {INTENT_TO_TREAT}


def test_outcomes_without_the_needed_columns_are_refused():
    with pytest.raises(ValueError, match="lack column\\(s\\) arm, churned"):
        estimate_effects(pd.DataFrame({"account_id": ["a"], "as_of": [MAY], "playbook": ["p"]}))
    assert estimate_effects(_rows()).empty
