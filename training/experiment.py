"""One out-of-time experiment: the model and its baselines fitted on one split and judged on the same rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.baselines import fit_logistic_baseline, health_risk, predict_logistic
from training.calibrate import choose_calibrator
from training.config import EvaluationConfig, HealthConfig, ModelConfig
from training.dataset import Split, labelled_dates, split_out_of_time
from training.evaluate import evaluate_predictions
from training.health import HealthScore, fit_health_score
from training.train import TrainedModel, train_model

MODEL = "lightgbm"
BASELINES = ("health_score", "logistic_regression")


@dataclass
class Experiment:
    """A fitted model, its split, and every contender's validation probabilities and metrics."""

    model: TrainedModel
    split: Split
    predictions: dict[str, np.ndarray]
    metrics: dict[str, dict[str, float]]
    calibration_scores: dict[str, float]


def score_contender(split: Split, probabilities: np.ndarray, evaluation: EvaluationConfig) -> dict[str, float]:
    """Every metric of one contender on the validation rows, capacity applied per as-of date."""
    valid = split.valid
    return evaluate_predictions(valid["label"].to_numpy(), probabilities, mrr=valid["mrr"].to_numpy(),
                                groups=valid["as_of"].to_numpy(), capacity=evaluation.capacity)


def health_segments(frame: pd.DataFrame, health: HealthConfig | HealthScore) -> pd.Series | None:
    """Each row's value of the attribute the health score's thresholds are split by, if the frame has it."""
    return frame[health.segment_by] if health.segment_by and health.segment_by in frame.columns else None


def fit_health(split: Split, evaluation: EvaluationConfig, specs: dict | None) -> HealthScore:
    """The health score of this split: as pinned in params when nothing is left to fit, else fitted on the
    training rows (training/health.py)."""
    config = evaluation.health_score
    if config.fully_pinned:
        return HealthScore.from_pins(config.measures)
    return fit_health_score(split.train, specs or {}, config, health_segments(split.train, config))


def _health_probabilities(split: Split, health: HealthScore, seed: int) -> np.ndarray:
    # The health score ranks by itself; mapped to probabilities on the held-out tuning time it can be judged on
    # Brier and log loss like the model, which is calibrated on that same time.
    def risk(frame: pd.DataFrame) -> np.ndarray:
        return health_risk(health.score(frame, health_segments(frame, health)))

    calibrator, _ = choose_calibrator(risk(split.tuning), split.tuning["label"].to_numpy(), seed=seed)
    return calibrator.apply(risk(split.valid))


def run_experiment(split: Split, features: list[str], config: ModelConfig, evaluation: EvaluationConfig,
                   specs: dict | None = None) -> Experiment:
    """Fit LightGBM (calibrated on held-out time), the health score and a logistic regression; evaluate all three
    on the validation rows. The fitted health score goes with the model, so scoring writes the same one.

    Args:
        specs: catalog entries by feature name: risk directions for monotone constraints, groups for the health
            score's measures.
    """
    directions = {name: spec.direction for name, spec in (specs or {}).items()}
    model = train_model(split, features, config, directions)
    model.health = fit_health(split, evaluation, specs)
    _, calibration_scores = choose_calibrator(model.predict_raw(split.tuning), split.tuning["label"].to_numpy(),
                                              tuple(config.calibration), seed=config.seed)
    logistic = fit_logistic_baseline(split.train, features, config.seed)
    predictions = {
        MODEL: model.predict(split.valid),
        "health_score": _health_probabilities(split, model.health, config.seed),
        "logistic_regression": predict_logistic(logistic, split.valid, features),
    }
    metrics = {name: score_contender(split, p, evaluation) for name, p in predictions.items()}
    return Experiment(model=model, split=split, predictions=predictions, metrics=metrics,
                      calibration_scores=calibration_scores)


def run_backtest(table: pd.DataFrame, features: list[str], config: ModelConfig, evaluation: EvaluationConfig,
                 folds: int, specs: dict | None = None) -> pd.DataFrame:
    """Refit on `folds` successive out-of-time folds, each validating on an older block of as-of dates.

    Returns:
        One row per fold and contender: fold, contender, validation window, and every metric.
    """
    rows = []
    for fold in range(folds):
        split = split_out_of_time(table, config.validation_snapshots, config.calibration_snapshots,
                                  skip_newest=fold * config.validation_snapshots)
        result = run_experiment(split, features, config, evaluation, specs)
        for contender, metrics in result.metrics.items():
            rows.append({"fold": fold + 1, "contender": contender, "valid_as_of": split.window["valid_as_of"],
                         **metrics})
    return pd.DataFrame(rows)


def summarise_backtest(folds: pd.DataFrame, metrics: tuple[str, ...] = ("roc_auc", "pr_auc", "brier")) -> pd.DataFrame:
    """Mean and standard deviation of each metric per contender over the folds."""
    summary = folds.groupby("contender", sort=False)[list(metrics)].agg(["mean", "std"])
    summary.columns = [f"{metric}_{stat}" for metric, stat in summary.columns]
    return summary.reset_index()


def max_backtest_folds(table: pd.DataFrame, config: ModelConfig) -> int:
    """How many backtest folds the labelled dates allow (each keeps two training dates)."""
    spare = len(labelled_dates(table)) - config.calibration_snapshots - 2
    return max(0, spare // config.validation_snapshots)
