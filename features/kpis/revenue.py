"""Revenue and churn KPIs from the subscription rows, computed in the warehouse: MRR on the month boundaries, the
MRR movements between them, logo and revenue churn, gross and net revenue retention, active accounts, ARPU and
customer lifetime value.

MRR is summed as exact decimals, so a movement and its reversal cancel to exactly 0 and every engine gives the
same totals; values become float64 only in the KPI rows.
"""

from __future__ import annotations

from decimal import Decimal

import ibis
import ibis.expr.types as ir

from features.config import LabelConfig
from features.kpis.months import KpiMonths, boundary_table, by_segment, kpi_rows, month_table, ratio
from features.snapshots import compute_active_periods, compute_churn_dates
from features.sources import Sources

_EXACT = ibis.dtype("decimal(38, 6)")
_ZERO = ibis.literal(Decimal(0), type=_EXACT)
MOVEMENTS = ("new_mrr", "reactivation_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr")


def paid_rows(sources: Sources) -> ir.Table:
    """(account_id, start_at, end_at, mrr, seats) of the rows that are not trials; MRR as an exact decimal."""
    subs = sources["subscriptions"]
    if sources.has("subscriptions", "is_trial"):
        subs = subs.filter(~subs.is_trial.fill_null(False))
    seats = subs.seats if sources.has("subscriptions", "seats") else ibis.null("float64")
    return subs.select("account_id", "start_at", "end_at", mrr=subs.mrr.fill_null(0).cast(_EXACT), seats=seats)


def compute_boundary_states(sources: Sources, months: KpiMonths) -> ir.Table:
    """(account_id, at, mrr, seats): MRR and seats of the paid rows in force at each month boundary `at`, for the
    accounts with such a row (an account without one is not active then, with no MRR)."""
    rows, at = paid_rows(sources), boundary_table(months)
    j = at.join(rows, [rows.start_at <= at.at, rows.end_at.isnull() | (rows.end_at > at.at)])
    return j.group_by(["account_id", "at"]).aggregate(mrr=j.mrr.sum(), seats=j.seats.sum())


def _boundary(months: ir.Table, states: ir.Table, at: str, name: str) -> ir.Table:
    j = months.join(states, states.at == months[at])
    return j.select(states.account_id, months.month, months.month_end, **{name: states.mrr})


def _flag(table: ir.Table, name: str) -> ir.Table:
    return table.select("account_id", "month").distinct().mutate(**{name: ibis.literal(1, "int8")})


def _churned(opening: ir.Table, sources: Sources, label: LabelConfig, months: KpiMonths) -> ir.Table:
    """(account_id, month, churned) for the accounts active on the 1st whose active period ends in the month."""
    churn = compute_churn_dates(sources, label, months.data_end)
    hits = opening.join(churn, [opening.account_id == churn.account_id, churn.churn_at > opening.month,
                                churn.churn_at <= opening.month_end])
    return _flag(hits.select(opening.account_id, opening.month), "churned")


def _in_period(keys: ir.Table, sources: Sources, label: LabelConfig) -> ir.Table:
    """(account_id, month, in_period) for the accounts inside an active period on the 1st (paying, or lapsed less
    than the grace period and renewing)."""
    periods = compute_active_periods(sources, label.grace_days)
    hits = keys.join(periods, [keys.account_id == periods.account_id, periods.period_start <= keys.month,
                               periods.period_end > keys.month])
    return _flag(hits.select(keys.account_id, keys.month), "in_period")


def _first_paid(sources: Sources) -> ir.Table:
    rows = paid_rows(sources)
    rows = rows.filter(rows.mrr > 0)
    return rows.group_by("account_id").aggregate(first_paid_at=rows.start_at.min())


def compute_account_months(sources: Sources, states: ir.Table, months: KpiMonths, label: LabelConfig) -> ir.Table:
    """One row per settled month and account active on its 1st or at its end: (account_id, month, active, churned,
    opening, closing, and the MRR movements new_mrr, reactivation_mrr, expansion_mrr, contraction_mrr, churned_mrr).

    closing = opening + new + reactivation + expansion − contraction − churned, exactly (see docs/KPIS.md).

    Args:
        states: `compute_boundary_states` for the same months.
    """
    settled = month_table(months)
    settled = settled.filter(settled.settled)
    opening = _boundary(settled, states, "month", "opening")
    closing = _boundary(settled, states, "month_end", "closing")
    keys = opening.select("account_id", "month", "month_end").union(
        closing.select("account_id", "month", "month_end"), distinct=True)
    j = keys
    for part in (opening.drop("month_end"), closing.drop("month_end"), _churned(opening, sources, label, months),
                 _in_period(keys, sources, label)):
        j = j.left_join(part, ["account_id", "month"]).drop("account_id_right", "month_right")
    j = j.left_join(_first_paid(sources), "account_id").drop("account_id_right")
    return j.select("account_id", "month", **_movements(j))


def _movements(j: ir.Table) -> dict[str, ir.Value]:
    """Each account's month in the MRR bridge: churn first, then what the closing MRR adds or takes away."""
    opening, closing = j.opening.fill_null(_ZERO), j.closing.fill_null(_ZERO)
    churned = j.churned.notnull()
    base = ibis.ifelse(churned, _ZERO, opening)  # what the account carries into the month once a churn is counted
    up, fresh = closing > base, base == _ZERO
    new = up & fresh & (j.first_paid_at > j.month).fill_null(False)
    back = up & fresh & ~new & (churned | j.in_period.isnull())
    return {
        "active": j.opening.notnull(), "churned": churned, "opening": opening, "closing": closing,
        "new_mrr": ibis.ifelse(new, closing, _ZERO),
        "reactivation_mrr": ibis.ifelse(back, closing, _ZERO),
        "expansion_mrr": ibis.ifelse(up & ~new & ~back, closing - base, _ZERO),
        "contraction_mrr": ibis.ifelse(closing < base, base - closing, _ZERO),
        "churned_mrr": ibis.ifelse(churned, opening, _ZERO),
    }


