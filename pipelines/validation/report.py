"""The validation report: the failures of one validation, as a table for people and a message for the CLI (the
validation page renders it too, see `pipelines.validation.page`); and how it is assembled from the engine's
measurements and the GX results."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from features.contract import CONTRACT
from pipelines.errors import StageError
from pipelines.validation.config import ValidationConfig
from pipelines.validation.engine import Measured
from pipelines.validation.gx import Batch, run_suites, unexpected_examples, unexpected_rows
from pipelines.validation.rules import Check, uncastable

# Longest text of one value shown (in the table, a message or the page); a longer one is cut and ends with an ellipsis.
MAX_VALUE_CHARS = 200


class ValidationFailed(StageError):
    """Validation found error-level failures; the message names table, column and rule of each."""


@dataclass(frozen=True)
class Failure:
    """One failed check: where, which rule, how bad, how many rows fail, a few of their values and, for a row
    check, the first failing rows (`sample_rows`, values formatted like the examples, under `sample_columns`)."""

    table: str
    column: str | None
    rule: str
    severity: str
    failing_count: int
    examples: tuple[str, ...]
    expected: str
    expectation: str
    sample_columns: tuple[str, ...] = ()
    sample_rows: tuple[tuple[str, ...], ...] = ()

    def describe(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        shown = f": {', '.join(self.examples)}" if self.examples else ""
        return f"{where} {self.rule} ({self.expected}) fails on {self.failing_count:,}{shown}"


@dataclass(frozen=True)
class CheckRun:
    """One check that ran, and whether it passed."""

    table: str
    column: str | None
    rule: str
    severity: str
    expected: str
    passed: bool


@dataclass
class ValidationReport:
    """The failures of one validation (`rows`), how many checks ran, and the GX results behind them; `runs` lists
    every check and `table_rows` each table's row count."""

    rows: list[Failure]
    checks: int
    tables: list[str]
    results: list[Any] = field(default_factory=list, repr=False)
    runs: list[CheckRun] = field(default_factory=list, repr=False)
    table_rows: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[Failure]:
        return [r for r in self.rows if r.severity == "error"]

    @property
    def warnings(self) -> list[Failure]:
        return [r for r in self.rows if r.severity == "warn"]

    @property
    def ok(self) -> bool:
        """True when no error-level check failed (warnings allowed)."""
        return not self.errors

    def summary(self) -> str:
        """One readable table of the failures: severity, table, column, rule, expected, failing count, examples."""
        head = (f"validation {'passed' if self.ok else 'failed'}: {len(self.errors)} error(s), "
                f"{len(self.warnings)} warning(s) in {self.checks} checks on {', '.join(self.tables)}")
        if not self.rows:
            return head
        header = ("severity", "table", "column", "rule", "expected", "failing", "examples")
        lines = [(r.severity, r.table, r.column or "-", r.rule, r.expected, f"{r.failing_count:,}",
                  _clip(", ".join(r.examples) or "-", 70)) for r in self.rows]
        widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
        aligned = [_align(row, widths) for row in [header, *lines]]
        return "\n".join([head, *aligned])

    def raise_for_errors(self) -> ValidationReport:
        """Return the report when it has no error-level failure; else raise ValidationFailed naming them."""
        if self.ok:
            return self
        named = "; ".join(f.describe() for f in self.errors[:5])
        more = f"; and {len(self.errors) - 5} more" if len(self.errors) > 5 else ""
        raise ValidationFailed(f"validation: {len(self.errors)} error-level failure(s): {named}{more}"
                               + _switch_off_hint(self.errors))


def _switch_off_hint(errors: list[Failure]) -> str:
    """For optional source tables that are empty: how to run without them, if the company has no such data yet
    (an empty table from a failed load is the other reason, and the failure says which table to look at)."""
    empty = [f.table for f in errors
             if f.rule == "not_empty" and f.table in CONTRACT and not CONTRACT[f.table].required]
    if not empty:
        return ""
    lines = " and ".join(f"`{name}: null`" for name in empty)
    one = len(empty) == 1
    return (f"; {', '.join(empty)} {'is' if one else 'are'} optional: without such data yet, put {lines} under "
            f"`sources:` in your params file (in place of {'its entry' if one else 'their entries'}, if any) to run "
            f"without {'it' if one else 'them'}")


def _align(row: tuple[str, ...], widths: list[int]) -> str:
    cells = [cell.rjust(w) if i == 5 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))]
    return "  " + "  ".join(cells).rstrip()


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass
class TableRun:
    """One table's checks and what the engine measured for them."""

    table: str
    checks: list[Check]
    measured: Measured


def build_report(units: list[TableRun], config: ValidationConfig) -> ValidationReport:
    """Run the GX suites for the measured tables and collect the failures, errors first, in table order."""
    batches, planned = _batches(units, config)
    suite_results, results = run_suites(batches, config.max_examples)
    tables = [u.table for u in units]
    failed = [(check_id, failure) for check_id, result in results.items() if not result.success
              for failure in _failures(*planned[check_id], result, config)]
    failures = [f for _, f in sorted(failed, key=lambda cf: (cf[1].severity != "error", tables.index(cf[1].table),
                                                              cf[0]))]
    checked = sum(len(b.checks) for b in batches)
    runs = [CheckRun(check.table, check.column, check.rule, config.severity(check.table, check.column, check.rule),
                     check.detail, bool(results[check_id].success))
            for check_id, (check, _, _) in sorted(planned.items())]
    table_rows = {u.table: int(u.measured.profile["rows"].iloc[0]) for u in units}
    return ValidationReport(rows=failures, checks=checked, tables=tables, results=suite_results, runs=runs,
                            table_rows=table_rows)


