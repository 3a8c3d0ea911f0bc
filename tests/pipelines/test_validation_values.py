"""Values that used to pass validation and break later or give wrong features: NaN, infinity, absurd money, and
activity dated before its account existed. Each is a finding naming the table, column and rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.sources import load_sources
from pipelines.validation.validate import validate_sources
from tests.pipelines.test_validation import CONFIG, NOW, good_tables, validate


def _with(table: str, column: str, row: int, value) -> dict[str, pd.DataFrame]:
    frame = good_tables()[table].copy()
    frame.loc[row, column] = value
    return {table: frame}


@pytest.mark.parametrize(("table", "column"), [("subscriptions", "mrr"), ("subscriptions", "seats"),
                                               ("surveys", "score"), ("tickets", "csat")])
def test_a_nan_stored_in_the_warehouse_is_a_finding(load_tables, table, column):
    # pandas NaN arrives as NULL; a NaN the warehouse itself holds is what a real load leaves behind.
    con = load_tables(**good_tables())
    con.raw_sql(f"UPDATE {table} SET {column} = 'nan'::DOUBLE WHERE rowid = 0")
    report = validate_sources(load_sources(con, {}), CONFIG, NOW)
    found = [(f.table, f.column, f.rule, f.severity, f.failing_count) for f in report.rows]
    assert (table, column, "finite", "error", 1) in found, found


@pytest.mark.parametrize(("table", "column", "value", "rule"), [
    ("subscriptions", "mrr", np.inf, "finite"),
    ("subscriptions", "mrr", -np.inf, "finite"),
    ("subscriptions", "mrr", 1e308, "in_range"),
    ("subscriptions", "seats", -np.inf, "finite"),
    ("tickets", "csat", np.inf, "finite"),
    ("events", "event_at", pd.Timestamp("2023-01-01"), "after_account_created"),
    ("tickets", "created_at", pd.Timestamp("2023-05-31"), "after_account_created"),
    ("surveys", "responded_at", pd.Timestamp("2023-02-01"), "after_account_created"),
])
def test_a_bad_value_is_a_finding_naming_table_column_and_rule(load_tables, table, column, value, rule):
    report = validate(load_tables, **_with(table, column, 0, value))
    found = [(f.table, f.column, f.rule, f.severity, f.failing_count) for f in report.rows]
    assert (table, column, rule, "error", 1) in found, found


def test_activity_before_creation_names_the_account_and_time(load_tables):
    report = validate(load_tables, **_with("events", "event_at", 0, pd.Timestamp("2023-01-01 09:00")))
    failure = next(f for f in report.rows if f.rule == "after_account_created")
    assert failure.examples and "a1 at 2023-01-01 09:00:00" in failure.examples[0]


def test_the_good_warehouse_has_no_finding_of_these_rules(load_tables):
    report = validate(load_tables)
    assert not [f for f in report.rows if f.rule in {"finite", "after_account_created", "in_range"}]
