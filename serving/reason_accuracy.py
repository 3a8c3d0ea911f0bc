"""Are the reasons true? On a warehouse whose churn causes are known (the simulated one records them), the share of
accounts whose playbook driver group (the cause group whose risk-raising SHAP contributions weigh most, the group
that picks the recommended action) is the group of the cause that really drives their churn hazard.

Two baselines put the figure in scale:
- `random`: a group drawn at random with the model's own group shares, independent of the account: the accuracy
  expected by chance, Σ_g share_predicted(g) × share_true(g);
- `largest_feature`: no model, the group of the account's most extreme cause feature, each feature standardised
  on the training rows (median and interquartile range) and signed so that positive is riskier (the catalog's
  direction; `mixed` features count by their absolute distance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.catalog import FeatureSpec
from serving.playbooks import dominant_groups, driver_group


@dataclass(frozen=True)
class ReasonAccuracy:
    """Reason accuracy among the top-tier accounts that churned, and among all top-tier accounts.

    Attributes:
        churners: {model, random, largest_feature} accuracy among top-tier churners with a recorded cause.
        top_tier: the same among every top-tier account with a recorded cause.
        churners_rows: top-tier churners the figure stands on; churners_without_cause: top-tier churners whose
            hazard no recorded cause dominates (background noise), left out of the figure.
        top_tier_rows: top-tier accounts with a recorded cause.
    """

    churners: dict[str, float]
    top_tier: dict[str, float]
    churners_rows: int
    churners_without_cause: int
    top_tier_rows: int

    def metrics(self) -> dict[str, float]:
        """Flat metrics for MLflow: reason_accuracy_{churners,top_tier}_{model,random,largest_feature}, counts."""
        flat = {f"reason_accuracy_churners_{k}": v for k, v in self.churners.items()}
        flat |= {f"reason_accuracy_top_tier_{k}": v for k, v in self.top_tier.items()}
        return flat | {"reason_accuracy_churners_rows": float(self.churners_rows),
                       "reason_accuracy_churners_without_cause": float(self.churners_without_cause),
                       "reason_accuracy_top_tier_rows": float(self.top_tier_rows)}


def largest_feature_groups(valid: pd.DataFrame, train: pd.DataFrame, specs: dict[str, FeatureSpec],
                           features: list[str]) -> np.ndarray:
    """Each validation row's group of its most extreme cause feature (None when no numeric cause feature)."""
    causes = [f for f in features if f in specs and specs[f].role == "cause" and not specs[f].is_categorical]
    if not causes:
        return np.full(len(valid), None, dtype=object)
    reference = train[causes].astype(float)
    centre = reference.median()
    spread = (reference.quantile(0.75) - reference.quantile(0.25)).where(lambda s: s > 0, reference.std())
    z = (valid[causes].astype(float) - centre) / spread.replace(0, np.nan)
    sign = np.array([{"up": 1.0, "down": -1.0}.get(specs[f].direction, 0.0) for f in causes])
    risky = np.where(sign == 0, z.abs().to_numpy(), z.to_numpy() * sign)
    risky = np.nan_to_num(risky, nan=-np.inf)
    best = risky.argmax(axis=1)
    groups = np.array([driver_group(specs[f].group) for f in causes], dtype=object)[best]
    return np.where(np.isfinite(risky.max(axis=1)), groups, None)


def _accuracy(predicted: np.ndarray, true: np.ndarray) -> float:
    return float(np.mean(predicted == true)) if len(true) else float("nan")


def _chance(predicted: np.ndarray, true: np.ndarray) -> float:
    if not len(true):
        return float("nan")
    share_p = pd.Series(predicted).value_counts(normalize=True, dropna=False)
    share_t = pd.Series(true).value_counts(normalize=True)
    return float(sum(share_p.get(g, 0.0) * share for g, share in share_t.items()))


def _scores(predicted: np.ndarray, baseline: np.ndarray, true: np.ndarray) -> dict[str, float]:
    return {"model": _accuracy(predicted, true), "random": _chance(predicted, true),
            "largest_feature": _accuracy(baseline, true)}


def reason_accuracy(contributions: pd.DataFrame, valid: pd.DataFrame, train: pd.DataFrame,
                    specs: dict[str, FeatureSpec], top_tier: np.ndarray, true_groups: np.ndarray) -> ReasonAccuracy:
    """Reason accuracy of the model's driver groups against the recorded true cause groups.

    Args:
        contributions: exact SHAP contributions of the validation rows (features + bias).
        valid: the validation rows (features and `label`), in the order of `contributions`.
        train: the training rows, the reference the largest-feature baseline standardises on.
        top_tier: whether each validation row is in the top tier.
        true_groups: each row's true cause group (None where no cause dominates or nothing was recorded).
    """
    predicted = dominant_groups(contributions, specs)
    features = [c for c in contributions.columns if c != "bias"]
    baseline = largest_feature_groups(valid, train, specs, features)
    true = np.asarray(true_groups, dtype=object)
    known = pd.notna(pd.Series(true)).to_numpy()
    top = np.asarray(top_tier, dtype=bool)
    churned = valid["label"].to_numpy() == 1
    rows = top & churned & known
    everyone = top & known
    return ReasonAccuracy(
        churners=_scores(predicted[rows], baseline[rows], true[rows]),
        top_tier=_scores(predicted[everyone], baseline[everyone], true[everyone]),
        churners_rows=int(rows.sum()), churners_without_cause=int((top & churned & ~known).sum()),
        top_tier_rows=int(everyone.sum()))
