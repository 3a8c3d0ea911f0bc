"""Batch scoring: probabilities, tiers, ranks and reasons for every account active at an as-of."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.catalog import FeatureSpec
from serving.explain import explain_predictions, rank_drivers
from training.baselines import HealthComponent, compute_health_score
from training.train import TrainedModel


class ScoringConfig(BaseModel):
    """The `scoring:` section: how many reasons to give and where the risk tiers start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top_reasons: int = Field(default=3, ge=1, le=10)
    tiers: dict[str, float] = Field(default_factory=lambda: {"high": 0.35, "medium": 0.15})
    lowest_tier: str = "low"

    @field_validator("tiers")
    @classmethod
    def _thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not 0 < t < 1 for t in value.values()):
            raise ValueError("tier thresholds are probabilities strictly between 0 and 1")
        return value


@dataclass(frozen=True)
class ScoredModel:
    """The model to score with and the provenance written on every row."""

    model: TrainedModel
    name: str
    version: str


def assign_tiers(probabilities: np.ndarray, config: ScoringConfig) -> np.ndarray:
    """Name each probability's tier: the highest tier whose threshold it reaches, else the lowest tier."""
    tiers = np.full(len(probabilities), config.lowest_tier, dtype=object)
    for name, threshold in sorted(config.tiers.items(), key=lambda kv: kv[1]):
        tiers[probabilities >= threshold] = name
    return tiers


def check_features_available(model: TrainedModel, table: pd.DataFrame) -> None:
    """Raise ValueError naming the features the model needs that the feature table lacks."""
    lacking = [f for f in model.features if f not in table.columns]
    if lacking:
        raise ValueError(f"model needs features the warehouse cannot provide: {', '.join(lacking)} "
                         "(retrain on this warehouse, or map the sources these features need)")


def score_accounts(scored: ScoredModel, table: pd.DataFrame, specs: dict[str, FeatureSpec],
                   config: ScoringConfig, scored_at: datetime,
                   health: list[HealthComponent] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every row of the feature table; return (churn_scores rows, churn_score_drivers rows).

    Args:
        table: feature table rows (account_id, as_of, mrr, features) for one or more as-of dates.
        specs: catalog entries by feature name, for the reasons in words.
        health: the rule-based health score's components (churn_scores.health_score), if any.
    """
    check_features_available(scored.model, table)
    table = table.reset_index(drop=True)
    probability = scored.model.predict(table)
    contributions = explain_predictions(scored.model, table)
    drivers = rank_drivers(contributions, table, specs, config.top_reasons)
    reasons = drivers.groupby("row")["reason"].agg("; ".join)
    scores = pd.DataFrame({
        "account_id": table["account_id"].astype(str),
        "as_of": pd.to_datetime(table["as_of"]).dt.date,
        "churn_probability": probability,
        "risk_tier": assign_tiers(probability, config),
        "risk_rank": pd.Series(probability).groupby(table["as_of"]).rank(method="first", ascending=False)
        .astype("int64"),
        "health_score": compute_health_score(table, health).to_numpy() if health else np.nan,
        "mrr": table["mrr"].astype(float),
        "top_reasons": reasons.reindex(range(len(table))).fillna("").to_numpy(),
        "recommended_action": None,
        "model_name": scored.name,
        "model_version": scored.version,
        "scored_at": pd.Timestamp(scored_at),
    })
    drivers = drivers.assign(account_id=scores["account_id"].to_numpy()[drivers["row"]],
                             as_of=scores["as_of"].to_numpy()[drivers["row"]])
    columns = ["account_id", "as_of", "rank", "feature", "value", "contribution", "direction", "reason"]
    return scores, drivers[columns]
