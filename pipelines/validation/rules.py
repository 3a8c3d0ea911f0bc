"""The validation checks, built from the source contract, the feature catalog and the score schema.

A check is one rule on one column of one table: the Great Expectations expectation that states it, and the
same rule as an Ibis predicate (`failing`) so the engine can count failing rows and fetch only those for GX.
Table-level rules (not empty, no all-null column) run on the table's profile: one row per column with the row
count and the column's non-null count, computed in the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import ibis
import ibis.expr.types as ir

from features.catalog import CATALOG
from features.contract import CONTRACT, TableSpec
from serving.experiments import ARMS
from serving.tables import FEATURES_TABLE, SCORES_TABLE
from serving.writeback import SCORES_SCHEMA

# Keys of the source tables; the other tables have none.
KEYS = {"accounts": "account_id", "tickets": "ticket_id", "surveys": "response_id"}
# Timestamps that may lie ahead legitimately: contracts are booked and cancelled in advance.
SCHEDULED = {("subscriptions", "start_at"), ("subscriptions", "end_at")}
# Columns where null has a meaning (end_at null = still open, arm null = no experiment), so all-null and missing
# values are fine.
NULL_MEANS_OPEN = {("subscriptions", "end_at"), ("tickets", "resolved_at"), ("cs_actions", "arm")}
ORDERED = (("subscriptions", "end_at", "start_at", "end_after_start"),
           ("tickets", "resolved_at", "created_at", "resolved_after_created"))
NON_NEGATIVE = (("subscriptions", "mrr"), ("subscriptions", "seats"), ("events", "duration_s"),
                ("events", "event_count"), ("events", "value"))
# Money beyond this per subscription row is a unit or load error, not a price (and overflows engines' decimals).
MAX_MRR = 1e9
# (table, column, low, high, where survey_type is): the scales of the contract.
RANGES = (("tickets", "csat", 1, 5, None), ("surveys", "score", 0, 10, "nps"), ("surveys", "score", 1, 5, "csat"),
          ("surveys", "score", 1, 7, "ces"), ("subscriptions", "billing_period_months", 1, None, None),
          ("subscriptions", "mrr", None, MAX_MRR, None))
ALLOWED = {("surveys", "survey_type"): ("nps", "csat", "ces"), ("cs_actions", "arm"): ARMS}
# Timestamps that must not lie after the data's end (plus the tolerance): an action logged after the newest event
# would fall in a horizon whose churn the warehouse cannot know yet (a clock, time zone or load-order error).
UNTIL_DATA_END = {("cs_actions", "done_at")}

# Feature units and the range their values keep; units not listed (change, points, category) are unbounded.
UNIT_RANGES = {"share": (0, 1), "flag": (0, 1), "score": (0, 10), "count": (0, None), "days": (0, None),
               "hours": (0, None), "minutes": (0, None), "currency": (0, None), "number": (0, None),
               "sentiment": (-1, 1)}
# Active users (or user-days) over paid seats (or seat-days): over-use of seats is real, so these "shares" may
# exceed 1.
UNBOUNDED_SHARES = ("seat_utilisation_", "seat_day_utilisation_")

ACCOUNT_KNOWN = "_account_known"


def uncastable(column: str) -> str:
    """Name of the column holding a value as text where it does not cast to the contract type (else null)."""
    return f"{column}__uncastable"


def nonfinite(column: str) -> str:
    """Name of the column holding a NaN or infinite value of a numeric column as text (else null)."""
    return f"_nonfinite__{column}"


def before_created(column: str) -> str:
    """Name of the column holding 'account at timestamp' where the timestamp precedes the account's creation."""
    return f"_before_created__{column}"


# The timestamp of each activity table that must not precede its account's creation.
ACTIVITY_AT = {"events": "event_at", "tickets": "created_at", "surveys": "responded_at",
               "milestones": "achieved_at", "users": "created_at", "cs_actions": "done_at"}


def duplicates(key: tuple[str, ...]) -> str:
    """Name of the helper column counting the rows sharing a row's key."""
    return "_rows_per_" + "_".join(key)


