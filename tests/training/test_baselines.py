"""Baselines: the health score by hand, and a logistic regression that handles gaps and categories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.baselines import fit_logistic_baseline, health_risk, predict_logistic
from training.config import HealthComponent
from training.health import HealthScore

COMPONENTS = [HealthComponent(feature="seat_utilisation_30d", weight=2, good=0.8, bad=0.2),
              HealthComponent(feature="open_high_priority_tickets", weight=1, good=0, bad=2),
              HealthComponent(feature="last_nps", weight=1, good=9, bad=5)]


def test_health_score_by_hand():
    frame = pd.DataFrame({"seat_utilisation_30d": [0.5, 1.0, np.nan, np.nan],
                          "open_high_priority_tickets": [1.0, 0.0, 3.0, np.nan],
                          "last_nps": [np.nan, 9.0, 7.0, np.nan]})
    score = HealthScore.from_pins(COMPONENTS).score(frame)
    # row 0: seats (0.5-0.2)/0.6 = 50 pts x2, tickets (1-2)/(0-2) = 50 pts x1, no NPS → (100+50)/3 = 50.0
    # row 1: 100 x2 + 100 + 100 → 100; row 2: tickets 0 pts, NPS (7-5)/4 = 50 pts → 25.0; row 3: nothing → 50
    assert score.tolist() == [50.0, 100.0, 25.0, 50.0]
    assert health_risk(score).tolist() == [0.5, 0.0, 0.75, 0.5]


def test_components_missing_from_the_frame_are_skipped_and_bad_thresholds_rejected():
    assert HealthScore.from_pins(COMPONENTS).score(pd.DataFrame({"last_nps": [9.0]})).tolist() == [100.0]
    with pytest.raises(ValueError, match="good and bad thresholds must differ"):
        HealthComponent(feature="x", weight=1, good=1, bad=1)


def test_logistic_baseline_learns_through_missing_values_and_unseen_categories():
    rng = np.random.default_rng(0)
    n = 600
    x = rng.normal(size=n)
    frame = pd.DataFrame({"x": np.where(rng.random(n) < 0.2, np.nan, x),
                          "plan": rng.choice(["Growth", "Scale", None], n),
                          "label": (rng.random(n) < 1 / (1 + np.exp(-2 * x))).astype(int)})
    model = fit_logistic_baseline(frame, ["x", "plan"], seed=0)
    p = predict_logistic(model, frame.assign(plan=frame.plan.where(frame.index % 7 != 0, "Unknown")), ["x", "plan"])
    assert ((p > 0) & (p < 1)).all()
    known = frame.x.notna()
    assert np.corrcoef(p[known], frame.x[known])[0, 1] > 0.9
