"""The portfolio plots of the managers' report as PNG bytes: which signals move risk most (importance) and every
scored account signal by signal (beeswarm).

matplotlib loads only when a plot is drawn, so importing the report's tables and exports stays light.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.catalog import FeatureSpec
from serving.config import DRIVER_GROUPS
from serving.explain import feature_label
from serving.playbooks import driver_group
from serving.report.inputs import Portfolio

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 110
GROUP_COLOURS = dict(zip(DRIVER_GROUPS, ("#3b82c4", "#8e6bbf", "#d9822b", "#2f9e77", "#c2415d"), strict=True))


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _figure(width: float, height: float, left: float, right: float = 0.97) -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    # Fixed margins (no automatic layout, which draws every figure twice); bottom keeps room for the x label.
    figure.subplots_adjust(left=left, right=right, top=1 - 0.35 / height, bottom=0.6 / height)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _top_features(portfolio: Portfolio, top: int) -> list[str]:
    features = [c for c in portfolio.contributions.columns if c != "bias"]
    importance = portfolio.contributions[features].abs().mean()
    return importance.sort_values(ascending=False, kind="stable").head(top).index.tolist()


def plot_importance(portfolio: Portfolio, specs: dict[str, FeatureSpec], top: int) -> bytes:
    """PNG: mean |SHAP| (log-odds) over the scored accounts of the `top` strongest signals, coloured by group."""
    from matplotlib import style
    from matplotlib.patches import Patch

    features = _top_features(portfolio, top)[::-1]
    importance = portfolio.contributions[features].abs().mean()
    colours = [GROUP_COLOURS.get(driver_group(specs[f].group), "0.5") if f in specs else "0.5" for f in features]
    with style.context("default"):
        figure, ax = _figure(6.4, 0.32 * len(features) + 1.4, 0.47)
        ax.barh([_label(specs, f) for f in features], importance.to_numpy(), color=colours)
        ax.legend(handles=[Patch(color=c, label=g) for g, c in GROUP_COLOURS.items()], fontsize="x-small",
                  loc="lower right", title="signal group", title_fontsize="x-small")
        ax.set_xlabel("Average effect on risk, either way (mean |SHAP|, log-odds)", fontsize="small")
        ax.set_title("Signals that move risk most across the portfolio", fontsize="medium")
        ax.tick_params(axis="y", labelsize="x-small")
        ax.grid(axis="x", alpha=0.3)
        return _png(figure)


def _label(specs: dict[str, FeatureSpec], feature: str) -> str:
    return feature_label(specs[feature]) if feature in specs else "Other signal"


def _swarm_offsets(x: np.ndarray, bins: int = 60, width: float = 0.38) -> np.ndarray:
    """Vertical offsets that spread points sharing an x bin symmetrically around their row (a beeswarm)."""
    if len(x) == 0:
        return x
    span = np.ptp(x) or 1.0
    bin_of = np.floor((x - x.min()) / span * (bins - 1)).astype(int)
    order = np.argsort(bin_of, kind="stable")
    position = pd.Series(bin_of[order]).groupby(bin_of[order]).cumcount().to_numpy()
    step = width / max(1, position.max())
    offsets = np.empty_like(x)
    offsets[order] = ((position + 1) // 2) * np.where(position % 2, 1, -1) * step
    return offsets


def _colour_values(values: pd.Series) -> np.ndarray:
    """Each account's value as its percentile among the accounts (0 low, 1 high); NaN for missing or text."""
    numbers = pd.to_numeric(values, errors="coerce") if pd.api.types.is_numeric_dtype(values) else None
    if numbers is None:
        return np.full(len(values), np.nan)
    return numbers.rank(pct=True).to_numpy()


def plot_beeswarm(portfolio: Portfolio, specs: dict[str, FeatureSpec], top: int) -> bytes:
    """PNG: one row per strong signal, one dot per account at its SHAP contribution, coloured by its value."""
    from matplotlib import colormaps, style

    features = _top_features(portfolio, top)
    cmap = colormaps["coolwarm"]
    with style.context("default"):
        figure, ax = _figure(7.2, 0.42 * len(features) + 1.5, 0.4, right=0.9)
        for row, feature in enumerate(features):
            x = portfolio.contributions[feature].to_numpy(dtype=float)
            shade = (_colour_values(portfolio.values[feature]) if feature in portfolio.values
                     else np.full(len(x), np.nan))
            colours = np.where(np.isnan(shade)[:, None], np.array([[0.6, 0.6, 0.6, 0.6]]),
                               cmap(np.nan_to_num(shade)))
            ax.scatter(x, row + _swarm_offsets(x), s=5, c=colours, linewidths=0, rasterized=True)
        ax.axvline(0, color="0.4", linewidth=0.8)
        ax.set_yticks(range(len(features)), [_label(specs, f) for f in features], fontsize="x-small")
        ax.set_ylim(len(features) - 0.5, -0.5)
        ax.set_xlabel("Effect on the account's risk (SHAP, log-odds): right raises, left lowers", fontsize="small")
        ax.set_title("Every scored account, signal by signal", fontsize="medium")
        mappable = ax.scatter([], [], c=[], cmap=cmap, vmin=0, vmax=1)
        bar = figure.colorbar(mappable, ax=ax, fraction=0.03, pad=0.02, ticks=[0, 1])
        bar.ax.set_yticklabels(["low", "high"], fontsize="x-small")
        bar.set_label("account's value (grey: none)", fontsize="x-small")
        ax.grid(axis="x", alpha=0.3)
        return _png(figure)