@dataclass(frozen=True)
class Check:
    """One rule on one column (or the table): the GX expectation and the engine's view of the same rule.

    `kwargs` values may be callables of the frame GX sees (e.g. the set of known account ids).
    `failing` gives the failing rows; a `profile` check runs on the profile frame (columns: column, values, rows,
    checked); a check with neither (column_present) runs on the frame of failing rows as is.
    """

    table: str
    column: str | None
    rule: str
    detail: str
    expectation: str
    kwargs: dict
    failing: Callable[[ir.Table], ir.BooleanValue] | None = None
    profile: bool = False
    skip_if_empty: bool = False
    order_by: tuple[str, ...] = field(default=())  # keeps duplicate keys together when only some rows are fetched

    @property
    def suite(self) -> str:
        return f"{self.table}.profile" if self.profile else self.table


def _fill(predicate: ir.BooleanValue) -> ir.BooleanValue:
    """Null (unknown) is not a failure: GX ignores missing values in these rules too."""
    return predicate.fill_null(False)


def _condition(column: str, view_columns: list[str]) -> dict:
    """GX row condition that leaves out values the castable rule already reports."""
    if uncastable(column) in view_columns:
        return {"row_condition": f"`{uncastable(column)}`.isnull()", "condition_parser": "pandas"}
    return {}


def _helper_is_null(table: str, column: str, helper: str, rule: str, detail: str) -> Check:
    """A rule the engine computes into a helper column (the offending value as text, else null)."""
    return Check(table, column, rule, detail, "ExpectColumnValuesToBeNull", {"column": helper},
                 failing=lambda v: v[helper].notnull())


def _present(table: str, columns: list[str]) -> Check:
    return Check(table, None, "column_present", "columns exist", "ExpectTableColumnsToMatchSet",
                 {"column_set": list(columns), "exact_match": False})


def _castable(table: str, column: str, dtype: str) -> Check:
    bad = uncastable(column)
    return Check(table, column, "castable", f"casts to {dtype}", "ExpectColumnValuesToBeNull", {"column": bad},
                 failing=lambda v: v[bad].notnull())


def _not_null(table: str, column: str, rule: str, columns: list[str]) -> Check:
    def failing(v: ir.Table) -> ir.BooleanValue:
        predicate = v[column].isnull()
        return predicate & v[uncastable(column)].isnull() if uncastable(column) in v.columns else predicate

    return Check(table, column, rule, "not null", "ExpectColumnValuesToNotBeNull",
                 {"column": column, **_condition(column, columns)}, failing=failing)


def _unique(table: str, key: tuple[str, ...]) -> Check:
    helper = duplicates(key)
    if len(key) == 1:
        expectation, kwargs = "ExpectColumnValuesToBeUnique", {"column": key[0]}
    else:
        expectation, kwargs = "ExpectCompoundColumnsToBeUnique", {"column_list": list(key)}
    return Check(table, ", ".join(key), "unique", f"one row per {', '.join(key)}", expectation, kwargs,
                 failing=lambda v: _fill(v[helper] > 1), order_by=key)


def _foreign_key(table: str) -> Check:
    def known_ids(frame):
        return sorted(frame.loc[frame[ACCOUNT_KNOWN].fillna(False).astype(bool), "account_id"].unique())

    return Check(table, "account_id", "foreign_key", "exists in accounts.account_id", "ExpectColumnValuesToBeInSet",
                 {"column": "account_id", "value_set": known_ids},
                 failing=lambda v: v.account_id.notnull() & ~v[ACCOUNT_KNOWN].fill_null(False))


def _between(table: str, column: str, rule: str, low, high, where: tuple[str, str] | None = None) -> Check:
    def failing(v: ir.Table) -> ir.BooleanValue:
        value = v[column]
        outside = ibis.literal(False)
        if low is not None:
            outside = outside | (value < low)
        if high is not None:
            outside = outside | (value > high)
        if where is not None:
            outside = outside & (v[where[0]] == where[1])
        return _fill(outside)

    kwargs = {"column": column, "min_value": low, "max_value": high}
    if where is not None:
        kwargs |= {"row_condition": f'{where[0]} == "{where[1]}"', "condition_parser": "pandas"}
    bound = "≥ " + _show(low) if high is None else "≤ " + _show(high) if low is None else f"{low}..{high}"
    detail = f"{bound} where {where[0]} = {where[1]}" if where else bound
    return Check(table, column, rule, detail, "ExpectColumnValuesToBeBetween", kwargs, failing=failing)


