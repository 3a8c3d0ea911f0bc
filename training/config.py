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
    health_score: HealthConfig = Field(default_factory=lambda: HealthConfig())


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
    # Boosters of the chosen complexity trained with seeds seed..seed+N-1 and averaged (1 = a single booster).
    bagging_seeds: int = Field(default=1, ge=1, le=20)
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
    """One measure of the health score: 100 points at `good`, 0 at `bad`, a straight line in between. Thresholds
    and weight left out are fitted on the training window (training/health.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature: str
    weight: float | None = Field(default=None, gt=0)
    good: float | None = None
    bad: float | None = None

    @model_validator(mode="after")
    def _distinct(self) -> HealthComponent:
        if (self.good is None) != (self.bad is None):
            raise ValueError(f"health component {self.feature}: pin both good and bad, or neither (fitted)")
        if self.good is not None and self.good == self.bad:
            raise ValueError(f"health component {self.feature}: good and bad thresholds must differ")
        return self

    @property
    def pinned(self) -> bool:
        """Thresholds and weight all given: nothing of this measure is fitted."""
        return self.good is not None and self.weight is not None


class HealthConfig(BaseModel):
    """`evaluation.health_score`: the rule-based health score, fitted on the training window unless pinned.

    Attributes:
        measures: measures to pin (any of good, bad, weight) or to add; a listed measure is always considered, and
            left out only when its thresholds or weight are fitted and its churners are no worse than the rest.
        auto: also pick every numeric cause feature of the catalog's frequency, breadth, depth, value, support and
            voice groups with a risk direction; False: only `measures`.
        good_quantile, bad_quantile: a fitted measure scores 100 at the retained accounts' `good_quantile` and 0 at
            the churned accounts' `bad_quantile`, both read on the higher-is-healthier side (mirrored for measures
            where a lower value is healthier, e.g. tickets). Quantiles move with the data's scale, so a warehouse
            with ten times the activity gets thresholds ten times higher.
        segment_by: account attribute thresholds are fitted per value of (null = pooled only).
        min_segment_rows, min_segment_churners: a segment with fewer labelled training rows or churners uses the
            pooled thresholds.

    The old form, a plain list of {feature, weight, good, bad}, is read as `measures` with `auto: false`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    measures: list[HealthComponent] = Field(default_factory=list)
    auto: bool = True
    good_quantile: float = Field(default=0.75, gt=0, lt=1)
    bad_quantile: float = Field(default=0.25, gt=0, lt=1)
    segment_by: str | None = "segment"
    min_segment_rows: int = Field(default=1000, ge=1)
    min_segment_churners: int = Field(default=50, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _list_form(cls, value):
        if isinstance(value, list):
            return {"measures": value, "auto": False}
        return value

    @model_validator(mode="after")
    def _something_to_score(self) -> HealthConfig:
        if not self.auto and not self.measures:
            raise ValueError("auto is false and no measures are listed: the health score would have no measure")
        features = [m.feature for m in self.measures]
        repeated = sorted({f for f in features if features.count(f) > 1})
        if repeated:
            raise ValueError(f"measures: {', '.join(repeated)} listed more than once")
        return self

    @property
    def fully_pinned(self) -> bool:
        """Every measure is pinned and none is picked: the score needs no fitting."""
        return not self.auto and all(m.pinned for m in self.measures)
