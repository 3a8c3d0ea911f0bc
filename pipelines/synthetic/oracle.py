"""The oracle: the true probability that an account churns within a horizon, read from `sim_truth` (the exact
hazard of every renewal the simulation drew, or would have drawn after a churn). Training compares a model's
ROC-AUC with the oracle's on a simulated warehouse, so its score is the ceiling no model can beat.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


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
    snap = pd.DataFrame({
        "account_id": snapshots["account_id"].to_numpy(),
        "as_of": pd.to_datetime(snapshots["as_of"]).to_numpy(),
        "row": np.arange(len(snapshots)),
    })
    columns = ["account_id", "renewal_at", "hazard"] + (["lifecycle_start"] if "lifecycle_start" in truth else [])
    pairs = snap.merge(truth[columns], on="account_id", how="inner")
    if "lifecycle_start" in pairs:
        # Only the lifecycle the account is in at the as-of: its latest one started by then.
        pairs = pairs[pairs["lifecycle_start"] <= pairs["as_of"]]
        current = pairs.groupby("row")["lifecycle_start"].transform("max")
        pairs = pairs[pairs["lifecycle_start"] == current]
    horizon = pd.Timedelta(days=horizon_days)
    pairs = pairs[(pairs["renewal_at"] > pairs["as_of"]) & (pairs["renewal_at"] <= pairs["as_of"] + horizon)]
    with np.errstate(divide="ignore"):
        log_survival = np.log1p(-pairs["hazard"].to_numpy(dtype=float).clip(0.0, 1.0))
    per_row = pd.Series(log_survival).groupby(pairs["row"].to_numpy()).sum()
    out = np.zeros(len(snap))
    out[per_row.index.to_numpy()] = 1.0 - np.exp(per_row.to_numpy())
    return out
