"""The rule-based health score CS platforms compute, fitted to the warehouse it runs on.

Each measure scores 100 points at its `good` threshold and 0 at its `bad` one, linearly in between; the score is the
weighted mean (0-100) of the measures an account has a value for. Fixed thresholds only suit the event volumes they
were chosen on (with ten times the activity every account looks healthy), so unpinned thresholds are quantiles of
the training window: `good` where the retained accounts' upper quartile lies, `bad` where the churned accounts'
lower quartile lies (mirrored for measures where less is healthier). Quantiles scale with the data, so the rule
reads the same on warehouses whose measures differ a hundredfold. Weights are fitted by a logistic regression of
churn on the measures' points with non-negative coefficients, so a measure can only count towards health the way
its name says.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from training.config import HealthComponent, HealthConfig

# The catalog groups a CS team scores health on; trends, commercial terms and context are not health measures.
HEALTH_GROUPS = ("frequency", "breadth", "depth", "value", "support", "voice")
# A fitted weight below this share of the total is dropped: it only adds noise to a score people read.
_MIN_WEIGHT_SHARE = 0.005
# L2 penalty on the weights: among measures that say the same thing, it shares the weight instead of picking one.
_L2 = 1e-3


@dataclass(frozen=True)
class Measure:
    """One measure of a health score: its weight, pooled thresholds and any per-segment thresholds."""

    feature: str
    weight: float
    good: float
    bad: float
    segments: dict[str, tuple[float, float]] = field(default_factory=dict)

    def points(self, values: pd.Series, segments: pd.Series | None) -> pd.Series:
        """0-100 points of each value (NaN where the value is missing), with its segment's thresholds if fitted."""
        good = pd.Series(self.good, index=values.index, dtype=float)
        bad = pd.Series(self.bad, index=values.index, dtype=float)
        if segments is not None and self.segments:
            key = segments.astype(str).where(segments.notna())
            good = key.map({s: g for s, (g, _) in self.segments.items()}).astype(float).fillna(good)
            bad = key.map({s: b for s, (_, b) in self.segments.items()}).astype(float).fillna(bad)
        return ((values - bad) / (good - bad)).clip(0, 1) * 100


@dataclass(frozen=True)
class HealthScore:
    """A health score: its measures and the account attribute segment thresholds are keyed by."""

    measures: tuple[Measure, ...]
    segment_by: str | None = None

    def points(self, frame: pd.DataFrame, segments: pd.Series | None = None) -> pd.DataFrame:
        """Each measure's 0-100 points per row (NaN where the row has no value); measures the frame lacks are left
        out."""
        columns = {m.feature: m.points(pd.to_numeric(frame[m.feature], errors="coerce"), segments)
                   for m in self.measures if m.feature in frame.columns}
        return pd.DataFrame(columns, index=frame.index)

    def score(self, frame: pd.DataFrame, segments: pd.Series | None = None) -> pd.Series:
        """The 0-100 health score of each row (higher = healthier): the weighted mean of the measures the row has
        a value for (weights renormalised), and 50 when it has none.

        Args:
            segments: each row's value of `segment_by`, for per-segment thresholds; None = pooled thresholds.
        """
        points = self.points(frame, segments)
        weights = pd.DataFrame({m.feature: np.where(points[m.feature].notna(), m.weight, 0.0)
                                for m in self.measures if m.feature in points.columns}, index=frame.index)
        total = weights.sum(axis=1)
        score = (points.fillna(0) * weights).sum(axis=1) / total.where(total > 0)
        return score.fillna(50.0).round(1)

    def to_dict(self) -> dict:
        return {"segment_by": self.segment_by,
                "measures": [{"feature": m.feature, "weight": m.weight, "good": m.good, "bad": m.bad,
                              "segments": {s: list(t) for s, t in m.segments.items()}} for m in self.measures]}

    @classmethod
    def from_dict(cls, data: dict) -> HealthScore:
        measures = tuple(Measure(m["feature"], float(m["weight"]), float(m["good"]), float(m["bad"]),
                                 {s: (float(g), float(b)) for s, (g, b) in m.get("segments", {}).items()})
                         for m in data["measures"])
        return cls(measures=measures, segment_by=data.get("segment_by"))

    @classmethod
    def from_pins(cls, components: list[HealthComponent]) -> HealthScore:
        """A fixed health score from fully pinned components (thresholds and weights as given)."""
        return cls(tuple(Measure(c.feature, float(c.weight), float(c.good), float(c.bad)) for c in components))


def pick_measures(config: HealthConfig, specs: dict, columns) -> dict[str, str]:
    """The measures to score and the way each is healthy: feature → 'up' (more is healthier) or 'down'.

    Listed measures come first; with `config.auto`, every numeric cause feature of HEALTH_GROUPS with a risk
    direction that the frame has. A listed measure without a catalog direction takes it from its pinned thresholds.

    Args:
        specs: catalog entries by feature name (FeatureSpec: group, unit, direction, role).
        columns: the feature frame's columns.

    Raises:
        ValueError: a listed measure has no thresholds to fit from (no direction in the catalog, none pinned).
    """
    healthy = {"down": "up", "up": "down"}  # risk falls as health rises
    picked: dict[str, str] = {}
    for m in config.measures:
        if m.good is not None:
            picked[m.feature] = "up" if m.good > m.bad else "down"
        elif m.feature in specs and specs[m.feature].direction in healthy:
            picked[m.feature] = healthy[specs[m.feature].direction]
        else:
            raise ValueError(f"evaluation.health_score: measure {m.feature} has no risk direction in the catalog; "
                             "pin its good and bad thresholds")
    if config.auto:
        for name, spec in specs.items():
            if (name in columns and name not in picked and spec.group in HEALTH_GROUPS and spec.role == "cause"
                    and spec.direction in healthy and spec.unit != "category"):
                picked[name] = healthy[spec.direction]
    return picked


