"""Typed settings of the training stage: the `model:` and `mlflow:` sections of params.yaml."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PromotionConfig(BaseModel):
    """The gate a challenger passes to become champion."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = "roc_auc"
    min_gain: float = 0.0


class ModelConfig(BaseModel):
    """The `model:` section: LightGBM parameters, seed, threads and the split."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 42
    num_threads: int = Field(default=1, ge=1)
    validation_snapshots: int = Field(default=3, ge=1)
    early_stopping_rounds: int = Field(default=50, ge=1)
    lightgbm: dict[str, float | int | str | bool] = Field(default_factory=dict)
    promotion: PromotionConfig = PromotionConfig()


class RegistryConfig(BaseModel):
    """The `mlflow:` section: where runs and models are kept and the registered model's name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tracking_uri: str = "sqlite:///mlruns.db"
    artifact_root: str = "mlruns"
    experiment: str = "churn"
    model_name: str = "churn-lightgbm"
