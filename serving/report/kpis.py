"""The Portfolio KPIs section of the managers' report, from the rows of churn_kpis: each KPI's latest month against
the month before and the same month a year before, the KPIs by segment, churn by time-to-first-value quartile,
and the series the trend and time-to-value plots draw.

Labels, units and which way is better come from the KPI definitions (features/kpis/definitions.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from features.kpis.definitions import KPIS, KpiSpec, format_kpi, format_kpi_change

ALL = "all"
COMPARED = ("mrr", "active_accounts", "arpu", "new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr",
            "reactivation_mrr", "logo_churn_rate", "revenue_churn_rate", "gross_revenue_retention",
            "net_revenue_retention", "gross_revenue_retention_12m", "net_revenue_retention_12m",
            "customer_lifetime_value", "nps", "csat", "ces", "first_contact_resolution", "median_resolution_hours",
            "stickiness", "seats_in_use", "core_feature_share")
TRENDS = ("logo_churn_rate", "net_revenue_retention", "gross_revenue_retention", "nps", "mrr")
BY_SEGMENT = ("mrr", "active_accounts", "arpu", "logo_churn_rate_12m", "net_revenue_retention_12m", "nps",
              "median_days_to_first_value")
QUARTILES = {"churn_rate_ttv_q1": "fastest quarter", "churn_rate_ttv_q2": "second", "churn_rate_ttv_q3": "third",
             "churn_rate_ttv_q4": "slowest quarter", "churn_rate_ttv_none": "no first value yet"}
TREND_MONTHS = 12
# Segments listed in the section's tables (the largest by active accounts) and the characters of a name shown in
# a cell (the whole name is the cell's tooltip): a breakdown column with hundreds of values, or a name thousands of
# characters long, would otherwise bury the numbers.
MAX_SEGMENTS = 30
SEGMENT_CHARS = 40


def kpi_specs(days: list[int]) -> dict[str, KpiSpec]:
    """KPI definitions by name, with the time-to-value curves bound to `days`."""
    from features.kpis.definitions import expand_kpis

    return {s.name: s for s in expand_kpis(KPIS, days)}


def kpis_until(kpis: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """The rows of the months (and sign-up months) that ended by the as-of, month as a Timestamp."""
    frame = kpis.assign(month=pd.to_datetime(kpis["month"]))
    return frame[frame["month"] + pd.DateOffset(months=1) <= pd.Timestamp(as_of)]


def _series(kpis: pd.DataFrame, name: str, segment: str = ALL) -> pd.Series:
    rows = kpis[(kpis["kpi"] == name) & (kpis["segment"] == segment)]
    return rows.set_index("month")["value"].sort_index()


def _direction(spec: KpiSpec, now, before) -> str:
    """`good` or `bad` for a change the way the KPI is better, "" for none or no comparison."""
    if spec.better is None or pd.isna(now) or pd.isna(before) or now == before:
        return ""
    return "good" if (now > before) == (spec.better == "up") else "bad"


def _compare(spec: KpiSpec, series: pd.Series, months_back: int) -> dict:
    latest = series.index.max()
    earlier = latest - pd.DateOffset(months=months_back)
    before = series.get(earlier)
    now = series[latest]
    return {"value": format_kpi(spec, before), "month": earlier, "change": format_kpi_change(spec, now, before),
            "direction": _direction(spec, now, before)}


def build_kpi_comparison(kpis: pd.DataFrame, specs: dict[str, KpiSpec]) -> list[dict]:
    """For each KPI of COMPARED the table has for all accounts: its latest month and value, the month before and
    the same month a year before (value, change, good or bad)."""
    out = []
    for name in COMPARED:
        series = _series(kpis, name)
        if name not in specs or series.empty:
            continue
        spec, latest = specs[name], series.index.max()
        out.append({"name": name, "title": spec.title, "formula": spec.formula, "month": latest,
                    "value": format_kpi(spec, series[latest]), "previous": _compare(spec, series, 1),
                    "year": _compare(spec, series, 12)})
    return out


def list_segments(kpis: pd.DataFrame, limit: int = MAX_SEGMENTS) -> list[str]:
    """The segments the tables list, by name: the `limit` largest by active accounts in their latest month."""
    segments = [s for s in kpis["segment"].unique() if s != ALL]
    active = kpis[kpis["kpi"] == "active_accounts"].sort_values("month").groupby("segment")["value"].last()
    largest = sorted(segments, key=lambda s: (-active.get(s, 0.0), s))[:limit]
    return sorted(largest)


def _segment_cell(segment: str) -> dict:
    """The segment's name as a table cell shows it (clipped) and whole (its tooltip)."""
    name = "All accounts" if segment == ALL else segment
    shown = name if len(name) <= SEGMENT_CHARS else name[:SEGMENT_CHARS - 1] + "…"
    return {"segment": name, "shown": shown}


