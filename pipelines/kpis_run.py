"""The KPI stage: the customer-success KPIs per calendar month and segment, computed in the warehouse and written
atomically to churn_kpis (with the view churn_kpis_latest)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

import ibis.expr.types as ir
import pandas as pd

from features.kpis.months import ALL, COLUMNS, KpiMonths, build_kpi_months, count_reserved_segments
from features.kpis.revenue import compute_boundary_states
from features.kpis.table import KpiInputs, KpiSet, build_kpi_inputs, compute_kpi_table
from features.sources import load_sources
from pipelines.config import Params
from pipelines.errors import StageError
from pipelines.progress import Progress
from pipelines.validation.validate import run_validate
from pipelines.warehouse import Warehouse, check_writable, connect_warehouse, open_warehouse, open_writer
from serving.tables import KPIS_LATEST_VIEW, KPIS_TABLE
from serving.writeback import KPIS_SCHEMA, describe_schema_problems, write_kpis

# The KPIs the run's last line and the demo's summary quote, for all accounts.
HEADLINE = ("mrr", "logo_churn_rate", "net_revenue_retention", "nps")


# Segments named in the run's line; the others are counted.
SHOWN_SEGMENTS = 8
SEGMENT_WIDTH = 40


@dataclass(frozen=True)
class KpisResult:
    """What `run_kpis` wrote: rows, months, segments, the KPIs with rows, those left out (a source or setting
    missing) and those computed without a row (nothing to count), and the headline values."""

    rows: int
    months: list[date]
    segments: list[str]
    kpis: list[str]
    left_out: dict[str, list[str]]
    pending: list[tuple[date, date]]
    headline: dict[str, tuple[date, float]] = field(default_factory=dict)
    table: str = KPIS_TABLE
    empty: list[str] = field(default_factory=list)


@contextmanager
def _cached(table: ir.Table) -> Iterator[ir.Table]:
    """The table materialised in the warehouse, dropped when the block ends (while the connection is open)."""
    cached = table.cache()
    try:
        yield cached
    finally:
        cached.release()


def compute_kpi_frame(params: Params, wh: Warehouse, progress: Progress) -> tuple[pd.DataFrame, KpiSet, KpiMonths]:
    """The KPI rows (month as a date) for every complete month of the warehouse's data, computed in the warehouse."""
    try:
        months = build_kpi_months(wh.data_start, wh.data_end, params.label.grace_days)
    except ValueError as exc:
        raise StageError(str(exc)) from None
    # The boundary states and the accounts' settled months are read by several KPI groups: materialised once.
    with progress.stage("kpis") as info, _cached(compute_boundary_states(wh.sources, months)) as states:
        account_months = build_kpi_inputs(wh.sources, months, params.label, states=states).account_months
        with _cached(account_months) as account_months:
            table, kpi_set = compute_kpi_table(wh.sources, KpiInputs(states, account_months), months, params.kpis,
                                               params.features)
            frame = table.execute()
        info["detail"] = (f"{len(kpi_set.names)} KPIs × {len(months.months)} months ({len(months.settled)} "
                          f"settled), {len(frame):,} rows")
    frame["month"] = pd.to_datetime(frame["month"]).dt.date
    frame = frame.sort_values(["month", "segment", "kpi"], ignore_index=True)[list(COLUMNS)]
    return frame, kpi_set, months


def show_segment(segment: str) -> str:
    """A segment value for the terminal: as a Python literal when it holds a line break or an escape sequence (so
    the data never drives the terminal), clipped to SEGMENT_WIDTH characters."""
    text = segment if segment.isprintable() else repr(segment)
    return text if len(text) <= SEGMENT_WIDTH else text[:SEGMENT_WIDTH - 1] + "…"


def describe_headline(result: KpisResult) -> str:
    """The run in one line: size of the table, its first segments, and the newest headline values for all
    accounts."""
    from features.kpis.definitions import KPIS, format_kpi

    specs = {s.name: s for s in KPIS}
    values = ", ".join(f"{specs[name].title} {format_kpi(specs[name], value)} ({month:%Y-%m})"
                       for name, (month, value) in result.headline.items())
    shown = [show_segment(s) for s in result.segments[:SHOWN_SEGMENTS]]
    if len(result.segments) > SHOWN_SEGMENTS:
        shown.append(f"and {len(result.segments) - SHOWN_SEGMENTS:,} more")
    return (f"{result.table}: {len(result.kpis)} KPIs, {len(result.months)} months × {len(result.segments):,} "
            f"segments ({', '.join(shown)}); latest {values or 'none'}")


def _headline(frame: pd.DataFrame) -> dict[str, tuple[date, float]]:
    everyone = frame[(frame["segment"] == ALL) & frame["kpi"].isin(HEADLINE) & frame["value"].notna()]
    newest = everyone.sort_values("month").groupby("kpi").tail(1).set_index("kpi")
    return {kpi: (newest.at[kpi, "month"], float(newest.at[kpi, "value"])) for kpi in HEADLINE if kpi in newest.index}


