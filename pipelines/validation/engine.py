"""The engine side of validation: count failing rows and table metrics where the data lives, fetch only the
failing rows (at most a bounded number) for Great Expectations.

One aggregate query per table counts every rule's failing rows and every table metric; a second query fetches
the failing rows only when there are any. A good table therefore costs one scan and hands GX an empty frame,
however many rows it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pandas as pd

from features.sources import Sources
from pipelines.validation.rules import (
    ACCOUNT_KNOWN,
    ACTIVITY_AT,
    KEYS,
    Check,
    before_created,
    duplicates,
    nonfinite,
    uncastable,
)
from pipelines.warehouse import count_of, naive_utc

Execute = Callable[[ir.Expr], pd.DataFrame]


@dataclass
class Measured:
    """What the engine found for one table: the profile (one row per column: column, values, rows, checked), the
    failing rows, and the failing count of each row check by its index."""

    profile: pd.DataFrame
    rows: pd.DataFrame
    counts: dict[int, int]
    capped: bool


def source_view(sources: Sources, name: str, accounts: ir.Table | None) -> ir.Table:
    """The table with canonical columns cast leniently (a value that does not cast becomes null, and its text goes
    to `<column>__uncastable`), normalised as the features read it, plus helper columns for keys and accounts."""
    view = _lenient(sources[name])
    if "survey_type" in view.columns:
        view = view.mutate(survey_type=view.survey_type.lower())
    if name == "cs_actions" and "arm" in view.columns:   # read in any case, like survey types
        view = view.mutate(arm=view.arm.lower())
    if name in KEYS:
        view = with_duplicate_counts(view, (KEYS[name],))
    if accounts is not None and "account_id" in view.columns:
        known = accounts.filter(accounts.account_id.notnull()).account_id
        view = view.mutate(**{ACCOUNT_KNOWN: view.account_id.isin(known).fill_null(False)})
    view = view.mutate(**{nonfinite(c): ibis.ifelse(view[c].isnan() | view[c].isinf(), view[c].cast("string"),
                                                    ibis.null("string"))
                          for c in canonical_columns(view) if view[c].type().is_floating()})
    if accounts is not None and name in ACTIVITY_AT and ACTIVITY_AT[name] in view.columns:
        view = _with_before_created(view, accounts, ACTIVITY_AT[name])
    return view


def _with_before_created(view: ir.Table, accounts: ir.Table, column: str) -> ir.Table:
    """Add 'account at timestamp' where the row's timestamp precedes its account's (earliest) creation."""
    created = accounts.group_by("account_id").aggregate(_account_created_at=accounts.created_at.min())
    joined = view.left_join(created, view.account_id == created.account_id).drop("account_id_right")
    early = joined[column] < joined._account_created_at
    text = joined.account_id.cast("string").concat(" at ", joined[column].cast("string"))
    return joined.mutate(**{before_created(column): ibis.ifelse(early, text, ibis.null("string"))}).drop(
        "_account_created_at")


def with_duplicate_counts(view: ir.Table, key: tuple[str, ...]) -> ir.Table:
    """Add the number of rows sharing each row's key (0 where a key part is null)."""
    window = ibis.window(group_by=[view[k] for k in key])
    filled = ibis.and_(*[view[k].notnull() for k in key])
    count = ibis.ifelse(filled, ibis.literal(1), ibis.literal(0)).sum().over(window)
    return view.mutate(**{duplicates(key): count})


def uncast_columns(table: ir.Table) -> list[str]:
    """The columns `load_sources` casts to the contract's type (the others already have it)."""
    op = table.op()
    values = op.values if isinstance(op, ops.Project) else {}
    return [name for name, value in values.items() if isinstance(value, ops.Cast)]


def _lenient(table: ir.Table) -> ir.Table:
    """Rebuild `load_sources`' projection with TRY_CAST in place of CAST, keeping the raw text of failures."""
    op = table.op()
    if not isinstance(op, ops.Project):
        return table
    columns = {}
    for name, value in op.values.items():
        if isinstance(value, ops.Cast):
            raw = value.arg.to_expr()
            cast = raw.try_cast(value.to)
            columns[name] = cast
            columns[uncastable(name)] = ibis.ifelse(raw.notnull() & cast.isnull(), raw.cast("string"),
                                                    ibis.null("string"))
        else:
            columns[name] = value.to_expr()
    return op.parent.to_expr().select(**columns)


def canonical_columns(view: ir.Table) -> list[str]:
    """The view's own columns, without the helper and `__uncastable` columns validation adds."""
    return [c for c in view.columns if not c.startswith("_") and not c.endswith("__uncastable")]


def _count_values(view: ir.Table, column: str) -> ir.Scalar:
    """Non-null values, counting text that fails the cast as a value (the castable rule reports it)."""
    values = view[column].notnull()
    if uncastable(column) in view.columns:
        values = values | view[uncastable(column)].notnull()
    return values.sum()


def measure(view: ir.Table, checks: list[Check], checked: set[str], max_rows: int, execute: Execute) -> Measured:
    """Count each row check's failing rows and each column's values in one query; fetch the failing rows.

    Args:
        checked: the columns the not_all_null rule covers (marked in the profile).
        max_rows: when more rows fail, each failing check contributes an equal share of its rows (duplicate keys
            kept together), so every failure still shows examples; the counts stay exact.
    """
    row_checks = {i: c for i, c in enumerate(checks) if c.failing is not None}
    columns = canonical_columns(view)
    aggregates = {"rows": view.count(), **{f"_values_{j}": _count_values(view, c) for j, c in enumerate(columns)},
                  **{f"_failing_{i}": c.failing(view).sum() for i, c in row_checks.items()}}
    found = execute(view.aggregate(**aggregates)).iloc[0]
    counts = {i: count_of(found[f"_failing_{i}"]) for i in row_checks}
    rows = count_of(found["rows"])
    profile = pd.DataFrame({"column": columns, "values": [count_of(found[f"_values_{j}"]) for j in range(len(columns))],
                            "rows": rows, "checked": [c in checked for c in columns]})
    failing = [i for i, n in counts.items() if n]
    capped = sum(counts[i] for i in failing) > max_rows
    if not failing:
        fetched = _empty(view)
    elif not capped:
        fetched = execute(view.filter(ibis.or_(*[row_checks[i].failing(view) for i in failing])))
    else:
        share = max(max_rows // len(failing), 1)
        fetched = pd.concat([execute(_first(view, row_checks[i], share)) for i in failing], ignore_index=True)
    # In UTC without the zone, as the engine compared them: pandas (in GX) cannot compare a `timestamptz` column
    # with a plain one, as a pair rule does (end_at after start_at).
    return Measured(profile=profile, rows=naive_utc(fetched), counts=counts, capped=capped)


def _empty(view: ir.Table) -> pd.DataFrame:
    """The view's columns with no rows, typed as a query would return them (without running one)."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in view.schema().to_pandas()})


def _first(view: ir.Table, check: Check, limit: int) -> ir.Table:
    rows = view.filter(check.failing(view))
    if check.order_by:
        rows = rows.order_by(list(check.order_by))
    return rows.limit(limit)
