"""Typed settings of the training stage: the `model:`, `evaluation:` and `mlflow:` sections of params.yaml.

Import-light on purpose (pydantic only): loading params.yaml must not import an ML library.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PromotionConfig(BaseModel):
    """The gate a challenger passes to become champion."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Literal["roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift", "recall_at_capacity",
                    "mrr_captured_at_capacity", "ece"] = "roc_auc"
    min_gain: float = 0.0


class EvaluationConfig(BaseModel):
    """The `evaluation:` section: what the CS team can act on and the rule-based health score baseline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    capacity: int = Field(default=50, ge=1)
    segments: list[str] = Field(default_factory=lambda: ["segment", "plan"])
    health_score: list[HealthComponent] = Field(default_factory=list)


class ModelConfig(BaseModel):
    """The `model:` section: LightGBM parameters, seed, threads and the split."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 42
    num_threads: int = Field(default=1, ge=1)
    validation_snapshots: int = Field(default=3, ge=1)
    calibration_snapshots: int = Field(default=3, ge=0)
    calibration: list[Literal["none", "sigmoid", "isotonic"]] = Field(
        default_factory=lambda: ["none", "sigmoid", "isotonic"])
    early_stopping_rounds: int = Field(default=50, ge=1)
    monotone: bool = True
    lightgbm: dict[str, float | int | str | bool] = Field(default_factory=dict)
    promotion: PromotionConfig = PromotionConfig()


class RegistryConfig(BaseModel):
    """The `mlflow:` section: where runs and models are kept and the registered model's name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tracking_uri: str = "sqlite:///mlruns.db"
    artifact_root: str = "mlruns"
    experiment: str = "churn"
    model_name: str = "churn-lightgbm"


class HealthComponent(BaseModel):
    """One measure of the health score: 100 points at `good`, 0 at `bad`, a straight line in between."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature: str
    weight: float = Field(gt=0)
    good: float
    bad: float

    @model_validator(mode="after")
    def _distinct(self) -> HealthComponent:
        if self.good == self.bad:
            raise ValueError(f"health component {self.feature}: good and bad thresholds must differ")
        return self
