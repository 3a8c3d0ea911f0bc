"""Tiers, drivers from exact TreeSHAP contributions, and reasons in words."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
import shap

from features.catalog import CATALOG, ENGAGEMENT, expand_catalog
from features.config import FeatureConfig
from pipelines.config import load_params
from serving.config import ScoringConfig
from serving.explain import ExplainContext, explain_predictions, probability_points, rank_drivers
from serving.score import ScoredModel, ScoringContext, assign_tiers, describe_tiers, score_accounts
from tests.e2e import REPO
from training.calibrate import Calibrator
from training.config import ModelConfig
from training.dataset import Split
from training.train import train_model

SPECS = {s.name: s for s in expand_catalog(ENGAGEMENT, {"each": [30], "trend": [30]})}
FEATURES = ["active_users_30d", "events_30d", "days_since_last_activity"]


def _labelled_model(rng: np.random.Generator, columns: dict, risk, features: list[str], trees: int):
    """A table of `columns` for one as-of, labels drawn from the logistic of `risk(table)`, and a model trained on
    its first two thirds."""
    n = len(next(iter(columns.values())))
    table = pd.DataFrame({"account_id": [f"a{i}" for i in range(n)], "as_of": pd.Timestamp("2024-03-01"),
                          "mrr": rng.uniform(100, 1000, n), **columns})
    table["label"] = (rng.random(n) < 1 / (1 + np.exp(-risk(table)))).astype(int)
    train = 2 * n // 3
    model = train_model(Split(train=table.iloc[:train], valid=table.iloc[train:]), features,
                        ModelConfig(lightgbm={"n_estimators": trees, "num_leaves": 7}))
    return model, table


@pytest.fixture(scope="module")
def model_and_table():
    rng = np.random.default_rng(0)
    n = 600
    columns = {"active_users_30d": rng.integers(0, 20, n).astype(float),
               "events_30d": rng.integers(0, 500, n).astype(float),
               "days_since_last_activity": rng.integers(1, 60, n) * 1.0}
    return _labelled_model(rng, columns, lambda t: 1.5 - 0.2 * t.active_users_30d + 0.03 * t.days_since_last_activity,
                           FEATURES, trees=60)


def test_tiers_take_the_highest_threshold_reached():
    config = ScoringConfig(tiers_by="probability", tiers={"high": 0.5, "medium": 0.2}, lowest_tier="low")
    assert assign_tiers(np.array([0.1, 0.2, 0.49, 0.5, 0.9]), config).tolist() == [
        "low", "medium", "medium", "high", "high"]


def test_contributions_are_exact_treeshap_and_sum_to_the_raw_score(model_and_table):
    model, table = model_and_table
    contributions = explain_predictions(model, table)
    raw = model.booster.predict(table[FEATURES], raw_score=True)
    np.testing.assert_allclose(contributions.sum(axis=1), raw, atol=1e-9)
    explainer = shap.TreeExplainer(model.booster)
    np.testing.assert_allclose(contributions[FEATURES].to_numpy(), explainer.shap_values(table[FEATURES]),
                               atol=1e-6)


def test_drivers_are_the_largest_positive_contributions_in_words():
    contributions = pd.DataFrame({"active_users_30d": [0.5, -0.1], "events_30d": [0.2, -0.3],
                                  "days_since_last_activity": [0.9, -0.2], "bias": [-2.0, -2.0]})
    values = pd.DataFrame({"active_users_30d": [2.0, 9.0], "events_30d": [40.0, 300.0],
                           "days_since_last_activity": [21.0, 1.0]})
    drivers = rank_drivers(contributions, values, ExplainContext(SPECS, top_n=2))
    assert drivers.row.tolist() == [0, 0]   # the second account has nothing raising its risk
    assert drivers.feature.tolist() == ["days_since_last_activity", "active_users_30d"]
    assert drivers.reason.tolist() == ["No product activity for 21 days", "2 active users in the last 30 days"]


def test_score_rows_carry_provenance_ranks_and_reasons(model_and_table):
    model, table = model_and_table
    scores, drivers = score_accounts(ScoredModel(model, "churn-test", "7"), table,
                                     ScoringContext(SPECS, ScoringConfig()), datetime(2024, 3, 2, 6, 0))
    assert len(scores) == len(table) and scores.account_id.is_unique
    assert scores.churn_probability.between(0, 1).all()
    assert sorted(scores.risk_rank) == list(range(1, len(table) + 1))
    top = scores.sort_values("risk_rank").iloc[0]
    assert top.churn_probability == scores.churn_probability.max()
    assert (scores.model_name == "churn-test").all() and (scores.model_version == "7").all()
    assert drivers.groupby("account_id").size().max() <= 3
    assert not any(name in " ".join(scores.top_reasons) for name in FEATURES)


def test_scoring_refuses_a_model_whose_features_are_missing(model_and_table):
    model, table = model_and_table
    with pytest.raises(ValueError, match="days_since_last_activity"):
        score_accounts(ScoredModel(model, "m", "1"), table.drop(columns="days_since_last_activity"),
                       ScoringContext(SPECS, ScoringConfig()), datetime(2024, 3, 2))


def test_scoring_refuses_a_model_feature_the_catalog_does_not_describe(model_and_table):
    model, table = model_and_table
    specs = {name: spec for name, spec in SPECS.items() if name != "events_30d"}
    with pytest.raises(ValueError, match=r"^model uses features the feature catalog does not describe: events_30d "):
        score_accounts(ScoredModel(model, "m", "1"), table, ScoringContext(specs, ScoringConfig()),
                       datetime(2024, 3, 2))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_probability_points_are_exact_on_a_tiny_case():
    contributions = pd.DataFrame({"a": [0.5], "b": [-0.3], "bias": [-1.0]})   # raw log-odds -0.8
    none = probability_points(contributions, Calibrator("none", {}))
    assert none.a[0] == pytest.approx(100 * (_sigmoid(-0.8) - _sigmoid(-1.3)), abs=1e-12)
    assert none.b[0] == pytest.approx(100 * (_sigmoid(-0.8) - _sigmoid(-0.5)), abs=1e-12)
    # Platt calibration: p = σ(2·logit(raw) + 0.1) = σ(2·log-odds + 0.1).
    platt = probability_points(contributions, Calibrator("sigmoid", {"slope": 2.0, "intercept": 0.1}))
    assert platt.a[0] == pytest.approx(100 * (_sigmoid(-1.5) - _sigmoid(-2.5)), abs=1e-9)
    assert platt.b[0] == pytest.approx(100 * (_sigmoid(-1.5) - _sigmoid(-0.9)), abs=1e-9)
    # Isotonic (piecewise linear): flat below 0.25, so an account there gets no points from a small contribution.
    def iso(p: float) -> float:
        return 0.1 if p <= 0.25 else 0.1 + 0.4 * (p - 0.25) / 0.15

    two = pd.DataFrame({"a": [0.5, 0.05], "b": [-0.3, 0.0], "bias": [-1.0, -2.0]})
    flat = probability_points(two, Calibrator("isotonic", {"x": [0.0, 0.25, 0.4, 1.0], "y": [0.1, 0.1, 0.5, 0.9]}))
    assert flat.a.tolist() == pytest.approx([100 * (iso(_sigmoid(-0.8)) - iso(_sigmoid(-1.3))), 0.0], abs=1e-9)
    assert flat.b[0] == pytest.approx(100 * (iso(_sigmoid(-0.8)) - iso(_sigmoid(-0.5))), abs=1e-9)
    assert flat.a[0] == pytest.approx(100 * (iso(_sigmoid(-0.8)) - 0.1), abs=1e-9) and flat.a[0] > 0


def test_written_points_are_the_probability_without_that_contribution(model_and_table):
    model, table = model_and_table
    model = replace(model, calibrator=Calibrator("sigmoid", {"slope": 1.4, "intercept": 0.2}))
    scores, drivers = score_accounts(ScoredModel(model, "m", "1"), table, ScoringContext(SPECS, ScoringConfig()),
                                     datetime(2024, 3, 2))
    contributions = explain_predictions(model, table)
    raw = contributions.sum(axis=1).to_numpy()
    np.testing.assert_allclose(scores.churn_probability, model.calibrator.apply(1 / (1 + np.exp(-raw))), atol=1e-12)
    for d in drivers.head(30).itertuples():
        row = int(np.flatnonzero(table.account_id == d.account_id)[0])
        without = model.calibrator.apply(np.array([1 / (1 + np.exp(-(raw[row] - d.contribution)))]))[0]
        assert d.probability_points == pytest.approx(100 * (scores.churn_probability[row] - without), abs=1e-9)
        assert (d.probability_points > 0) == (d.direction == "raises risk")
    assert set(drivers.groupby("account_id").direction.last()) <= {"lowers risk", "raises risk"}
    assert drivers.columns.tolist() == ["account_id", "as_of", "rank", "feature", "role", "value", "contribution",
                                        "probability_points", "direction", "reason"]


def test_capacity_tiers_take_the_top_n_of_each_as_of(model_and_table):
    model, table = model_and_table
    two = pd.concat([table, table.assign(as_of=pd.Timestamp("2024-04-01"))], ignore_index=True)
    config = ScoringConfig(tiers_by="capacity", capacity={"high": 10, "medium": 40})
    scores, _ = score_accounts(ScoredModel(model, "m", "1"), two, ScoringContext(SPECS, config), datetime(2024, 4, 2))
    for _, part in scores.groupby("as_of"):
        assert part.risk_tier.value_counts().to_dict() == {"low": len(table) - 40, "medium": 30, "high": 10}
        assert part.loc[part.risk_tier == "high", "risk_rank"].max() == 10
    high = scores[scores.risk_tier == "high"]
    assert high.recommended_action.notna().all() and high.owner_role.notna().all()
    assert (scores.loc[scores.risk_tier == "low", "recommended_action"].isna()).all()


@pytest.fixture(scope="module")
def timing_model_and_table():
    """A model whose strongest signal is the renewal clock (context), beside two causes."""
    rng = np.random.default_rng(1)
    n = 800
    columns = {"days_to_renewal": rng.integers(1, 365, n).astype(float),
               "billing_period_months": rng.choice([1.0, 12.0], n), "tenure_days": rng.integers(30, 900, n) * 1.0,
               "active_users_30d": rng.integers(0, 20, n).astype(float),
               "open_high_priority_tickets": rng.integers(0, 3, n).astype(float)}
    return _labelled_model(rng, columns, lambda t: (2.5 - 0.02 * t.days_to_renewal - 0.1 * t.active_users_30d
                                                    + 0.5 * t.open_high_priority_tickets), list(columns), trees=80)


def test_context_is_never_a_reason_but_its_shap_is_kept_and_timing_is_written(timing_model_and_table):
    model, table = timing_model_and_table
    specs = {s.name: s for s in expand_catalog(CATALOG, FeatureConfig(windows=[30]).windows_by_kind())}
    scores, drivers = score_accounts(ScoredModel(model, "m", "1"), table,
                                     ScoringContext(specs, ScoringConfig(tiers_by="probability",
                                                                         tiers={"high": 0.5, "medium": 0.2})),
                                     datetime(2024, 3, 2))
    context = {"days_to_renewal", "billing_period_months", "tenure_days"}
    contributions = explain_predictions(model, table)
    # The renewal clock does raise risk for most accounts: it would have been the first reason.
    assert (contributions["days_to_renewal"] > 0).sum() > len(table) / 4
    ranked = drivers[drivers["rank"].notna()]
    assert not set(ranked["feature"]) & context and set(ranked["role"]) == {"cause"}
    assert not scores["top_reasons"].str.contains("Renewal due|Billed every|Customer for").any()
    # Every context feature of every account is in the drivers with its exact SHAP value and no rank.
    kept = drivers[drivers["role"] == "context"]
    assert len(kept) == len(table) * len(context) and kept["rank"].isna().all()
    rows = table.reset_index(drop=True).set_index("account_id").index.get_indexer(kept["account_id"])
    exact = contributions.to_numpy()[rows, [contributions.columns.get_loc(f) for f in kept["feature"]]]
    np.testing.assert_allclose(kept["contribution"].to_numpy(), exact, atol=0)
    # Actions come from causes: engagement or support, never commercial (the clock is its only signal here).
    high = scores[scores.risk_tier == "high"]
    assert len(high) > 0 and not high["recommended_action"].str.startswith(("Commercial", "Renewal")).any()
    # Timing is written beside the causes.
    np.testing.assert_array_equal(scores["days_to_renewal"].to_numpy(dtype=float), table["days_to_renewal"])
    assert (pd.to_datetime(scores["renewal_date"]) - pd.Timestamp("2024-03-01")).dt.days.tolist() == (
        table["days_to_renewal"].astype(int).tolist())
    assert set(scores["billing_period_months"].astype(int)) == {1, 12}
    window = np.where(scores["billing_period_months"].astype(int) == 12, 30, 7)  # a quarter of a monthly period
    urgent = scores["days_to_renewal"].astype(float) <= window
    assert (scores.loc[high.index, "urgency"] == np.where(urgent[high.index], "urgent", "routine")).all()
    assert (pd.to_datetime(high["due_by"]) < pd.to_datetime(high["renewal_date"])).all()


def _calibrated_scores(base_rate: float, n: int = 2000, seed: int = 0) -> np.ndarray:
    """Probabilities a fair model gives a warehouse churning at `base_rate`: log-odds spread around the rate's."""
    rng = np.random.default_rng(seed)
    logit = np.log(base_rate / (1 - base_rate)) + rng.normal(0, 1.0, n)
    return 1 / (1 + np.exp(-logit))