def build_segment_table(kpis: pd.DataFrame, specs: dict[str, KpiSpec],
                        segments: list[str] | None = None) -> tuple[list[dict], list[dict]]:
    """(columns, rows): for each segment (default `list_segments`; all accounts last), the BY_SEGMENT KPIs at their
    latest month."""
    columns = [{"name": n, "title": specs[n].title, "month": kpis[kpis["kpi"] == n]["month"].max()}
               for n in BY_SEGMENT if n in specs and (kpis["kpi"] == n).any()]
    rows = []
    for segment in (list_segments(kpis) if segments is None else segments) + [ALL]:
        values = []
        for column in columns:
            series = _series(kpis, column["name"], segment)
            values.append(format_kpi(specs[column["name"]], series.get(column["month"])))
        rows.append(_segment_cell(segment) | {"values": values})
    return columns, rows


def build_quartile_table(kpis: pd.DataFrame,
                         segments: list[str] | None = None) -> tuple[pd.Timestamp | None, list[dict]]:
    """(month, rows): churn by quartile of days to first value in the latest month that has it, per segment
    (default `list_segments`) that has it."""
    part = kpis[kpis["kpi"].isin(QUARTILES)]
    if part.empty:
        return None, []
    month = part["month"].max()
    part = part[part["month"] == month]
    rows = []
    for segment in [s for s in (list_segments(kpis) if segments is None else segments)
                    if s in set(part["segment"])] + [ALL]:
        cells = part[part["segment"] == segment].set_index("kpi")
        rows.append(_segment_cell(segment) | {"cells": [_rate_cell(cells, name) for name in QUARTILES]})
    return month, rows


def _rate_cell(cells: pd.DataFrame, name: str) -> str:
    if name not in cells.index or pd.isna(cells.at[name, "value"]):
        return "–"
    counted = cells.at[name, "denominator"]
    rate = f"{cells.at[name, 'value']:.1%}"
    return rate if pd.isna(counted) else f"{rate} ({int(counted):,})"


def trend_series(kpis: pd.DataFrame, months: int = TREND_MONTHS) -> dict[str, pd.Series]:
    """The last `months` months of each TRENDS KPI for all accounts (those the table has)."""
    out = {}
    for name in TRENDS:
        series = _series(kpis, name).dropna()
        if not series.empty:
            out[name] = series[series.index > series.index.max() - pd.DateOffset(months=months)]
    return out


@dataclass
class KpiSection:
    """What the template shows of churn_kpis; `available` is False when the table is absent or empty."""

    available: bool
    comparison: list[dict] = field(default_factory=list)
    segment_columns: list[dict] = field(default_factory=list)
    segment_rows: list[dict] = field(default_factory=list)
    quartile_month: pd.Timestamp | None = None
    quartile_rows: list[dict] = field(default_factory=list)
    latest_month: pd.Timestamp | None = None
    settled_month: pd.Timestamp | None = None
    segments_hidden: int = 0


def build_kpi_section(kpis: pd.DataFrame | None, specs: dict[str, KpiSpec], as_of: date) -> KpiSection:
    """The section's tables from the rows of churn_kpis of the months ended by the as-of."""
    kpis = kpis_until(kpis, as_of) if kpis is not None else None
    if kpis is None or kpis.empty:
        return KpiSection(available=False)
    segments = list_segments(kpis)
    columns, rows = build_segment_table(kpis, specs, segments)
    quartile_month, quartile_rows = build_quartile_table(kpis, segments)
    settled = kpis[kpis["kpi"] == "logo_churn_rate"]["month"]
    # The newest complete month is MRR's; a table without MRR rows (nothing active at any month's end) has others.
    mrr = kpis[kpis["kpi"] == "mrr"]["month"]
    return KpiSection(available=True, comparison=build_kpi_comparison(kpis, specs), segment_columns=columns,
                      segment_rows=rows, quartile_month=quartile_month, quartile_rows=quartile_rows,
                      latest_month=mrr.max() if len(mrr) else kpis["month"].max(),
                      settled_month=settled.max() if len(settled) else None,
                      segments_hidden=kpis.loc[kpis["segment"] != ALL, "segment"].nunique() - len(segments))