def quantile_thresholds(values: pd.Series, labels: pd.Series, healthy: str,
                        config: HealthConfig) -> tuple[float, float] | None:
    """(good, bad) from the retained and churned accounts' quantiles, or None where they do not separate (too few
    values, or the churned accounts' quantile is no worse than the retained ones').

    Args:
        healthy: 'up' when more is healthier, 'down' when less is.
    """
    retained, churned = values[(labels == 0) & values.notna()], values[(labels == 1) & values.notna()]
    if retained.empty or churned.empty:
        return None
    if healthy == "up":
        good, bad = retained.quantile(config.good_quantile), churned.quantile(config.bad_quantile)
        return (float(good), float(bad)) if good > bad else None
    good, bad = retained.quantile(1 - config.good_quantile), churned.quantile(1 - config.bad_quantile)
    return (float(good), float(bad)) if good < bad else None


def _segment_thresholds(values: pd.Series, labels: pd.Series, segments: pd.Series | None, healthy: str,
                        config: HealthConfig) -> dict[str, tuple[float, float]]:
    if segments is None:
        return {}
    fitted = {}
    for segment, rows in labels.groupby(segments.astype(str).where(segments.notna())):
        if len(rows) < config.min_segment_rows or rows.sum() < config.min_segment_churners:
            continue
        thresholds = quantile_thresholds(values[rows.index], rows, healthy, config)
        if thresholds is not None:
            fitted[str(segment)] = thresholds
    return fitted


def fit_nonnegative_weights(points: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
    """Weights ≥ 0 of a logistic regression of churn on each measure's shortfall (1 - points/100; a missing measure
    counts as halfway), L2-penalised a little; deterministic (L-BFGS-B from zero)."""
    x = 1.0 - points.fillna(50.0).to_numpy(dtype=float) / 100.0
    y = np.asarray(labels, dtype=float)
    base = np.log(max(y.mean(), 1e-6) / max(1 - y.mean(), 1e-6))

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] + x @ theta[1:]
        p = 1.0 / (1.0 + np.exp(-z))
        value = np.mean(np.logaddexp(0.0, z) - y * z) + _L2 * np.sum(theta[1:] ** 2)
        residual = (p - y) / len(y)
        return value, np.concatenate([[residual.sum()], x.T @ residual + 2 * _L2 * theta[1:]])

    start = np.concatenate([[base], np.zeros(x.shape[1])])
    bounds = [(None, None)] + [(0.0, None)] * x.shape[1]
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return np.asarray(result.x[1:])


def fit_health_score(train: pd.DataFrame, specs: dict, config: HealthConfig,
                     segments: pd.Series | None = None) -> HealthScore:
    """Fit the health score on the labelled training rows: thresholds per measure (and per segment with enough
    rows and churners) from quantiles, weights non-negative; pinned thresholds and weights are kept as given.

    Fitted weights sum to 100 over the measures; a pinned weight (same 0-100 scale) replaces its measure's.

    Args:
        train: labelled training rows (features and `label`).
        specs: catalog entries by feature name.
        segments: each row's `config.segment_by` value, or None for pooled thresholds only.
    """
    labels = train["label"].astype(int)
    pins = {m.feature: m for m in config.measures}
    thresholds: dict[str, tuple[float, float, dict]] = {}
    for feature, healthy in pick_measures(config, specs, train.columns).items():
        pin = pins.get(feature)
        if pin is not None and pin.good is not None:
            thresholds[feature] = (pin.good, pin.bad, {})
            continue
        if feature not in train.columns:
            continue
        values = pd.to_numeric(train[feature], errors="coerce")
        pooled = quantile_thresholds(values, labels, healthy, config)
        if pooled is not None:
            thresholds[feature] = (*pooled, _segment_thresholds(values, labels, segments, healthy, config))
    unweighted = HealthScore(tuple(Measure(f, 1.0, g, b, s) for f, (g, b, s) in thresholds.items()))
    weights = _weights(unweighted.points(train, segments), labels.to_numpy(), pins)
    measures = tuple(Measure(f, weights[f], g, b, s) for f, (g, b, s) in thresholds.items() if weights.get(f, 0) > 0)
    return HealthScore(measures=measures, segment_by=config.segment_by if segments is not None else None)


def _weights(points: pd.DataFrame, labels: np.ndarray, pins: dict[str, HealthComponent]) -> dict[str, float]:
    if points.empty:
        return {}
    fitted = fit_nonnegative_weights(points, labels)
    if fitted.sum() <= 0:  # no measure tells churners apart: weigh them equally rather than score nothing
        fitted = np.ones(len(fitted))
    share = fitted / fitted.sum()
    weights = {f: round(float(100 * s), 2) for f, s in zip(points.columns, share, strict=True)
               if s >= _MIN_WEIGHT_SHARE}
    for feature in points.columns:
        if pins.get(feature) is not None and pins[feature].weight is not None:
            weights[feature] = float(pins[feature].weight)
    return weights
