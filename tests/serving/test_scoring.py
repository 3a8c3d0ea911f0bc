"""Tiers, drivers from exact TreeSHAP contributions, and reasons in words."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
import shap

from features.catalog import ENGAGEMENT, expand_catalog
from serving.explain import explain_predictions, rank_drivers
from serving.score import ScoredModel, ScoringConfig, assign_tiers, score_accounts
from training.config import ModelConfig
from training.dataset import Split
from training.train import train_model

SPECS = {s.name: s for s in expand_catalog(ENGAGEMENT, {"each": [30], "trend": [30]})}
FEATURES = ["active_users_30d", "events_30d", "days_since_last_activity"]


@pytest.fixture(scope="module")
def model_and_table():
    rng = np.random.default_rng(0)
    n = 600
    table = pd.DataFrame({
        "account_id": [f"a{i}" for i in range(n)], "as_of": pd.Timestamp("2024-03-01"),
        "mrr": rng.uniform(100, 1000, n), "active_users_30d": rng.integers(0, 20, n).astype(float),
        "events_30d": rng.integers(0, 500, n).astype(float), "days_since_last_activity": rng.integers(1, 60, n) * 1.0,
    })
    risk = 1.5 - 0.2 * table.active_users_30d + 0.03 * table.days_since_last_activity
    table["label"] = (rng.random(n) < 1 / (1 + np.exp(-risk))).astype(int)
    split = Split(train=table.iloc[:400], valid=table.iloc[400:])
    model = train_model(split, FEATURES, ModelConfig(lightgbm={"n_estimators": 60, "num_leaves": 7}))
    return model, table


def test_tiers_take_the_highest_threshold_reached():
    config = ScoringConfig(tiers={"high": 0.5, "medium": 0.2}, lowest_tier="low")
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
    drivers = rank_drivers(contributions, values, SPECS, top_n=2)
    assert drivers.row.tolist() == [0, 0]   # the second account has nothing raising its risk
    assert drivers.feature.tolist() == ["days_since_last_activity", "active_users_30d"]
    assert drivers.reason.tolist() == ["No product activity for 21 days", "2 active users in the last 30 days"]


def test_score_rows_carry_provenance_ranks_and_reasons(model_and_table):
    model, table = model_and_table
    scores, drivers = score_accounts(ScoredModel(model, "churn-test", "7"), table, SPECS,
                                     ScoringConfig(), datetime(2024, 3, 2, 6, 0))
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
        score_accounts(ScoredModel(model, "m", "1"), table.drop(columns="days_since_last_activity"), SPECS,
                       ScoringConfig(), datetime(2024, 3, 2))
