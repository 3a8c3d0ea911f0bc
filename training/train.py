"""LightGBM training with early stopping on out-of-time validation data."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.calibrate import Calibrator, choose_calibrator
from training.config import ModelConfig
from training.dataset import Split
from training.health import HealthScore


def model_input(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The feature columns as LightGBM reads them: text columns become pandas categoricals.

    The booster keeps the categories it was trained on and maps these onto them by value, so a category it
    never saw becomes missing rather than a wrong code.
    """
    data = frame[features].copy()
    for column in features:
        if not pd.api.types.is_numeric_dtype(data[column]):
            values = data[column].astype("string")
            data[column] = pd.Categorical(values, categories=sorted(values.dropna().unique()))
    return data


@dataclass
class TrainedModel:
    """A fitted booster, the features it reads in order, and the calibration of its probabilities."""

    booster: lgb.Booster
    features: list[str]
    best_iteration: int
    calibrator: Calibrator = Calibrator("none", {})
    # Each feature's distribution on the training rows, kept with the model for the drift guard at scoring.
    reference: dict = field(default_factory=dict)
    # The health score fitted on the same training window, written to churn_scores.health_score at scoring.
    health: HealthScore | None = None
    # The training rows' churn rate: tiers by lift are multiples of it, at scoring as in training.
    base_rate: float | None = None

    def predict_raw(self, frame: pd.DataFrame) -> np.ndarray:
        """The booster's own probabilities, before calibration."""
        return self.booster.predict(model_input(frame, self.features))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probabilities for the rows of `frame`."""
        return self.calibrator.apply(self.predict_raw(frame))

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """TreeSHAP contributions in log-odds: one column per feature, then the expected value.

        Computed on every core this process may use: each row's values are its own, whatever the thread count,
        and TreeSHAP is most of the time scoring takes.
        """
        return self.booster.predict(model_input(frame, self.features), pred_contrib=True,
                                    num_threads=len(os.sched_getaffinity(0)))


def monotone_constraints(features: list[str], directions: dict[str, str]) -> list[int]:
    """LightGBM monotone constraints from risk directions: +1 where risk rises with the value ('up'), -1 where it
    falls ('down'), 0 otherwise (and for features without a direction)."""
    return [{"up": 1, "down": -1}.get(directions.get(f, "mixed"), 0) for f in features]


def train_model(split: Split, features: list[str], config: ModelConfig,
                directions: dict[str, str] | None = None) -> TrainedModel:
    """Fit LightGBM on the training part, stopping early on the held-out tuning part's log loss, then calibrate
    its probabilities on that same held-out time (the method chosen by out-of-fold Brier score).

    Args:
        directions: feature → 'up' / 'down' / 'mixed'; with `config.monotone`, risk is constrained to move that way.
    """
    params = {
        "objective": "binary", "random_state": config.seed, "n_jobs": config.num_threads,
        "deterministic": True, "force_row_wise": True, "verbose": -1, **config.lightgbm,
    }
    if config.monotone and directions:
        params["monotone_constraints"] = monotone_constraints(features, directions)
    model = lgb.LGBMClassifier(**params)
    model.fit(model_input(split.train, features), split.train["label"],
              eval_X=(model_input(split.tuning, features),), eval_y=(split.tuning["label"],),
              eval_metric="binary_logloss",
              callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)])
    booster = model.booster_
    best = model.best_iteration_ or booster.current_iteration()
    # Keep only the trees early stopping chose, so every consumer of the booster predicts the same.
    trimmed = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    model = TrainedModel(booster=trimmed, features=list(features), best_iteration=best,
                         base_rate=float(split.train["label"].mean()))
    if config.calibration:
        calibrator, _ = choose_calibrator(model.predict_raw(split.tuning), split.tuning["label"].to_numpy(),
                                          tuple(config.calibration), seed=config.seed)
        model.calibrator = calibrator
    return model
