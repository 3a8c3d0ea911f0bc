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


class LightGBMParams(BaseModel):
    """`model.lightgbm`: LGBMClassifier parameters. The usual ones are checked here, so a bad value names its key
    instead of failing inside LightGBM; any other LightGBM parameter passes through unchecked."""

    model_config = ConfigDict(extra="allow", frozen=True)

    n_estimators: int | None = Field(default=None, ge=1)
    learning_rate: float | None = Field(default=None, gt=0, le=1)
    num_leaves: int | None = Field(default=None, ge=2, le=131072)
    max_depth: int | None = Field(default=None, ge=-1)
    min_child_samples: int | None = Field(default=None, ge=1)
    subsample: float | None = Field(default=None, gt=0, le=1)
    subsample_freq: int | None = Field(default=None, ge=0)
    colsample_bytree: float | None = Field(default=None, gt=0, le=1)
    reg_lambda: float | None = Field(default=None, ge=0)
    reg_alpha: float | None = Field(default=None, ge=0)

    def items(self):
        """The parameters that are set, as (name, value) pairs (what LGBMClassifier takes)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}.items()

    def __getitem__(self, key: str):
        return dict(self.items())[key]

    def __iter__(self):
        return iter(dict(self.items()))

    def keys(self):
        return dict(self.items()).keys()


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
    lightgbm: LightGBMParams = Field(default_factory=lambda: LightGBMParams())
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
