"""The point-in-time rule, in one place: what a feature at as-of t may read.

A feature at as-of t reads only rows whose timestamp is strictly before t. A row stamped exactly at t, or later,
is future data: it is never joined to t, so changing, adding or deleting it changes no feature at t. An end
timestamp (a subscription's `end_at`, a ticket's `resolved_at`) at or after t is future data too: it is often filled
only when the cancellation or resolution happens, so it is only ever compared with t ("not ended before t"), never
read for its value. A window of N days before t is [t − N days, t): its first instant is in, t itself is not.

The helpers join a grid of (account_id, as_of) rows, as_of a midnight timestamp, to source rows under that rule, so
each feature module states which rows it reads instead of writing the comparison by hand:

- `rows_before`: the rows stamped before the as-of (extra join conditions may narrow them further);
- `rows_within`: the same, in the window [as_of − days, as_of);
- `latest_before`: the newest row before the as-of (per account, or per account and another key);
- `rows_open_before`: rows open just before the as-of (started before it, not ended before it);
- `days_before`, `within`, `open_before`: the same instants and conditions as expressions, for aggregate filters;
- `days_between`: whole calendar days between two timestamps.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

# The helper column `latest_before` adds and drops again: the next row's timestamp within its group.
_NEXT_AT = "pit_next_at"


def _columns(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def days_before(as_of: ir.TimestampValue, days: int) -> ir.TimestampValue:
    """Return the instant `days` days before `as_of`: the first instant of a `days`-day window ending at the as-of."""
    return as_of - ibis.interval(days=days)


def within(at: ir.TimestampValue, as_of: ir.TimestampValue, days: int) -> ir.BooleanValue:
    """Whether `at` lies in the window [as_of − days, as_of): at or after its first instant, strictly before as_of."""
    return (at < as_of) & (at >= days_before(as_of, days))


def open_before(start_at: ir.TimestampValue, end_at: ir.TimestampValue, at: ir.TimestampValue) -> ir.BooleanValue:
    """Whether a row spanning [start_at, end_at) is open just before `at`: started before it and not ended before it.

    A NULL end is open. An end at or after `at` is future data, so only the fact that it is not earlier is read.
    """
    return (start_at < at) & (end_at.isnull() | (end_at >= at))


def rows_before(grid: ir.Table, rows: ir.Table, at_column: str, *also: ir.BooleanValue,
                by: str | Sequence[str] = "account_id") -> ir.Table:
    """Join each grid row to the `rows` of its account stamped strictly before its as-of.

    Args:
        grid: (account_id, as_of, ...) rows.
        rows: source rows with the `by` columns and the timestamp `at_column`.
        also: further join conditions over `grid` and `rows` (e.g. how far back a row may reach).
        by: the columns the grid and the rows share (the account).

    Returns:
        An inner join: one row per grid row and matching source row, with the grid's columns, then the rows' (their
        `by` columns suffixed `_right`, as Ibis names them).
    """
    keys = [grid[c] == rows[c] for c in _columns(by)]
    return grid.join(rows, [*keys, rows[at_column] < grid.as_of, *also])


def rows_within(grid: ir.Table, rows: ir.Table, at_column: str, days: int, *also: ir.BooleanValue,
                by: str | Sequence[str] = "account_id") -> ir.Table:
    """Join each grid row to the `rows` of its account stamped in [as_of − days, as_of).

    A row exactly `days` days before the as-of is in; a row at the as-of is not. Arguments as in `rows_before`.
    """
    return rows_before(grid, rows, at_column, rows[at_column] >= days_before(grid.as_of, days), *also, by=by)


def rows_open_before(grid: ir.Table, rows: ir.Table, start_column: str, end_column: str,
                     by: str | Sequence[str] = "account_id") -> ir.Table:
    """Join each grid row to the `rows` of its account open just before its as-of (see `open_before`)."""
    keys = [grid[c] == rows[c] for c in _columns(by)]
    return grid.join(rows, [*keys, open_before(rows[start_column], rows[end_column], grid.as_of)])


def latest_before(grid: ir.Table, rows: ir.Table, at_column: str, ties: Sequence[str] = (),
                  per: Sequence[str] = (), by: str | Sequence[str] = "account_id") -> ir.Table:
    """Join each grid row to the newest row of its account stamped strictly before its as-of.

    The newest row is found without reading the future: rows are ordered per group by `at_column`, then `ties`, and
    the newest before t is the one whose next row is at or after t, or that has none. The next row's timestamp is
    only compared with t.

    Args:
        ties: columns ordering rows with the same timestamp; the last in that order is the newest.
        per: further columns of `rows` to take the newest row of each (e.g. per user of the account).
        by: the columns the grid and the rows share (the account).

    Returns:
        An inner join: at most one source row per grid row and `per` group, with both tables' columns.
    """
    order = ibis.window(group_by=[*_columns(by), *per], order_by=[at_column, *ties])
    rows = rows.mutate(**{_NEXT_AT: rows[at_column].lead().over(order)})
    following = rows[_NEXT_AT]
    j = rows_before(grid, rows, at_column, following.isnull() | (following >= grid.as_of), by=by)
    return j.drop(_NEXT_AT)


def days_between(later: ir.TimestampValue, earlier: ir.TimestampValue) -> ir.FloatingValue:
    """Return the whole calendar days from `earlier`'s date to `later`'s date, as float64 (NULL if either is NULL).

    Calendar days, not elapsed time: from 2024-02-27 10:00 to 2024-03-01 00:00 is 3 days.
    """
    return later.date().delta(earlier.date(), unit="day").cast("float64")
