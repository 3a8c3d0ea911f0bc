"""Value realised: the amounts on events (`events.value`, e.g. a deal's value) and the outcome events of
`features.outcome_events` (won and lost), computed in the warehouse.

Only events carrying an amount or named as outcomes matter here, so they are rolled up once to one row per account
and day (value realised, outcomes won, outcomes lost) before meeting the grid; a day before a midnight as-of holds
only events before it. Events named as lost outcomes are value the customer did not get: their amounts are left
out of the value realised. The first won outcome of an account before an as-of t is its first won outcome overall
when that falls before t, as for first value (`features.value`).
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import ibis.expr.types as ir

from features.catalog import REALISED, FeatureSpec, producible
from features.commercial import compute_subscription_state
from features.config import FeatureConfig
from features.joins import left_join_all
from features.pit import days_before, days_between, rows_within
from features.sources import Sources

_KEYS = ["account_id", "as_of"]


def _lookback_days(config: FeatureConfig) -> int:
    return max(max(config.windows), 2 * config.trend_window_days, 2 * config.outcome_window_days)


def _daily_rollup(sources: Sources, config: FeatureConfig, as_of_dates: list[date], amounts: bool) -> ir.Table:
    """(account_id, day, value, won, lost) for the days any as-of's windows read."""
    events = sources["events"]
    first = min(as_of_dates) - timedelta(days=_lookback_days(config))
    events = events.filter(events.event_at >= ibis.timestamp(first),
                           events.event_at < ibis.timestamp(max(as_of_dates)))
    outcomes = config.outcome_events
    is_won = events.event_name.isin(outcomes.won) if outcomes.configured else ibis.literal(False)
    is_lost = events.event_name.isin(outcomes.lost) if outcomes.configured else ibis.literal(False)
    n = events.event_count.fill_null(1) if sources.has("events", "event_count") else ibis.literal(1)
    value = events.value if amounts else ibis.null("float64")
    realised = ibis.ifelse(is_lost, ibis.null("float64"), value)
    events = events.filter(is_won | is_lost | value.notnull()).mutate(
        day=events.event_at.truncate("D"), n=n.cast("int64"), realised=realised, is_won=is_won, is_lost=is_lost)
    return events.group_by(["account_id", "day"]).aggregate(
        value=events.realised.sum(), won=events.n.sum(where=events.is_won), lost=events.n.sum(where=events.is_lost))


def _change(last: ir.Value, previous: ir.Value) -> ir.Value:
    return ibis.ifelse(previous > 0, last / previous.nullif(0) - 1.0, ibis.null("float64"))


def _rate(won: ir.Value, lost: ir.Value) -> ir.Value:
    total = won + lost
    return ibis.ifelse(total > 0, won.cast("float64") / total.nullif(0), ibis.null("float64"))


def _window_sums(rollup: ir.Table, keys: ir.Table, config: FeatureConfig) -> ir.Table:
    j = rows_within(keys, rollup, "day", _lookback_days(config))
    t, o = config.trend_window_days, config.outcome_window_days
    last_trend, last_outcome = j.day >= days_before(j.as_of, t), j.day >= days_before(j.as_of, o)
    before_trend = (j.day < days_before(j.as_of, t)) & (j.day >= days_before(j.as_of, 2 * t))
    before_outcome = (j.day < days_before(j.as_of, o)) & (j.day >= days_before(j.as_of, 2 * o))
    sums = {f"value_{w}d": j.value.sum(where=j.day >= days_before(j.as_of, w)) for w in config.windows}
    sums |= {"value_last": j.value.sum(where=last_trend), "value_prev": j.value.sum(where=before_trend),
             "won_last": j.won.sum(where=last_outcome), "lost_last": j.lost.sum(where=last_outcome),
             "won_prev": j.won.sum(where=before_outcome), "lost_prev": j.lost.sum(where=before_outcome)}
    return j.group_by(_KEYS).aggregate(**sums)


def _first_won(sources: Sources, keys: ir.Table, config: FeatureConfig) -> ir.Table:
    events = sources["events"]
    won = events.filter(events.event_name.isin(config.outcome_events.won), events.event_at < keys.as_of.max())
    return won.group_by("account_id").aggregate(first_won_at=won.event_at.min())


def _columns(j: ir.Table, config: FeatureConfig) -> dict[str, ir.Value]:
    zero = {c: j[c].fill_null(0) for c in ("value_last", "value_prev", "won_last", "lost_last", "won_prev",
                                           "lost_prev", *[f"value_{w}d" for w in config.windows])}
    o = config.outcome_window_days
    rate_last, rate_prev = _rate(zero["won_last"], zero["lost_last"]), _rate(zero["won_prev"], zero["lost_prev"])
    created = ibis.ifelse(j.created_at < j.as_of, j.created_at, ibis.null("timestamp"))
    won_yet = (j.first_won_at < j.as_of).fill_null(False)
    out = {f"value_realised_{w}d": zero[f"value_{w}d"].cast("float64") for w in config.windows}
    return out | {
        "value_realised_trend": _change(zero["value_last"].cast("float64"), zero["value_prev"].cast("float64")),
        "value_per_mrr": ibis.ifelse(j.mrr > 0, zero["value_last"].cast("float64") / j.mrr.nullif(0),
                                           ibis.null("float64")),
        f"outcome_success_rate_{o}d": rate_last,
        f"outcome_success_change_{o}d": (rate_last - rate_prev) * 100.0,
        f"outcomes_{o}d": (zero["won_last"] + zero["lost_last"]).cast("float64"),
        "days_to_first_outcome": ibis.ifelse(won_yet, days_between(j.first_won_at, created), ibis.null("float64")),
    }


def realised_specs(sources: Sources, config: FeatureConfig) -> list[FeatureSpec]:
    """The value-realised features this warehouse and configuration can provide."""
    return producible(REALISED, config.windows_by_kind(), sources.missing + config.unset_needs())


def compute_realised_features(sources: Sources, grid: ir.Table, config: FeatureConfig,
                              as_of_dates: list[date]) -> ir.Table | None:
    """Return one row per grid (account_id, as_of) with the value-realised features of the catalog, or None when
    the warehouse has no `events.value` and no outcome events are configured.

    Sums and counts are 0 without events; trends, rates, value per MRR and days to the first won outcome are
    NULL when undefined (nothing to compare with, no outcome, no MRR, none won yet).

    Args:
        grid: (account_id, as_of) rows, as_of a midnight timestamp among `as_of_dates`.
        config: windows, outcome_events and outcome_window_days.
    """
    specs = realised_specs(sources, config)
    if not specs:
        return None
    keys = grid.select(*_KEYS)
    rollup = _daily_rollup(sources, config, as_of_dates, amounts=sources.has("events", "value"))
    accounts = sources["accounts"].select("account_id", "created_at")
    first_won = _first_won(sources, keys, config) if config.outcome_events.configured else None
    j = left_join_all(keys, (_window_sums(rollup, keys, config),
                             compute_subscription_state(sources, keys).select(*_KEYS, "mrr"), accounts, first_won))
    if first_won is None:
        j = j.mutate(first_won_at=ibis.null("timestamp"))
    values = _columns(j, config)
    return j.select(*_KEYS, **{s.name: values[s.name] for s in specs})
