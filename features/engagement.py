"""Engagement features (frequency, breadth, depth, trends), computed in the warehouse from event rollups.

Events are rolled up once to one row per (account, user, day, event name) and one per (account, user, day,
session); every window and as-of reads those rollups, never the raw events again. Sessions are cut at midnight,
so a session piece on a day before the as-of holds only events before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import ibis
import ibis.expr.types as ir

from features.config import FeatureConfig
from features.sources import Sources


@dataclass
class EventRollups:
    """Events rolled up in the warehouse for the span the grid reads."""

    daily: ir.Table  # account_id, user_id, day, event_name, n
    sessions: ir.Table  # account_id, user_id, day, session, n, seconds
    account_days: ir.Table  # account_id, day, next_day (all history before the newest as-of)
    has_users: bool


def _event_base(sources: Sources, until: date) -> ir.Table:
    events = sources["events"]
    events = events.filter(events.event_at < ibis.timestamp(until))
    n = events.event_count.fill_null(1) if sources.has("events", "event_count") else ibis.literal(1)
    user = events.user_id if sources.has("events", "user_id") else ibis.null("string")
    return events.mutate(user_id=user, n=n.cast("int64"), day=events.event_at.truncate("D"))


def _session_keys(events: ir.Table, sources: Sources, gap_minutes: int) -> ir.Table:
    """Give every event a session key: the warehouse's session_id, or a new session after a gap per user."""
    if sources.has("events", "session_id"):
        return events.mutate(session=events.session_id.fill_null(events.user_id.fill_null("") + "@"))
    by_user = ibis.window(group_by=["account_id", "user_id"], order_by="event_at")
    events = events.mutate(prev_at=events.event_at.lag().over(by_user))
    gap = ibis.interval(minutes=gap_minutes)
    # ifelse, not a cast: PostgreSQL cannot cast boolean to bigint.
    starts = ibis.ifelse(events.prev_at.isnull() | (events.prev_at < events.event_at - gap), 1, 0)
    events = events.mutate(starts=starts)
    number = events.starts.sum().over(ibis.cumulative_window(group_by=["account_id", "user_id"],
                                                             order_by="event_at"))
    return events.mutate(session=number.cast("string"))


def build_event_rollups(sources: Sources, config: FeatureConfig, since: date, until: date) -> EventRollups:
    """Roll events up to per-day grains for the span [since, until) the grid's windows read."""
    base = _event_base(sources, until)
    recent = base.filter(base.event_at >= ibis.timestamp(since))
    daily = recent.group_by(["account_id", "user_id", "day", "event_name"]).aggregate(n=recent.n.sum())
    keyed = _session_keys(recent, sources, config.session_gap_minutes)
    if sources.has("events", "duration_s"):
        seconds = keyed.duration_s.sum()
    else:
        seconds = (keyed.event_at.epoch_seconds().max() - keyed.event_at.epoch_seconds().min())
    sessions = keyed.group_by(["account_id", "user_id", "day", "session"]).aggregate(
        n=keyed.n.sum(), seconds=seconds.cast("float64"))
    days = base.select("account_id", "day").distinct()
    days = days.mutate(next_day=days.day.lead().over(ibis.window(group_by="account_id", order_by="day")))
    return EventRollups(daily=daily, sessions=sessions, account_days=days,
                        has_users=sources.has("events", "user_id"))


def rollup_span(as_of_dates: list[date], config: FeatureConfig) -> tuple[date, date]:
    """The [since, until) span of events the grid's windows read."""
    return min(as_of_dates) - timedelta(days=config.lookback_days), max(as_of_dates)


def _ago(grid_as_of: ir.Value, days: int) -> ir.Value:
    return grid_as_of - ibis.interval(days=days)


def _ratio(numerator: ir.Value, denominator: ir.Value) -> ir.Value:
    return ibis.ifelse(denominator > 0, numerator.cast("float64") / denominator.nullif(0), ibis.null("float64"))


def _change(last: ir.Value, previous: ir.Value) -> ir.Value:
    return ibis.ifelse(previous > 0, last.cast("float64") / previous.nullif(0) - 1.0, ibis.null("float64"))


def _daily_metrics(rollups: EventRollups, grid: ir.Table, config: FeatureConfig) -> ir.Table:
    d = rollups.daily
    j = grid.join(d, [grid.account_id == d.account_id, d.day < grid.as_of,
                      d.day >= _ago(grid.as_of, config.lookback_days)])
    core = config.core_events
    t = config.trend_window_days
    metrics = {}
    for w in config.windows:
        inside = j.day >= _ago(j.as_of, w)
        metrics[f"active_days_{w}d"] = j.day.nunique(where=inside)
        metrics[f"events_{w}d"] = j.n.sum(where=inside)
        metrics[f"logins_{w}d"] = j.n.sum(where=inside & (j.event_name == config.login_event))
        metrics[f"active_users_{w}d"] = j.user_id.nunique(where=inside)
        metrics[f"distinct_events_{w}d"] = j.event_name.nunique(where=inside)
        metrics[f"core_used_{w}d"] = j.event_name.nunique(where=inside & j.event_name.isin(core or ["\0"]))
    last, previous = j.day >= _ago(j.as_of, t), (j.day < _ago(j.as_of, t)) & (j.day >= _ago(j.as_of, 2 * t))
    metrics.update(users_last=j.user_id.nunique(where=last), users_prev=j.user_id.nunique(where=previous),
                   events_last=j.n.sum(where=last), events_prev=j.n.sum(where=previous))
    return j.group_by(["account_id", "as_of"]).aggregate(**metrics)


