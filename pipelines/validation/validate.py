"""Data validation with Great Expectations: the source tables, the feature table and the scores before publishing.

Suites are built from the source contract, the feature catalog, the score schema and params (see
`pipelines.validation.rules`). The engine counts failing rows and fetches only those (`pipelines.validation.engine`),
so a big events table is never pulled into pandas; GX validates those frames (`pipelines.validation.gx`);
`pipelines.validation.report` turns the results into one readable table, and `pipelines.validation.page` into a
self-contained HTML page.
"""

from __future__ import annotations

from datetime import datetime

import ibis
import ibis.expr.types as ir
import pandas as pd

from features.contract import CONTRACT
from features.sources import ContractError, Sources, load_sources
from pipelines.config import Params
from pipelines.progress import Progress
from pipelines.validation.config import ValidationConfig
from pipelines.validation.engine import (
    canonical_columns,
    measure,
    source_view,
    uncast_columns,
    with_duplicate_counts,
)
from pipelines.validation.gx import import_gx
from pipelines.validation.page import write_validation_page
from pipelines.validation.report import Failure, TableRun, ValidationFailed, ValidationReport, build_report
from pipelines.validation.rules import (
    UNTIL_DATA_END,
    Check,
    all_null_checked,
    feature_checks,
    score_checks,
    source_checks,
)
from pipelines.warehouse import connect_warehouse, redact_url
from serving.tables import FEATURES_TABLE, SCORES_TABLE

__all__ = ["Failure", "ValidationConfig", "ValidationFailed", "ValidationReport", "run_validate",
           "validate_feature_table", "validate_scores", "validate_sources"]


def validate_sources(sources: Sources, config: ValidationConfig, reference_time: datetime,
                     data_end: datetime | None = None) -> ValidationReport:
    """Validate every source table present against the contract's rules.

    Args:
        reference_time: "now" for the run; timestamps after it plus `config.future_tolerance_days` fail.
        data_end: the data's end for the not_after_data_end rule (cs_actions.done_at); None: the newest event.

    Raises:
        ContractError: on an engine without a lenient cast (PostgreSQL), a column holds a value that does not cast
            to the contract's type (the message names the table, the column and the value); or the engine fails to
            read a table otherwise, e.g. a cast inside the table's `sql:` mapping (the message names the table and
            gives the engine's first line).
    """
    accounts = source_view(sources, "accounts", None) if "accounts" in sources.tables else None
    units = []
    for name in (n for n in CONTRACT if n in sources.tables):
        view = accounts if name == "accounts" else source_view(sources, name, accounts)
        if name in UNTIL_DATA_END_TABLES and data_end is None:
            data_end = _newest_event(sources)
        checks = source_checks(name, view.columns, dict(view.schema().items()), reference_time,
                               config.future_tolerance_days, data_end)
        checked = all_null_checked(name, canonical_columns(view))
        try:
            measured = measure(view, checks, checked, config.max_failing_rows, _run)
        except Exception as exc:
            _raise_cast_failure(name, sources[name], exc)
            if type(exc).__module__ == "builtins":   # a fault of this code, not the warehouse's: shown whole
                raise
            raise ContractError(f"table {name}: the warehouse fails to read it ({type(exc).__name__}: "
                                f"{str(exc).strip().splitlines()[0]}); what sources.{name} names (a table, a view or "
                                "a `sql:` query) runs here first, with its own casts") from exc
        units.append(TableRun(name, checks, measured))
    return build_report(units, config)


UNTIL_DATA_END_TABLES = {table for table, _ in UNTIL_DATA_END}


def _newest_event(sources: Sources) -> datetime | None:
    """The newest event time, read leniently (a value that does not cast is left out; the castable rule of events
    reports it); None without events."""
    if "events" not in sources.tables:
        return None
    events = source_view(sources, "events", None)
    newest = _run(events.aggregate(last=events.event_at.max()))["last"].iloc[0]
    return None if pd.isna(newest) else pd.Timestamp(newest).to_pydatetime()


