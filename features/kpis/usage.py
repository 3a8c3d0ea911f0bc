"""Usage KPIs per month, computed in the warehouse from the product events: frequency (stickiness, DAU/MAU),
breadth (share of paid seats in use) and depth (share of the core features used).

The events of the months are scanned once to (account, user, day) and once to (account, core event, month); only
those rollups meet the month boundaries.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.kpis.months import KpiMonths, by_segment, kpi_rows, month_table, ratio
from features.sources import Sources


def _events_in_months(sources: Sources, months: KpiMonths) -> ir.Table:
    events = sources["events"]
    return events.filter(events.event_at >= ibis.timestamp(months.months[0]),
                         events.event_at < ibis.timestamp(months.end))


def _user_months(events: ir.Table) -> ir.Table:
    """(account_id, user_id, month, days): the UTC days each user had an event on, per month."""
    days = events.filter(events.user_id.notnull()).select("account_id", "user_id", day=events.event_at.truncate("D"))
    days = days.distinct()
    days = days.mutate(month=days.day.truncate("M"))
    return days.group_by(["account_id", "user_id", "month"]).aggregate(days=days.count())


def _at_month_end(states: ir.Table, months: KpiMonths) -> ir.Table:
    m = month_table(months)
    j = m.join(states, states.at == m.month_end)
    return j.select(states.account_id, m.month, states.seats)


def _stickiness(users: ir.Table, months: KpiMonths, segments: ir.Table | None) -> ir.Table:
    rows = by_segment(users, segments)
    t = rows.group_by(["month", "segment"]).aggregate(mau=rows.count(), user_days=rows.days.sum())
    t = t.join(month_table(months).select("month", "days"), "month")
    average_dau = ratio(t.user_days, t.days)
    return kpi_rows(t, "stickiness", average_dau / t.mau.cast("float64"), average_dau, t.mau)


def _seats_in_use(users: ir.Table, states: ir.Table, months: KpiMonths, segments: ir.Table | None) -> ir.Table:
    mau = users.group_by(["account_id", "month"]).aggregate(users=users.count())
    seats = _at_month_end(states, months)
    seats = seats.filter(seats.seats > 0)
    j = seats.left_join(mau, ["account_id", "month"]).drop("account_id_right", "month_right")
    j = j.mutate(used=ibis.least(j.users.fill_null(0).cast("float64"), j.seats))
    rows = by_segment(j, segments)
    t = rows.group_by(["month", "segment"]).aggregate(used=rows.used.sum(), seats=rows.seats.sum())
    return kpi_rows(t, "seats_in_use", ratio(t.used, t.seats), t.used, t.seats)


def _core_feature_share(events: ir.Table, states: ir.Table, months: KpiMonths, segments: ir.Table | None,
                        core_events: list[str]) -> ir.Table:
    core = events.filter(events.event_name.isin(core_events))
    core = core.select("account_id", "event_name", month=core.event_at.truncate("M")).distinct()
    used = core.group_by(["account_id", "month"]).aggregate(used=core.count())
    active = _at_month_end(states, months).drop("seats")
    j = active.left_join(used, ["account_id", "month"]).drop("account_id_right", "month_right")
    rows = by_segment(j.mutate(used=j.used.fill_null(0)), segments)
    t = rows.group_by(["month", "segment"]).aggregate(used=rows.used.sum(), accounts=rows.count())
    possible = t.accounts * len(core_events)
    return kpi_rows(t, "core_feature_share", ratio(t.used, possible), t.used, possible)


def compute_usage_kpis(sources: Sources, states: ir.Table, months: KpiMonths, segments: ir.Table | None,
                       names: set[str], core_events: list[str]) -> list[ir.Table]:
    """The usage KPI rows among `names` (stickiness, seats_in_use, core_feature_share).

    Args:
        states: `compute_boundary_states` (seats and active accounts at each month's end).
        names: the usage KPIs the warehouse and settings allow.
        core_events: the event names of the product's core features.
    """
    events = _events_in_months(sources, months)
    out = []
    if {"stickiness", "seats_in_use"} & names:
        users = _user_months(events)
        if "stickiness" in names:
            out.append(_stickiness(users, months, segments))
        if "seats_in_use" in names:
            out.append(_seats_in_use(users, states, months, segments))
    if "core_feature_share" in names:
        out.append(_core_feature_share(events, states, months, segments, core_events))
    return out
