"""Evaluation plots as PNG bytes, one figure per view with the model and its baselines overlaid.

Each function takes `curves`, a dict name → (labels, probabilities), and returns PNG bytes to log as an
MLflow artifact or embed in a report. Figures are drawn on matplotlib's Agg canvas directly (no pyplot, no
display, no change to the process-wide backend) under matplotlib's default style, so the same input gives
the same bytes whatever style or backend the caller has set.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping

import numpy as np
from matplotlib import style
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from training.evaluate import calibration_table, evaluate_predictions

Curves = Mapping[str, tuple[np.ndarray, np.ndarray]]
Draw = Callable[[Axes, str, np.ndarray, np.ndarray, dict[str, float]], None]
FIGSIZE_INCHES = (6.0, 4.5)
DPI = 110
# Fixed margins fit the axis labels at this size; an automatic layout would draw every figure twice.
MARGINS = {"left": 0.115, "right": 0.97, "bottom": 0.11, "top": 0.93}
REFERENCE = {"color": "0.55", "linestyle": "--", "linewidth": 1}


def _number(value: float, fmt: str) -> str:
    return "n/a" if math.isnan(value) else format(value, fmt)


def _render(curves: Curves, title: str, draw: Draw, finish: Callable[[Axes, list[np.ndarray]], None],
            legend_loc: str) -> bytes:
    if not curves:
        raise ValueError("curves is empty: pass at least one name → (labels, probabilities)")
    # evaluate_predictions validates the input and makes each legend number equal the logged metric.
    prepared = {name: (np.asarray(labels, dtype=float).astype(int), np.asarray(probabilities, dtype=float),
                       evaluate_predictions(labels, probabilities))
                for name, (labels, probabilities) in curves.items()}
    with style.context("default"):
        figure = Figure(figsize=FIGSIZE_INCHES, dpi=DPI)
        figure.subplots_adjust(**MARGINS)
        FigureCanvasAgg(figure)
        ax = figure.add_subplot()
        for name, (y, p, metrics) in prepared.items():
            draw(ax, name, y, p, metrics)
        finish(ax, [y for y, _, _ in prepared.values()])
        ax.set_title(title)
        ax.grid(alpha=0.3)
        # A fixed corner (where these curves leave room) rather than "best", which searches every point.
        ax.legend(loc=legend_loc, fontsize="small")
        buffer = io.BytesIO()
        # No "Software" text chunk: the bytes then depend on the drawing, not on the matplotlib version string.
        figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _unit_axes(ax: Axes, xlabel: str, ylabel: str) -> None:
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def plot_roc(curves: Curves) -> bytes:
    """Return a PNG of ROC curves, AUC in the legend, with the random-ranking diagonal."""
    def draw(ax: Axes, name: str, y: np.ndarray, p: np.ndarray, metrics: dict[str, float]) -> None:
        auc = metrics["roc_auc"]
        fpr, tpr = roc_curve(y, p)[:2] if not math.isnan(auc) else ([], [])
        ax.plot(fpr, tpr, label=f"{name} (AUC {_number(auc, '.3f')})")

    def finish(ax: Axes, _labels: list[np.ndarray]) -> None:
        ax.plot([0, 1], [0, 1], **REFERENCE, label="random ranking")
        _unit_axes(ax, "Share of non-churners flagged (false positive rate)",
                   "Share of churners flagged (true positive rate)")

    return _render(curves, "How well the score ranks churners above the rest", draw, finish, "lower right")


def plot_precision_recall(curves: Curves) -> bytes:
    """Return a PNG of precision-recall curves, average precision in the legend, with the churn-rate line."""
    def draw(ax: Axes, name: str, y: np.ndarray, p: np.ndarray, metrics: dict[str, float]) -> None:
        ap = metrics["pr_auc"]
        precision, recall = precision_recall_curve(y, p)[:2] if not math.isnan(ap) else ([], [])
        ax.step(recall, precision, where="post", label=f"{name} (AP {_number(ap, '.3f')})")

    def finish(ax: Axes, labels: list[np.ndarray]) -> None:
        # Precision of a random ranking is the churn rate; curves normally share labels, so usually one line.
        for rate in sorted({float(y.mean()) for y in labels if len(y)}):
            ax.axhline(rate, **REFERENCE, label=f"random ranking (churn rate {rate:.1%})")
        _unit_axes(ax, "Share of churners flagged (recall)", "Share of flagged accounts that churn (precision)")

    return _render(curves, "Precision against recall of churn flags", draw, finish, "upper right")


def plot_calibration(curves: Curves) -> bytes:
    """Return a PNG of observed churn rate against predicted probability per 10% bin, ECE in the legend."""
    def draw(ax: Axes, name: str, y: np.ndarray, p: np.ndarray, metrics: dict[str, float]) -> None:
        table = calibration_table(y, p)
        ax.plot(table.mean_predicted, table.observed_rate, marker="o", markersize=4,
                label=f"{name} (ECE {_number(metrics['ece'], '.3f')})")

    def finish(ax: Axes, _labels: list[np.ndarray]) -> None:
        ax.plot([0, 1], [0, 1], **REFERENCE, label="perfectly calibrated")
        _unit_axes(ax, "Predicted churn probability (bin average)", "Observed churn rate in the bin")

    return _render(curves, "Do predicted probabilities match observed churn?", draw, finish, "upper left")


def plot_gains(curves: Curves) -> bytes:
    """Return a PNG of cumulative gains (churners reached by contacting the riskiest accounts first).

    The legend shows each curve's share of churners in the top 10% of accounts; the references are random
    outreach (diagonal) and a perfect ranking of the first curve's labels.
    """
    def draw(ax: Axes, name: str, y: np.ndarray, p: np.ndarray, metrics: dict[str, float]) -> None:
        if y.any():
            # Equal probabilities keep row order, as in gains_table and top_decile_capture.
            reached = np.concatenate([[0.0], np.cumsum(y[np.argsort(-p, kind="stable")])]) / y.sum()
            ax.plot(np.arange(len(y) + 1) / len(y), reached,
                    label=f"{name} (top 10% reach {metrics['top_decile_capture']:.0%})")
        else:
            ax.plot([], [], label=f"{name} (top 10% reach n/a)")

    def finish(ax: Axes, labels: list[np.ndarray]) -> None:
        first = labels[0]
        if first.any():
            share = first.mean()
            ax.plot([0, share, 1], [0, 1, 1], color="0.3", linestyle=":", linewidth=1, label="perfect ranking")
        ax.plot([0, 1], [0, 1], **REFERENCE, label="random outreach")
        ax.axvline(0.1, color="0.75", linewidth=1, label="top 10% of accounts")
        _unit_axes(ax, "Share of accounts contacted, highest risk first", "Share of churners reached")

    return _render(curves, "Churners reached by working down the risk list", draw, finish, "lower right")