def _raise_cast_failure(name: str, table: ir.Table, error: Exception) -> None:
    """Raise ContractError naming the column when a query failed because a value does not cast.

    Engines with TRY_CAST (DuckDB, Snowflake, BigQuery, Spark) report such values as `castable` failures; on the
    others (PostgreSQL runs TRY_CAST as CAST) the first such value stops the query, and this finds its column.
    """
    for column in uncast_columns(table):
        try:
            _run(table.select(column).aggregate(n=table[column].count()))
        except Exception as exc:
            message = str(exc).strip().splitlines()[0]
            raise ContractError(f"table {name}: column {column} holds values that do not cast to "
                                f"{table.schema()[column]} (rule castable): {message}") from error


def validate_feature_table(frame: pd.DataFrame, feature_names: list[str], config: ValidationConfig) -> ValidationReport:
    """Validate the feature table: one row per (account_id, as_of), value ranges by unit, no all-null feature."""
    checks = feature_checks(list(frame.columns), feature_names)
    checked = all_null_checked(FEATURES_TABLE, list(frame.columns), feature_names)
    return _validate_frame(FEATURES_TABLE, frame, checks, checked, config)


def validate_scores(scores: pd.DataFrame, tiers: list[str], config: ValidationConfig) -> ValidationReport:
    """Validate scores before publishing: probabilities in [0, 1], one row per (account_id, as_of), known tiers."""
    checks = score_checks(list(scores.columns), tiers)
    return _validate_frame(SCORES_TABLE, scores, checks, set(), config)


def _validate_frame(table: str, frame: pd.DataFrame, checks: list[Check], checked: set[str],
                    config: ValidationConfig) -> ValidationReport:
    con = ibis.duckdb.connect(threads=1)
    try:
        view = con.create_table(f"_validate_{table}", _plain(frame), temp=True)
        if {"account_id", "as_of"} <= set(view.columns):
            view = with_duplicate_counts(view, ("account_id", "as_of"))
        measured = measure(view, checks, checked, config.max_failing_rows, con.execute)
    finally:
        con.disconnect()
    return build_report([TableRun(table, checks, measured)], config)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a fresh index and plain column names, ready to load into the engine; object columns without
    a value (whose type cannot be inferred) become text."""
    frame = frame.reset_index(drop=True).rename(columns=str)
    untyped = [c for c in frame.columns if frame[c].dtype == object and frame[c].isna().all()]
    return frame.astype(dict.fromkeys(untyped, "string"))


def _run(expr) -> pd.DataFrame:
    return expr.execute()


def run_validate(params: Params, config: ValidationConfig, progress: Progress,
                 reference_time: datetime) -> ValidationReport:
    """The validate stage: resolve the sources, validate them, write the validation page into
    `config.data_docs_dir`, print the failures table.

    The warehouse is opened without `open_warehouse`'s data-span query: that query casts event timestamps and
    would fail with a raw engine error on exactly the data this stage exists to diagnose.

    Raises:
        WarehouseError, ContractError: the warehouse cannot be opened, or a table or column is missing.
    """
    con = connect_warehouse(params.warehouse.url, params.warehouse.threads, read_only=True)
    try:
        with progress.stage("warehouse") as info:
            sources = load_sources(con, params.sources)
            info["detail"] = redact_url(params.warehouse.url)
        if sources.missing:
            progress.note(f"not in the warehouse (features needing them are off): {', '.join(sources.missing)}")
        with progress.stage("load GX") as info:
            info["detail"] = f"great_expectations {import_gx()[0].__version__}"
        with progress.stage("validate sources") as info:
            report = validate_sources(sources, config, reference_time, params.snapshots.data_end)
            info["detail"] = (f"{report.checks} checks, {len(report.errors)} error(s), "
                              f"{len(report.warnings)} warning(s)")
    finally:
        con.disconnect()
    if config.data_docs_dir is not None:
        with progress.stage("validation page") as info:
            info["detail"] = str(write_validation_page(report, config.data_docs_dir, reference_time))
    progress.console.print(report.summary(), markup=False, highlight=False)
    return report
