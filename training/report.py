"""The data team's training report (self-contained HTML) and the model card (Markdown) of a training run."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import jinja2
import numpy as np
import pandas as pd

from features.catalog import FeatureSpec
from training.evaluate import calibration_table, gains_table, segment_metrics
from training.experiment import MODEL, Experiment
from training.plots import plot_calibration, plot_gains, plot_precision_recall, plot_roc

METRIC_NAMES = ("roc_auc", "pr_auc", "brier", "log_loss", "ece", "top_decile_lift", "top_decile_capture",
                "recall_at_capacity", "precision_at_capacity", "mrr_captured_at_capacity")
if TYPE_CHECKING:
    from serving.reason_accuracy import ReasonAccuracy

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("training", "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined)


@dataclass
class RunFacts:
    """What the report and the model card say about the run beyond the experiment itself."""

    model_name: str
    version: str
    run_id: str
    trained_at: str
    git_commit: str
    capacity: int
    decision: dict
    oracle: float | None = None  # the hindsight oracle's ROC-AUC (a simulated warehouse)
    nowcast: float | None = None  # the nowcast oracle's: the fair ceiling (a simulated warehouse)
    reasons: ReasonAccuracy | None = None  # on a warehouse that records its churn causes (a simulated one)
    left_out: str = ""
    vocabulary: str = ""  # the event names the features read and where they came from (EventVocabulary.describe)
    segments: dict[str, np.ndarray] = field(default_factory=dict)
    bagging_seeds: int = 1  # boosters averaged into the model (model.bagging_seeds)


def global_drivers(experiment: Experiment, specs: dict[str, FeatureSpec], top: int = 15) -> list[dict]:
    """The features with the largest mean |SHAP| on the validation rows, with their catalog description."""
    contributions = experiment.model.contributions(experiment.split.valid)[:, :-1]
    importance = np.abs(contributions).mean(axis=0)
    order = np.argsort(-importance, kind="stable")[:top]
    return [{"feature": experiment.model.features[i], "importance": float(importance[i]),
             "group": specs[experiment.model.features[i]].group,
             "description": specs[experiment.model.features[i]].description} for i in order]


def render_plots(experiment: Experiment) -> dict[str, bytes]:
    """ROC, precision-recall, calibration and gains of the model and its baselines, as PNG bytes."""
    labels = experiment.split.valid["label"].to_numpy()
    curves = {name: (labels, p) for name, p in experiment.predictions.items()}
    return {"roc": plot_roc(curves), "precision_recall": plot_precision_recall(curves),
            "calibration": plot_calibration(curves), "gains": plot_gains(curves)}


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float | np.floating):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def _segment_tables(experiment: Experiment, facts: RunFacts) -> dict[str, pd.DataFrame]:
    labels, p = experiment.split.valid["label"].to_numpy(), experiment.predictions[MODEL]
    return {name: segment_metrics(labels, p, values) for name, values in facts.segments.items()}


# (column of churn_model_performance, its validation twin, title, lower is better)
WILD_METRICS = [("roc_auc", "validation_roc_auc", "ROC-AUC", False), ("pr_auc", "validation_pr_auc", "PR-AUC", False),
                ("brier", "validation_brier", "Brier", True),
                ("recall_at_capacity", "validation_recall_at_capacity", "recall at capacity", False)]


def build_in_the_wild(performance: pd.DataFrame | None) -> dict:
    """How the scoring models did in the wild (churn_model_performance, one row per matured scoring, oldest first)
    beside the validation figures each was promoted on, and a sentence on the newest; `rows` is None without the
    table, empty when nothing has been judged yet."""
    if performance is None:
        return {"rows": None, "sentence": None, "metrics": WILD_METRICS}
    ordered = performance.sort_values(["as_of", "model_version"], kind="stable").reset_index(drop=True)
    rows = [{**row, "as_of": f"{pd.Timestamp(row['as_of']):%Y-%m-%d}"} for row in ordered.to_dict(orient="records")]
    sentence = None
    if rows:
        last = ordered.iloc[-1]
        sentence = (f"On its newest judged scoring ({pd.Timestamp(last['as_of']):%Y-%m-%d}, {int(last['accounts']):,} "
                    f"accounts), {last['model_name']} v{last['model_version']} reached ROC-AUC {_fmt(last['roc_auc'])}")
        if not pd.isna(last["validation_roc_auc"]):
            sentence += (f" against {_fmt(last['validation_roc_auc'])} on the validation it was promoted on "
                         f"({last['roc_auc'] - last['validation_roc_auc']:+.3f})")
        sentence += "."
    return {"rows": rows, "sentence": sentence, "metrics": WILD_METRICS}


def render_training_report(experiment: Experiment, facts: RunFacts, specs: dict[str, FeatureSpec],
                           plots: dict[str, bytes], backtest: pd.DataFrame | None = None,
                           backtest_folds: int = 0, performance: pd.DataFrame | None = None) -> str:
    """The training report as one HTML page with its plots embedded (opens with no network).

    Args:
        performance: the rows of churn_model_performance (how the scoring models did in the wild), None without
            the table.
    """
    split, labels = experiment.split, experiment.split.valid["label"].to_numpy()
    parts = [("train", split.train), ("calibration", split.calib), ("validation", split.valid)]
    run = {**facts.__dict__, "window": split.window, "valid_rows": len(split.valid),
           "features": experiment.model.features, "calibration_method": experiment.model.calibrator.method,
           "calibration_scores": experiment.calibration_scores, "chosen": experiment.model.chosen,
           "trees": experiment.model.best_iteration, "bagging_seeds": facts.bagging_seeds,
           "rows": " / ".join(f"{len(p):,}" for _, p in parts if p is not None),
           "churn_rates": f"{split.train.label.mean():.1%} / {split.valid.label.mean():.1%}"}
    return _ENV.get_template("training_report.html").render(
        run=run, model=experiment.metrics[MODEL], metrics=experiment.metrics, metric_names=METRIC_NAMES,
        fmt=_fmt, plots={k: base64.b64encode(v).decode() for k, v in plots.items()},
        calibration=calibration_table(labels, experiment.predictions[MODEL]),
        gains=gains_table(labels, experiment.predictions[MODEL], mrr=split.valid["mrr"].to_numpy()),
        segments=_segment_tables(experiment, facts), drivers=global_drivers(experiment, specs),
        backtest=backtest, backtest_folds=backtest_folds, wild=build_in_the_wild(performance))


def render_model_card(experiment: Experiment, facts: RunFacts, backtest: pd.DataFrame | None = None) -> str:
    """A Markdown model card: what the model is, its data, its metrics beside the baselines, and its limits."""
    split = experiment.split
    header = "| contender | " + " | ".join(METRIC_NAMES[:6]) + " |"
    rows = [f"| {name} | " + " | ".join(_fmt(m.get(k)) for k in METRIC_NAMES[:6]) + " |"
            for name, m in experiment.metrics.items()]
    lines = [
        f"# Model card: {facts.model_name} v{facts.version}", "",
        "**What**: LightGBM (binary) predicting the probability that a B2B SaaS account churns within the label "
        f"horizon, calibrated on held-out time ({experiment.model.calibrator.method}). Trained {facts.trained_at}, "
        f"git {facts.git_commit[:10]}, MLflow run {facts.run_id}.", "",
        f"**Data**: {len(split.train):,} training rows (as-of {split.window['train_as_of']}), "
        f"{len(split.valid):,} validation rows (as-of {split.window['valid_as_of']}); "
        f"{len(experiment.model.features)} features; left out for missing sources: {facts.left_out or 'none'}.", "",
        f"**Event names**: {facts.vocabulary or 'as in params'}.", "",
        "**Validation metrics beside the baselines**:", "", header, "|" + " --- |" * 7, *rows, "",
    ]
    if backtest is not None:
        lines += ["**Backtest** (mean ± std over folds):", "",
                  *(f"- {r.contender}: ROC-AUC {r.roc_auc_mean:.3f} ± {r.roc_auc_std:.3f}, "
                    f"Brier {r.brier_mean:.4f} ± {r.brier_std:.4f}" for r in backtest.itertuples()), ""]
    lines += ["**Limits**: probabilities hold for accounts like those in the training window; a change in product, "
              "pricing or tracking shifts them (watch drift). Features read only data before each as-of, but "
              "ticket flags and satisfaction are taken as known at resolution. Reasons are SHAP contributions: "
              "they explain the model, not the cause of churn.", "",
              f"**Promotion**: {facts.decision['reason']}."]
    return "\n".join(lines)
