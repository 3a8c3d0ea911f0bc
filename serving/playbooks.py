"""Playbooks: what to do about an account, from its risk tier and the group of signals driving its risk.

Rules are data (`scoring.playbooks.rules` in params.yaml): each maps a tier and a driver group to a recommended
action and the role that owns it. An account's driver group is the one whose risk-raising contributions weigh most;
a rule for group "*" is the tier's fallback. The top tier must have a fallback, so every account in it gets an action.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalog import FeatureSpec
from serving.config import PlaybookConfig

_FROM_CATALOG = {"frequency": "engagement", "breadth": "engagement", "depth": "engagement", "trend": "engagement",
                 "value": "value", "support": "support", "voice": "voice", "commercial": "commercial"}


def driver_group(catalog_group: str) -> str:
    """The playbook group of a catalog group (frequency, breadth, depth and trend are all engagement)."""
    return _FROM_CATALOG[catalog_group]


def dominant_groups(contributions: pd.DataFrame, specs: dict[str, FeatureSpec]) -> np.ndarray:
    """Each row's driver group with the largest sum of risk-raising contributions (None when nothing raises it)."""
    features = [c for c in contributions.columns if c != "bias" and c in specs]
    if not features:
        return np.full(len(contributions), None, dtype=object)
    positive = contributions[features].clip(lower=0)
    by_group = positive.T.groupby([driver_group(specs[f].group) for f in features]).sum().T
    best = by_group.to_numpy().argmax(axis=1)
    groups = np.asarray(by_group.columns, dtype=object)[best]
    return np.where(by_group.to_numpy().max(axis=1) > 0, groups, None)


def recommend_actions(tiers: np.ndarray, groups: np.ndarray, config: PlaybookConfig) -> pd.DataFrame:
    """Return recommended_action and owner_role for each account (None where no rule covers its tier)."""
    found = [config.find(t, g) for t, g in zip(tiers, groups, strict=True)]
    return pd.DataFrame({"recommended_action": pd.Series([r.action if r else None for r in found], dtype=object),
                         "owner_role": pd.Series([r.owner_role if r else None for r in found], dtype=object)})
