"""Drift guard: each feature's distribution at training, and its population stability index (PSI) at scoring.

The decision to publish rests on a summary, the PSI of each feature weighted by how much the model relies on it
(mean |SHAP|): single features move for harmless reasons (days since last activity depends on the weekday of the
as-of), while a broken load moves the inputs the model leans on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from serving.config import DriftConfig

_EPS = 1e-4  # floor for a bin's share, so an empty bin gives a large but finite PSI
MISSING = "(missing)"


def _numeric_reference(values: pd.Series, bins: int) -> dict:
    present = values.dropna().to_numpy(dtype=float)
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])) if len(present) else np.array([])
    return {"kind": "numeric", "edges": edges.tolist(), "shares": _numeric_shares(values, edges).tolist()}


def _numeric_shares(values: pd.Series, edges: np.ndarray) -> np.ndarray:
    # One bin per interval between edges, plus one for missing values.
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    missing = np.isnan(numbers)
    counts = np.bincount(np.searchsorted(edges, numbers[~missing], side="right"), minlength=len(edges) + 1)
    counts = np.append(counts, missing.sum()).astype(float)
    return counts / max(len(numbers), 1)


def _categorical_shares(values: pd.Series, categories: list[str]) -> np.ndarray:
    text = values.astype(object).where(values.notna(), MISSING).astype(str)
    counts = text.value_counts()
    known = np.array([counts.get(c, 0) for c in categories], dtype=float)
    other = len(text) - known.sum()
    return np.append(known, other) / max(len(text), 1)


def reference_distribution(frame: pd.DataFrame, features: list[str], bins: int = 10) -> dict[str, dict]:
    """Each feature's distribution on the training rows: quantile bins for numbers, shares for categories."""
    out = {}
    for feature in features:
        values = frame[feature]
        if pd.api.types.is_numeric_dtype(values):
            out[feature] = _numeric_reference(values, bins)
        else:
            categories = sorted(values.astype(object).where(values.notna(), MISSING).astype(str).unique())
            out[feature] = {"kind": "categorical", "categories": categories,
                            "shares": _categorical_shares(values, categories).tolist()}
    return out


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index Σ (actual − expected) · ln(actual / expected) over bins."""
    e, a = np.maximum(expected, _EPS), np.maximum(actual, _EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def _status(value: float, config: DriftConfig) -> str:
    return "stop" if value > config.stop else "warn" if value > config.warn else "ok"


def summarise_drift(drift: pd.DataFrame, importance: dict[str, float], config: DriftConfig) -> dict:
    """The importance-weighted mean PSI and its status (equal weights when the model has no importances)."""
    weights = drift["feature"].map(importance).fillna(0.0).to_numpy(dtype=float)
    if weights.sum() <= 0:
        weights = np.ones(len(drift))
    value = float(np.average(drift["psi"], weights=weights)) if len(drift) else 0.0
    return {"psi": value, "status": _status(value, config)}


def compute_drift(reference: dict[str, dict], frame: pd.DataFrame, config: DriftConfig) -> pd.DataFrame:
    """PSI of each feature of `frame` against its training reference, with a status: ok, warn or stop."""
    rows = []
    for feature, ref in reference.items():
        if feature not in frame.columns:
            continue
        if ref["kind"] == "numeric":
            actual = _numeric_shares(frame[feature], np.asarray(ref["edges"], dtype=float))
        else:
            actual = _categorical_shares(frame[feature], ref["categories"])
        value = psi(np.asarray(ref["shares"], dtype=float), actual)
        rows.append({"feature": feature, "psi": value, "status": _status(value, config)})
    return pd.DataFrame(rows, columns=["feature", "psi", "status"]).sort_values("psi", ascending=False,
                                                                                ignore_index=True)
