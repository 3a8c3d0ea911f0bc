"""Engagement features (frequency, breadth, depth, trends, the rates that travel and the mix of event types),
computed in the warehouse from event rollups.

The events are scanned twice: once to session pieces (account, user, day, session), from which the per-account-day
and per-user rollups derive, and once to (account, event name, period) with the period's event count (the mix's
shares). Every window and as-of reads those
rollups, never the raw events again. Distinct counts over a window (users, event names) are counted without
COUNT(DISTINCT): per as-of, each user or event name keeps only the last period it was seen in, and a window counts
those seen inside it. A period runs between two consecutive window cuts (`window_cuts`), so no window starts or ends
inside one. Sessions are cut at midnight, so a session piece on a day before the as-of holds only events before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import ibis
import ibis.expr.types as ir

from features.catalog import MIX_CHANGE, MIX_SHARE, mix_slugs
from features.config import FeatureConfig
from features.joins import left_join_all
from features.pit import days_before, days_between, latest_before, rows_within
from features.sources import Sources


@dataclass
class EventRollups:
    """Events rolled up in the warehouse for the span the grid reads."""

    account_days: ir.Table  # account_id, day, n, logins, pieces (session pieces), seconds, timed (pieces with
    # seconds), user_days (users active that day)
    user_days: ir.Table | None  # account_id, user_id, day: a period's first day (None when events have no user_id)
    event_days: ir.Table  # account_id, event_name, day (a period's first day), n (events in the period)
    sessions: ir.Table  # account_id, user_id, day, session, n, logins, seconds
    active_days: ir.Table  # account_id, day: the span's active days and each account's last one before it

    @property
    def has_users(self) -> bool:
        return self.user_days is not None


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


def window_cuts(as_of_dates: list[date], config: FeatureConfig) -> list[date]:
    """Every day on which a window, trend half or look-back of some as-of starts, and the as-ofs themselves."""
    t = config.trend_window_days
    spans = {*config.windows, t, 2 * t, config.lookback_days}
    return sorted({a - timedelta(days=d) for a in as_of_dates for d in spans} | set(as_of_dates))


def _period(day: ir.Value, cuts: list[date]) -> ir.Value:
    """The first day of the period between two consecutive cuts that `day` falls in."""
    return ibis.cases(*[(day >= ibis.timestamp(cut), ibis.timestamp(cut)) for cut in reversed(cuts)])


def build_event_rollups(sources: Sources, config: FeatureConfig, as_of_dates: list[date]) -> EventRollups:
    """Roll up the events the grid's windows read (the look-back before each as-of).

    Users and event names are rolled up per period between consecutive window cuts (`window_cuts`), not per
    day: no window or trend half starts or ends inside a period, so "seen in a window" is the same question
    asked of the period's first day, and the rollups are several times smaller than per day.
    """
    since, until = rollup_span(as_of_dates, config)
    cuts = window_cuts(as_of_dates, config)
    base = _event_base(sources, until)
    recent = base.filter(base.event_at >= ibis.timestamp(since))
    # One scan to session pieces (account, user, day, session); the per-day and per-user rollups derive from them.
    keyed = _session_keys(recent, sources, config.session_gap_minutes)
    if sources.has("events", "duration_s"):
        seconds = keyed.duration_s.sum()
    else:
        seconds = (keyed.event_at.epoch_seconds().max() - keyed.event_at.epoch_seconds().min())
    # ifelse, not a boolean sum: PostgreSQL cannot sum booleans or cast them to bigint.
    logins = ibis.ifelse(keyed.event_name == config.login_event, keyed.n, 0)
    sessions = keyed.group_by(["account_id", "user_id", "day", "session"]).aggregate(
        n=keyed.n.sum(), logins=logins.sum(), seconds=seconds.cast("float64"))
    timed = sessions.seconds.notnull()
    account_days = sessions.group_by(["account_id", "day"]).aggregate(
        n=sessions.n.sum(), logins=sessions.logins.sum(), pieces=sessions.count(),
        seconds=sessions.seconds.sum(), timed=ibis.ifelse(timed, 1, 0).sum(),
        user_days=sessions.user_id.nunique())
    user_days = None
    if sources.has("events", "user_id"):
        known = sessions.filter(sessions.user_id.notnull())
        user_days = known.select("account_id", "user_id", day=_period(known.day, cuts)).distinct()
    # One scan to (account, event name, period), with the period's count for the mix of event types.
    periods = recent.mutate(day=_period(recent.day, cuts))
    event_days = periods.group_by(["account_id", "event_name", "day"]).aggregate(n=periods.n.sum())
    # Active days for the days since the last activity: the span's, and each account's last one before it.
    earlier = base.filter(base.event_at < ibis.timestamp(since))
    earlier = earlier.group_by("account_id").aggregate(day=earlier.day.max())
    days = account_days.select("account_id", "day").union(earlier)
    return EventRollups(account_days=account_days, user_days=user_days, event_days=event_days, sessions=sessions,
                        active_days=days)


def rollup_span(as_of_dates: list[date], config: FeatureConfig) -> tuple[date, date]:
    """The [since, until) span of events the grid's windows read."""
    return min(as_of_dates) - timedelta(days=config.lookback_days), max(as_of_dates)


