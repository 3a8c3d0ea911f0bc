"""A `sql:` source mapping can read, never write: attack shapes on DuckDB and PostgreSQL leave the warehouse as it was.

Each attack goes through `load_sources` (what every command does with the mapping) and, when it is accepted, its
query is executed too. Either way, no table, row or file may change.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ibis
import pandas as pd
import pytest

from features.config import SourceTable
from features.readonly_sql import UnsafeQuery, readonly_query
from features.sources import ContractError, load_sources
from tests.conftest import fresh_postgres_schema, tiny_accounts, ts

SUBSCRIPTIONS = pd.DataFrame({"account_id": ["a"], "start_at": ts("2024-01-01"), "end_at": ts(None), "mrr": [10.0]})
EVENTS = pd.DataFrame({"account_id": ["a"], "event_at": ts("2024-02-01"), "event_name": ["login"]})
SCORES = pd.DataFrame({"account_id": ["a"], "churn_probability": [0.5]})

# Statements smuggled behind quoting the default parser reads differently from the engines.
SMUGGLED = {
    "dollar quotes without a tag": "SELECT *, $${#$$ AS zz FROM accounts; DELETE FROM churn_scores; -- #}",
    "dollar quotes with a tag": "SELECT *, $q$ $$ $q$ AS zz FROM accounts; DELETE FROM churn_scores; -- $q$",
    "nested comments": "SELECT * FROM accounts /* outer /* inner */ ; DELETE FROM churn_scores; /* */",
    "backslash before a quote": "SELECT *, 'a\\'; DELETE FROM churn_scores; --' AS zz FROM accounts",
    "doubled quotes": "SELECT *, 'it''s' AS zz FROM accounts; DELETE FROM churn_scores",
    "statement after a line comment": "SELECT * FROM accounts -- note\n; DELETE FROM churn_scores",
    "statement after a block comment": "SELECT * FROM accounts /* ; */ ; DROP TABLE churn_scores",
    "second statement": "SELECT * FROM accounts; DROP TABLE churn_scores",
    "write in a CTE": "WITH gone AS (DELETE FROM churn_scores RETURNING *) SELECT * FROM accounts",
    "select into": "SELECT * INTO stolen FROM accounts",
    "a write alone": "DELETE FROM churn_scores",
    "copy to a file": "COPY churn_scores TO '/tmp/stolen.csv'",
    "attach and create": "ATTACH '/tmp/other.duckdb' AS other; CREATE TABLE other.t AS SELECT * FROM accounts",
    "SQL run from text": "SELECT * FROM query('DELETE FROM churn_scores')",
    "file read": "SELECT * FROM read_csv('/etc/passwd')",
    "session state": "SELECT set_config('default_transaction_read_only', 'off', false) AS x, * FROM accounts",
    "row locks": "SELECT * FROM accounts FOR UPDATE",
    # Functions that write or change state from inside a SELECT, on PostgreSQL, with no privilege needed.
    "large object created": "SELECT a.*, lo_creat(-1) AS junk FROM accounts a",
    "large object written": "SELECT lowrite(lo_open(lo_creat(-1), 131072), 'x') AS n, * FROM accounts",
    "WAL message": "SELECT pg_logical_emit_message(true, 'p', 'x') AS m, * FROM accounts",
    "advisory lock": "SELECT pg_try_advisory_xact_lock(1) AS l, * FROM accounts",
    "random seed": "SELECT setseed(0.5) AS s, * FROM accounts",
    "sequence value": "SELECT currval('s') AS c, * FROM accounts",
    "a table as XML": "SELECT table_to_xml('churn_scores', true, false, '') AS x, * FROM accounts",
    "quoted function name": "SELECT \"pg_read_file\"('/etc/passwd') AS f, * FROM accounts",
    "sleep": "SELECT pg_sleep_for('1 second') AS z, * FROM accounts",
    "the warehouse's own function": "SELECT purge_old_scores() AS p, * FROM accounts",
}
# Harmless single queries whose strings hold what looks like SQL: read as one string, they are accepted.
HARMLESS = {
    "semicolons inside a string": "SELECT *, ';DELETE FROM churn_scores;' AS zz FROM accounts",
    "escape string": "SELECT *, E'\\'; DELETE FROM churn_scores; --' AS zz FROM accounts",
    "tagged dollar string": "SELECT *, $t$; DELETE FROM churn_scores;$t$ AS zz FROM accounts",
}


def _state(con: ibis.BaseBackend) -> dict[str, pd.DataFrame]:
    return {name: con.table(name).execute() for name in sorted(con.list_tables())}


def _try(con: ibis.BaseBackend, sql: str) -> bool:
    """Map `accounts` to the SQL and read it; True when it was accepted."""
    try:
        sources = load_sources(con, {"accounts": SourceTable(sql=sql)})
    except ContractError as exc:
        # Refused by the guard before the engine saw it, not by an engine error after sending it.
        assert str(exc).startswith("sources.accounts.sql: ") and "does not run" not in str(exc), str(exc)
        return False
    sources["accounts"].execute()
    return True


def _check(con: ibis.BaseBackend, cases: dict[str, str], accepted: bool, tmp_path) -> None:
    before = _state(con)
    for name, sql in cases.items():
        try:
            assert _try(con, sql) is accepted, name
        except Exception as exc:  # an engine error on a harmless query is a failure too, with the case's name
            raise AssertionError(f"{name}: {exc}") from exc
        after = _state(con)
        assert after.keys() == before.keys(), name
        for table in before:
            pd.testing.assert_frame_equal(after[table], before[table], obj=f"{name}: {table}")
    assert not (tmp_path / "stolen.csv").exists() and not any(tmp_path.glob("other.duckdb"))


@pytest.fixture
def duckdb_warehouse(load_tables):
    return load_tables(accounts=tiny_accounts("a"), subscriptions=SUBSCRIPTIONS, events=EVENTS, churn_scores=SCORES)


def test_smuggled_statements_are_refused_on_duckdb(duckdb_warehouse, tmp_path):
    _check(duckdb_warehouse, SMUGGLED, accepted=False, tmp_path=tmp_path)


def test_sql_in_strings_stays_a_string_on_duckdb(duckdb_warehouse, tmp_path):
    _check(duckdb_warehouse, HARMLESS, accepted=True, tmp_path=tmp_path)


@pytest.mark.postgres
def test_smuggled_statements_are_refused_on_postgres(tmp_path):
    with fresh_postgres_schema("churn_sql") as schema:
        con = ibis.connect(schema.url)
        try:
            for name, frame in {"accounts": tiny_accounts("a"), "subscriptions": SUBSCRIPTIONS, "events": EVENTS,
                                "churn_scores": SCORES}.items():
                con.create_table(name, frame)
            _check(con, SMUGGLED, accepted=False, tmp_path=tmp_path)
            _check(con, HARMLESS, accepted=True, tmp_path=tmp_path)
        finally:
            con.disconnect()


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_the_query_sent_is_regenerated_without_comments(dialect):
    sent = readonly_query("SELECT a /* hi */ FROM t -- bye", dialect)
    assert sent == "SELECT a FROM t"


def test_a_query_made_safe_first_leaves_the_engines_sql_as_ibis_writes_it():
    """SQLGlot fixes a dialect's rules the first time it generates SQL in it, and Ibis adds its own to the dialects it
    loads: a mapping's query made safe before Ibis had loaded PostgreSQL's once left dates compiled as
    DATE_FROM_PARTS, which PostgreSQL does not have, for the rest of the process. A fresh process, so that
    nothing has loaded either yet."""
    code = ("import datetime, ibis; from features.readonly_sql import readonly_query; "
            "readonly_query('SELECT 1', 'postgres'); t = ibis.table({'d': 'date'}, name='t'); "
            "print(ibis.to_sql(t.filter(t.d == datetime.date(2025, 1, 1)), dialect='postgres'))")
    sql = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout
    assert "MAKE_DATE(2025, 1, 1)" in sql, sql


def test_an_unparsable_query_says_so():
    with pytest.raises(UnsafeQuery, match="does not parse"):
        readonly_query("SELECT FROM WHERE (", "duckdb")
