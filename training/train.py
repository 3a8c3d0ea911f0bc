"""LightGBM training with early stopping on out-of-time validation data."""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.config import ModelConfig
from training.dataset import Split


@dataclass
class TrainedModel:
    """A fitted booster and the features it reads, in order."""

    booster: lgb.Booster
    features: list[str]
    best_iteration: int

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(frame[self.features], num_iteration=self.best_iteration or None)


def train_model(split: Split, features: list[str], config: ModelConfig) -> TrainedModel:
    """Fit LightGBM on the training part, stopping early on the validation part's log loss."""
    params = {
        "objective": "binary", "random_state": config.seed, "n_jobs": config.num_threads,
        "deterministic": True, "force_row_wise": True, "verbose": -1, **config.lightgbm,
    }
    model = lgb.LGBMClassifier(**params)
    model.fit(split.train[features], split.train["label"],
              eval_X=(split.valid[features],), eval_y=(split.valid["label"],), eval_metric="binary_logloss",
              callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)])
    booster = model.booster_
    best = model.best_iteration_ or booster.current_iteration()
    # Keep only the trees early stopping chose, so every consumer of the booster predicts the same.
    trimmed = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return TrainedModel(booster=trimmed, features=list(features), best_iteration=best)
