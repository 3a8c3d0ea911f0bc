"""Great Expectations 1.x, quietly: an ephemeral context, one pandas batch per suite, one ValidationDefinition each.

GX is imported here, inside functions (it takes seconds to import), with its telemetry and progress bars off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from pipelines.validation.rules import Check


@dataclass
class Batch:
    """One suite to run: its name, the frame GX validates, and the checks with their ids and severities.

    `expect_pass` says the engine found nothing failing: GX then reports pass/fail only, which costs half as much.
    """

    suite: str
    frame: pd.DataFrame
    checks: list[tuple[int, Check, str]]
    expect_pass: bool = False
    note: str = ""


def import_gx():
    """Import Great Expectations with its telemetry off; return it, its expectations and the progress-bar config."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    return gx, gxe, ProgressBarsConfig


def run_suites(batches: list[Batch], max_examples: int) -> tuple[list[Any], dict[int, Any]]:
    """Validate each batch against its suite in a fresh ephemeral context.

    Returns:
        The suite results, and each check's expectation result by check id.
    """
    gx, gxe, progress_bars = import_gx()
    from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults

    # In-memory stores and no docs site: GX writes nothing. Its Data Docs would render warehouse values as live
    # HTML and load scripts from public CDNs; `pipelines.validation.page` renders the results instead.
    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False))
    context = gx.get_context(mode="ephemeral", project_config=config)
    context.variables.progress_bars = progress_bars(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas("churn")
    # COMPLETE: every failing value of the (bounded) failing rows, so examples carry exact counts.
    detailed = {"result_format": "COMPLETE", "partial_unexpected_count": max_examples}
    suite_results, by_check = [], {}
    for batch in batches:
        batch_definition = source.add_dataframe_asset(batch.suite).add_batch_definition_whole_dataframe("rows")
        # Built whole and added once: adding expectations one by one re-serialises the stored suite each time.
        suite = context.suites.add(gx.ExpectationSuite(name=batch.suite, expectations=[
            _expectation(gxe, check, check_id, severity, batch) for check_id, check, severity in batch.checks]))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=batch.suite, data=batch_definition, suite=suite))
        result = definition.run(batch_parameters={"dataframe": batch.frame},
                                result_format="BOOLEAN_ONLY" if batch.expect_pass else detailed)
        if not result.success and batch.expect_pass:
            result = definition.run(batch_parameters={"dataframe": batch.frame}, result_format=detailed)
        suite_results.append(result)
        by_check |= {int(r.expectation_config.meta["check"]): r for r in result.results}
    return suite_results, by_check


def _expectation(gxe, check: Check, check_id: int, severity: str, batch: Batch):
    kwargs = {key: _naive_utc(value(batch.frame) if callable(value) else value) for key, value in check.kwargs.items()}
    meta = {"check": check_id, "table": check.table, "column": check.column, "rule": check.rule, "severity": severity}
    notes = f"**{check.rule}** ({severity}): {check.detail}; {batch.note}"
    return getattr(gxe, check.expectation)(**kwargs, meta=meta, notes=notes)


def _naive_utc(value: Any) -> Any:
    """A bound in UTC without the zone, as the frames GX validates hold every time (`engine.measure`)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def unexpected_examples(result: Any, limit: int) -> list[tuple[Any, int]]:
    """The most frequent failing values of one expectation result with how often each occurs, first seen first
    among equals."""
    values = result.result.get("unexpected_list")
    if values is None:
        values = result.result.get("partial_unexpected_list") or []
    counts: dict[Any, list] = {}
    for value in values:
        key = _hashable(value)
        counts.setdefault(key, [value, 0])[1] += 1
    ranked = sorted(counts.values(), key=lambda vc: -vc[1])
    return [(value, count) for value, count in ranked[:limit]]


def unexpected_rows(result: Any, limit: int) -> list[int]:
    """The frame index of the first failing rows of one expectation result (empty when GX gives none)."""
    indices = result.result.get("unexpected_index_list") or []
    return [i for i in indices if isinstance(i, int | np.integer)][:limit]


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple((k, _hashable(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return "null" if value is None or value != value else value