def _show(value) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if isinstance(value, datetime) else str(value)


def _ordered(table: str, later: str, earlier: str, rule: str) -> Check:
    return Check(table, later, rule, f"{later} ≥ {earlier}", "ExpectColumnPairValuesAToBeGreaterThanB",
                 {"column_A": later, "column_B": earlier, "or_equal": True,
                  "ignore_row_if": "either_value_is_missing"},
                 failing=lambda v: _fill(v[later] < v[earlier]))


def _allowed(table: str, column: str, values: tuple[str, ...]) -> Check:
    return Check(table, column, "allowed_values", "in {" + ", ".join(values) + "}", "ExpectColumnValuesToBeInSet",
                 {"column": column, "value_set": list(values)},
                 failing=lambda v: _fill(~v[column].isin(list(values))))


def _not_empty(table: str) -> Check:
    return Check(table, None, "not_empty", "at least one row", "ExpectColumnMaxToBeBetween",
                 {"column": "rows", "min_value": 1}, profile=True)


def _not_all_null(table: str) -> Check:
    """One expectation over the profile: every checked column has a value; the report names each failing column."""
    return Check(table, None, "not_all_null", "at least one value", "ExpectColumnValuesToBeBetween",
                 {"column": "values", "min_value": 1, "row_condition": "checked == True",
                  "condition_parser": "pandas"}, profile=True, skip_if_empty=True)


def all_null_checked(table: str, columns: list[str], feature_names: list[str] | None = None) -> set[str]:
    """The columns the not_all_null rule covers: every mapped source column where null has no meaning of its own,
    and every feature."""
    if table == FEATURES_TABLE:
        return set(feature_names or ()) & set(columns)
    if table in CONTRACT:
        return {c for c in columns if (table, c) not in NULL_MEANS_OPEN}
    return set()


def source_checks(name: str, view_columns: list[str], dtypes: dict[str, ibis.DataType],
                  reference_time: datetime, tolerance_days: float, data_end: datetime | None = None) -> list[Check]:
    """Every check of one contract table, for the canonical columns the warehouse has.

    Args:
        data_end: the data's end (newest event or snapshots.data_end), for the not_after_data_end rule; None skips it.
    """
    spec: TableSpec = CONTRACT[name]
    present = [c for c in spec.columns if c.name in view_columns]
    limit = _future_limit(reference_time, tolerance_days)
    checks = [_not_empty(name), _not_all_null(name), _present(name, [c.name for c in present])]
    for column in present:
        c = column.name
        if uncastable(c) in view_columns:
            checks.append(_castable(name, c, column.dtype))
        if c == KEYS.get(name) or c == "account_id":
            checks.append(_not_null(name, c, "not_null", view_columns))
        elif column.required and (name, c) not in NULL_MEANS_OPEN:
            checks.append(_not_null(name, c, "missing_values", view_columns))
        if column.dtype == "timestamp" and (name, c) not in SCHEDULED:
            bound = limit.replace(tzinfo=UTC) if dtypes[c].is_timestamp() and dtypes[c].timezone else limit
            checks.append(_between(name, c, "not_in_future", None, bound))
        if (name, c) in UNTIL_DATA_END and data_end is not None:
            checks.append(_until_data_end(name, c, dtypes[c], data_end, tolerance_days))
        if nonfinite(c) in view_columns:
            checks.append(_helper_is_null(name, c, nonfinite(c), "finite", "finite (no NaN or infinity)"))
        if before_created(c) in view_columns:
            checks.append(_helper_is_null(name, c, before_created(c), "after_account_created",
                                          f"{c} ≥ the account's created_at"))
    if name in KEYS:
        checks.append(_unique(name, (KEYS[name],)))
    if name != "accounts" and "account_id" in view_columns:
        checks.append(_foreign_key(name))
    checks += [_ordered(name, later, earlier, rule) for table, later, earlier, rule in ORDERED
               if table == name and {later, earlier} <= set(view_columns)]
    checks += [_between(name, c, "non_negative", 0, None) for table, c in NON_NEGATIVE
               if table == name and c in view_columns]
    checks += [_between(name, c, "in_range", low, high, where and ("survey_type", where))
               for table, c, low, high, where in RANGES if table == name and c in view_columns]
    checks += [_allowed(name, c, values) for (table, c), values in ALLOWED.items()
               if table == name and c in view_columns]
    return checks


