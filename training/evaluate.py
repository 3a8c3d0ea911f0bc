"""Evaluation metrics of churn probabilities."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def top_decile_lift(labels: np.ndarray, scores: np.ndarray) -> float:
    """Churn rate among the top 10% by score over the overall churn rate (ties broken by order)."""
    labels, scores = np.asarray(labels, dtype=float), np.asarray(scores, dtype=float)
    k = max(1, int(np.ceil(len(labels) * 0.1)))
    top = np.argsort(-scores, kind="stable")[:k]
    base = labels.mean()
    return float(labels[top].mean() / base) if base > 0 else float("nan")


def evaluate_predictions(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Return roc_auc, pr_auc (average precision), brier, top_decile_lift, rows and churn_rate."""
    labels, probabilities = np.asarray(labels, dtype=int), np.asarray(probabilities, dtype=float)
    return {
        "roc_auc": float(roc_auc_score(labels, probabilities)),
        "pr_auc": float(average_precision_score(labels, probabilities)),
        "brier": float(brier_score_loss(labels, probabilities)),
        "top_decile_lift": top_decile_lift(labels, probabilities),
        "rows": float(len(labels)),
        "churn_rate": float(labels.mean()),
    }