def _movement_totals(account_months: ir.Table, segments: ir.Table | None) -> ir.Table:
    rows = by_segment(account_months, segments)
    # A month whose accounts all started after its 1st opens with 0 MRR, not NULL: the ratios over it get a
    # denominator of 0 (and an empty value) like every other.
    return rows.group_by(["month", "segment"]).aggregate(
        active=rows.count(where=rows.active), churned=rows.count(where=rows.churned),
        opening=rows.opening.sum(where=rows.active).fill_null(_ZERO), **{m: rows[m].sum() for m in MOVEMENTS})


def _churn_kpis(t: ir.Table) -> list[ir.Table]:
    kept = t.opening - t.contraction_mrr - t.churned_mrr
    grown = kept + t.expansion_mrr
    return [
        kpi_rows(t, "logo_churn_rate", ratio(t.churned, t.active), t.churned, t.active),
        kpi_rows(t, "revenue_churn_rate", ratio(t.churned_mrr, t.opening), t.churned_mrr, t.opening),
        kpi_rows(t, "gross_revenue_retention", ratio(kept, t.opening), kept, t.opening),
        kpi_rows(t, "net_revenue_retention", ratio(grown, t.opening), grown, t.opening),
        *[kpi_rows(t, m, t[m], t[m]) for m in MOVEMENTS],
    ]


def _trailing_churn(totals: ir.Table, months: KpiMonths) -> ir.Table:
    """(month, segment, churned, active) summed over the settled months of the 12 ending with each month."""
    settled = month_table(months)
    settled = settled.filter(settled.settled)
    t = totals.select(k_month=totals.month, segment=totals.segment, k_churned=totals.churned,
                      k_active=totals.active)
    j = settled.join(t, [t.k_month <= settled.month, t.k_month >= settled.window_start])
    return j.group_by(["month", "segment"]).aggregate(churned=j.k_churned.sum(), active=j.k_active.sum())


def _stock(states: ir.Table, months: KpiMonths, segments: ir.Table | None) -> ir.Table:
    """(month, segment, mrr, accounts) at each complete month's end."""
    closing = _boundary(month_table(months), states, "month_end", "mrr")
    rows = by_segment(closing, segments)
    return rows.group_by(["month", "segment"]).aggregate(mrr=rows.mrr.sum(), accounts=rows.count())


def _lifetime_value(stock: ir.Table, trailing: ir.Table, gross_margin: float) -> ir.Table:
    j = stock.join(trailing, ["month", "segment"])
    monthly_margin = ratio(j.mrr, j.accounts) * gross_margin
    churn = ratio(j.churned, j.active)
    return kpi_rows(j, "customer_lifetime_value", monthly_margin / churn.nullif(0.0), monthly_margin, churn)


def _retention_12m(states: ir.Table, months: KpiMonths, segments: ir.Table | None) -> list[ir.Table]:
    """Gross and net revenue retention of the accounts paying 12 months before each settled month's end."""
    m = month_table(months)
    m = m.filter(m.settled & (m.window_start >= ibis.timestamp(months.months[0])))
    start = m.join(states, [states.at == m.window_start, states.mrr > 0])
    start = start.select(states.account_id, m.month, m.month_end, start_mrr=states.mrr)
    later = states.view()
    end = start.left_join(later, [start.account_id == later.account_id, later.at == start.month_end])
    end = end.select(start.account_id, start.month, start.start_mrr, end_mrr=later.mrr.fill_null(_ZERO))
    rows = by_segment(end.mutate(kept=ibis.least(end.end_mrr, end.start_mrr)), segments)
    t = rows.group_by(["month", "segment"]).aggregate(start=rows.start_mrr.sum(), end=rows.end_mrr.sum(),
                                                      kept=rows.kept.sum())
    return [kpi_rows(t, "gross_revenue_retention_12m", ratio(t.kept, t.start), t.kept, t.start),
            kpi_rows(t, "net_revenue_retention_12m", ratio(t.end, t.start), t.end, t.start)]


def compute_revenue_kpis(states: ir.Table, account_months: ir.Table, months: KpiMonths,
                         segments: ir.Table | None, gross_margin: float) -> list[ir.Table]:
    """The KPI rows of the churn, revenue and accounts groups.

    Args:
        states: `compute_boundary_states`; account_months: `compute_account_months` for the same months.
        segments: `account_segments` (None: all accounts only).
        gross_margin: the share of revenue kept after the cost of serving it (customer lifetime value).
    """
    totals = _movement_totals(account_months, segments)
    trailing = _trailing_churn(totals, months)
    stock = _stock(states, months, segments)
    return [
        *_churn_kpis(totals),
        kpi_rows(trailing, "logo_churn_rate_12m", ratio(trailing.churned, trailing.active), trailing.churned,
                 trailing.active),
        *_retention_12m(states, months, segments),
        kpi_rows(stock, "mrr", stock.mrr, stock.mrr),
        kpi_rows(stock, "active_accounts", stock.accounts, stock.accounts),
        kpi_rows(stock, "arpu", ratio(stock.mrr, stock.accounts), stock.mrr, stock.accounts),
        _lifetime_value(stock, trailing, gross_margin),
    ]
