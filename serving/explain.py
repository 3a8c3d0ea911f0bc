"""Per-account drivers: exact TreeSHAP contributions from LightGBM, turned into ranked reasons in words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalog import FeatureSpec, render_reason
from training.train import TrainedModel


def explain_predictions(model: TrainedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Return TreeSHAP contributions in log-odds, one column per feature plus `bias` (the expected value).

    Each row sums to the model's raw score for that account.
    """
    return pd.DataFrame(model.contributions(frame), columns=[*model.features, "bias"], index=frame.index)


def rank_drivers(contributions: pd.DataFrame, values: pd.DataFrame, specs: dict[str, FeatureSpec],
                 top_n: int) -> pd.DataFrame:
    """Return the `top_n` risk-raising drivers of every row: row, rank, feature, value, contribution, reason.

    Only positive contributions (pushing risk up) are drivers; rows with fewer get fewer.
    """
    features = [c for c in contributions.columns if c != "bias"]
    matrix = contributions[features].to_numpy()
    order = np.argsort(-matrix, axis=1, kind="stable")[:, :top_n]
    rows = np.repeat(np.arange(len(matrix)), order.shape[1])
    cols = order.ravel()
    contrib = matrix[rows, cols]
    keep = contrib > 0
    rows, cols, contrib = rows[keep], cols[keep], contrib[keep]
    names = np.asarray(features)[cols]
    raw = values[features].astype(object).where(values[features].notna(), None).to_numpy()[rows, cols]
    drivers = pd.DataFrame({"row": rows, "feature": names, "value": pd.to_numeric(pd.Series(raw), errors="coerce"),
                            "contribution": contrib})
    drivers["rank"] = drivers.groupby("row").cumcount() + 1
    drivers["direction"] = "raises risk"
    # Categorical values (a plan, an NPS category) have no number; their text goes into the reason.
    drivers["reason"] = [render_reason(specs[f], v) for f, v in zip(names, raw, strict=True)]
    return drivers
