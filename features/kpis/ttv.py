"""Time-to-value KPIs, computed in the warehouse: per sign-up month (cohort) and segment, the share of accounts that
reached first value, completed onboarding, converted from trial and first expanded within each day of the curve,
and the median days to each; per settled month, the churn rate of the accounts by quartile of days to first value.

Each milestone has a clock (sign-up, the first trial, the first paid row) and a moment it is reached; both are first
times, so the source tables are rolled up once per account and only those rollups meet the cohorts and months.
Only accounts created once the events begin are counted: the first value of an older account predates the data.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.commercial import compute_mrr_change_points, is_expansion
from features.config import FeatureConfig
from features.kpis.definitions import MILESTONES, QUARTILES
from features.kpis.months import KpiMonths, by_segment, kpi_rows, month_table, ratio
from features.pit import days_between
from features.sources import Sources


def _new_accounts(sources: Sources, months: KpiMonths) -> ir.Table:
    """(account_id, created_at): the accounts created once the events begin."""
    accounts = sources["accounts"]
    accounts = accounts.filter(accounts.created_at >= ibis.timestamp(months.data_start.date()))
    return accounts.select("account_id", "created_at")


def _first_value(sources: Sources, features: FeatureConfig) -> ir.Table:
    events = sources["events"]
    events = events.filter(events.event_name.isin(features.value_events))
    return events.group_by("account_id").aggregate(reached_at=events.event_at.min())


def _onboarded(sources: Sources, features: FeatureConfig) -> ir.Table:
    """When each account first achieved the last of the onboarding milestones (only those that achieved all)."""
    m = sources["milestones"]
    m = m.filter(m.milestone.isin(features.onboarding_milestones))
    firsts = m.group_by(["account_id", "milestone"]).aggregate(first_at=m.achieved_at.min())
    done = firsts.group_by("account_id").aggregate(n=firsts.count(), reached_at=firsts.first_at.max())
    return done.filter(done.n == len(set(features.onboarding_milestones))).select("account_id", "reached_at")


def _trial_conversion(sources: Sources) -> ir.Table:
    """Clock: the first trial start; reached: the first paid start, when it is not before that trial."""
    subs = sources["subscriptions"]
    trial = subs.is_trial.fill_null(False)
    firsts = subs.group_by("account_id").aggregate(clock_at=subs.start_at.min(where=trial),
                                                   paid_at=subs.start_at.min(where=~trial))
    firsts = firsts.filter(firsts.clock_at.notnull())
    converted = firsts.paid_at >= firsts.clock_at
    return firsts.select("account_id", "clock_at",
                         reached_at=ibis.ifelse(converted.fill_null(False), firsts.paid_at, ibis.null("timestamp")))


def _first_expansion(sources: Sources) -> ir.Table:
    """Clock: the first row with MRR > 0; reached: the first MRR increase of the paying account."""
    subs = sources["subscriptions"]
    paid = subs.filter(subs.mrr > 0)
    paid = paid.group_by("account_id").aggregate(clock_at=paid.start_at.min())
    changes = compute_mrr_change_points(sources)
    grown = changes.filter(is_expansion(changes))
    grown = grown.group_by("account_id").aggregate(reached_at=grown.changed_at.min())
    j = paid.left_join(grown, "account_id").drop("account_id_right")
    return j.select("account_id", "clock_at", reached_at=j.reached_at.cast("timestamp"))


def _milestone_rows(sources: Sources, features: FeatureConfig, stem: str) -> ir.Table:
    """(account_id, clock_at, reached_at) of one milestone; a clock starting at sign-up is created_at."""
    if stem == "first_value":
        return _first_value(sources, features)
    if stem == "onboarded":
        return _onboarded(sources, features)
    return _trial_conversion(sources) if stem == "trial_converted" else _first_expansion(sources)


def _cohort_rows(sources: Sources, features: FeatureConfig, months: KpiMonths, stem: str) -> ir.Table:
    """(account_id, cohort, days, observed) of the new accounts of the complete months with the milestone's clock:
    days from the clock to the milestone (NULL if not reached) and days from the clock to the data end."""
    accounts = _new_accounts(sources, months)
    accounts = accounts.mutate(cohort=accounts.created_at.truncate("M"))
    m = month_table(months)
    accounts = accounts.join(m.select(cohort=m.month), "cohort")
    part = _milestone_rows(sources, features, stem)
    if "clock_at" in part.columns:
        j = accounts.join(part, "account_id")
    else:
        j = accounts.left_join(part, "account_id").drop("account_id_right")
        j = j.mutate(clock_at=j.created_at)
    return j.select("account_id", "cohort", days=days_between(j.reached_at, j.clock_at),
                    observed=days_between(ibis.literal(months.data_end), j.clock_at))


def _curve_kpis(rows: ir.Table, stem: str, days: list[int], segments: ir.Table | None) -> list[ir.Table]:
    rows = by_segment(rows, segments)
    reached = rows.days.notnull()
    metrics = {"reached": rows.count(where=reached),
               "median_days": ibis.ifelse(reached, rows.days, ibis.null("float64")).median()}
    for d in days:
        seen = rows.observed >= d
        metrics |= {f"seen_{d}": rows.count(where=seen),
                    f"hit_{d}": rows.count(where=seen & (rows.days <= d).fill_null(False))}
    t = rows.group_by(["cohort", "segment"]).aggregate(**metrics)
    out = []
    for d in days:
        seen = t.filter(t[f"seen_{d}"] > 0)
        out.append(kpi_rows(seen, f"{stem}_by_day_{d}", ratio(seen[f"hit_{d}"], seen[f"seen_{d}"]),
                            seen[f"hit_{d}"], seen[f"seen_{d}"], month="cohort"))
    got = t.filter(t.reached > 0)
    out.append(kpi_rows(got, f"median_days_{MILESTONES[stem]}", got.median_days, None, got.reached, month="cohort"))
    return out


def _quartile_kpis(sources: Sources, features: FeatureConfig, account_months: ir.Table, months: KpiMonths,
                   segments: ir.Table | None) -> list[ir.Table]:
    """Churn over the trailing 12 settled months by quartile of days to first value, per settled month."""
    accounts = _new_accounts(sources, months).left_join(_first_value(sources, features), "account_id")
    m = month_table(months)
    m = m.filter(m.settled)
    j = m.join(accounts, accounts.created_at < m.month_end)
    reached = (j.reached_at < j.month_end).fill_null(False)
    rows = by_segment(j.select(j.account_id, j.month, j.window_start, reached=reached,
                               days=days_between(j.reached_at, j.created_at)), segments)
    fast = rows.filter(rows.reached)
    order = ibis.window(group_by=["month", "segment"], order_by=["days", "account_id"])
    fast = fast.mutate(quartile=ibis.ntile(len(QUARTILES)).over(order))
    labelled = fast.mutate(quartile=ibis.cases(*[(fast.quartile == i, q) for i, q in enumerate(QUARTILES)]))
    none = rows.filter(~rows.reached).mutate(quartile=ibis.literal("none"))
    groups = labelled.select(*none.columns).union(none, distinct=False)
    am = account_months.select(am_account=account_months.account_id, am_month=account_months.month,
                               am_active=account_months.active, am_churned=account_months.churned)
    hits = groups.join(am, [groups.account_id == am.am_account, am.am_month <= groups.month,
                            am.am_month >= groups.window_start])
    t = hits.group_by(["month", "segment", "quartile"]).aggregate(
        churned=hits.count(where=hits.am_churned), active=hits.count(where=hits.am_active))
    out = []
    for quartile in (*QUARTILES, "none"):
        part = t.filter((t.quartile == quartile) & (t.active > 0))
        out.append(kpi_rows(part, f"churn_rate_ttv_{quartile}", ratio(part.churned, part.active), part.churned,
                            part.active))
    return out


def compute_ttv_kpis(sources: Sources, account_months: ir.Table, months: KpiMonths, segments: ir.Table | None,
                     features: FeatureConfig, days: list[int], names: set[str]) -> list[ir.Table]:
    """The time-to-value KPI rows among `names`: cohort curves and medians, churn by TTV quartile.

    Args:
        account_months: `compute_account_months` (who was active on a month's 1st and who churned).
        features: value_events and onboarding_milestones name the milestones.
        days: the days the curves are read at.
        names: the KPIs the warehouse and settings allow.
    """
    out = []
    for stem in MILESTONES:
        if f"median_days_{MILESTONES[stem]}" in names:
            out += _curve_kpis(_cohort_rows(sources, features, months, stem), stem, days, segments)
    if "churn_rate_ttv_q1" in names:
        out += _quartile_kpis(sources, features, account_months, months, segments)
    return out
