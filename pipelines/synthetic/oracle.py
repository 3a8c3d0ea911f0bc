"""The oracle: the true probability that an account churns within a horizon, read from `sim_truth` (the exact
hazard of every renewal the simulation drew, or would have drawn after a churn). Training compares a model's
ROC-AUC with the oracle's on a simulated warehouse, so its score is the ceiling no model can beat.

Beside it, the truth about why: `true_causes` reads the true cause of the renewal an account most likely churns
at within the horizon, and `CAUSE_GROUPS` maps each cause to the playbook group whose reasons should name it, so
the reasons a model gives can be checked against the simulation's causes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.synthetic.config import CAUSE_GROUPS

__all__ = ["CAUSE_GROUPS", "compute_oracle_probabilities", "true_causes"]


def compute_oracle_probabilities(
    truth: pd.DataFrame, snapshots: pd.DataFrame, horizon_days: int
) -> np.ndarray:
    """Oracle P(churn within (as_of, as_of + horizon]) for each snapshots row (columns account_id, as_of).

    Args:
        truth: `sim_truth` (account_id, renewal_at, hazard[, lifecycle_start]).
        snapshots: rows of (account_id, as_of); each account is assumed alive at its as_of.
        horizon_days: label horizon in days.

    Returns:
        One probability per snapshots row, in row order: 1 - prod(1 - hazard) over the account's renewals
        with as_of < renewal_at <= as_of + horizon (0 when there are none).
    """
    pairs = _renewals_in_horizon(truth, snapshots, horizon_days, ["hazard"])
    with np.errstate(divide="ignore"):
        log_survival = np.log1p(-pairs["hazard"].to_numpy(dtype=float).clip(0.0, 1.0))
    per_row = pd.Series(log_survival).groupby(pairs["row"].to_numpy()).sum()
    out = np.zeros(len(snapshots))
    out[per_row.index.to_numpy()] = 1.0 - np.exp(per_row.to_numpy())
    return out


def true_causes(truth: pd.DataFrame, snapshots: pd.DataFrame, horizon_days: int) -> np.ndarray:
    """The true cause behind each snapshots row's churn risk within (as_of, as_of + horizon].

    Args:
        truth: `sim_truth` (account_id, renewal_at, hazard, cause[, lifecycle_start]).
        snapshots: rows of (account_id, as_of).
        horizon_days: label horizon in days.

    Returns:
        An object array, one entry per snapshots row in row order: the `cause` ("none" when no cause was at work)
        of the renewal inside the horizon, in the lifecycle current at the as-of, with the largest hazard; None
        when no renewal falls there.
    """
    pairs = _renewals_in_horizon(truth, snapshots, horizon_days, ["hazard", "cause"])
    # The first of the largest: a stable sort on the hazard, descending, keeps the renewals' order among ties.
    pairs = pairs.sort_values(["row", "hazard"], ascending=[True, False], kind="stable")
    riskiest = pairs.drop_duplicates("row")
    out = np.full(len(snapshots), None, dtype=object)
    out[riskiest["row"].to_numpy()] = riskiest["cause"].to_numpy(dtype=object)
    return out


def _renewals_in_horizon(truth: pd.DataFrame, snapshots: pd.DataFrame, horizon_days: int,
                         columns: list[str]) -> pd.DataFrame:
    """Pairs (row, `columns`) of each snapshots row with its account's renewals in (as_of, as_of + horizon] of the
    lifecycle current at the as-of."""
    snap = pd.DataFrame({
        "account_id": snapshots["account_id"].to_numpy(),
        "as_of": pd.to_datetime(snapshots["as_of"]).to_numpy(),
        "row": np.arange(len(snapshots)),
    })
    wanted = ["account_id", "renewal_at", *columns] + (["lifecycle_start"] if "lifecycle_start" in truth else [])
    pairs = snap.merge(truth[wanted], on="account_id", how="inner")
    if "lifecycle_start" in pairs:
        # Only the lifecycle the account is in at the as-of: its latest one started by then.
        pairs = pairs[pairs["lifecycle_start"] <= pairs["as_of"]]
        current = pairs.groupby("row")["lifecycle_start"].transform("max")
        pairs = pairs[pairs["lifecycle_start"] == current]
    horizon = pd.Timedelta(days=horizon_days)
    return pairs[(pairs["renewal_at"] > pairs["as_of"]) & (pairs["renewal_at"] <= pairs["as_of"] + horizon)]
