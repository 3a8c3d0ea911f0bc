"""Playbooks: what to do about an account, from its risk tier, the group of cause signals driving its risk and how
soon it renews.

Rules are data (`scoring.playbooks` in params.yaml): each maps a tier and a driver group to a recommended action and
the role that owns it, with an optional urgent variant for accounts whose renewal is within `urgent_days`. An
account's driver group is the one whose risk-raising contributions of *cause* features weigh most: context
(days to renewal, tenure, plan, MRR) says when risk applies, not why, so it never picks the action. A rule for group
"*" is the tier's fallback; the top tier must have one, so every account in it gets an action.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from features.catalog import FeatureSpec
from serving.config import PlaybookConfig

# Champions (admins going quiet) are engagement; CS touches too: the CS team's own contact with the account, which
# it restores by reaching out (the engagement playbooks), not by onboarding, support or commercial work.
_FROM_CATALOG = {"frequency": "engagement", "breadth": "engagement", "depth": "engagement", "trend": "engagement",
                 "champions": "engagement", "touches": "engagement", "value": "value", "realised": "value",
                 "support": "support", "voice": "voice", "words": "voice", "commercial": "commercial"}
URGENT, ROUTINE = "urgent", "routine"


def driver_group(catalog_group: str) -> str:
    """The playbook group of a catalog group (frequency, breadth, depth, trend, champions and touches are all
    engagement; realised is value, words is voice)."""
    return _FROM_CATALOG[catalog_group]


def dominant_groups(contributions: pd.DataFrame, specs: dict[str, FeatureSpec]) -> np.ndarray:
    """Each row's driver group with the largest sum of risk-raising contributions of cause features (None when no
    cause raises its risk)."""
    features = [c for c in contributions.columns if c != "bias" and c in specs and specs[c].role == "cause"]
    if not features:
        return np.full(len(contributions), None, dtype=object)
    positive = contributions[features].clip(lower=0)
    by_group = positive.T.groupby([driver_group(specs[f].group) for f in features]).sum().T
    best = by_group.to_numpy().argmax(axis=1)
    groups = np.asarray(by_group.columns, dtype=object)[best]
    return np.where(by_group.to_numpy().max(axis=1) > 0, groups, None)


_DAYS_PER_MONTH = 365.25 / 12


def urgent_window(period_months: np.ndarray, urgent_days: int) -> np.ndarray:
    """Days before a renewal in which an action is urgent: `urgent_days`, but at most a quarter of the billing period
    (about 7 days for a monthly plan: a monthly account is always within 30 days of its next renewal, so a 30-day
    window would call every monthly account urgent and say nothing). Unknown period: `urgent_days`."""
    period = pd.to_numeric(pd.Series(period_months, dtype=object), errors="coerce").to_numpy(dtype=float)
    quarter = np.floor(period * _DAYS_PER_MONTH / 4)
    return np.where(np.isnan(period) | (period <= 0), urgent_days, np.minimum(urgent_days, quarter))


def recommend_actions(tiers: np.ndarray, groups: np.ndarray, days_to_renewal: np.ndarray,
                      as_ofs: np.ndarray, config: PlaybookConfig,
                      period_months: np.ndarray | None = None) -> pd.DataFrame:
    """Return recommended_action, owner_role, urgency, due_by and playbook (the matched rule's id) for each account
    (None where no rule covers its tier).

    An account is urgent when its renewal is within `config.urgent_days` of the as-of, or a quarter of its billing
    period if that is shorter (`urgent_window`); an unknown renewal is routine.
    Its action is due `config.due_days` after the as-of, or halfway to the renewal when that comes first, so the
    due date falls before the renewal.

    Args:
        days_to_renewal: days from the as-of to the next renewal (NaN when unknown).
        as_ofs: each account's as-of date.
        period_months: each account's billing period in months (NaN or None when unknown).
    """
    days = pd.to_numeric(pd.Series(days_to_renewal, dtype=object), errors="coerce").to_numpy(dtype=float)
    known = ~np.isnan(days)
    periods = np.full(len(days), np.nan) if period_months is None else period_months
    urgent = known & (days <= urgent_window(periods, config.urgent_days))
    lead = np.where(known, np.minimum(config.due_days, np.floor(np.nan_to_num(days) / 2)), config.due_days)
    found = [config.find(t, g) for t, g in zip(tiers, groups, strict=True)]
    picked = [rule.pick(bool(u)) if rule else (None, None) for rule, u in zip(found, urgent, strict=True)]
    due = [as_of + timedelta(days=int(max(d, 0))) if rule else None
           for rule, as_of, d in zip(found, as_ofs, lead, strict=True)]
    return pd.DataFrame({
        "recommended_action": pd.Series([p[0] for p in picked], dtype=object),
        "owner_role": pd.Series([p[1] for p in picked], dtype=object),
        "urgency": pd.Series([(URGENT if u else ROUTINE) if rule else None for rule, u in zip(found, urgent,
                                                                                              strict=True)],
                             dtype=object),
        "due_by": pd.Series(due, dtype=object),
        "playbook": pd.Series([rule.playbook if rule else None for rule in found], dtype=object),
    })
