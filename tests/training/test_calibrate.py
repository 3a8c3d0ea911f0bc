"""Calibration: on data with known probabilities, calibrating lowers the Brier score of a distorted model."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss

from training.calibrate import Calibrator, choose_calibrator, fit_calibrator


def _distorted(n: int, seed: int):
    rng = np.random.default_rng(seed)
    true = rng.beta(1, 8, n)                         # known churn probabilities, ~11% on average
    labels = (rng.random(n) < true).astype(int)
    raw = true ** 0.5                                # an over-confident model: right order, wrong scale
    return true, labels, raw


def test_calibrated_brier_is_lower_than_raw_on_new_data():
    _, fit_labels, fit_raw = _distorted(4000, seed=1)
    true, labels, raw = _distorted(4000, seed=2)
    calibrator, scores = choose_calibrator(fit_raw, fit_labels, seed=0)
    assert calibrator.method in ("sigmoid", "isotonic")
    assert scores[calibrator.method] < scores["none"]
    calibrated = calibrator.apply(raw)
    assert brier_score_loss(labels, calibrated) < brier_score_loss(labels, raw) - 0.01
    assert abs(calibrated.mean() - true.mean()) < 0.01
    assert np.all(np.diff(calibrated[np.argsort(raw)]) >= -1e-12)   # monotone: ranking (and AUC) kept


def test_an_already_calibrated_model_may_stay_uncalibrated():
    rng = np.random.default_rng(3)
    true = rng.beta(1, 8, 3000)
    labels = (rng.random(3000) < true).astype(int)
    calibrator, scores = choose_calibrator(true, labels, seed=0)
    assert scores[calibrator.method] == min(scores.values())
    assert scores["none"] <= min(scores.values()) + 0.002


def test_calibrators_round_trip_through_json():
    _, labels, raw = _distorted(500, seed=4)
    for method in ("none", "sigmoid", "isotonic"):
        fitted = fit_calibrator(method, raw, labels)
        again = Calibrator.from_dict(fitted.to_dict())
        np.testing.assert_array_equal(again.apply(raw), fitted.apply(raw))
    with pytest.raises(ValueError, match="unknown method 'platt'"):
        fit_calibrator("platt", raw, labels)