@pytest.mark.parametrize("base_rate", [0.05, 0.30])
def test_the_shipped_tiers_find_high_risk_accounts_whether_a_warehouse_churns_5_or_30_percent(base_rate):
    shipped = load_params(REPO / "params.yaml").scoring
    assert shipped.tiers_by == "lift"
    probabilities = _calibrated_scores(base_rate)
    tiers = assign_tiers(probabilities, shipped, base_rate=base_rate)
    high = tiers == "high"
    assert 0.03 < high.mean() < 0.3                                  # some accounts, not everyone
    assert probabilities[high].min() >= 2 * base_rate
    fixed = ScoringConfig(tiers_by="probability", tiers={"high": 0.35, "medium": 0.15})
    if base_rate == 0.05:                                            # a fixed 0.35 finds (almost) nobody here
        assert (assign_tiers(probabilities, fixed) == "high").mean() < 0.01


def test_tiers_by_lift_need_the_models_base_rate_and_say_how_they_were_drawn():
    config = ScoringConfig(tiers_by="lift", lift={"high": 3.0, "medium": 1.5})
    assert assign_tiers(np.array([0.31, 0.16, 0.14]), config, base_rate=0.1).tolist() == ["high", "medium", "low"]
    with pytest.raises(ValueError, match="tiers_by: lift needs the training churn rate"):
        assign_tiers(np.array([0.3]), config)
    assert describe_tiers(config, 0.1) == ("Tiers by lift over the model's training churn rate of 10.0%: high: churn "
                                           "probability from 30.0% (3× the rate); medium: churn probability from "
                                           "15.0% (1.5× the rate); low: below.")
    assert describe_tiers(ScoringConfig(tiers_by="capacity", capacity={"high": 10, "medium": 40}), None) == (
        "Tiers by capacity (risk rank within the as-of): high: the 10 riskiest accounts; medium: the 40 riskiest "
        "accounts; low: the rest.")
