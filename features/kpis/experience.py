"""Customer-experience KPIs per month, computed in the warehouse: NPS, CSAT and CES from the survey responses given
in the month, first-contact resolution and median resolution time of the tickets resolved in it."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.kpis.months import KpiMonths, by_segment, kpi_rows, month_table, ratio
from features.sources import Sources
from features.voice import PASSIVE_FROM, PROMOTER_FROM

CSAT_SATISFIED_FROM = 4  # CSAT responses of 4 or 5 (of 5) count as satisfied


def _in_months(rows: ir.Table, at: str, months: KpiMonths) -> ir.Table:
    """The rows whose timestamp `at` falls in a complete month, with that month."""
    m = month_table(months).select("month")
    rows = rows.mutate(month=rows[at].truncate("M"))
    return rows.join(m, "month")


def compute_survey_kpis(sources: Sources, months: KpiMonths, segments: ir.Table | None) -> list[ir.Table]:
    """NPS, CSAT and CES of the responses given in each month; a month and segment without responses of a kind
    has no row for its KPI."""
    s = sources["surveys"]
    s = s.filter(s.score.notnull()).select("account_id", "responded_at", "score", kind=s.survey_type.lower())
    rows = by_segment(_in_months(s, "responded_at", months), segments)
    nps, csat, ces = rows.kind == "nps", rows.kind == "csat", rows.kind == "ces"
    t = rows.group_by(["month", "segment"]).aggregate(
        nps_n=rows.count(where=nps),
        net=rows.count(where=nps & (rows.score >= PROMOTER_FROM)) - rows.count(where=nps & (rows.score < PASSIVE_FROM)),
        csat_n=rows.count(where=csat), satisfied=rows.count(where=csat & (rows.score >= CSAT_SATISFIED_FROM)),
        ces_n=rows.count(where=ces), ces_sum=rows.score.sum(where=ces))
    return [
        kpi_rows(t.filter(t.nps_n > 0), "nps", ratio(t.net, t.nps_n, scale=100.0), t.net, t.nps_n),
        kpi_rows(t.filter(t.csat_n > 0), "csat", ratio(t.satisfied, t.csat_n), t.satisfied, t.csat_n),
        kpi_rows(t.filter(t.ces_n > 0), "ces", ratio(t.ces_sum, t.ces_n), t.ces_sum, t.ces_n),
    ]


def _resolved_flag(flag: ir.BooleanValue) -> ir.Value:
    # A CASE rather than a cast: PostgreSQL casts booleans to neither float nor bigint.
    return ibis.cases((flag, 1), (~flag, 0), else_=ibis.null("int64"))


def compute_ticket_kpis(sources: Sources, months: KpiMonths, segments: ir.Table | None) -> list[ir.Table]:
    """First-contact resolution and median resolution hours of the tickets resolved in each month.

    Needs `tickets.resolved_at`; first-contact resolution also `tickets.first_contact_resolved`.
    """
    t = sources["tickets"]
    t = t.filter(t.resolved_at.notnull())
    # Cast before dividing: Spark reads the literal 3600.0 as a DECIMAL and would round the quotient.
    hours = (t.resolved_at.epoch_seconds() - t.created_at.epoch_seconds()).cast("float64") / 3600.0
    fcr = (_resolved_flag(t.first_contact_resolved) if sources.has("tickets", "first_contact_resolved")
           else ibis.null("int64"))
    t = t.select("account_id", "resolved_at", hours=hours, fcr=fcr)
    rows = by_segment(_in_months(t, "resolved_at", months), segments)
    agg = rows.group_by(["month", "segment"]).aggregate(
        resolved=rows.count(), median_hours=rows.hours.median(), first=rows.fcr.sum(), known=rows.fcr.count())
    out = [kpi_rows(agg, "median_resolution_hours", agg.median_hours, None, agg.resolved)]
    if sources.has("tickets", "first_contact_resolved"):
        known = agg.filter(agg.known > 0)
        out.append(kpi_rows(known, "first_contact_resolution", ratio(known.first, known.known), known.first,
                            known.known))
    return out