def _ratio(numerator: ir.Value, denominator: ir.Value) -> ir.Value:
    return ibis.ifelse(denominator > 0, numerator.cast("float64") / denominator.nullif(0), ibis.null("float64"))


def _change(last: ir.Value, previous: ir.Value) -> ir.Value:
    return ibis.ifelse(previous > 0, last.cast("float64") / previous.nullif(0) - 1.0, ibis.null("float64"))


def _trend_halves(j: ir.Table, config: FeatureConfig) -> tuple[ir.Value, ir.Value]:
    """The last trend window before the as-of, and the one before it."""
    t = config.trend_window_days
    last = j.day >= days_before(j.as_of, t)
    return last, (j.day < days_before(j.as_of, t)) & (j.day >= days_before(j.as_of, 2 * t))


def _daily_metrics(rollups: EventRollups, grid: ir.Table, config: FeatureConfig, windows: list[int]) -> ir.Table:
    """Per window active days, events, logins, session pieces and their mean length, and events and sessions in
    the two trend halves, from the per-account-day rollup.

    Every event is in exactly one session piece, so the events of a window's sessions are its events.
    """
    j = rows_within(grid, rollups.account_days, "day", config.lookback_days)
    metrics = {}
    for w in windows:
        inside = j.day >= days_before(j.as_of, w)
        metrics |= {f"active_days_{w}d": j.count(where=inside), f"events_{w}d": j.n.sum(where=inside),
                    f"logins_{w}d": j.logins.sum(where=inside), f"sessions_{w}d": j.pieces.sum(where=inside),
                    f"seconds_{w}d": j.seconds.sum(where=inside), f"timed_{w}d": j.timed.sum(where=inside),
                    f"user_days_{w}d": j.user_days.sum(where=inside)}
    last, previous = _trend_halves(j, config)
    metrics |= {"events_last": j.n.sum(where=last), "events_prev": j.n.sum(where=previous),
                "sessions_last": j.pieces.sum(where=last), "sessions_prev": j.pieces.sum(where=previous)}
    daily = j.group_by(["account_id", "as_of"]).aggregate(**metrics)
    # The mean length of the window's timed session pieces (null when none has a length).
    means = {f"session_seconds_{w}d": _ratio(daily[f"seconds_{w}d"], daily[f"timed_{w}d"]) for w in windows}
    return daily.mutate(**means).drop(*[f"{part}_{w}d" for part in ("seconds", "timed") for w in windows])


def _last_seen(rollup: ir.Table, entity: str, grid: ir.Table, config: FeatureConfig) -> ir.Table:
    """Per grid row and `entity` (a user, an event name) seen in the look-back: the last day it was seen, and
    the last day it was seen in the earlier trend half (null if not)."""
    j = rows_within(grid, rollup, "day", config.lookback_days)
    _, previous = _trend_halves(j, config)
    return j.group_by(["account_id", "as_of", entity]).aggregate(last_day=j.day.max(),
                                                                  prev_day=j.day.max(where=previous))


def _distinct_metrics(rollups: EventRollups, grid: ir.Table, config: FeatureConfig) -> list[ir.Table]:
    """Distinct event names (all, and core ones) and distinct users per window; users in the two trend halves."""
    events = _last_seen(rollups.event_days, "event_name", grid, config)
    core = events.event_name.isin(config.core_events) if config.core_events else ibis.literal(False)
    metrics = {}
    for w in config.windows:
        inside = events.last_day >= days_before(events.as_of, w)
        metrics |= {f"distinct_events_{w}d": events.count(where=inside),
                    f"core_used_{w}d": events.count(where=inside & core)}
    parts = [events.group_by(["account_id", "as_of"]).aggregate(**metrics)]
    if rollups.user_days is not None:
        users = _last_seen(rollups.user_days, "user_id", grid, config)
        metrics = {f"active_users_{w}d": users.count(where=users.last_day >= days_before(users.as_of, w))
                   for w in config.windows}
        last = users.last_day >= days_before(users.as_of, config.trend_window_days)
        metrics |= {"users_last": users.count(where=last),
                    "users_prev": users.count(where=users.prev_day.notnull())}
        parts.append(users.group_by(["account_id", "as_of"]).aggregate(**metrics))
    return parts


