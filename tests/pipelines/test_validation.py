"""Validation suites on tiny good and deliberately broken warehouses (real DuckDB files), features and scores."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import ibis
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from rich.console import Console

import pipelines.validation.report as validation_report
import pipelines.validation.validate as validation
from features.config import SourceTable
from features.sources import ContractError, load_sources
from pipelines.config import Params, WarehouseConfig
from pipelines.progress import Progress
from pipelines.validation.validate import (
    ValidationConfig,
    ValidationFailed,
    run_validate,
    validate_feature_table,
    validate_scores,
    validate_sources,
)
from serving.writeback import SCORES_SCHEMA
from tests.conftest import tiny_accounts, ts

NOW = datetime(2025, 1, 1)
CONFIG = ValidationConfig(data_docs_dir=None)


def good_tables() -> dict[str, pd.DataFrame]:
    """A small warehouse that meets every rule: three accounts, their subscriptions, events, tickets, surveys."""
    return {
        "accounts": tiny_accounts("a1", "a2", "a3"),
        "subscriptions": pd.DataFrame({
            "account_id": ["a1", "a2", "a3"], "start_at": ts("2024-01-01", "2024-02-01", "2024-03-01"),
            "end_at": ts(None, "2024-08-01", None), "mrr": [100.0, 50.0, 0.0], "seats": [5.0, 3.0, 1.0]}),
        "events": pd.DataFrame({
            "account_id": ["a1", "a1", "a2", "a3"],
            "event_at": ts("2024-03-01 10:00", "2024-03-02 11:00", "2024-03-05 09:30", "2024-04-01 08:00"),
            "event_name": ["login", "create_report", "login", "login"], "user_id": ["u1", "u1", "u2", "u3"]}),
        "tickets": pd.DataFrame({
            "ticket_id": ["t1", "t2"], "account_id": ["a1", "a2"], "created_at": ts("2024-03-01", "2024-03-02"),
            "resolved_at": ts("2024-03-02", None), "csat": [4.0, None]}),
        "surveys": pd.DataFrame({
            "response_id": ["r1", "r2", "r3"], "account_id": ["a1", "a2", "a3"],
            "responded_at": ts("2024-03-01", "2024-03-02", "2024-03-03"), "survey_type": ["nps", "CSAT", "ces"],
            "score": [9.0, 5.0, 7.0]}),
    }


def validate(load_tables, config: ValidationConfig = CONFIG, **changes: pd.DataFrame):
    tables = good_tables() | changes
    con = load_tables(**tables)
    return validate_sources(load_sources(con, {}), config, NOW)


def failure(report, table: str, column: str | None, rule: str):
    found = [f for f in report.rows if (f.table, f.column, f.rule) == (table, column, rule)]
    assert found, f"no {table}.{column} {rule} failure in:\n{report.summary()}"
    return found[0]


def with_rows(table: str, **columns) -> pd.DataFrame:
    """The good table with one column replaced."""
    return good_tables()[table].assign(**columns)


def test_a_good_warehouse_passes_every_check(load_tables):
    report = validate(load_tables)
    assert report.ok and report.rows == [] and not report.warnings
    assert report.checks > 40
    assert report.tables == ["accounts", "subscriptions", "events", "tickets", "surveys"]
    assert "validation passed" in report.summary()


def broken_tables() -> dict[str, pd.DataFrame]:
    """The good warehouse with one defect per rule, each on rows of its own so that no defect causes another."""
    good = good_tables()
    extra_accounts = pd.DataFrame({"account_id": ["a1", None], "created_at": ts("2023-06-01", "2023-06-01")})
    subscriptions = pd.DataFrame({
        "account_id": ["a1", "a2", "a3", "nobody", "a1", "a2"],
        "start_at": ts("2024-01-01", "2024-02-01", "2024-03-01", "2024-01-01", "2024-01-01", "2024-01-01"),
        "end_at": ts(None, "2024-08-01", "2023-12-01", None, None, None),
        "mrr": ["100", "-50", "0", "10", "lots", "20"], "seats": [5.0, 3.0, 1.0, 1.0, 1.0, 1.0]})
    events = pd.DataFrame({
        "account_id": ["a1", "zz", "zz", None, "a2", "a3"],
        "event_at": ["2024-03-01 10:00", "2024-03-02", "2024-03-02", "2024-03-03", "yesterday", "2030-05-01 12:00"],
        "event_name": ["login"] * 6, "user_id": pd.Series([None] * 6, dtype="string")})
    tickets = pd.DataFrame({
        "ticket_id": ["t1", None, "t3"], "account_id": ["a1", "a2", "a3"],
        "created_at": ts("2024-03-01", "2024-03-02", "2026-01-01"), "resolved_at": ts(None, None, None),
        "csat": [6.0, None, 5.0]})
    surveys = pd.DataFrame({
        "response_id": ["r1", "r2", "r3", "r4", "r4"], "account_id": ["a1", "a2", "a3", "a1", "a2"],
        "responded_at": ts(*["2024-03-01"] * 5), "survey_type": ["nps", "csat", "ces", "effort", "nps"],
        "score": [11.0, 0.0, 8.0, 3.0, 7.0]})
    return {"accounts": pd.concat([good["accounts"], extra_accounts], ignore_index=True),
            "subscriptions": subscriptions, "events": events, "tickets": tickets, "surveys": surveys}


# table, column, rule → failing count and example values
BROKEN = {
    ("accounts", "account_id", "unique"): (2, ("'a1' (×2)",)),
    ("accounts", "account_id", "not_null"): (1, ("null",)),
    ("subscriptions", "mrr", "castable"): (1, ("'lots'",)),
    ("subscriptions", "mrr", "non_negative"): (1, ("-50",)),
    ("subscriptions", "account_id", "foreign_key"): (1, ("'nobody'",)),
    ("subscriptions", "end_at", "end_after_start"): (1, ("(2023-12-01, 2024-03-01)",)),
    ("events", "account_id", "not_null"): (1, ("null",)),
    ("events", "account_id", "foreign_key"): (2, ("'zz' (×2)",)),
    ("events", "event_at", "castable"): (1, ("'yesterday'",)),
    ("events", "event_at", "not_in_future"): (1, ("2030-05-01 12:00:00",)),
    ("events", "user_id", "not_all_null"): (6, ("all 6 rows null",)),
    ("tickets", "ticket_id", "not_null"): (1, ("null",)),
    ("tickets", "csat", "in_range"): (1, ("6",)),
    ("tickets", "created_at", "not_in_future"): (1, ("2026-01-01",)),
    ("tickets", "resolved_at", "not_all_null"): None,  # null means open: never reported
    ("surveys", "response_id", "unique"): (2, ("'r4' (×2)",)),
    ("surveys", "survey_type", "allowed_values"): (1, ("'effort'",)),
    ("surveys", "score", "in_range"): (3, ("11", "0", "8")),  # one check per survey type: NPS, CSAT, CES
}


@pytest.fixture(scope="module")
def broken_report(tmp_path_factory):
    """One validation of the warehouse with every defect at once (it takes GX a second or two)."""
    con = ibis.duckdb.connect(str(tmp_path_factory.mktemp("broken") / "warehouse.duckdb"), threads=1)
    for name, frame in broken_tables().items():
        con.create_table(name, frame)
    yield validate_sources(load_sources(con, {}), CONFIG, NOW)
    con.disconnect()


def test_the_broken_warehouse_fails_exactly_the_broken_rules(broken_report):
    expected = {key for key, value in BROKEN.items() if value is not None}
    assert {(f.table, f.column, f.rule) for f in broken_report.rows} == expected
    assert not broken_report.ok and not broken_report.warnings


@pytest.mark.parametrize("key", [k for k, v in BROKEN.items() if v is not None], ids="-".join)
def test_each_rule_names_table_column_rule_count_and_examples(broken_report, key):
    found = [f for f in broken_report.rows if (f.table, f.column, f.rule) == key]
    assert {f.severity for f in found} == {"error"}
    assert (sum(f.failing_count for f in found), sum((f.examples for f in found), ())) == BROKEN[key]
    lines = [line for line in broken_report.summary().splitlines() if line.split()[1:4] == list(key)]
    assert len(lines) == len(found) and all(f.examples[0] in line for f, line in zip(found, lines, strict=True))


def test_an_empty_events_table_fails_once_without_all_null_noise(load_tables):
    report = validate(load_tables, events=good_tables()["events"].iloc[:0])
    assert [(f.table, f.rule, f.examples) for f in report.rows] == [("events", "not_empty", ("0 rows",))]


def test_an_empty_optional_table_says_how_to_run_without_it(load_tables):
    empty = {name: good_tables()[name].iloc[:0] for name in ("tickets", "surveys")}
    report = validate(load_tables, **empty)
    assert [(f.table, f.rule) for f in report.errors] == [("tickets", "not_empty"), ("surveys", "not_empty")]
    with pytest.raises(ValidationFailed) as failed:
        report.raise_for_errors()
    assert str(failed.value).endswith("; tickets, surveys are optional: without such data yet, put `tickets: null` "
                                      "and `surveys: null` under `sources:` in your params file (in place of their "
                                      "entries, if any) to run without them")
    # A required table has no such way out.
    with pytest.raises(ValidationFailed) as failed:
        validate(load_tables, events=good_tables()["events"].iloc[:0]).raise_for_errors()
    assert "null" not in str(failed.value)


def test_a_timestamp_within_the_tolerance_passes_and_time_zones_are_compared_in_utc(load_tables):
    stamps = ts("2024-03-01", "2025-01-01 20:00", "2024-03-05", "2024-04-01")
    con = load_tables(**(good_tables() | {"events": with_rows("events", event_at=stamps.dt.tz_localize("UTC"))}))
    sources = load_sources(con, {})
    assert validate_sources(sources, CONFIG, NOW).ok
    strict = ValidationConfig(data_docs_dir=None, future_tolerance_days=0)
    report = validate_sources(sources, strict, datetime(2025, 1, 1, 1, tzinfo=UTC))
    assert failure(report, "events", "event_at", "not_in_future").examples == ("2025-01-01 20:00:00",)


def test_a_time_zone_aware_column_is_compared_with_a_plain_one_in_utc(load_tables):
    # end_at timestamptz, start_at plain: the engine found nothing wrong, and GX's pandas comparison of the pair
    # raised, which read as "end_after_start fails on 0" and stopped validate, train and score.
    subscriptions = good_tables()["subscriptions"]
    aware = subscriptions.assign(end_at=subscriptions.end_at.dt.tz_localize("UTC"))
    assert validate(load_tables, subscriptions=aware).ok
    ends_first = aware.assign(end_at=ts(None, "2023-12-01", None).dt.tz_localize("UTC"))   # a2 ends before it starts
    found = failure(validate(load_tables, subscriptions=ends_first), "subscriptions", "end_at", "end_after_start")
    assert found.failing_count == 1 and found.severity == "error"


def test_survey_types_are_compared_as_the_features_read_them(load_tables):
    surveys = with_rows("surveys", survey_type=["NPS", "Csat", "CES"], score=[10.0, 5.0, 7.0])
    assert validate(load_tables, surveys=surveys).ok


def test_softer_rules_warn_and_leave_the_report_ok(load_tables):
    events = with_rows("events", event_name=["login", None, "login", "login"])
    tickets = with_rows("tickets", resolved_at=ts("2024-02-01", None))
    report = validate(load_tables, events=events, tickets=tickets)
    assert report.ok and not report.errors
    assert {(f.table, f.column, f.rule) for f in report.warnings} == {
        ("events", "event_name", "missing_values"), ("tickets", "resolved_at", "resolved_after_created")}


def test_severities_from_config_turn_an_error_into_a_warning(load_tables):
    broken = {"subscriptions": with_rows("subscriptions", mrr=[100.0, -50.0, 0.0]),
              "accounts": tiny_accounts("a1", "a2", "a3", "a3")}
    by_rule = validate(load_tables, ValidationConfig(data_docs_dir=None, severities={"non_negative": "warn"}),
                       **broken)
    assert failure(by_rule, "subscriptions", "mrr", "non_negative").severity == "warn"
    assert failure(by_rule, "accounts", "account_id", "unique").severity == "error" and not by_rule.ok
    by_column = validate(load_tables, ValidationConfig(data_docs_dir=None, severities={
        "subscriptions.mrr.non_negative": "warn", "accounts.unique": "warn"}), **broken)
    assert by_column.ok and len(by_column.warnings) == 2


def test_a_text_value_is_reported_once_as_castable_not_also_as_missing(load_tables):
    events = with_rows("events", event_at=["2024-03-01", "soon", None, "2024-04-01"])
    report = validate(load_tables, events=events)
    assert failure(report, "events", "event_at", "castable").examples == ("'soon'",)
    assert failure(report, "events", "event_at", "missing_values").failing_count == 1


@pytest.mark.parametrize("key", ["non_negtive", "subscriptions.mrr.bogus", "subscription.non_negative",
                                 "a.b.c.non_negative"])
def test_a_typo_in_severities_is_an_error_naming_the_key(key):
    with pytest.raises(ValidationError, match=key.replace(".", r"\.")):
        ValidationConfig(severities={key: "warn"})
    with pytest.raises(ValidationError):
        ValidationConfig(severities={"unique": "fatal"})


def big_events(rows: int, orphans: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    events = pd.DataFrame({
        "account_id": rng.choice(["a1", "a2", "a3"], rows),
        "event_at": pd.Timestamp("2024-03-01") + pd.to_timedelta(rng.integers(0, 200 * 86_400, rows), unit="s"),
        "event_name": rng.choice(["login", "create_report"], rows), "user_id": rng.choice(["u1", "u2"], rows)})
    events["event_at"] = events.event_at.astype("datetime64[us]")
    events.loc[: orphans - 1, "account_id"] = "ghost"
    return events


def spy_on_engine_and_gx(monkeypatch) -> tuple[list[int], dict[str, int]]:
    """Record the size of every frame the engine returns and of every frame handed to GX."""
    fetched, handed = [], {}
    run, run_suites = validation._run, validation_report.run_suites

    def spy_run(expr):
        frame = run(expr)
        fetched.append(len(frame))
        return frame

    def spy_suites(batches, max_examples):
        handed.update({b.suite: len(b.frame) for b in batches})
        return run_suites(batches, max_examples)

    monkeypatch.setattr(validation, "_run", spy_run)
    monkeypatch.setattr(validation_report, "run_suites", spy_suites)
    return fetched, handed


def test_events_are_checked_in_the_engine_and_only_failing_rows_reach_gx(load_tables, monkeypatch):
    fetched, handed = spy_on_engine_and_gx(monkeypatch)
    report = validate(load_tables, events=big_events(300_000, orphans=3))
    assert [(f.table, f.rule, f.failing_count, f.examples) for f in report.rows] == [
        ("events", "foreign_key", 3, ("'ghost' (×3)",))]
    assert handed["events"] == 3 and handed["profile"] == 21
    assert max(fetched) == 3


def test_when_many_rows_fail_gx_gets_a_bounded_share_and_counts_stay_exact(load_tables, monkeypatch):
    fetched, handed = spy_on_engine_and_gx(monkeypatch)
    events = big_events(300_000, orphans=5_000)
    events.loc[10_000:12_999, "event_at"] = pd.Timestamp("2031-01-01")
    config = ValidationConfig(data_docs_dir=None, max_failing_rows=1_000)
    report = validate(load_tables, config, events=events)
    assert failure(report, "events", "account_id", "foreign_key").failing_count == 5_000
    future = failure(report, "events", "event_at", "not_in_future")
    assert future.failing_count == 3_000 and future.examples == ("2031-01-01",)
    assert handed["events"] <= 1_000 and max(fetched) <= 500


def test_a_bounded_share_keeps_duplicate_keys_together(load_tables, monkeypatch):
    _, handed = spy_on_engine_and_gx(monkeypatch)
    accounts = tiny_accounts(*[f"a{i}" for i in range(75)] * 2, "b1")
    config = ValidationConfig(data_docs_dir=None, max_failing_rows=100, max_examples=2)
    report = validate(load_tables, config, accounts=accounts)
    found = failure(report, "accounts", "account_id", "unique")
    assert found.failing_count == 150 and len(found.examples) == 2
    assert all(example.startswith("'a") for example in found.examples)
    assert handed["accounts"] == 100


def features_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "account_id": ["a1", "a2", "a1", "a2"], "as_of": pd.to_datetime(["2024-05-01"] * 2 + ["2024-06-01"] * 2),
        "label": [0, 1, None, None], "mrr": [100.0, 50.0, 100.0, 50.0],
        "active_days_30d": [12.0, 0.0, 3.0, 1.0], "core_feature_share_30d": [0.5, 0.0, 1.0, 0.25],
        "seat_utilisation_30d": [1.4, 0.0, 0.2, 0.3], "events_trend": [-1.0, 3.5, 0.2, 0.0],
        "plan": ["Growth", "Starter", "Growth", None], "tickets_30d": [0.0, 1.0, 2.0, 0.0]})


FEATURES = ["active_days_30d", "core_feature_share_30d", "seat_utilisation_30d", "events_trend", "plan",
            "tickets_30d"]


def test_a_good_feature_table_passes():
    report = validate_feature_table(features_frame(), FEATURES, CONFIG)
    assert report.ok and report.rows == [], report.summary()


def test_feature_table_failures():
    frame = features_frame()
    frame.loc[3, ["account_id", "as_of"]] = ["a1", pd.Timestamp("2024-06-01")]
    frame.loc[1, "core_feature_share_30d"] = 1.5
    frame.loc[2, "active_days_30d"] = -2.0
    frame["tickets_30d"] = np.nan
    report = validate_feature_table(frame, [*FEATURES, "open_tickets"], CONFIG)
    unique = failure(report, "churn_features", "account_id, as_of", "unique")
    assert unique.failing_count == 2 and unique.examples == ("(account_id='a1', as_of=2024-06-01) (×2)",)
    assert failure(report, "churn_features", "core_feature_share_30d", "in_range").examples == ("1.5",)
    assert failure(report, "churn_features", "active_days_30d", "non_negative").examples == ("-2",)
    assert failure(report, "churn_features", "open_tickets", "column_present").examples == ("column missing",)
    assert failure(report, "churn_features", "tickets_30d", "not_all_null").severity == "warn"
    assert {(f.column, f.rule) for f in report.errors} == {
        ("account_id, as_of", "unique"), ("core_feature_share_30d", "in_range"), ("active_days_30d", "non_negative"),
        ("open_tickets", "column_present")}


def scores_frame() -> pd.DataFrame:
    """Three good score rows with every column of the score schema (text columns filled with "x")."""
    values = {"account_id": ["a1", "a2", "a3"], "as_of": [date(2024, 6, 1)] * 3,
              "churn_probability": [0.05, 0.4, 0.2], "risk_tier": ["low", "high", "medium"],
              "risk_rank": [3, 1, 2], "health_score": [80.0, 20.0, 55.0], "mrr": [100.0, 50.0, 10.0],
              "arm": ["treatment", "holdout", None], "scored_at": [datetime(2024, 6, 1, 6)] * 3}
    other = {name: ["x"] * 3 if dtype.is_string() else [1.0] * 3 for name, dtype in SCORES_SCHEMA.items()
             if name not in values}
    return pd.DataFrame(values | other)[list(SCORES_SCHEMA.names)]


TIERS = ["high", "medium", "low"]


def test_good_scores_pass():
    report = validate_scores(scores_frame(), TIERS, CONFIG)
    assert report.ok and report.rows == [], report.summary()


def test_scores_failures():
    scores = scores_frame()
    scores.loc[0, "churn_probability"] = 1.2
    scores.loc[2, "account_id"] = "a2"
    scores.loc[1, "risk_tier"] = "extreme"
    scores.loc[2, "arm"] = "control"
    report = validate_scores(scores, TIERS, CONFIG)
    assert failure(report, "churn_scores", "churn_probability", "in_range").examples == ("1.2",)
    assert failure(report, "churn_scores", "account_id, as_of", "unique").failing_count == 2
    assert failure(report, "churn_scores", "risk_tier", "allowed_values").examples == ("'extreme'",)
    assert failure(report, "churn_scores", "arm", "allowed_values").examples == ("'control'",)
    assert len(report.errors) == 4


def test_empty_scores_and_missing_columns_are_errors():
    report = validate_scores(scores_frame().iloc[:0].drop(columns="risk_tier"), TIERS, CONFIG)
    assert {(f.column, f.rule) for f in report.errors} == {(None, "not_empty"), ("risk_tier", "column_present")}


def test_run_validate_prints_the_table_writes_the_validation_page_and_names_errors(load_tables, tmp_path):
    subscriptions = with_rows("subscriptions", mrr=[100.0, -50.0, 0.0])
    load_tables(**(good_tables() | {"subscriptions": subscriptions})).disconnect()
    params = Params(warehouse=WarehouseConfig(url=f"duckdb://{tmp_path / 'warehouse.duckdb'}", threads=1))
    out = io.StringIO()
    config = ValidationConfig(data_docs_dir=tmp_path / "docs")
    report = run_validate(params, config, Progress(Console(file=out, width=200)), NOW)
    printed = out.getvalue()
    assert "validation failed: 1 error(s)" in printed
    assert "subscriptions  mrr" in printed and "non_negative" in printed and "-50" in printed
    # One self-contained page (no GX Data Docs): the failure, its failing row, and every check that ran.
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == ["index.html"]
    page = (tmp_path / "docs" / "index.html").read_text()
    assert "Validation failed: 1 error(s), 0 warning(s)" in page
    assert "subscriptions.mrr — non_negative" in page and "<code>-50</code>" in page
    assert "<td class=\"value\">-50</td>" in page  # the failing row
    assert f"{report.checks} checks on accounts, subscriptions, events, tickets, surveys" in page
    assert len(report.runs) == report.checks and "subscriptions</strong>: 12 of 13 checks passed" in page
    with pytest.raises(ValidationFailed, match=r"subscriptions\.mrr non_negative \(≥ 0\) fails on 1: -50"):
        report.raise_for_errors()


@pytest.mark.postgres
def test_postgres_gives_the_same_failures_and_names_a_value_that_does_not_cast(postgres_con):
    tables = good_tables() | {
        "accounts": tiny_accounts("a1", "a2", "a3", "a3"),
        "events": with_rows("events", account_id=["a1", "zz", "a2", "a3"]),
        "surveys": with_rows("surveys", score=[11.0, 5.0, 7.0])}
    for name, frame in tables.items():
        postgres_con.create_table(name, frame)
    report = validate_sources(load_sources(postgres_con, {}), CONFIG, NOW)
    assert [(f.table, f.column, f.rule, f.failing_count, f.examples) for f in report.rows] == [
        ("accounts", "account_id", "unique", 2, ("'a3' (×2)",)),
        ("events", "account_id", "foreign_key", 1, ("'zz'",)),
        ("surveys", "score", "in_range", 1, ("11",))]

    postgres_con.create_table("subscriptions", with_rows("subscriptions", mrr=["100", "lots", "0"]), overwrite=True)
    with pytest.raises(ContractError, match=r"table subscriptions: column mrr .* \(rule castable\).*lots"):
        validate_sources(load_sources(postgres_con, {}), CONFIG, NOW)

    # A cast inside a `sql:` mapping fails on a row (it stopped validation with psycopg's traceback): one line.
    postgres_con.create_table("subscriptions", good_tables()["subscriptions"], overwrite=True)
    postgres_con.create_table("tickets_raw", with_rows("tickets", created_at=["2024-03-01", "n/a"]))
    mapped = {"tickets": SourceTable(sql="SELECT ticket_id, account_id, CAST(created_at AS timestamp) AS created_at, "
                                         "resolved_at, csat FROM tickets_raw")}
    refused = (r'^table tickets: the warehouse fails to read it \(InvalidDatetimeFormat: invalid input syntax for type '
               r'timestamp: "n/a"\); what sources\.tickets names')
    with pytest.raises(ContractError, match=refused):
        validate_sources(load_sources(postgres_con, mapped), CONFIG, NOW)