def _until_data_end(table: str, column: str, dtype: ibis.DataType, data_end: datetime,
                    tolerance_days: float) -> Check:
    end = _future_limit(data_end, 0)
    bound = end + timedelta(days=tolerance_days)
    check = _between(table, column, "not_after_data_end", None,
                     bound.replace(tzinfo=UTC) if dtype.is_timestamp() and dtype.timezone else bound)
    return replace(check, detail=f"≤ the data's end {_show(end)} + {tolerance_days:g} day(s)")


def _future_limit(reference_time: datetime, tolerance_days: float) -> datetime:
    """The newest timestamp allowed, naive in UTC when the reference time carries a time zone."""
    if reference_time.tzinfo is not None:
        reference_time = reference_time.astimezone(UTC).replace(tzinfo=None)
    return reference_time + timedelta(days=tolerance_days)


def feature_checks(columns: list[str], feature_names: list[str]) -> list[Check]:
    """Checks of the feature table: keys, one row per (account_id, as_of), value ranges by unit, no all-null feature."""
    table = FEATURES_TABLE
    checks = [_not_empty(table), _not_all_null(table), _present(table, ["account_id", "as_of", *feature_names])]
    keys = [c for c in ("account_id", "as_of") if c in columns]
    checks += [_not_null(table, c, "not_null", columns) for c in keys]
    if len(keys) == 2:
        checks.append(_unique(table, ("account_id", "as_of")))
    for name in (n for n in feature_names if n in columns):
        low, high = _feature_range(name)
        if low is not None:
            checks.append(_between(table, name, "non_negative" if high is None else "in_range", low, high))
    return checks


def _feature_range(name: str) -> tuple[float | None, float | None]:
    unit = _unit_of(name)
    low, high = UNIT_RANGES.get(unit, (None, None))
    if unit == "share" and name.startswith(UNBOUNDED_SHARES):
        high = None
    return low, high


def _unit_of(name: str) -> str | None:
    for spec in CATALOG:
        if re.fullmatch(re.escape(spec.name).replace(r"\{window\}", r"\d+"), name):
            return spec.unit
    return None


def score_checks(columns: list[str], tiers: list[str]) -> list[Check]:
    """Checks of churn_scores before publishing: one row per (account_id, as_of), probabilities, tiers."""
    table = SCORES_TABLE
    checks = [_not_empty(table), _present(table, SCORES_SCHEMA.names)]
    required = ("account_id", "as_of", "churn_probability", "risk_tier")
    checks += [_not_null(table, c, "not_null", columns) for c in required if c in columns]
    if {"account_id", "as_of"} <= set(columns):
        checks.append(_unique(table, ("account_id", "as_of")))
    for column, low in (("churn_probability", 0), ("previous_probability", 0), ("probability_change", -1)):
        if column in columns:
            checks.append(_between(table, column, "in_range", low, 1))
    if "days_in_tier" in columns:
        checks.append(_between(table, "days_in_tier", "non_negative", 0, None))
    if "health_score" in columns:
        checks.append(_between(table, "health_score", "in_range", 0, 100))
    if "mrr" in columns:
        checks.append(_between(table, "mrr", "non_negative", 0, None))
    if "risk_tier" in columns:
        checks.append(_allowed(table, "risk_tier", tuple(tiers)))
    if "arm" in columns:
        checks.append(_allowed(table, "arm", ARMS))
    return checks