def _last_activity(rollups: EventRollups, grid: ir.Table) -> ir.Table:
    j = latest_before(grid, rollups.active_days, "day")
    return j.select("account_id", "as_of", days_since_last_activity=days_between(j.as_of, j.day))


def _mix_metrics(rollups: EventRollups, grid: ir.Table, config: FeatureConfig) -> ir.Table | None:
    """Per mix event, its events and all events in the two trend halves (`features.event_mix`)."""
    events = config.event_mix.events or []
    if not events:
        return None
    j = rows_within(grid, rollups.event_days, "day", 2 * config.trend_window_days)
    last, previous = _trend_halves(j, config)
    metrics = {"mix_total_last": j.n.sum(where=last), "mix_total_prev": j.n.sum(where=previous)}
    for i, event in enumerate(events):
        named = j.event_name == event
        metrics |= {f"mix_{i}_last": j.n.sum(where=last & named), f"mix_{i}_prev": j.n.sum(where=previous & named)}
    return j.group_by(["account_id", "as_of"]).aggregate(**metrics)


def _mix_columns(j: ir.Table, config: FeatureConfig) -> dict[str, ir.Value]:
    """Each mix event's share of the last trend window's events, and the change of its share in percentage points."""
    events = config.event_mix.events or []
    out = {}
    for i, slug in enumerate(mix_slugs(events)):
        now = _ratio(j[f"mix_{i}_last"], j.mix_total_last)
        before = _ratio(j[f"mix_{i}_prev"], j.mix_total_prev)
        out |= {f"{MIX_SHARE}{slug}": now, f"{MIX_CHANGE}{slug}": (now - before) * 100.0}
    return out


def _observed_days(j: ir.Table, window: int) -> ir.Value:
    """The days of a window an account was there for: the window, or the days since sign-up when fewer (at least 1;
    the window when the sign-up is unknown or not before the as-of)."""
    age = days_between(j.as_of, ibis.ifelse(j.created_at < j.as_of, j.created_at, ibis.null("timestamp")))
    return ibis.cases((age.isnull() | (age >= window), float(window)), (age < 1, 1.0), else_=age.cast("float64"))


def _rate_columns(j: ir.Table, config: FeatureConfig, has_users: bool) -> dict[str, ir.Value]:
    """The rates that travel between warehouses (catalog RATES): per observed day, user-day, seat-day, 100 of MRR."""
    out = {}
    per_100 = ibis.ifelse(j.mrr > 0, j.mrr / 100.0, ibis.null("float64"))
    for w in config.windows:
        days = _observed_days(j, w)
        out |= {f"events_per_day_{w}d": j[f"events_{w}d"] / days,
                f"active_day_share_{w}d": j[f"active_days_{w}d"] / days}
        if has_users:
            user_days = j[f"user_days_{w}d"]
            out |= {f"events_per_user_day_{w}d": _ratio(j[f"events_{w}d"], user_days),
                    f"seat_day_utilisation_{w}d": _ratio(user_days, j.seats * days)}
    t = config.trend_window_days
    days = _observed_days(j, t)
    out["daily_events_per_100_mrr"] = j[f"events_{t}d"] / days / per_100
    if has_users:
        out["daily_users_per_100_mrr"] = j[f"user_days_{t}d"] / days / per_100
    return out


def compute_engagement_features(rollups: EventRollups, grid: ir.Table, state: ir.Table,
                                config: FeatureConfig) -> ir.Table:
    """Return one row per grid (account_id, as_of) with the engagement features of the catalog, the rates that travel
    and the mix of event types.

    Args:
        rollups: event rollups spanning the grid's windows (`build_event_rollups`).
        grid: (account_id, as_of) rows, as_of a midnight timestamp.
        state: (account_id, as_of, mrr, seats, created_at): MRR and paid seats just before each as-of, and sign-up.
    """
    windows = sorted({*config.windows, config.trend_window_days})
    parts = [_daily_metrics(rollups, grid, config, windows), *_distinct_metrics(rollups, grid, config),
             _last_activity(rollups, grid), _mix_metrics(rollups, grid, config),
             state.select("account_id", "as_of", "seats", "mrr", "created_at")]
    j = left_join_all(grid, parts)
    kept = ("days_since_last_activity", "seats", "mrr", "created_at")
    zero = {c: j[c].fill_null(0) for c in j.columns if c not in grid.columns
            and c not in kept and not c.startswith("session_seconds")}
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
            f"events_per_session_{w}d": _ratio(j[f"events_{w}d"], j[f"sessions_{w}d"]),
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
    out |= _rate_columns(j, config, rollups.has_users) | _mix_columns(j, config)
    return j.select(*grid.columns, **out)
