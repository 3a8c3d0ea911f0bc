"""The managers' report as one self-contained HTML page (template serving/templates/churn_report.html): the tables,
the account sections and the portfolio plots, with the plots and the calibration plot embedded as data URLs.

jinja2 loads only when a page is rendered, so importing the report's tables and exports stays light.
"""

from __future__ import annotations

import base64
import functools
from typing import TYPE_CHECKING

import pandas as pd

from serving.config import ReportConfig
from serving.report.accounts import build_account_pages
from serving.report.formatting import format_day, format_days, format_money, format_percent, format_points, format_text
from serving.report.inputs import ReportInputs
from serving.report.kpi_plots import plot_kpi_trend, plot_ttv_curves, plot_ttv_medians
from serving.report.kpis import KpiSection, build_kpi_section, kpi_specs, kpis_until, trend_series
from serving.report.loop import build_missed_section, build_playbook_section, format_pp
from serving.report.plots import GROUP_COLOURS, plot_beeswarm, plot_importance
from serving.report.tables import (
    build_at_risk,
    build_breakdowns,
    build_headline,
    build_reason_counts,
    build_rising_fast,
    build_tier_changes,
    describe_quality,
)

if TYPE_CHECKING:
    import jinja2

METRICS = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "brier": "Brier", "top_decile_lift": "Lift top 10%",
           "recall_at_capacity": "Churners reached", "mrr_captured_at_capacity": "Churned MRR reached"}
CONTENDERS = {"lightgbm": "this model", "health_score": "rule-based health score",
              "logistic_regression": "logistic regression"}
BREAKDOWN_TITLES = {"segment": "Segment", "plan": "Plan", "csm_owner": "CSM owner", "industry": "Industry",
                    "region": "Region"}


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("serving", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode() if data else None


def _plots(inputs: ReportInputs, config: ReportConfig) -> dict[str, str]:
    if inputs.portfolio is None or inputs.portfolio.contributions.empty:
        return {}
    return {"importance": _b64(plot_importance(inputs.portfolio, inputs.specs, config.top_features)),
            "beeswarm": _b64(plot_beeswarm(inputs.portfolio, inputs.specs, config.top_features))}


def _kpi_plots(inputs: ReportInputs, section: KpiSection, specs: dict) -> dict:
    """The trend of each headline KPI and the time-to-value plots, base64 PNGs (none without KPIs)."""
    if not section.available:
        return {"trends": [], "curves": None, "medians": None}
    kpis = kpis_until(inputs.kpis, inputs.as_of)
    trends = [(specs[name].title, _b64(plot_kpi_trend(series, specs[name])))
              for name, series in trend_series(kpis).items()]
    return {"trends": trends, "curves": _b64(plot_ttv_curves(kpis, inputs.kpi_days)),
            "medians": _b64(plot_ttv_medians(kpis))}


def _breakdown_titles(breakdowns: dict[str, pd.DataFrame]) -> list[tuple[str, str, pd.DataFrame]]:
    """(column header, heading after "Risk by", table) per breakdown."""
    out = []
    for column, table in breakdowns.items():
        title = BREAKDOWN_TITLES.get(column, column.replace("_", " ").capitalize())
        out.append((title, title if title.isupper() or title.startswith("CSM") else title.lower(), table))
    return out


def render_manager_report(inputs: ReportInputs, config: ReportConfig,
                          at_risk: pd.DataFrame | None = None) -> str:
    """The managers' report as one HTML page that opens with no network."""
    at_risk = build_at_risk(inputs, config) if at_risk is None else at_risk
    entered, left = build_tier_changes(inputs)
    specs = kpi_specs(inputs.kpi_days)
    kpis = build_kpi_section(inputs.kpis, specs, inputs.as_of)
    return _environment().get_template("churn_report.html").render(
        kpis=kpis, kpi_plots=_kpi_plots(inputs, kpis, specs),
        inputs=inputs, headline=build_headline(inputs), at_risk=at_risk,
        shown=[c for c in ("segment", "csm_owner") if at_risk[c].notna().any()],
        tiers=config.at_risk_tiers or [inputs.top_tier], entered=entered, left=left,
        rising=build_rising_fast(inputs, config), rising_limit=config.rising_fast,
        breakdowns=_breakdown_titles(build_breakdowns(inputs, config)), plots=_plots(inputs, config),
        reasons=build_reason_counts(inputs, at_risk["account_id"]), pages=build_account_pages(inputs, at_risk, config),
        model=inputs.model, calibration=_b64(inputs.model.calibration_png) if inputs.model else None,
        quality=describe_quality(inputs.model), metric_names=METRICS, contenders=CONTENDERS,
        group_colours=GROUP_COLOURS, has_account_names="name" in inputs.attributes.columns,
        playbooks=build_playbook_section(inputs.loop),
        missed=build_missed_section(inputs.loop, inputs.attributes.astype({"account_id": str}), inputs.top_tier),
        pp=format_pp, money=format_money, percent=format_percent, points=format_points, text=format_text,
        days=format_days, day=format_day)
