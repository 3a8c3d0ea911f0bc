"""Probability calibration on held-out time: isotonic, sigmoid or none, chosen by out-of-fold Brier score."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import StratifiedKFold

METHODS = ("none", "sigmoid", "isotonic")
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Calibrator:
    """A fitted monotone map from raw model probabilities to calibrated ones, storable as plain JSON."""

    method: str
    params: dict

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw ones."""
        raw = np.asarray(raw, dtype=float)
        if self.method == "sigmoid":
            return 1 / (1 + np.exp(-(self.params["slope"] * _logit(raw) + self.params["intercept"])))
        if self.method == "isotonic":
            return np.interp(raw, self.params["x"], self.params["y"])
        return raw

    def to_dict(self) -> dict:
        return {"method": self.method, "params": self.params}

    @classmethod
    def from_dict(cls, data: dict) -> Calibrator:
        return cls(method=data["method"], params=data["params"])


def fit_calibrator(method: str, raw: np.ndarray, labels: np.ndarray) -> Calibrator:
    """Fit one calibration method on raw probabilities and their outcomes."""
    raw, labels = np.asarray(raw, dtype=float), np.asarray(labels, dtype=int)
    if method == "sigmoid":
        # Platt scaling on the log-odds, nearly unregularised so it can also stretch, not only shift.
        model = LogisticRegression(C=1e6).fit(_logit(raw).reshape(-1, 1), labels)
        return Calibrator("sigmoid", {"slope": float(model.coef_[0, 0]), "intercept": float(model.intercept_[0])})
    if method == "isotonic":
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, labels)
        return Calibrator("isotonic", {"x": model.X_thresholds_.tolist(), "y": model.y_thresholds_.tolist()})
    if method == "none":
        return Calibrator("none", {})
    raise ValueError(f"model.calibration: unknown method {method!r}; choose from {', '.join(METHODS)}")


def out_of_fold_brier(method: str, raw: np.ndarray, labels: np.ndarray, folds: int, seed: int) -> float:
    """Brier score of `method` on rows its calibrator did not see (stratified K-fold)."""
    raw, labels = np.asarray(raw, dtype=float), np.asarray(labels, dtype=int)
    predicted = np.empty_like(raw)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit_rows, held_rows in splitter.split(raw.reshape(-1, 1), labels):
        predicted[held_rows] = fit_calibrator(method, raw[fit_rows], labels[fit_rows]).apply(raw[held_rows])
    return float(brier_score_loss(labels, predicted))


def choose_calibrator(raw: np.ndarray, labels: np.ndarray, methods: tuple[str, ...] = METHODS,
                      folds: int = 5, seed: int = 0) -> tuple[Calibrator, dict[str, float]]:
    """Pick the method with the lowest out-of-fold Brier score and refit it on all the rows.

    Args:
        raw, labels: the model's raw probabilities and the outcomes on held-out time (not its training rows).

    Returns:
        The fitted calibrator and every candidate's out-of-fold Brier score.
    """
    labels = np.asarray(labels, dtype=int)
    folds = max(2, min(folds, int(np.bincount(labels, minlength=2).min())))
    scores = {m: out_of_fold_brier(m, raw, labels, folds, seed) for m in methods}
    best = min(scores, key=lambda m: (scores[m], methods.index(m)))
    return fit_calibrator(best, raw, labels), scores