def _session_metrics(rollups: EventRollups, grid: ir.Table, config: FeatureConfig) -> ir.Table:
    s = rollups.sessions
    j = grid.join(s, [grid.account_id == s.account_id, s.day < grid.as_of,
                      s.day >= _ago(grid.as_of, config.lookback_days)])
    t = config.trend_window_days
    metrics = {}
    for w in config.windows:
        inside = j.day >= _ago(j.as_of, w)
        metrics[f"sessions_{w}d"] = j.count(where=inside)
        metrics[f"session_events_{w}d"] = j.n.sum(where=inside)
        metrics[f"session_seconds_{w}d"] = j.seconds.mean(where=inside)
    last, previous = j.day >= _ago(j.as_of, t), (j.day < _ago(j.as_of, t)) & (j.day >= _ago(j.as_of, 2 * t))
    metrics.update(sessions_last=j.count(where=last), sessions_prev=j.count(where=previous))
    return j.group_by(["account_id", "as_of"]).aggregate(**metrics)


def _last_activity(rollups: EventRollups, grid: ir.Table) -> ir.Table:
    # The last active day before as_of is the one whose next active day is at or after as_of (or none).
    a = rollups.account_days
    j = grid.join(a, [grid.account_id == a.account_id, a.day < grid.as_of,
                      a.next_day.isnull() | (a.next_day >= grid.as_of)])
    return j.select("account_id", "as_of",
                    days_since_last_activity=j.as_of.date().delta(j.day.date(), unit="day").cast("float64"))


def compute_engagement_features(rollups: EventRollups, grid: ir.Table, seats: ir.Table,
                                config: FeatureConfig) -> ir.Table:
    """Return one row per grid (account_id, as_of) with the engagement features of the catalog.

    Args:
        rollups: event rollups spanning the grid's windows (`build_event_rollups`).
        grid: (account_id, as_of) rows, as_of a midnight timestamp.
        seats: (account_id, as_of, seats) paid seats just before each as-of.
    """
    daily, sessions = _daily_metrics(rollups, grid, config), _session_metrics(rollups, grid, config)
    last = _last_activity(rollups, grid)
    j = (grid.left_join(daily, ["account_id", "as_of"]).drop("account_id_right", "as_of_right")
         .left_join(sessions, ["account_id", "as_of"]).drop("account_id_right", "as_of_right")
         .left_join(last, ["account_id", "as_of"]).drop("account_id_right", "as_of_right")
         .left_join(seats.select("account_id", "as_of", "seats"), ["account_id", "as_of"])
         .drop("account_id_right", "as_of_right"))
    zero = {c: j[c].fill_null(0) for c in j.columns if c not in grid.columns
            and c not in ("days_since_last_activity", "seats") and not c.startswith("session_seconds")}
    j = j.mutate(**zero)
    out = {"days_since_last_activity": j.days_since_last_activity}
    for w in config.windows:
        users = j[f"active_users_{w}d"]
        out |= {
            f"active_days_{w}d": j[f"active_days_{w}d"].cast("float64"),
            f"events_{w}d": j[f"events_{w}d"].cast("float64"),
            f"distinct_events_{w}d": j[f"distinct_events_{w}d"].cast("float64"),
            f"core_feature_share_{w}d": (j[f"core_used_{w}d"].cast("float64") / max(len(config.core_events), 1)),
            f"sessions_{w}d": j[f"sessions_{w}d"].cast("float64"),
            f"session_minutes_{w}d": j[f"session_seconds_{w}d"] / 60.0,
            f"events_per_session_{w}d": _ratio(j[f"session_events_{w}d"], j[f"sessions_{w}d"]),
        }
        if rollups.has_users:
            out |= {
                f"active_users_{w}d": users.cast("float64"),
                f"logins_per_active_user_{w}d": _ratio(j[f"logins_{w}d"], users),
                f"seat_utilisation_{w}d": _ratio(users, j.seats),
            }
    out |= {"events_trend": _change(j.events_last, j.events_prev),
            "sessions_trend": _change(j.sessions_last, j.sessions_prev)}
    if rollups.has_users:
        out["active_users_trend"] = _change(j.users_last, j.users_prev)
    return j.select(*grid.columns, **out)