def _batches(units: list[TableRun], config: ValidationConfig) -> tuple[list[Batch], dict[int, tuple]]:
    """GX batches: one with every table's profile, one per table with its failing rows; and, by check id, the
    check, its table's measurements and its index among the table's checks."""
    profile_checks, profiles, batches, planned = [], [], [], {}
    for unit in units:
        rows = int(unit.measured.profile["rows"].iloc[0])
        row_checks = []
        for index, check in enumerate(unit.checks):
            if check.skip_if_empty and rows == 0:
                continue
            check_id = len(planned)
            planned[check_id] = (check, unit.measured, index)
            severity = config.severity(check.table, check.column, check.rule)
            if check.profile:
                profile_checks.append((check_id, _on_profile_rows_of(check), severity))
            else:
                row_checks.append((check_id, check, severity))
        profiles.append(unit.measured.profile.assign(table=unit.table))
        frame = unit.measured.rows
        note = f"checked in the engine over {rows:,} rows; GX sees the {len(frame):,} failing rows fetched"
        batches.append(Batch(suite=unit.table, frame=frame, checks=row_checks,
                             expect_pass=_expect_pass(frame, row_checks), note=note))
    profile = pd.concat(profiles, ignore_index=True)
    note = "one row per column with the table's row count and the column's values, computed in the engine"
    batches.insert(0, Batch(suite="profile", frame=profile, checks=profile_checks,
                            expect_pass=_expect_pass(profile, profile_checks), note=note))
    return batches, planned


def _on_profile_rows_of(check: Check) -> Check:
    """The check restricted to its own table's rows of the shared profile frame."""
    condition = f'table == "{check.table}"'
    if "row_condition" in check.kwargs:
        condition += f" and {check.kwargs['row_condition']}"
    return replace(check, kwargs={**check.kwargs, "row_condition": condition, "condition_parser": "pandas"})


def _expect_pass(frame: pd.DataFrame, checks: list) -> bool:
    """Whether the engine's numbers say every check of a batch passes: no failing rows fetched, every expected
    column there, no empty table or all-null column in the profile."""
    for _, check, _ in checks:
        if check.profile and (frame.rows.eq(0).any() or (frame.checked & frame["values"].eq(0)).any()):
            return False
        if check.rule == "column_present" and not set(check.kwargs["column_set"]) <= set(frame):
            return False
    return all(check.profile for _, check, _ in checks) or frame.empty


def _failures(check: Check, measured: Measured, index: int, result, config: ValidationConfig) -> list[Failure]:
    """The failures one failed expectation stands for (one per all-null column, else one)."""
    def failure(column, count, examples, severity=None, sample=((), ())):
        severity = severity or config.severity(check.table, column, check.rule)
        return Failure(check.table, column, check.rule, severity, count, tuple(examples), check.detail,
                       check.expectation, *sample)

    info = result.exception_info or {}
    if info.get("raised_exception"):
        message = str(info.get("exception_message")).splitlines()[0]
        return [failure(check.column, measured.counts.get(index, 1), [f"GX could not evaluate it: {message}"],
                        "error")]
    profile = measured.profile
    if check.rule == "not_all_null":
        empty = profile[profile.checked & (profile["values"] == 0)]
        return [failure(c, int(n), [f"all {n:,} rows null"]) for c, n in zip(empty.column, empty.rows, strict=True)]
    if check.rule == "not_empty":
        return [failure(None, 1, ["0 rows"])]
    if check.failing is None:
        missing = result.result.get("details", {}).get("mismatched", {}).get("missing", [])
        return [failure(name, 1, ["column missing"]) for name in missing]
    # With only a share of the failing rows fetched, how often a value occurs there says little: leave it out.
    examples = [_format(v) + (f" (×{n})" if n > 1 and not measured.capped else "")
                for v, n in unexpected_examples(result, config.max_examples)]
    sample = _sample(measured.rows, unexpected_rows(result, config.max_examples))
    return [failure(check.column, _row_count(measured, index, result), examples, sample=sample)]


def _sample(frame: pd.DataFrame, index: list[int]) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """The table's own columns and the formatted values of the given rows of a batch frame; a value that did not
    cast shows as its raw text."""
    index = [i for i in index if i in frame.index]
    if not index:
        return (), ()
    columns = tuple(c for c in frame.columns if not c.startswith("_") and not c.endswith("__uncastable"))

    def shown(row: pd.Series, column: str) -> str:
        raw = row.get(uncastable(column))
        return _format(row[column] if raw is None or pd.isna(raw) else raw)

    return columns, tuple(tuple(shown(row, c) for c in columns) for _, row in frame.loc[index].iterrows())


def _row_count(measured: Measured, index: int, result) -> int:
    """Exact failing rows: GX's count on the fetched rows, or the engine's when only a share was fetched."""
    engine = measured.counts.get(index, 0)
    return engine if measured.capped else int(result.result.get("unexpected_count") or engine)


def _format(value: Any) -> str:
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k}={_format(v)}" for k, v in value.items()) + ")"
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_format(v) for v in value) + ")"
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "null"
    if isinstance(value, datetime | date | np.datetime64 | pd.Timestamp):
        stamp = pd.Timestamp(value)
        return f"{stamp:%Y-%m-%d}" if stamp == stamp.normalize() else f"{stamp:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, float | np.floating):
        return f"{float(value):g}"
    # repr shows quotes, whitespace and control characters as escapes: a value never drives the terminal.
    if isinstance(value, str):
        return _clip(repr(value), MAX_VALUE_CHARS)
    return _clip(str(value), MAX_VALUE_CHARS)
