"""Snapshots and labels: the as-of grid, the population active at each as-of, and the churn label."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd

from features.config import LabelConfig, SnapshotConfig
from features.contract import NOT_FOR_LABELS
from features.sources import ContractError, Sources

# Stands in for an open end (NULL end_at) in comparisons; far enough that adding a grace period cannot overflow.
OPEN_END = ibis.timestamp("9000-01-01 00:00:00")


def find_data_bounds(sources: Sources, config: SnapshotConfig) -> tuple[datetime, datetime]:
    """Return (first, newest) event timestamps; `config.data_end` overrides the newest when set."""
    events = sources["events"]
    bounds = events.aggregate(first=events.event_at.min(), last=events.event_at.max()).execute()
    first, last = bounds["first"].iloc[0], bounds["last"].iloc[0]
    if pd.isna(first):
        raise ContractError("table events: no rows, so the data's time span is unknown (rule: events not empty)")
    data_end = config.data_end or last.to_pydatetime()
    return first.to_pydatetime(), data_end


def latest_as_of(data_end: datetime) -> date:
    """The newest as-of the data supports: the midnight after the data end's day, so every event is before it.

    An event at exactly midnight (date-only data) belongs to that day: its day's as-of is the next midnight.
    """
    return data_end.date() + timedelta(days=1)


def build_as_of_dates(config: SnapshotConfig, data_start: datetime, data_end: datetime,
                      lookback_days: int) -> list[date]:
    """Return the as-of grid from `config.start` (default: data start + lookback) to `config.end` (default: data end).

    Monthly grids land on the first of the month; day and week steps count from the start.
    """
    step, unit = config.step
    start = config.start or (data_start + timedelta(days=lookback_days)).date()
    end = config.end or latest_as_of(data_end)
    if unit == "mo":
        first = date(start.year, start.month, 1)
        if first < start:
            first = (pd.Timestamp(first) + pd.DateOffset(months=1)).date()
        dates = pd.date_range(first, end, freq=f"{step}MS")
    else:
        dates = pd.date_range(start, end, freq=f"{step * (7 if unit == 'w' else 1)}D")
    if len(dates) == 0:
        first = ("snapshots.start" if config.start else "the data's start" if not lookback_days else
                 f"the data's start plus the features' longest look-back of {lookback_days} days")
        raise ValueError(f"snapshots: no as-of date between {start} ({first}) and {end} every {config.every} "
                         f"(data runs {data_start:%Y-%m-%d} to {data_end:%Y-%m-%d})")
    return [d.date() for d in dates]


def as_of_table(as_of_dates: list[date]) -> ir.Table:
    """The as-of dates as a one-column table of midnight timestamps."""
    frame = pd.DataFrame({"as_of": pd.to_datetime(pd.Series(as_of_dates)).astype("datetime64[us]")})
    return ibis.memtable(frame)


def compute_active_periods(sources: Sources, grace_days: int) -> ir.Table:
    """Return (account_id, period_start, period_end): each account's active periods, its subscription rows (trial
    rows included) merged when they overlap or follow one another within `grace_days`.

    A period ends at the latest `end_at` of its rows, or at OPEN_END when one of them is open.
    """
    subs = sources["subscriptions"].select("account_id", "start_at", "end_at")
    grace = ibis.interval(days=grace_days)
    order = ["start_at", "end_at"]
    before = ibis.window(group_by="account_id", order_by=order, rows=(None, -1))
    subs = subs.mutate(prev_end=subs.end_at.fill_null(OPEN_END).max().over(before))
    # ifelse, not a cast: PostgreSQL cannot cast boolean to bigint.
    subs = subs.mutate(new_period=ibis.ifelse(subs.prev_end.isnull() | (subs.start_at > subs.prev_end + grace), 1, 0))
    subs = subs.mutate(period=subs.new_period.sum().over(ibis.cumulative_window(group_by="account_id",
                                                                                 order_by=order)))
    periods = subs.group_by(["account_id", "period"]).aggregate(period_start=subs.start_at.min(),
                                                                period_end=subs.end_at.fill_null(OPEN_END).max())
    return periods.select("account_id", "period_start", "period_end")


def compute_churn_dates(sources: Sources, label: LabelConfig, data_end: datetime) -> ir.Table:
    """Return (account_id, churn_at): the end of each active period not followed by a new subscription within
    the grace period, known at `data_end` (churn_at + grace <= data_end); open or future ends are not churn.
    """
    periods = compute_active_periods(sources, label.grace_days)
    known = periods.period_end + ibis.interval(days=label.grace_days) <= ibis.literal(data_end)
    return periods.filter(known).select("account_id", churn_at=periods.period_end)


def build_snapshots(sources: Sources, as_of_dates: list[date], label: LabelConfig,
                    data_end: datetime, include_trials: bool = False) -> ir.Table:
    """Return (account_id, as_of, label): accounts with a subscription covering each as-of, labelled 1 when they
    churn in (as_of, as_of + horizon], 0 when they don't, and NULL when the horizon (plus grace) runs past data end.

    Args:
        include_trials: count accounts covered only by trial rows (`is_trial`) as active.
    """
    labelled = build_labelled_population(sources, as_of_dates, label, data_end, include_trials)
    return labelled.select("account_id", "as_of", "label")


def build_labelled_population(sources: Sources, as_of_dates: list[date], label: LabelConfig,
                              data_end: datetime, include_trials: bool = False) -> ir.Table:
    """Return (account_id, as_of, label, churn_at): the rows and labels of `build_snapshots`, with the churn date
    that made a label 1 (the first churn in the horizon; NULL when the label is 0 or NULL).

    Training learns from `label`; `churn outcomes` reads the same label and its date for the scorings whose horizon
    and grace have passed, so "what really happened" is exactly what the model was trained to predict.
    """
    sources = sources.without(*NOT_FOR_LABELS)   # labels come from subscriptions only, never from what CS did
    subs = sources["subscriptions"]
    if not include_trials and "is_trial" in subs.columns:
        subs = subs.filter(~subs.is_trial.fill_null(False))
    grid = as_of_table(as_of_dates)
    covering = grid.join(subs, [subs.start_at <= grid.as_of,
                                subs.end_at.isnull() | (subs.end_at > grid.as_of)])
    population = covering.select("account_id", "as_of").distinct()
    churn = compute_churn_dates(sources, label, data_end)
    horizon = ibis.interval(days=label.horizon_days)
    hits = population.join(churn, [population.account_id == churn.account_id,
                                   churn.churn_at > population.as_of,
                                   churn.churn_at <= population.as_of + horizon])
    churned = hits.group_by(["account_id", "as_of"]).aggregate(churn_at=hits.churn_at.min()).mutate(
        churned=ibis.literal(1, "int8"))
    labelled = population.left_join(churned, ["account_id", "as_of"]).select(
        population.account_id, population.as_of, churned=churned.churned, churn_at=churned.churn_at)
    known = labelled.as_of + horizon + ibis.interval(days=label.grace_days) <= ibis.literal(data_end)
    return labelled.select(
        "account_id", "as_of",
        label=ibis.ifelse(known, labelled.churned.fill_null(0), ibis.null("int8")).cast("int8"),
        churn_at=ibis.ifelse(known, labelled.churn_at, ibis.null(labelled.churn_at.type())),
    )


def is_matured(as_of: date, label: LabelConfig, data_end: datetime) -> bool:
    """Whether the outcome at `as_of` is known: its horizon plus grace ends by the data end (as labels need)."""
    if data_end.tzinfo is not None:   # compared in UTC, as the engine compares an as-of with aware timestamps
        data_end = data_end.astimezone(UTC).replace(tzinfo=None)
    return datetime.combine(as_of, datetime.min.time()) + timedelta(
        days=label.horizon_days + label.grace_days) <= data_end
