"""Evaluation metrics of churn probabilities: ranking, calibration, gains, capacity and segments.

Undefined metrics (one class present, no churners, no rows) come back as NaN rather than raising, so a report
over a small validation window or segment still renders; malformed input (lengths, labels not 0/1, probabilities
outside [0, 1]) raises ValueError.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

LOG_LOSS_EPS = 1e-15


def _as_arrays(labels, probabilities) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=float).ravel()
    p = np.asarray(probabilities, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels has {len(y)} rows but probabilities has {len(p)}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1 (no missing values)")
    if not ((p >= 0) & (p <= 1)).all():
        raise ValueError("probabilities must lie in [0, 1] (no missing values)")
    return y.astype(int), p


def _aligned(values, rows: int, name: str) -> np.ndarray:
    array = np.asarray(values).ravel()
    if len(array) != rows:
        raise ValueError(f"{name} has {len(array)} rows but labels has {rows}")
    return array


def _mrr_values(mrr, rows: int) -> np.ndarray:
    value = _aligned(mrr, rows, "mrr").astype(float)
    if not np.isfinite(value).all():
        raise ValueError("mrr has missing or infinite values; fill them before evaluating")
    return value


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else float("nan")


def _rank_order(scores: np.ndarray) -> np.ndarray:
    # Highest score first; equal scores keep row order, so results do not depend on the sort algorithm.
    return np.argsort(-scores, kind="stable")


def _top_count(rows: int, share_num: int, share_den: int) -> int:
    # ceil(rows * num / den) in integers: float products such as 20 * 0.3 would round up one row too many.
    return max(1, -(-rows * share_num // share_den)) if rows else 0


def _top_share(labels: np.ndarray, scores: np.ndarray, num: int, den: int) -> tuple[int, float]:
    k = _top_count(len(labels), num, den)
    return k, float(labels[_rank_order(scores)[:k]].sum())


def top_decile_lift(labels: np.ndarray, scores: np.ndarray) -> float:
    """Churn rate among the top 10% by score (at least one row) over the overall churn rate; ties keep row order."""
    labels, scores = np.asarray(labels, dtype=float), np.asarray(scores, dtype=float)
    k, caught = _top_share(labels, scores, 1, 10)
    return _ratio(caught * len(labels), k * labels.sum()) if k else float("nan")


def top_decile_capture(labels: np.ndarray, scores: np.ndarray) -> float:
    """Share of all churners that fall in the top 10% of rows by score (NaN without churners)."""
    labels, scores = np.asarray(labels, dtype=float), np.asarray(scores, dtype=float)
    return _ratio(_top_share(labels, scores, 1, 10)[1], labels.sum())


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean negative log-likelihood, probabilities clipped to [1e-15, 1 - 1e-15]; defined for one class too."""
    y, p = _as_arrays(labels, probabilities)
    if not len(y):
        return float("nan")
    p = np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def _bin_index(probabilities: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    # Bins are [k/bins, (k+1)/bins), the last one closed; edges as exact quotients so p = 0.3 lands in [0.3, 0.4).
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    edges = np.arange(bins + 1) / bins
    return np.clip(np.searchsorted(edges, probabilities, side="right") - 1, 0, bins - 1), edges


def calibration_table(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Return one row per non-empty equal-width probability bin.

    Columns: bin_lower, bin_upper, rows, mean_predicted, observed_rate. Bins are [lower, upper), the last
    one closed at 1.
    """
    y, p = _as_arrays(labels, probabilities)
    index, edges = _bin_index(p, bins)
    table = (pd.DataFrame({"bin": index, "p": p, "y": y})
             .groupby("bin", sort=True)
             .agg(rows=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean")))
    table.insert(0, "bin_upper", edges[table.index + 1])
    table.insert(0, "bin_lower", edges[table.index])
    return table.reset_index(drop=True).astype({"rows": int, "observed_rate": float})


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float:
    """Return the row-weighted mean of |mean predicted − observed rate| over the calibration_table bins."""
    table = calibration_table(labels, probabilities, bins)
    if table.empty:
        return float("nan")
    gap = (table.mean_predicted - table.observed_rate).abs()
    return float((gap * table.rows).sum() / table.rows.sum())


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def _average_precision(y: np.ndarray, p: np.ndarray) -> float:
    # Defined with churners only (it is then 1), undefined without any.
    return float(average_precision_score(y, p)) if y.any() else float("nan")


def capacity_metrics(labels: np.ndarray, probabilities: np.ndarray, capacity: int,
                     groups=None, mrr=None) -> dict[str, float]:
    """Return precision, recall (and MRR captured) when the CS team acts on `capacity` accounts per scoring.

    Args:
        groups: the as-of date of each row; within each group the `capacity` highest-scored rows are taken
            (the whole group when it is smaller; equal scores keep row order). None: all rows are one group.
        mrr: monthly recurring revenue of each row; adds mrr_captured_at_capacity.

    Returns:
        precision_at_capacity (churners caught / rows taken), recall_at_capacity (churners caught / all
        churners) and, with mrr, mrr_captured_at_capacity (MRR of churners caught / MRR of all churners).
    """
    y, p = _as_arrays(labels, probabilities)
    if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
        raise ValueError(f"capacity must be a positive whole number of accounts, got {capacity!r}")
    group_codes = (np.zeros(len(y), dtype=int) if groups is None
                   else pd.factorize(_aligned(groups, len(y), "groups"), use_na_sentinel=False)[0])
    order = _rank_order(p)
    rank_in_group = pd.Series(group_codes[order]).groupby(group_codes[order]).cumcount().to_numpy()
    taken = order[rank_in_group < capacity]
    metrics = {
        "precision_at_capacity": _ratio(y[taken].sum(), len(taken)),
        "recall_at_capacity": _ratio(y[taken].sum(), y.sum()),
    }
    if mrr is not None:
        churned_mrr = _mrr_values(mrr, len(y)) * y
        metrics["mrr_captured_at_capacity"] = _ratio(churned_mrr[taken].sum(), churned_mrr.sum())
    return metrics


def evaluate_predictions(labels: np.ndarray, probabilities: np.ndarray, *, mrr=None, groups=None,
                         capacity: int | None = None) -> dict[str, float]:
    """Return validation metrics of churn probabilities; NaN where a metric is undefined on these rows.

    Args:
        labels: 1 if the account churned within the horizon, else 0.
        probabilities: predicted churn probabilities, one per label.
        mrr, groups, capacity: see capacity_metrics; used only when capacity is given.

    Returns:
        roc_auc, pr_auc (average precision), brier, log_loss, top_decile_lift, top_decile_capture, ece
        (10 equal-width bins), rows, churn_rate; with capacity also precision_at_capacity and
        recall_at_capacity, and with mrr too mrr_captured_at_capacity.
    """
    y, p = _as_arrays(labels, probabilities)
    empty = not len(y)
    metrics = {
        "roc_auc": _roc_auc(y, p),
        "pr_auc": _average_precision(y, p),
        "brier": float("nan") if empty else float(np.mean((p - y) ** 2)),
        "log_loss": log_loss(y, p),
        "top_decile_lift": top_decile_lift(y, p),
        "top_decile_capture": top_decile_capture(y, p),
        "ece": expected_calibration_error(y, p),
        "rows": float(len(y)),
        "churn_rate": float("nan") if empty else float(y.mean()),
    }
    if capacity is not None:
        metrics |= capacity_metrics(y, p, capacity, groups=groups, mrr=mrr)
    return metrics


def gains_table(labels: np.ndarray, probabilities: np.ndarray, mrr=None, steps: int = 10) -> pd.DataFrame:
    """Return cumulative gains for the top 1/steps, 2/steps, …, all accounts by predicted probability.

    Columns: share_of_accounts (nominal share), accounts (rows in that top share, rounded up),
    share_of_churners_captured, lift (churn rate in the top share over the overall rate) and, with mrr,
    share_of_churned_mrr_captured. Equal probabilities keep row order.
    """
    y, p = _as_arrays(labels, probabilities)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    n, order = len(y), _rank_order(p)
    counts = np.array([_top_count(n, i, steps) for i in range(1, steps + 1)])
    caught = np.concatenate([[0.0], np.cumsum(y[order])])[counts]
    table = pd.DataFrame({
        "share_of_accounts": np.arange(1, steps + 1) / steps,
        "accounts": counts,
        "share_of_churners_captured": [_ratio(c, y.sum()) for c in caught],
        "lift": [_ratio(c * n, k * y.sum()) for c, k in zip(caught, counts, strict=True)],
    })
    if mrr is not None:
        churned_mrr = _mrr_values(mrr, n) * y
        cumulative = np.concatenate([[0.0], np.cumsum(churned_mrr[order])])[counts]
        table["share_of_churned_mrr_captured"] = [_ratio(c, churned_mrr.sum()) for c in cumulative]
    return table


def segment_metrics(labels: np.ndarray, probabilities: np.ndarray, segments, min_rows: int = 30) -> pd.DataFrame:
    """Return one row per segment value: segment, rows, churn_rate, roc_auc, brier, mean_predicted.

    roc_auc is NaN for a segment with one class or fewer than `min_rows` rows (too noisy to read).
    Missing segment values form their own segment rather than being dropped.
    """
    y, p = _as_arrays(labels, probabilities)
    frame = pd.DataFrame({"segment": _aligned(segments, len(y), "segments"), "y": y, "p": p})
    rows = []
    for segment, part in frame.groupby("segment", sort=True, dropna=False):
        sy, sp = part.y.to_numpy(), part.p.to_numpy()
        rows.append({
            "segment": segment, "rows": len(sy), "churn_rate": float(sy.mean()),
            "roc_auc": _roc_auc(sy, sp) if len(sy) >= min_rows else float("nan"),
            "brier": float(np.mean((sp - sy) ** 2)), "mean_predicted": float(sp.mean()),
        })
    columns = ["segment", "rows", "churn_rate", "roc_auc", "brier", "mean_predicted"]
    return pd.DataFrame(rows, columns=columns)


def _ranked(y: np.ndarray, p: np.ndarray):
    """ROC-AUC under row weights, from the probabilities' distinct values ranked once: the Mann-Whitney statistic with
    ties counted half (the same number as sklearn's roc_auc_score with sample_weight), in O(rows) per weighting."""
    inverse = np.unique(p, return_inverse=True)[1]
    levels = int(inverse.max()) + 1

    def auc(weights: np.ndarray) -> float:
        positive = np.bincount(inverse, weights=weights * y, minlength=levels)
        negative = np.bincount(inverse, weights=weights * (1 - y), minlength=levels)
        below = np.cumsum(negative) - negative
        return float((positive * (below + 0.5 * negative)).sum() / (positive.sum() * negative.sum()))

    return auc


def lead_interval(labels, first, second, accounts, metric: str, *, resamples: int = 1000,
                  seed: int = 0) -> tuple[float, float, float]:
    """How far `first` leads `second` on `metric` (positive: `first` is better), with a 95% percentile interval from a
    bootstrap over accounts (scipy.stats.bootstrap): the rows of an account at several as-of dates are drawn together,
    since they are not independent.

    Args:
        labels: 0/1 outcomes; first, second: both contenders' probabilities for the same rows.
        accounts: each row's account.
        metric: roc_auc (the difference in ROC-AUC) or brier (the second's Brier score minus the first's).

    Returns:
        (estimate on the rows as they are, low, high).
    """
    from scipy.stats import bootstrap

    y, a = _as_arrays(labels, first)
    _, b = _as_arrays(labels, second)
    codes, uniques = pd.factorize(pd.Series(_aligned(accounts, len(y), "accounts")))
    if metric == "roc_auc":
        auc_a, auc_b = _ranked(y, a), _ranked(y, b)

        def lead(weights: np.ndarray) -> float:
            return auc_a(weights) - auc_b(weights)
    elif metric == "brier":
        def lead(weights: np.ndarray) -> float:
            return float(np.average((b - y) ** 2 - (a - y) ** 2, weights=weights))
    else:
        raise ValueError(f"metric must be roc_auc or brier, not {metric!r}")

    def drawn(sample: np.ndarray) -> float:  # a resample of account codes -> each row weighted by its account's draws
        return lead(np.bincount(sample, minlength=len(uniques))[codes].astype(float))

    result = bootstrap((np.arange(len(uniques)),), drawn, n_resamples=resamples, vectorized=False,
                       method="percentile", rng=np.random.default_rng(seed))
    interval = result.confidence_interval
    return lead(np.ones(len(y))), float(interval.low), float(interval.high)
