"""The fitted health score: quantile thresholds that follow the data's scale, non-negative weights, pins kept,
per-segment thresholds where a segment has the rows, and a round trip through the model files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.catalog import FeatureSpec
from training.calibrate import Calibrator
from training.config import HealthComponent, HealthConfig
from training.health import fit_health_score, quantile_thresholds
from training.registry import read_model_files, write_model_files
from training.train import TrainedModel


def _spec(name: str, group: str, direction: str, unit: str = "count") -> FeatureSpec:
    return FeatureSpec(name, group, ("events",), name, unit, direction, "{value}")


SPECS = {"active_days_30d": _spec("active_days_30d", "frequency", "down", "days"),
         "events_30d": _spec("events_30d", "frequency", "down"),
         "tickets_30d": _spec("tickets_30d", "support", "up"),
         "noise": _spec("noise", "depth", "down"),
         "mrr": _spec("mrr", "commercial", "down", "currency")}


def _training_rows(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Churners use the product less and file more tickets; `noise` says nothing; `mrr` is not a health measure."""
    rng = np.random.default_rng(seed)
    health = rng.normal(size=n)
    label = (rng.random(n) < 1 / (1 + np.exp(2.5 + 1.5 * health))).astype(int)
    return pd.DataFrame({
        "active_days_30d": np.clip(np.round(15 + 6 * health + rng.normal(0, 3, n)), 0, 30),
        "events_30d": np.exp(5 + 0.8 * health + rng.normal(0, 0.5, n)),
        "tickets_30d": rng.poisson(np.exp(-0.5 - 0.8 * health)),
        "noise": rng.normal(size=n), "mrr": rng.lognormal(6, 1, n),
        "segment": np.where(rng.random(n) < 0.8, "SMB", "Enterprise"), "label": label})


def _auc(score: pd.Series, label: pd.Series) -> float:
    from sklearn.metrics import roc_auc_score
    return roc_auc_score(label, 100 - score)


def test_thresholds_are_quantiles_of_retained_and_churned_accounts_mirrored_where_less_is_healthier():
    values = pd.Series([1.0, 2, 3, 4, 5, 10, 20, 30, 40, 50])
    labels = pd.Series([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    config = HealthConfig()
    assert quantile_thresholds(values, labels, "up", config) == (40.0, 2.0)     # retained q75, churned q25
    assert quantile_thresholds(-values, labels, "down", config) == (-40.0, -2.0)
    assert quantile_thresholds(values, 1 - labels, "up", config) is None         # churners look healthier: no measure


def test_a_hundredfold_scale_moves_the_thresholds_and_leaves_the_score_unchanged():
    train = _training_rows()
    config = HealthConfig(segment_by=None)
    base = fit_health_score(train, SPECS, config)
    scaled_rows = train.assign(events_30d=train["events_30d"] * 100)
    scaled = fit_health_score(scaled_rows, SPECS, config)
    events, events_scaled = ({m.feature: m for m in h.measures}["events_30d"] for h in (base, scaled))
    assert events_scaled.good == pytest.approx(100 * events.good)
    assert events_scaled.bad == pytest.approx(100 * events.bad)
    pd.testing.assert_series_equal(base.score(train), scaled.score(scaled_rows))


def test_weights_are_non_negative_sum_to_100_and_favour_the_measures_that_tell_churners_apart():
    train = _training_rows()
    health = fit_health_score(train, SPECS, HealthConfig(segment_by=None))
    weights = {m.feature: m.weight for m in health.measures}
    assert "mrr" not in weights                                  # commercial: not a health measure
    assert all(w > 0 for w in weights.values())
    assert sum(weights.values()) == pytest.approx(100, abs=0.1)
    assert weights.get("noise", 0) < min(weights["active_days_30d"], weights["tickets_30d"])
    assert _auc(health.score(train), train["label"]) > 0.75


def test_pinned_thresholds_and_weights_are_kept_and_the_list_form_fits_nothing():
    train = _training_rows()
    config = HealthConfig(measures=[HealthComponent(feature="tickets_30d", good=0, bad=5, weight=40),
                                    HealthComponent(feature="events_30d")], segment_by=None)
    measures = {m.feature: m for m in fit_health_score(train, SPECS, config).measures}
    assert (measures["tickets_30d"].good, measures["tickets_30d"].bad, measures["tickets_30d"].weight) == (0, 5, 40)
    assert measures["events_30d"].good > measures["events_30d"].bad > 0   # fitted
    assert "active_days_30d" in measures                                   # auto still picks the catalog's

    listed = HealthConfig.model_validate([{"feature": "tickets_30d", "good": 0, "bad": 5, "weight": 40}])
    assert listed.fully_pinned and not listed.auto
    with pytest.raises(ValueError, match="pin both good and bad"):
        HealthComponent(feature="tickets_30d", good=0)


def test_segments_with_enough_rows_get_their_own_thresholds_the_others_the_pooled_ones():
    train = _training_rows(n=6000)
    # Enterprise accounts are ten times as active: pooled thresholds would call every one of them healthy.
    big = train["segment"] == "Enterprise"
    train.loc[big, "events_30d"] *= 10
    config = HealthConfig(segment_by="segment", min_segment_rows=2000, min_segment_churners=50)
    health = fit_health_score(train, SPECS, config, train["segment"])
    events = {m.feature: m for m in health.measures}["events_30d"]
    assert set(events.segments) == {"SMB"}                          # Enterprise: too few rows, pooled
    loose = HealthConfig(segment_by="segment", min_segment_rows=500, min_segment_churners=20)
    events = {m.feature: m for m in fit_health_score(train, SPECS, loose, train["segment"]).measures}["events_30d"]
    assert events.segments["Enterprise"][0] > 5 * events.segments["SMB"][0]
    fitted = fit_health_score(train, SPECS, loose, train["segment"])
    assert _auc(fitted.score(train[big], train.loc[big, "segment"]), train.loc[big, "label"]) > 0.7


def test_the_fitted_score_travels_with_the_model_files(tmp_path):
    import lightgbm as lgb

    train = _training_rows(n=500)
    health = fit_health_score(train, SPECS, HealthConfig(segment_by="segment", min_segment_rows=10,
                                                         min_segment_churners=5), train["segment"])
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 4},
                        lgb.Dataset(train[["active_days_30d"]], train["label"]), num_boost_round=2)
    model = TrainedModel(booster=booster, features=["active_days_30d"], best_iteration=2,
                         calibrator=Calibrator("none", {}), health=health)
    paths = write_model_files(model, tmp_path)
    loaded = read_model_files({name: tmp_path / p for name, p in paths.items()}).health
    assert loaded == health
    pd.testing.assert_series_equal(loaded.score(train, train["segment"]), health.score(train, train["segment"]))
