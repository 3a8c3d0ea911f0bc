"""Reason accuracy against recorded causes, by hand on a tiny table, with both baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.catalog import CATALOG, expand_catalog
from features.config import FeatureConfig
from serving.reason_accuracy import largest_feature_groups, reason_accuracy

SPECS = {s.name: s for s in expand_catalog(CATALOG, FeatureConfig(windows=[30]).windows_by_kind())}
FEATURES = ["active_users_30d", "open_high_priority_tickets", "last_nps", "days_to_renewal"]


def _contributions(rows: list[list[float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=FEATURES)
    return frame.assign(bias=-2.0)


def test_accuracy_counts_matches_among_top_tier_churners_and_leaves_out_rows_without_a_cause():
    # Model groups by row: engagement, support, voice, support (the renewal clock is context: never a group), None.
    contributions = _contributions([[0.9, 0.1, 0.0, 3.0], [0.1, 0.8, 0.0, 0.0], [0.0, 0.1, 0.7, 0.0],
                                    [0.0, 0.5, 0.2, 2.0], [-0.2, -0.1, -0.1, 1.0]])
    valid = pd.DataFrame({"active_users_30d": [1.0, 9.0, 8.0, 7.0, 10.0],
                          "open_high_priority_tickets": [0.0, 3.0, 0.0, 1.0, 0.0],
                          "last_nps": [8.0, 8.0, 2.0, 7.0, 9.0], "days_to_renewal": [10.0] * 5,
                          "label": [1, 1, 1, 0, 1]})
    train = pd.DataFrame({"active_users_30d": [8.0, 10.0, 12.0, 6.0],
                          "open_high_priority_tickets": [0.0, 0.0, 1.0, 0.0],
                          "last_nps": [8.0, 9.0, 7.0, 8.0], "days_to_renewal": [100.0, 10.0, 200.0, 50.0]})
    true = np.array(["engagement", "voice", "voice", "support", None], dtype=object)
    top = np.array([True, True, True, True, True])
    got = reason_accuracy(contributions, valid, train, SPECS, top, true)
    # Churners in the top tier with a cause: rows 0, 1, 2 (row 4 has none) → model right on 0 and 2.
    assert (got.churners_rows, got.churners_without_cause, got.top_tier_rows) == (3, 1, 4)
    assert got.churners["model"] == pytest.approx(2 / 3)
    # Chance with the model's own shares (engagement, support, voice: 1/3 each) against true (1/3 eng, 2/3 voice).
    assert got.churners["random"] == pytest.approx(1 / 3 * 1 / 3 + 1 / 3 * 2 / 3)
    # All four top-tier rows with a cause: the model is right on 0, 2 and 3.
    assert got.top_tier["model"] == pytest.approx(3 / 4)
    assert set(got.metrics()) >= {"reason_accuracy_churners_model", "reason_accuracy_top_tier_largest_feature"}


def test_the_largest_feature_baseline_takes_the_most_extreme_cause_in_the_risky_direction():
    train = pd.DataFrame({"active_users_30d": [8.0, 10.0, 12.0, 6.0],
                          "open_high_priority_tickets": [0.0, 0.0, 2.0, 0.0],
                          "last_nps": [8.0, 9.0, 7.0, 8.0], "days_to_renewal": [1.0, 400.0, 2.0, 3.0]})
    # Medians 9, 0 and 8; interquartile ranges 3, 0.5 and 0.5.
    valid = pd.DataFrame({"active_users_30d": [3.0, 12.0, 9.0], "open_high_priority_tickets": [0.0, 0.0, 2.0],
                          "last_nps": [8.0, 6.0, 8.0], "days_to_renewal": [9999.0, 9999.0, 9999.0]})
    groups = largest_feature_groups(valid, train, SPECS, FEATURES)
    # Row 0: users 2 IQRs low (risky); row 1: NPS 4 IQRs low; row 2: 4 IQRs more open tickets. The renewal clock,
    # however extreme, is context and never counts.
    assert groups.tolist() == ["engagement", "voice", "support"]
