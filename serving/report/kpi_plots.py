"""The plots of the report's Portfolio KPIs section as PNG bytes: a small trend per headline KPI over the last
twelve months, the time-to-value curves of the recent sign-up cohorts, and the median days to value by cohort.

matplotlib loads only when a plot is drawn.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pandas as pd

from features.kpis.definitions import MILESTONE_TITLES, KpiSpec
from serving.report.kpis import ALL

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 110

# Days to first expansion run to months and would flatten the others: it is in the curves and the table.
MEDIANS = {"median_days_to_first_value": "first value", "median_days_to_onboard": "onboarding",
           "median_days_trial_to_paid": "trial to paid"}
COHORTS = 6  # sign-up months drawn in the curves
_LINE = "#3b82c4"


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _axes(width: float, height: float, columns: int = 1) -> tuple[Figure, list[Axes]]:
    """A figure of `columns` panels side by side sharing the y axis, with fixed margins (no automatic layout)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, columns, sharey=True, squeeze=False)[0]
    return figure, list(axes)


def _axis_format(ax, spec: KpiSpec) -> None:
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    if spec.unit == "share":
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    elif spec.unit == "currency":
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:,.0f}k" if abs(v) >= 1000 else f"{v:,.0f}"))


def plot_kpi_trend(series: pd.Series, spec: KpiSpec) -> bytes:
    """PNG: one KPI for all accounts, month by month, its latest value marked."""
    from matplotlib import style

    with style.context("default"):
        figure, (ax,) = _axes(3.3, 2.2)
        figure.subplots_adjust(left=0.22, right=0.95, top=0.86, bottom=0.16)
        x = pd.to_datetime(series.index)
        ax.plot(x, series.to_numpy(dtype=float), color=_LINE, marker="o", markersize=3, linewidth=1.6)
        ax.plot(x[-1:], series.to_numpy(dtype=float)[-1:], "o", color="#1f2d3d", markersize=5)
        ax.set_title(spec.title, fontsize="small")
        ax.tick_params(labelsize="x-small")
        ax.set_xticks(x[::3], [d.strftime("%b %y") for d in x[::3]])
        _axis_format(ax, spec)
        ax.grid(alpha=0.3)
        return _png(figure)


def _cohort_curves(kpis: pd.DataFrame, stem: str, days: list[int]) -> dict[pd.Timestamp, pd.Series]:
    """Share reached by each day for the newest COHORTS sign-up months that have a value at the first day."""
    rows = kpis[(kpis["segment"] == ALL) & kpis["kpi"].isin([f"{stem}_by_day_{d}" for d in days])]
    rows = rows.assign(day=rows["kpi"].str.rsplit("_", n=1).str[-1].astype(int))
    cohorts = sorted(rows["month"].unique())[-COHORTS:]
    return {pd.Timestamp(c): rows[rows["month"] == c].set_index("day")["value"].sort_index() for c in cohorts}


def plot_ttv_curves(kpis: pd.DataFrame, days: list[int]) -> bytes | None:
    """PNG: per milestone, the share of each recent sign-up cohort that got there by each day (all accounts)."""
    from matplotlib import colormaps, style
    from matplotlib.ticker import PercentFormatter

    curves = {stem: _cohort_curves(kpis, stem, days) for stem in MILESTONE_TITLES}
    curves = {stem: c for stem, c in curves.items() if c}
    if not curves:
        return None
    with style.context("default"):
        figure, axes = _axes(3.2 * len(curves), 2.9, len(curves))
        figure.subplots_adjust(left=0.05, right=0.99, top=0.88, bottom=0.34, wspace=0.08)
        shades = colormaps["Blues"]
        for ax, (stem, cohorts) in zip(axes, curves.items(), strict=True):
            for i, (cohort, curve) in enumerate(cohorts.items()):
                colour = shades(0.35 + 0.65 * (i + 1) / len(cohorts))
                ax.plot(curve.index, curve.to_numpy(dtype=float), marker="o", markersize=3, color=colour,
                        label=cohort.strftime("%b %Y"))
            ax.set_title(MILESTONE_TITLES[stem], fontsize="small")
            # Only the days some cohort was observed for: a day longer than the data has no point to draw.
            ax.set_xticks([d for d in days if any(d in curve.index for curve in cohorts.values())])
            ax.set_xlabel("days", fontsize="x-small")
            ax.tick_params(labelsize="x-small")
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize="xx-small", title="sign-up month", title_fontsize="xx-small", loc="upper left",
                       bbox_to_anchor=(0.0, -0.3), ncol=COHORTS, frameon=False)
        return _png(figure)


def plot_ttv_medians(kpis: pd.DataFrame, months: int = 12) -> bytes | None:
    """PNG: median days to each milestone by sign-up month (all accounts), the last `months` cohorts."""
    from matplotlib import style

    rows = kpis[(kpis["segment"] == ALL) & kpis["kpi"].isin(MEDIANS)]
    if rows.empty:
        return None
    wide = rows.pivot(index="month", columns="kpi", values="value").sort_index().tail(months)
    with style.context("default"):
        figure, (ax,) = _axes(4.6, 2.9)
        figure.subplots_adjust(left=0.12, right=0.97, top=0.88, bottom=0.16)
        for name, label in MEDIANS.items():
            if name in wide:
                ax.plot(pd.to_datetime(wide.index), wide[name].to_numpy(dtype=float), marker="o", markersize=3,
                        label=label)
        ax.set_title("Median days to value, by sign-up month", fontsize="small")
        ax.set_ylabel("days", fontsize="x-small")
        ax.tick_params(labelsize="x-small")
        x = pd.to_datetime(wide.index)
        ax.set_xticks(x[::2], [d.strftime("%b %y") for d in x[::2]])
        ax.legend(fontsize="xx-small", ncol=2)
        ax.grid(alpha=0.3)
        return _png(figure)
