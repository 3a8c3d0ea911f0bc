"""LightGBM training with early stopping on out-of-time validation data."""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.config import ModelConfig
from training.dataset import Split


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
    """A fitted booster and the features it reads, in order."""

    booster: lgb.Booster
    features: list[str]
    best_iteration: int

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Churn probabilities for the rows of `frame`."""
        return self.booster.predict(model_input(frame, self.features))

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """TreeSHAP contributions in log-odds: one column per feature, then the expected value."""
        return self.booster.predict(model_input(frame, self.features), pred_contrib=True)


def train_model(split: Split, features: list[str], config: ModelConfig) -> TrainedModel:
    """Fit LightGBM on the training part, stopping early on the validation part's log loss."""
    params = {
        "objective": "binary", "random_state": config.seed, "n_jobs": config.num_threads,
        "deterministic": True, "force_row_wise": True, "verbose": -1, **config.lightgbm,
    }
    model = lgb.LGBMClassifier(**params)
    model.fit(model_input(split.train, features), split.train["label"],
              eval_X=(model_input(split.valid, features),), eval_y=(split.valid["label"],),
              eval_metric="binary_logloss",
              callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)])
    booster = model.booster_
    best = model.best_iteration_ or booster.current_iteration()
    # Keep only the trees early stopping chose, so every consumer of the booster predicts the same.
    trimmed = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return TrainedModel(booster=trimmed, features=list(features), best_iteration=best)
