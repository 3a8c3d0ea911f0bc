"""A `sql:` source mapping, made safe to send: one read-only query, parsed the way the engine parses it.

The user's text is never sent to the warehouse. It is parsed with the engine's own SQLGlot dialect (a parser that
disagrees with the engine about dollar quotes, escape strings or comments would let a second statement through),
refused unless it is exactly one query that reads, and the SQL sent is the one SQLGlot generates from that tree,
without comments; Ibis then wraps it as a subquery. Functions are allowed, not forbidden: only those SQLGlot knows
(standard SQL and the engines' common ones) minus the few of them that read files or advance sequences; a function
SQLGlot does not know (an engine's `lo_creat`, a warehouse's own UDF) is refused, since it may write. A mapping that
needs one maps `table:` to a view the warehouse's owners created. On DuckDB the reading stages also use a read-only
connection (`pipelines/warehouse.py`), so a gap here still cannot write; PostgreSQL has no such connection that Ibis
can use (its temporary tables need a writable transaction), so there the function allow-list is the guard.
"""

from __future__ import annotations

# Ibis adds its rules to SQLGlot's dialects when this module is imported (PostgreSQL's dates as MAKE_DATE, for one),
# and SQLGlot fixes a dialect's rules the first time it generates SQL in it. Imported first, so that a query made
# safe here in a dialect Ibis has not loaded yet cannot leave that dialect without Ibis's rules for the whole process.
import ibis.backends.sql.dialects  # noqa: F401  (imported for its side effect)
import sqlglot
import sqlglot.expressions as sge

# Statements, clauses and commands that write, change session state or reach outside the query.
_STATEMENTS = (sge.DDL, sge.DML, sge.Command, sge.Set, sge.Transaction, sge.Commit, sge.Rollback, sge.Pragma,
               sge.Use, sge.Attach, sge.Detach, sge.Into, sge.Lock, sge.Describe, sge.Show, sge.Kill, sge.LoadData,
               sge.Cache, sge.Uncache, sge.Refresh, sge.Grant, sge.Revoke, sge.TruncateTable, sge.Analyze,
               sge.Export, sge.Install, sge.Drop, sge.Alter)
# Functions that run text as SQL, read or write files, or change server state, on the engines we support.
_FUNCTIONS = frozenset({
    # DuckDB
    "query", "query_table", "read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "read_json",
    "read_json_auto", "read_ndjson", "read_text", "read_blob", "glob", "sniff_csv", "read_xlsx", "iceberg_scan",
    "delta_scan", "sqlite_scan", "postgres_scan", "postgres_query", "postgres_execute", "mysql_query",
    # PostgreSQL
    "dblink", "dblink_exec", "query_to_xml", "query_to_xml_and_xmlschema", "query_to_xmlschema", "cursor_to_xml",
    "set_config", "setval", "nextval", "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file",
    "pg_file_write", "lo_import", "lo_export", "lo_unlink", "lo_create", "lo_from_bytea", "lo_put",
    "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_switch_wal",
    "pg_notify", "pg_advisory_lock", "pg_advisory_xact_lock", "pg_try_advisory_lock", "pg_sleep",
    "pg_create_restore_point", "pg_promote", "txid_current",
    # Known to SQLGlot, but advancing a sequence or touching files
    "next_value_for", "to_file",
})


class UnsafeQuery(ValueError):
    """The mapping's SQL is not exactly one read-only query."""


def _function_names(tree: sge.Expression) -> set[str]:
    names = set()
    for node in tree.find_all(sge.Func):
        name = node.name if isinstance(node, sge.Anonymous) else node.sql_name()
        names.add(str(name).strip('"`[]').lower())
    return names


def _unknown_functions(tree: sge.Expression) -> set[str]:
    """Functions SQLGlot does not know (parsed as Anonymous): an engine's or a warehouse's own, maybe writing."""
    return {str(node.name).strip('"`[]') for node in tree.find_all(sge.Anonymous)}


def _parse_one(sql: str, dialect) -> sge.Query:
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None and not isinstance(s, sge.Semicolon)]
    except sqlglot.errors.SqlglotError as exc:
        raise UnsafeQuery(f"does not parse: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1 or not isinstance(statements[0], sge.Query):
        kinds = ", ".join(type(s).__name__.upper() for s in statements) or "nothing"
        raise UnsafeQuery(f"must be exactly one SELECT query; it parses as {kinds}")
    return statements[0]


def readonly_query(sql: str, dialect) -> str:
    """Return the SQL to send for a user's `sql:` mapping: its one read-only query, regenerated from the parse tree.

    Args:
        sql: the user's text.
        dialect: the engine's SQLGlot dialect (name or class), e.g. `con.dialect` of an Ibis backend.

    Raises:
        UnsafeQuery: not exactly one query, a statement or clause that writes, or a function that runs SQL text,
            touches files or changes server state.
    """
    tree = _parse_one(sql, dialect)
    writes = sorted({type(node).__name__.upper() for node in tree.find_all(*_STATEMENTS)})
    if writes:
        raise UnsafeQuery(f"must only read; it contains {', '.join(writes)}")
    banned = sorted(_function_names(tree) & _FUNCTIONS)
    if banned:
        raise UnsafeQuery(f"must only read the warehouse's tables; it calls {', '.join(banned)}")
    unknown = sorted(_unknown_functions(tree))
    if unknown:
        raise UnsafeQuery(f"calls {', '.join(unknown)}, which is not a known SQL function and may write; put it in "
                          f"a view in the warehouse and map `table:` to the view")
    generated = tree.sql(dialect=dialect, comments=False)
    # The generated text must read back as one query that generates the same text again (a fixed point), or what
    # the engine reads might differ from what was checked.
    if _parse_one(generated, dialect).sql(dialect=dialect, comments=False) != generated:
        raise UnsafeQuery("does not read back the same after generation; write it more plainly")
    return generated
