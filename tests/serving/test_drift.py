"""Drift guard: reference distributions, PSI by hand, and statuses against the thresholds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from serving.config import DriftConfig
from serving.drift import compute_drift, psi, reference_distribution, summarise_drift


def test_psi_by_hand():
    # (0.5-0.25)·ln(0.5/0.25) + (0.5-0.75)·ln(0.5/0.75)
    assert psi(np.array([0.25, 0.75]), np.array([0.5, 0.5])) == pytest.approx(
        0.25 * math.log(2) - 0.25 * math.log(2 / 3))
    assert psi(np.array([0.2, 0.8]), np.array([0.2, 0.8])) == 0.0


def test_same_distribution_is_ok_and_a_shift_stops():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"events_30d": rng.poisson(40, 5000).astype(float), "plan": rng.choice(["A", "B"], 5000)})
    reference = reference_distribution(train, ["events_30d", "plan"])
    config = DriftConfig(warn=0.1, stop=0.25)
    same = pd.DataFrame({"events_30d": rng.poisson(40, 3000).astype(float), "plan": rng.choice(["A", "B"], 3000)})
    assert set(compute_drift(reference, same, config).status) == {"ok"}
    shifted = same.assign(events_30d=same.events_30d * 3, plan="C")
    drift = compute_drift(reference, shifted, config).set_index("feature")
    assert drift.loc["events_30d", "status"] == "stop" and drift.loc["plan", "status"] == "stop"


def test_missing_values_have_their_own_bin():
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 50})
    reference = reference_distribution(train, ["x"], bins=4)
    gone = compute_drift(reference, pd.DataFrame({"x": [np.nan] * 100}), DriftConfig())
    assert gone.status.iloc[0] == "stop"


def test_thresholds_must_be_ordered():
    with pytest.raises(ValueError, match="stop must be at least"):
        DriftConfig(warn=0.3, stop=0.2)


def test_the_summary_weighs_each_feature_by_the_models_reliance_on_it():
    drift = pd.DataFrame({"feature": ["a", "b"], "psi": [1.0, 0.0], "status": ["stop", "ok"]})
    config = DriftConfig(warn=0.1, stop=0.25)
    assert summarise_drift(drift, {"a": 1.0, "b": 9.0}, config) == {"psi": pytest.approx(0.1), "status": "ok"}
    assert summarise_drift(drift, {"a": 3.0, "b": 1.0}, config)["status"] == "stop"      # 0.75
    assert summarise_drift(drift, {}, config)["psi"] == pytest.approx(0.5)                # no importances: equal
