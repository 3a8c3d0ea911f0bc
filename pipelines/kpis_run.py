"""The KPI stage: the customer-success KPIs per calendar month and segment, computed in the warehouse and written
atomically to churn_kpis (with the view churn_kpis_latest)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

import ibis.expr.types as ir
import pandas as pd

from features.kpis.months import ALL, COLUMNS, KpiMonths, build_kpi_months
from features.kpis.revenue import compute_boundary_states
from features.kpis.table import KpiInputs, KpiSet, build_kpi_inputs, compute_kpi_table
from pipelines.config import Params
from pipelines.errors import StageError
from pipelines.progress import Progress
from pipelines.warehouse import Warehouse, open_warehouse, open_writer
from serving.writeback import KPIS_TABLE, write_kpis

# The KPIs the run's last line and the demo's summary quote, for all accounts.
HEADLINE = ("mrr", "logo_churn_rate", "net_revenue_retention", "nps")


@dataclass(frozen=True)
class KpisResult:
    """What `run_kpis` wrote: rows, months, segments, the KPIs and those left out, and the headline values."""

    rows: int
    months: list[date]
    segments: list[str]
    kpis: list[str]
    left_out: dict[str, list[str]]
    pending: list[tuple[date, date]]
    headline: dict[str, tuple[date, float]] = field(default_factory=dict)
    table: str = KPIS_TABLE


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


def describe_headline(result: KpisResult) -> str:
    """The run in one line: size of the table and the newest headline values for all accounts."""
    from features.kpis.definitions import KPIS, format_kpi

    specs = {s.name: s for s in KPIS}
    values = ", ".join(f"{specs[name].title} {format_kpi(specs[name], value)} ({month:%Y-%m})"
                       for name, (month, value) in result.headline.items())
    return (f"{result.table}: {len(result.kpis)} KPIs, {len(result.months)} months × {len(result.segments)} "
            f"segments ({', '.join(result.segments)}); latest {values or 'none'}")


def _headline(frame: pd.DataFrame) -> dict[str, tuple[date, float]]:
    everyone = frame[(frame["segment"] == ALL) & frame["kpi"].isin(HEADLINE) & frame["value"].notna()]
    newest = everyone.sort_values("month").groupby("kpi").tail(1).set_index("kpi")
    return {kpi: (newest.at[kpi, "month"], float(newest.at[kpi, "value"])) for kpi in HEADLINE if kpi in newest.index}


def _notes(progress: Progress, kpi_set: KpiSet, months: KpiMonths) -> None:
    if kpi_set.left_out:
        needs: dict[tuple[str, ...], list[str]] = {}
        for name, lacking in kpi_set.left_out.items():
            needs.setdefault(tuple(lacking), []).append(name)
        progress.note("KPIs left out: " + "; ".join(f"{', '.join(names)} (needs {', '.join(lacking)})"
                                                    for lacking, names in needs.items()))
    for month, known in months.pending():
        progress.note(f"churn and retention for {month:%Y-%m} pending: known from {known} "
                      f"(label.grace_days after the month)")


def run_kpis(params: Params, progress: Progress) -> KpisResult:
    """Compute every KPI the warehouse allows for each complete month and segment and replace churn_kpis."""
    with open_warehouse(params, progress, read_only=True) as wh:
        frame, kpi_set, months = compute_kpi_frame(params, wh, progress)
    _notes(progress, kpi_set, months)
    with progress.stage(f"write {KPIS_TABLE}") as info, open_writer(params) as con:
        write_kpis(con, frame)
        info["detail"] = f"{len(frame):,} rows, view {KPIS_TABLE}_latest"
    return KpisResult(rows=len(frame), months=list(months.months), segments=sorted(frame["segment"].unique()),
                      kpis=kpi_set.names, left_out=kpi_set.left_out, pending=months.pending(),
                      headline=_headline(frame))
