"""LightGBM training with early stopping on out-of-time validation data."""

from __future__ import annotations

import os
import re
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
    # The LightGBM settings chosen on the calibration dates (not pinned in params), for the run's record.
    chosen: dict = field(default_factory=dict)
    # The event names its features read (core, value, mix) and which were picked automatically at training
    # (`features.vocabulary.EventVocabulary.to_dict`): scoring computes the same features, never re-picking them.
    vocabulary: dict = field(default_factory=dict)
    # The feature settings it was trained with (`features.vocabulary.feature_settings`): scoring with other windows
    # or session gaps would feed it features that mean something else, so scoring refuses that.
    feature_settings: dict = field(default_factory=dict)

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


# The complexity grid: leaves per tree (capped by the churners there are to split on) × L2 regularisation.
LEAVES = (4, 8, 16, 32)
REG_LAMBDA = (1.0, 10.0)
# At least this many churners per leaf of the largest tree searched: fewer and leaves fit single accounts.
CHURNERS_PER_LEAF = 10


def complexity_grid(rows: int, churners: int, pinned: dict) -> list[dict]:
    """The candidate settings for a training set's size: leaves up to churners / CHURNERS_PER_LEAF (at least the
    smallest), min_child_samples an eighth of the churners (10 to 100: a leaf must hold enough rows to mean
    anything), each with a light and a strong L2 penalty. A parameter pinned in `model.lightgbm` is not searched.

    Args:
        rows, churners: labelled training rows and churners among them.
        pinned: the LightGBM parameters set in params.
    """
    leaves = [n for n in LEAVES if n * CHURNERS_PER_LEAF <= churners] or [LEAVES[0]]
    min_child = int(np.clip(churners // 8, 10, 100))
    grid = [{"num_leaves": n, "reg_lambda": r, "min_child_samples": min_child} for n in leaves for r in REG_LAMBDA]
    return list({tuple(sorted((k, v) for k, v in g.items() if k not in pinned)): g for g in grid}.values())


def _fit(split: Split, features: list[str], params: dict, config: ModelConfig) -> tuple[lgb.Booster, int, float]:
    """One booster stopped early on the tuning rows: (booster trimmed to its best iteration, trees, tuning log loss)."""
    model = lgb.LGBMClassifier(**params)
    model.fit(model_input(split.train, features), split.train["label"],
              eval_X=(model_input(split.tuning, features),), eval_y=(split.tuning["label"],),
              eval_metric="binary_logloss",
              callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)])
    booster = model.booster_
    best = model.best_iteration_ or booster.current_iteration()
    # Keep only the trees early stopping chose, so every consumer of the booster predicts the same.
    trimmed = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return trimmed, best, float(model.best_score_["valid_0"]["binary_logloss"])


def _scaled_leaves(tree: str, factor: float) -> str:
    def scale(match: re.Match) -> str:
        return match.group(1) + " ".join(repr(float(v) * factor) for v in match.group(2).split())
    return re.sub(r"^(leaf_value=|internal_value=)(.*)$", scale, tree, flags=re.M)


def average_boosters(boosters: list[lgb.Booster]) -> lgb.Booster:
    """One booster predicting the mean log-odds of `boosters` (trained on the same data): every tree of each, its
    leaf values divided by their number. Its TreeSHAP contributions are the mean of theirs, so explanations,
    drift weights and the saved model work as for a single booster."""
    texts = [b.model_to_string() for b in boosters]
    head, rest = texts[0].split("\nTree=0\n", 1)
    head = re.sub(r"^tree_sizes=.*\n", "", head, flags=re.M)  # sizes index the trees of one model: dropped
    trees = []
    for text in texts:
        body = text[text.index("\nTree=0\n") + 1:text.index("end of trees")]
        trees += [t.strip("\n") for t in re.split(r"(?m)^(?=Tree=\d+$)", body) if t.strip()]
    blocks = [_scaled_leaves(re.sub(r"^Tree=\d+", f"Tree={i}", t), 1 / len(boosters)) for i, t in enumerate(trees)]
    return lgb.Booster(model_str=head + "\n" + "\n\n".join(blocks) + "\n\n\n" + rest[rest.index("end of trees"):])


def train_model(split: Split, features: list[str], config: ModelConfig,
                directions: dict[str, str] | None = None) -> TrainedModel:
    """Fit LightGBM on the training part, its complexity chosen on the held-out tuning part (`complexity_grid`, by
    log loss, simplest first on ties) and stopping early there, then calibrate its probabilities on that same
    held-out time (the method chosen by out-of-fold Brier score). With `config.bagging_seeds` N > 1, N boosters of
    the chosen complexity (seeds seed..seed+N-1) are averaged into one (`average_boosters`).

    Args:
        directions: feature → 'up' / 'down' / 'mixed'; with `config.monotone`, risk is constrained to move that way.
    """
    pinned = dict(config.lightgbm.items())
    base = {"objective": "binary", "random_state": config.seed, "n_jobs": config.num_threads,
            "deterministic": True, "force_row_wise": True, "verbose": -1, **pinned}
    if config.monotone and directions:
        base["monotone_constraints"] = monotone_constraints(features, directions)
    best = None
    grid = complexity_grid(len(split.train), int(split.train["label"].sum()), pinned)
    for candidate in grid:
        chosen = {k: v for k, v in candidate.items() if k not in pinned}
        booster, trees, loss = _fit(split, features, base | chosen, config)
        if best is None or loss < best[2] - 1e-6:
            best = (booster, trees, loss, chosen)
    booster, trees, _, chosen = best
    if config.bagging_seeds > 1:
        bagged = [booster] + [_fit(split, features, base | chosen | {"random_state": config.seed + k}, config)[0]
                              for k in range(1, config.bagging_seeds)]
        booster = average_boosters(bagged)
        trees = booster.current_iteration()
    model = TrainedModel(booster=booster, features=list(features), best_iteration=trees,
                         base_rate=float(split.train["label"].mean()), chosen=chosen)
    if config.calibration:
        calibrator, _ = choose_calibrator(model.predict_raw(split.tuning), split.tuning["label"].to_numpy(),
                                          tuple(config.calibration), seed=config.seed)
        model.calibrator = calibrator
    return model