def _empty_notes(kpi_set: KpiSet, written: set[str], months: KpiMonths) -> list[str]:
    """Say which KPIs got no row: the curve days longer than the data, then any other."""
    span = (months.data_end - months.data_start).days
    empty = [s for s in kpi_set.specs if s.name not in written]
    unseen = [s for s in empty if s.day is not None and s.day > span]
    notes = []
    if unseen:
        days = ", ".join(str(d) for d in sorted({s.day for s in unseen}))
        notes.append(f"kpis.ttv_days: no sign-up is observed for {days} days (the data spans {span}): "
                     f"{', '.join(s.name for s in unseen)} have no rows")
    # Before any month settles, the churn KPIs are pending (said below), not empty.
    others = [s.name for s in empty if s not in unseen and (months.settled or not s.settles)]
    if others:
        notes.append(f"no rows (nothing to count in any month): {', '.join(others)}")
    return notes


def _notes(progress: Progress, kpi_set: KpiSet, months: KpiMonths, written: set[str]) -> None:
    for note in _empty_notes(kpi_set, written, months):
        progress.note(note)
    if kpi_set.left_out:
        needs: dict[tuple[str, ...], list[str]] = {}
        for name, lacking in kpi_set.left_out.items():
            needs.setdefault(tuple(lacking), []).append(name)
        progress.note("KPIs left out: " + "; ".join(f"{', '.join(names)} (needs {', '.join(lacking)})"
                                                    for lacking, names in needs.items()))
    for month, known in months.pending():
        progress.note(f"churn and retention for {month:%Y-%m} pending: known from {known} "
                      f"(label.grace_days after the month)")


def _problems_before_computing(params: Params) -> list[str]:
    """What would make the KPIs wrong or their write fail, found before the work: an account segment named like
    all accounts together, and a churn_kpis table that cannot take the rows."""
    con = connect_warehouse(params.warehouse.url, params.warehouse.threads, read_only=True)
    try:
        sources = load_sources(con, params.sources)
        reserved = count_reserved_segments(sources, params.kpis.segment_by)
        shape = describe_schema_problems(con, KPIS_TABLE, KPIS_SCHEMA)
    finally:
        con.disconnect()
    problems = [f"accounts.{params.kpis.segment_by}: {reserved:,} account(s) have the segment '{ALL}', the name "
                f"{KPIS_TABLE} gives all accounts together (rule: no segment is named '{ALL}'); rename it in the "
                f"warehouse, or set kpis.segment_by to another column or null"] if reserved else []
    if shape:
        problems.append(f"table {KPIS_TABLE}: {'; '.join(shape)} (written by another version or tool; drop it and "
                        f"`churn kpis` creates it again)")
    return problems


def _check_inputs(params: Params, progress: Progress) -> None:
    """Validate the sources and check the segments and churn_kpis; raise every problem found in one message."""
    validation = run_validate(params, params.validation, progress, datetime.now())
    problems = _problems_before_computing(params)
    try:
        validation.raise_for_errors()
    except StageError as exc:
        problems.insert(0, str(exc))
    if problems:
        raise StageError("\n".join(problems))


def _publish(params: Params, frame: pd.DataFrame) -> None:
    with open_writer(params, KPIS_TABLE) as con:
        try:
            write_kpis(con, frame)
        except Exception as exc:  # the engine refused (e.g. a table where the view goes): rolled back, one line
            message = str(exc).strip().splitlines()[0]
            raise StageError(f"table {KPIS_TABLE} and view {KPIS_LATEST_VIEW} not replaced, nothing written: "
                             f"{message}") from None


def run_kpis(params: Params, progress: Progress) -> KpisResult:
    """Validate the sources, compute every KPI the warehouse allows for each complete month and segment and
    replace churn_kpis.

    Raises:
        StageError: the sources fail validation, an account segment is named `all`, or churn_kpis cannot take
            the rows (every such problem in one message); nothing is written then.
    """
    check_writable(params, KPIS_TABLE)
    _check_inputs(params, progress)
    with open_warehouse(params, progress, read_only=True) as wh:
        segment_by = params.kpis.segment_by
        if segment_by is not None and not wh.sources.has("accounts", segment_by):
            progress.note(f"kpis.segment_by: accounts.{segment_by} is not in the warehouse, so the KPIs are for "
                          f"all accounts only")
        frame, kpi_set, months = compute_kpi_frame(params, wh, progress)
    written = set(frame["kpi"])
    _notes(progress, kpi_set, months, written)
    with progress.stage(f"write {KPIS_TABLE}") as info:
        _publish(params, frame)
        info["detail"] = f"{len(frame):,} rows, view {KPIS_LATEST_VIEW}"
    return KpisResult(rows=len(frame), months=list(months.months), segments=sorted(frame["segment"].unique()),
                      kpis=[n for n in kpi_set.names if n in written], left_out=kpi_set.left_out,
                      pending=months.pending(), headline=_headline(frame),
                      empty=[n for n in kpi_set.names if n not in written])
