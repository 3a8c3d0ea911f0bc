"""The calendar months KPIs are computed for, the segments they are broken down by, and the long rows they are
written as.

A month is reported when it is complete: it starts at or after the day the events begin, and the midnight after it
is no later than the latest as-of the data supports. It is *settled* when churn in it is known: its end plus the
grace period is at or before the data end (the rule of `features.snapshots.compute_churn_dates`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd

from features.snapshots import latest_as_of
from features.sources import Sources

ALL = "all"  # the segment of every account together
UNKNOWN = "unknown"  # the segment of an account without one
# The columns of the KPI table, in order.
COLUMNS = ("month", "segment", "kpi", "value", "numerator", "denominator")


def _add_months(day: date, months: int) -> date:
    return (pd.Timestamp(day) + pd.DateOffset(months=months)).date()


@dataclass(frozen=True)
class KpiMonths:
    """The complete calendar months of the data (first days), the settled ones, and the data's span."""

    months: tuple[date, ...]
    settled: tuple[date, ...]
    data_start: datetime
    data_end: datetime
    grace_days: int

    @property
    def end(self) -> date:
        """The first day after the last complete month."""
        return _add_months(self.months[-1], 1)

    def pending(self) -> list[tuple[date, date]]:
        """(month, the first day its churn is known) for each complete month not settled yet."""
        return [(m, _add_months(m, 1) + timedelta(days=self.grace_days)) for m in self.months
                if m not in self.settled]


def _utc(moment: datetime) -> datetime:
    """The instant as a naive UTC datetime (month boundaries are UTC midnights)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def build_kpi_months(data_start: datetime, data_end: datetime, grace_days: int) -> KpiMonths:
    """The complete months between the day the events begin and the latest as-of, and which are settled.

    Raises:
        ValueError: the data holds no complete calendar month.
    """
    data_start, data_end = _utc(data_start), _utc(data_end)
    first = data_start.date().replace(day=1)
    if first < data_start.date():
        first = _add_months(first, 1)
    last_end = latest_as_of(data_end)
    months = []
    while _add_months(first, 1) <= last_end:
        months.append(first)
        first = _add_months(first, 1)
    if not months:
        raise ValueError(f"kpis: the data ({data_start:%Y-%m-%d} to {data_end:%Y-%m-%d}) holds no complete "
                         "calendar month")
    grace = timedelta(days=grace_days)
    settled = [m for m in months if datetime.combine(_add_months(m, 1), datetime.min.time()) + grace <= data_end]
    return KpiMonths(months=tuple(months), settled=tuple(settled), data_start=data_start, data_end=data_end,
                     grace_days=grace_days)


def month_table(months: KpiMonths) -> ir.Table:
    """(month, month_end, window_start, days, settled): each complete month's first instant, the first instant
    after it, the first instant of the 12 months ending with it, its number of days, and whether it is settled."""
    ends = [_add_months(m, 1) for m in months.months]
    frame = pd.DataFrame({
        "month": pd.to_datetime(pd.Series(months.months)).astype("datetime64[us]"),
        "month_end": pd.to_datetime(pd.Series(ends)).astype("datetime64[us]"),
        "window_start": pd.to_datetime(pd.Series([_add_months(m, -11) for m in months.months])).astype(
            "datetime64[us]"),
        "days": [(end - m).days for m, end in zip(months.months, ends, strict=True)],
        "settled": [m in months.settled for m in months.months],
    })
    return ibis.memtable(frame)


def boundary_table(months: KpiMonths) -> ir.Table:
    """(at): every month's first instant and the first instant after it."""
    instants = sorted({*months.months, *[_add_months(m, 1) for m in months.months]})
    return ibis.memtable(pd.DataFrame({"at": pd.to_datetime(pd.Series(instants)).astype("datetime64[us]")}))


def account_segments(sources: Sources, segment_by: str | None) -> ir.Table | None:
    """(account_id, segment) from the accounts column `segment_by` (empty or blank → `unknown`); None without it."""
    if segment_by is None or not sources.has("accounts", segment_by):
        return None
    accounts = sources["accounts"]
    segment = accounts[segment_by].cast("string")
    segment = ibis.ifelse(segment.isnull() | (segment.strip() == ""), UNKNOWN, segment)
    return accounts.select("account_id", segment=segment)


def count_reserved_segments(sources: Sources, segment_by: str | None) -> int:
    """How many accounts have the segment `all` in `segment_by`: their rows would add into every account's."""
    if segment_by is None or not sources.has("accounts", segment_by):
        return 0
    accounts = sources["accounts"]
    return int(accounts.filter(accounts[segment_by].cast("string") == ALL).count().execute())


def by_segment(rows: ir.Table, segments: ir.Table | None) -> ir.Table:
    """The rows (with an account_id) once with their account's segment and once more as segment `all`."""
    everyone = rows.mutate(segment=ibis.literal(ALL))
    if segments is None:
        return everyone
    own = rows.join(segments, "account_id")
    return everyone.union(own.select(*everyone.columns), distinct=False)


def ratio(numerator: ir.Value, denominator: ir.Value, scale: float = 1.0) -> ir.FloatingValue:
    """scale × numerator ÷ denominator as float64; NULL when the denominator is 0."""
    top = numerator.cast("float64") if scale == 1.0 else numerator.cast("float64") * scale
    return top / denominator.cast("float64").nullif(0.0)


def kpi_rows(table: ir.Table, kpi: str, value: ir.Value, numerator: ir.Value | None = None,
             denominator: ir.Value | None = None, month: str = "month") -> ir.Table:
    """The long rows (month, segment, kpi, value, numerator, denominator) of one KPI from a per-month table."""
    def number(x):
        return ibis.null("float64") if x is None else x.cast("float64")

    # One timestamp type for every part: a month truncated from a source column keeps that column's precision.
    return table.select(month=table[month].cast("timestamp"), segment=table.segment, kpi=ibis.literal(kpi),
                        value=number(value),
                        numerator=number(numerator), denominator=number(denominator))
