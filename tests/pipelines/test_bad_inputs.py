"""The bad-input corpus for source data and mapping: each kind breaks one thing in a copy of a small simulated
warehouse (or its params), then `churn validate` must exit non-zero with one message naming the table, column or
key and the rule, without a traceback, and leave every table as it was.

Until `churn validate` runs `pipelines.validation.run_validate`, it only checks the contract: the CLI assertions
of the data kinds then wait for that wiring, and each such test checks `run_validate` directly instead.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from rich.console import Console

import pipelines.cli
from features.sources import ContractError
from pipelines.config import ParamsError, load_params
from pipelines.progress import Progress
from pipelines.validation.validate import ValidationConfig, run_validate
from pipelines.warehouse import WarehouseError
from tests.e2e import TINY, Project, churn, invoke

# Whether `churn validate` runs the validation suites yet (see the module docstring).
CLI_VALIDATES = "run_validate" in inspect.getsource(pipelines.cli)
CONFIG = ValidationConfig(data_docs_dir=None)


@dataclass(frozen=True)
class Case:
    """One kind of bad input: SQL that breaks the warehouse copy and/or a change to params, the words the
    message must hold, and either the failing (table, column, rule) or the error the stage raises."""

    sql: str = ""
    params: dict = field(default_factory=dict)
    names: tuple[str, ...] = ()
    failure: tuple[str, str | None, str] | None = None
    raises: type[Exception] | None = None
    hidden: tuple[str, ...] = ()  # words that must not show (secrets)


CASES = {
    "missing-table": Case(sql="DROP TABLE subscriptions", raises=ContractError,
                          names=("sources.subscriptions.table", "'subscriptions'", "does not exist")),
    "required-table-switched-off": Case(params={"sources": {"subscriptions": None}}, raises=ContractError,
                                        names=("sources.subscriptions", "required by the contract")),
    "missing-column": Case(sql="ALTER TABLE events DROP COLUMN event_name", raises=ContractError,
                           names=("table events", "required column event_name", "not found")),
    "text-in-numeric-column": Case(
        sql="ALTER TABLE subscriptions ALTER mrr TYPE VARCHAR; UPDATE subscriptions SET mrr = 'n/a' WHERE rowid = 3",
        failure=("subscriptions", "mrr", "castable"), names=("'n/a'",)),
    "wrong-type-timestamp": Case(
        sql="ALTER TABLE events ALTER event_at TYPE VARCHAR; UPDATE events SET event_at = 'last week' WHERE rowid < 2",
        failure=("events", "event_at", "castable"), names=("'last week'",)),
    "wrong-type-score": Case(
        sql="ALTER TABLE surveys ALTER score TYPE VARCHAR; UPDATE surveys SET score = 'ten' WHERE rowid = 0",
        failure=("surveys", "score", "castable"), names=("'ten'",)),
    "duplicate-account-ids": Case(sql="INSERT INTO accounts SELECT * FROM accounts WHERE rowid < 2",
                                  failure=("accounts", "account_id", "unique")),
    "null-account-id": Case(sql="UPDATE subscriptions SET account_id = NULL WHERE rowid = 0",
                            failure=("subscriptions", "account_id", "not_null")),
    "duplicate-ticket-ids": Case(sql="INSERT INTO tickets SELECT * FROM tickets WHERE rowid = 0",
                                 failure=("tickets", "ticket_id", "unique")),
    "orphan-events": Case(sql="UPDATE events SET account_id = 'ghost-account' WHERE rowid < 4",
                          failure=("events", "account_id", "foreign_key"), names=("'ghost-account'",)),
    "nps-11": Case(sql="UPDATE surveys SET score = 11 WHERE rowid = (SELECT MIN(rowid) FROM surveys "
                       "WHERE survey_type = 'nps')", failure=("surveys", "score", "in_range"), names=("11",)),
    "ces-8": Case(sql="UPDATE surveys SET score = 8 WHERE rowid = (SELECT MIN(rowid) FROM surveys "
                      "WHERE survey_type = 'ces')", failure=("surveys", "score", "in_range"), names=("8",)),
    "negative-mrr": Case(sql="UPDATE subscriptions SET mrr = -120 WHERE rowid = 1",
                         failure=("subscriptions", "mrr", "non_negative"), names=("-120",)),
    "end-before-start": Case(sql="UPDATE subscriptions SET end_at = start_at - INTERVAL 30 DAY WHERE rowid = 2",
                             failure=("subscriptions", "end_at", "end_after_start")),
    "future-timestamps": Case(sql="UPDATE events SET event_at = TIMESTAMP '2099-01-01 09:00' WHERE rowid < 3",
                              failure=("events", "event_at", "not_in_future"), names=("2099-01-01 09:00:00",)),
    "empty-events-table": Case(sql="DELETE FROM events", failure=("events", None, "not_empty")),
    "all-null-column": Case(sql="UPDATE tickets SET priority = NULL", failure=("tickets", "priority", "not_all_null")),
    "unknown-survey-type": Case(sql="UPDATE surveys SET survey_type = 'promoter' WHERE rowid = 0",
                                failure=("surveys", "survey_type", "allowed_values"), names=("'promoter'",)),
    "params-typo": Case(params={"sorces": {}}, raises=ParamsError, names=("sorces", "Extra inputs are not permitted")),
    "unknown-table-in-mapping": Case(params={"sources": {"acounts": {"table": "accounts"}}}, raises=ContractError,
                                     names=("sources.acounts", "unknown table")),
    "mapping-to-a-missing-column": Case(
        params={"sources": {"events": {"table": "events", "columns": {"event_at": "occured_at"}}}},
        raises=ContractError, names=("table events", "event_at", "'occured_at'", "does not exist")),
    "mapping-to-a-missing-table": Case(params={"sources": {"tickets": {"table": "support_tickets"}}},
                                       raises=ContractError, names=("sources.tickets.table", "'support_tickets'",
                                                                    "does not exist")),
    "warehouse-url-cannot-be-opened": Case(params={"warehouse": {"url": "duckdb://{root}/not-a-warehouse.duckdb"}},
                                           raises=WarehouseError, names=("warehouse.url", "cannot open")),
    # Values that used to pass, or to fail later with a traceback.
    "nan-mrr": Case(sql="UPDATE subscriptions SET mrr = 'nan'::DOUBLE WHERE rowid = 1",
                    failure=("subscriptions", "mrr", "finite")),
    "infinite-mrr": Case(sql="UPDATE subscriptions SET mrr = 'inf'::DOUBLE WHERE rowid = 1",
                         failure=("subscriptions", "mrr", "finite")),
    "absurd-mrr": Case(sql="UPDATE subscriptions SET mrr = 1e308 WHERE rowid = 1",
                       failure=("subscriptions", "mrr", "in_range")),
    "nan-survey-score": Case(sql="UPDATE surveys SET score = 'nan'::DOUBLE WHERE rowid = 0",
                             failure=("surveys", "score", "finite")),
    "event-before-its-account": Case(sql="UPDATE events SET event_at = TIMESTAMP '2001-01-01' WHERE rowid = 0",
                                     failure=("events", "event_at", "after_account_created")),
    "ticket-before-its-account": Case(sql="UPDATE tickets SET created_at = TIMESTAMP '2001-01-01' WHERE rowid = 0",
                                      failure=("tickets", "created_at", "after_account_created")),
    "view-on-a-dropped-table": Case(
        sql="CREATE TABLE crm AS SELECT * FROM accounts; CREATE VIEW crm_accounts AS SELECT * FROM crm; DROP TABLE crm",
        params={"sources": {"accounts": {"table": "crm_accounts"}}}, raises=ContractError,
        names=("sources.accounts.table", "'crm_accounts'", "cannot be read")),
    # Mappings that try to write.
    "sql-mapping-second-statement": Case(
        params={"sources": {"events": {"sql": "SELECT * FROM events; DELETE FROM accounts"}}},
        raises=ContractError, names=("sources.events.sql", "exactly one SELECT")),
    "sql-mapping-dollar-quotes": Case(
        params={"sources": {"events": {"sql": "SELECT *, $${#$$ AS zz FROM events; DELETE FROM accounts; -- #}"}}},
        raises=ContractError, names=("sources.events.sql", "exactly one SELECT")),
    "sql-mapping-unknown-function": Case(
        params={"sources": {"events": {"sql": "SELECT e.*, lo_creat(-1) AS junk FROM events e"}}},
        raises=ContractError, names=("sources.events.sql", "lo_creat", "view")),
    "markup-in-a-table-name": Case(params={"sources": {"accounts": {"table": "[/red]"}}}, raises=ParamsError,
                                   names=("sources.accounts", "'[/red]'")),
    "mistyped-duckdb-path": Case(params={"warehouse": {"url": "duckdb://{root}/typo/warehuose.duckdb"}},
                                 raises=WarehouseError, names=("warehouse.url", "no DuckDB file at")),
    # Params that used to be accepted, or to fail later with a traceback.
    "password-in-the-url": Case(params={"warehouse": {"url": "postgres://alice:Hunter2x@db.example.com/prod"}},
                                raises=ParamsError, names=("warehouse.url", "written in the file"),
                                hidden=("Hunter2x",)),
    "secret-in-a-query-parameter": Case(
        params={"warehouse": {"url": "postgres://alice@db.example.com/prod?sslpassword=Hunter2x"}},
        raises=ParamsError, names=("warehouse.url", "'sslpassword'"), hidden=("Hunter2x",)),
    "password-in-the-tracking-uri": Case(params={"mlflow": {"tracking_uri": "postgresql://ml:Hunter2x@db/mlflow"}},
                                         raises=ParamsError, names=("mlflow.tracking_uri", "written in the file"),
                                         hidden=("Hunter2x",)),
    "horizon-zero": Case(params={"label": {"horizon_days": 0}}, raises=ParamsError,
                         names=("label.horizon_days", "greater than 0")),
    "negative-grace": Case(params={"label": {"grace_days": -5}}, raises=ParamsError, names=("label.grace_days",)),
    "snapshots-end-before-start": Case(params={"snapshots": {"start": "2025-06-01", "end": "2025-01-01"}},
                                      raises=ParamsError, names=("snapshots", "before start")),
    "impossible-date": Case(params={"snapshots": {"data_end": "2025-02-30"}}, raises=ParamsError,
                            names=("snapshots.data_end",)),
    "negative-num-leaves": Case(params={"model.lightgbm": {"num_leaves": -1}}, raises=ParamsError,
                                names=("model.lightgbm.num_leaves",)),
    "unknown-health-score-feature": Case(
        params={"evaluation": {"health_score": [{"feature": "logins_per_moon", "weight": 1, "good": 1, "bad": 0}]}},
        raises=ParamsError, names=("evaluation.health_score", "logins_per_moon")),
    "huge-thread-count": Case(params={"warehouse": {"threads": 10**20}}, raises=ParamsError,
                              names=("warehouse.threads",)),
}


# Data Docs are tested in test_validation.py.
NO_DATA_DOCS = {"validation": {"data_docs_dir": None}}


def _project(make_project, root: Path, changes: dict) -> Project:
    """A copy of the small simulated warehouse (150 accounts over 12 months) in `root`, and its params with
    `changes` applied."""
    return make_project(NO_DATA_DOCS | changes, simulation=TINY, root=root)


def _tables(path: Path) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        names = [row[0] for row in con.sql("SELECT table_name FROM information_schema.tables "
                                                   "WHERE table_type = 'BASE TABLE'").fetchall()]
        return {name: con.sql(f'SELECT COUNT(*) FROM "{name}"').fetchall()[0][0] for name in names}


def test_the_simulated_warehouse_passes(make_project, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = _project(make_project, tmp_path, {}).params
    churn(params, "validate")
    if not CLI_VALIDATES:
        report = run_validate(load_params(params), CONFIG, Progress(Console(file=None, quiet=True)), datetime.now())
        assert report.ok and not report.rows, report.summary()


@pytest.mark.parametrize("kind", CASES)
def test_bad_input_is_one_clear_error(kind, make_project, tmp_path, monkeypatch):
    case = CASES[kind]
    monkeypatch.chdir(tmp_path)
    project = _project(make_project, tmp_path, case.params)
    warehouse, params = project.warehouse, project.params
    (tmp_path / "not-a-warehouse.duckdb").write_text("this is not a DuckDB file\n")
    if case.sql:
        with duckdb.connect(str(warehouse)) as con:
            con.execute(case.sql)
    before = _tables(warehouse)
    words = [*(w for w in case.failure or () if w), *case.names]

    result = invoke(params, "validate")
    if case.raises or CLI_VALIDATES:
        assert result.exit_code != 0, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in result.output
        assert all(word in result.output for word in words), result.output
        assert not [word for word in case.hidden if word in result.output], result.output
    assert _tables(warehouse) == before

    if case.raises:
        with pytest.raises(case.raises) as raised:
            run_validate(load_params(params), CONFIG, Progress(Console(quiet=True)), datetime.now())
        assert all(word in str(raised.value) for word in case.names), str(raised.value)
    elif not CLI_VALIDATES:
        report = run_validate(load_params(params), CONFIG, Progress(Console(quiet=True)), datetime.now())
        table, column, rule = case.failure
        found = [f for f in report.errors if (f.table, f.column, f.rule) == (table, column, rule)]
        assert found and not report.ok, report.summary()
        line = next(line for line in report.summary().splitlines() if line.split()[1:2] == [table]
                    and f" {rule} " in line)
        assert all(word in line for word in words), line
