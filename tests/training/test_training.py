"""Out-of-time split, metrics against hand-computed values, and the champion gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config import ModelConfig, PromotionConfig
from training.dataset import split_out_of_time
from training.evaluate import evaluate_predictions, top_decile_lift
from training.promotion import decide_promotion
from training.train import LEAVES, complexity_grid, train_model


def _table(dates: int = 5, per_date: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = dates * per_date
    x = rng.normal(size=n)
    return pd.DataFrame({
        "account_id": [f"a{i % per_date}" for i in range(n)],
        "as_of": np.repeat(pd.date_range("2024-01-01", periods=dates, freq="MS"), per_date),
        "label": (rng.random(n) < 1 / (1 + np.exp(-2 * x - 1))).astype(int),
        "signal": x, "noise": rng.normal(size=n),
    })


def test_split_validates_on_the_newest_labelled_dates_and_ignores_unlabelled():
    table = _table()
    table.loc[table.as_of == table.as_of.max(), "label"] = np.nan
    split = split_out_of_time(table, validation_snapshots=2)
    assert sorted(split.valid.as_of.unique()) == list(pd.to_datetime(["2024-03-01", "2024-04-01"]))
    assert split.train.as_of.max() == pd.Timestamp("2024-02-01")
    assert split.window == {"train_as_of": "2024-01-01..2024-02-01", "valid_as_of": "2024-03-01..2024-04-01"}


def test_split_refuses_too_few_dates_or_one_class():
    with pytest.raises(ValueError, match="only 2 labelled as-of dates"):
        split_out_of_time(_table(dates=2), validation_snapshots=2)
    single = _table().assign(label=0)
    with pytest.raises(ValueError, match="only one class"):
        split_out_of_time(single, validation_snapshots=1)


def test_top_decile_lift_by_hand():
    labels = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    scores = np.linspace(1, 0, 20)          # the first two rows score highest
    # top 10% = 2 rows holding 1 churner: rate 0.5 over a base rate of 0.1
    assert top_decile_lift(labels, scores) == pytest.approx(5.0)


def test_metrics_of_a_perfect_and_a_constant_score():
    labels = np.array([0, 0, 1, 1])
    perfect = evaluate_predictions(labels, np.array([0.1, 0.2, 0.8, 0.9]))
    assert perfect["roc_auc"] == 1.0 and perfect["pr_auc"] == 1.0
    assert perfect["brier"] == pytest.approx((0.01 + 0.04 + 0.04 + 0.01) / 4)
    assert evaluate_predictions(labels, np.full(4, 0.5))["roc_auc"] == 0.5


def test_gate_promotes_only_a_better_challenger():
    config = PromotionConfig(metric="roc_auc", min_gain=0.01)
    assert decide_promotion({"roc_auc": 0.70}, None, config)["promoted"]
    assert not decide_promotion({"roc_auc": 0.705}, {"roc_auc": 0.70}, config)["promoted"]
    assert decide_promotion({"roc_auc": 0.72}, {"roc_auc": 0.70}, config)["promoted"]
    assert decide_promotion({"roc_auc": 0.60}, {"roc_auc": 0.70}, config, force=True)["promoted"]
    kept = decide_promotion({"roc_auc": 0.9}, {"roc_auc": 0.7}, config, champion_unavailable="lacks x")
    assert not kept["promoted"] and "lacks x" in kept["reason"]


def test_gate_on_a_lower_is_better_metric():
    config = PromotionConfig(metric="brier", min_gain=0.0)
    assert decide_promotion({"brier": 0.08}, {"brier": 0.09}, config)["promoted"]
    assert not decide_promotion({"brier": 0.10}, {"brier": 0.09}, config)["promoted"]
    with pytest.raises(ValueError, match="Input should be 'roc_auc'"):
        PromotionConfig(metric="auc")
    with pytest.raises(ValueError, match="not a computed metric"):
        decide_promotion({"roc_auc": 0.7}, None, PromotionConfig(metric="recall_at_capacity"))


def test_training_learns_the_signal_and_is_reproducible():
    split = split_out_of_time(_table(dates=8, per_date=150), validation_snapshots=2)
    config = ModelConfig(seed=3, early_stopping_rounds=20, lightgbm={"n_estimators": 200, "num_leaves": 7})
    first, second = train_model(split, ["signal", "noise"], config), train_model(split, ["signal", "noise"], config)
    p = first.predict(split.valid)
    assert evaluate_predictions(split.valid.label, p)["roc_auc"] > 0.7
    np.testing.assert_array_equal(p, second.predict(split.valid))
    assert first.booster.current_iteration() == first.best_iteration


def test_categorical_features_map_by_value_not_by_code():
    table = _table(dates=8, per_date=150, seed=5)
    plans = np.array(["Growth", "Scale", "Starter"])
    table["plan"] = plans[np.arange(len(table)) % 3]
    table.loc[table.plan == "Starter", "label"] = 1   # the plan carries the signal
    split = split_out_of_time(table, validation_snapshots=2)
    model = train_model(split, ["plan", "noise"], ModelConfig(lightgbm={"n_estimators": 30, "num_leaves": 4}))
    full = model.predict(split.valid)
    # Scoring a frame holding only some plans (so pandas codes differ) gives each row the same probability.
    only_starter = split.valid[split.valid.plan == "Starter"]
    np.testing.assert_allclose(model.predict(only_starter), full[split.valid.plan.to_numpy() == "Starter"])
    unseen = split.valid.head(3).assign(plan="Enterprise")
    assert np.isfinite(model.predict(unseen)).all()
    assert full[split.valid.plan.to_numpy() == "Starter"].mean() > full[split.valid.plan.to_numpy() != "Starter"].mean()


def _tiny_table(seed: int = 0) -> pd.DataFrame:
    """A tiny warehouse's labelled rows: 8 monthly as-ofs of 60 accounts (480 rows, a few dozen churners), one weak
    signal among a dozen noise columns, so a flexible model has plenty to overfit."""
    rng = np.random.default_rng(seed)
    dates, per_date = 8, 60
    n = dates * per_date
    x = rng.normal(size=n)
    frame = pd.DataFrame({
        "account_id": [f"a{i % per_date}" for i in range(n)],
        "as_of": np.repeat(pd.date_range("2024-01-01", periods=dates, freq="MS"), per_date),
        "label": (rng.random(n) < 1 / (1 + np.exp(-1.2 * x + 2.3))).astype(int), "signal": x})
    return frame.assign(**{f"noise_{i}": rng.normal(size=n) for i in range(12)})


def test_complexity_grid_grows_with_the_churners_and_skips_pinned_parameters():
    tiny = complexity_grid(rows=400, churners=40, pinned={})
    assert {g["num_leaves"] for g in tiny} == {4} and {g["min_child_samples"] for g in tiny} == {10}
    large = complexity_grid(rows=20000, churners=2000, pinned={})
    assert {g["num_leaves"] for g in large} == {4, 8, 16, 32} and {g["min_child_samples"] for g in large} == {100}
    pinned = complexity_grid(rows=20000, churners=2000, pinned={"num_leaves": 15, "reg_lambda": 1.0})
    assert [{k: v for k, v in g.items() if k == "min_child_samples"} for g in pinned] == [{"min_child_samples": 100}]


def test_on_a_tiny_warehouse_the_chosen_model_is_small_no_worse_than_a_big_one_and_reproducible():
    table = _tiny_table()
    split = split_out_of_time(table, validation_snapshots=3, calibration_snapshots=2)
    assert len(split.train) < 300 and split.train["label"].sum() < 60
    features = [c for c in table.columns if c not in ("account_id", "as_of", "label")]
    config = ModelConfig(seed=3, calibration=["none"], lightgbm={"n_estimators": 300, "learning_rate": 0.05})
    chosen = train_model(split, features, config)
    assert chosen.chosen["num_leaves"] == LEAVES[0]
    big = train_model(split, features, ModelConfig(seed=3, calibration=["none"], lightgbm={
        "n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 5, "reg_lambda": 0.0}))
    assert big.chosen == {}                                            # everything pinned: nothing searched
    auc = {name: evaluate_predictions(split.valid.label, m.predict(split.valid))["roc_auc"]
           for name, m in (("chosen", chosen), ("big", big))}
    assert auc["chosen"] >= auc["big"]
    again = train_model(split, features, config)
    np.testing.assert_array_equal(chosen.predict(split.valid), again.predict(split.valid))
    assert again.chosen == chosen.chosen


def test_bagging_averages_boosters_of_several_seeds_into_one_with_averaged_explanations():
    split = split_out_of_time(_table(dates=8, per_date=150), validation_snapshots=2)
    config = ModelConfig(seed=3, early_stopping_rounds=20, calibration=["none"], bagging_seeds=3,
                         lightgbm={"n_estimators": 100, "num_leaves": 7, "min_child_samples": 20, "reg_lambda": 1.0,
                                   "subsample": 0.7, "subsample_freq": 1})
    bagged = train_model(split, ["signal", "noise"], config)
    singles = [train_model(split, ["signal", "noise"], config.model_copy(update={"seed": 3 + k, "bagging_seeds": 1}))
               for k in range(3)]
    raw = np.mean([m.booster.predict(split.valid[["signal", "noise"]], raw_score=True) for m in singles], axis=0)
    np.testing.assert_allclose(bagged.booster.predict(split.valid[["signal", "noise"]], raw_score=True), raw,
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(bagged.contributions(split.valid),
                               np.mean([m.contributions(split.valid) for m in singles], axis=0), rtol=0, atol=1e-9)
    assert bagged.best_iteration == sum(m.best_iteration for m in singles)
    again = train_model(split, ["signal", "noise"], config)
    np.testing.assert_array_equal(bagged.predict(split.valid), again.predict(split.valid))
