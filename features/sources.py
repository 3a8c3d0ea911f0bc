"""The source contract: canonical tables and columns, and the mapping from a warehouse's own names onto them."""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir

from features.config import SourcesConfig, SourceTable
from features.contract import CONTRACT, TableSpec
from features.readonly_sql import UnsafeQuery, readonly_query


class ContractError(ValueError):
    """The warehouse does not meet the source contract; the message names the table, column and rule."""


def check_sources_config(sources: SourcesConfig) -> None:
    """Raise ContractError for a mapping that names an unknown canonical table or column."""
    for table, source in sources.items():
        if table not in CONTRACT:
            raise ContractError(f"sources.{table}: unknown table; the contract has {', '.join(CONTRACT)}")
        if source is None:
            if CONTRACT[table].required:
                raise ContractError(f"sources.{table}: the table is required by the contract and cannot be off")
            continue
        known = {c.name for c in CONTRACT[table].columns}
        for column in source.columns:
            if column not in known:
                raise ContractError(
                    f"sources.{table}.columns.{column}: unknown column; {table} has {', '.join(sorted(known))}")


@dataclass
class Sources:
    """Source tables as Ibis expressions with canonical names and types, and what the warehouse lacks."""

    tables: dict[str, ir.Table]
    missing: list[str] = field(default_factory=list)

    def has(self, table: str, column: str | None = None) -> bool:
        if table not in self.tables:
            return False
        return column is None or column in self.tables[table].columns

    def __getitem__(self, table: str) -> ir.Table:
        return self.tables[table]

    def without(self, *names: str) -> Sources:
        """The same sources without the tables `names` (not listed as missing: they are withheld, not absent)."""
        return Sources(tables={k: v for k, v in self.tables.items() if k not in names}, missing=list(self.missing))

    def for_features(self) -> Sources:
        """The same sources with each table narrowed to the columns features may read (`TableSpec.feature_columns`:
        cs_actions keeps when and in which arm, never the playbook, the action or the owner)."""
        tables = {name: table.select(*[c for c in table.columns if CONTRACT[name].read_by_features(c)])
                  for name, table in self.tables.items()}
        return Sources(tables=tables, missing=list(self.missing))


def load_sources(con: ibis.BaseBackend, sources: SourcesConfig) -> Sources:
    """Resolve every contract table through the mapping into canonical Ibis expressions.

    A table left out of `sources` is looked up under its canonical name; an optional table that is
    absent, or mapped to null, is switched off and listed in `missing`, as is an absent optional column that
    features may read (cs_actions' playbook, action and owner are not listed: no feature reads them).

    Raises:
        ContractError: a required table or column is absent, or a mapped table or column does not exist; the
            message has one line per problem, all of them, and the line to paste to switch off optional tables
            that `sources` names but the warehouse lacks.
    """
    check_sources_config(sources)
    existing = con.list_tables()
    tables: dict[str, ir.Table] = {}
    missing: list[str] = []
    problems: list[str] = []
    absent_optional: list[str] = []
    for name, spec in CONTRACT.items():
        source = sources.get(name, SourceTable(table=name))
        try:
            raw = None if source is None else _open_source(con, name, source, existing, explicit=name in sources)
        except _AbsentOptional as exc:
            problems.append(str(exc))
            absent_optional.append(name)
            continue
        except ContractError as exc:
            problems.append(str(exc))
            continue
        if raw is None:
            if spec.required:
                problems.append(f"table {name}: required by the contract but not found in the warehouse "
                                f"(map it under sources.{name})")
            else:
                missing.append(name)
            continue
        tables[name], absent, wrong = _canonical_columns(name, raw, spec, source, con.name in _CASELESS_COLUMNS)
        missing.extend(need for need in absent if spec.read_by_features(need.split(".")[1]))
        problems.extend(wrong)
    if problems:
        if absent_optional:
            # The lines exactly as they go in params.yaml, indented under `sources:`, ready to paste.
            problems.append(f"to run without {'it' if len(absent_optional) == 1 else 'them'}, put these lines "
                            "under `sources:` in params.yaml (in place of their entries):")
            problems.extend(f"  {name}: null" for name in absent_optional)
        raise ContractError("\n".join(problems))
    return Sources(tables=tables, missing=missing)


class _AbsentOptional(ContractError):
    """An optional table that the mapping names but the warehouse lacks."""


def find_name(wanted: str, names: list[str], what: str, caseless: bool = False) -> str | None:
    """The name in `names` that `wanted` means: itself, else the one that differs only in case (warehouses fold the
    case of unquoted names: `Accounts` is `accounts` to most of them); None when there is none.

    Args:
        caseless: the engine resolves names without regard to case even when quoted (DuckDB's columns, Spark), so
            an exact match among several case variants would still read whichever the engine picks.

    Raises:
        ContractError: several names differ from `wanted` only in case, and none is exactly it, or the engine is
            caseless (`what` says where, e.g. "sources.accounts.table: table").
    """
    if wanted in names and not caseless:
        return wanted
    matches = [n for n in names if n.lower() == wanted.lower()]
    if len(matches) > 1:
        raise ContractError(f"{what} {wanted!r} matches {' and '.join(map(repr, sorted(matches)))}, which differ "
                            "only in case: give the one you mean exactly")
    return matches[0] if matches else None


def _open_source(con, name: str, source: SourceTable, existing: list[str], explicit: bool):
    if source.sql is not None:
        try:
            query = readonly_query(source.sql, con.dialect)
        except UnsafeQuery as exc:
            raise ContractError(f"sources.{name}.sql: {exc}") from None
        try:
            return con.sql(query)
        except Exception as exc:
            raise ContractError(f"sources.{name}.sql: the query does not run: {str(exc).splitlines()[0]}") from None
    wanted = source.table
    if "." not in wanted:
        found = find_name(wanted, existing, f"sources.{name}.table: table")
        if found is None:
            if explicit and CONTRACT[name].required:
                raise ContractError(f"sources.{name}.table: table {wanted!r} does not exist in the warehouse")
            if explicit:
                raise _AbsentOptional(f"sources.{name}.table: table {wanted!r} does not exist in the warehouse")
            return None
        try:
            return con.table(found)
        except Exception as exc:  # e.g. a view over a table that was dropped
            detail = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            raise ContractError(f"sources.{name}.table: table {wanted!r} is listed but cannot be read (is it a view "
                                f"on a table that is gone?): {detail}") from None
    *database, table = wanted.split(".")
    try:
        return con.table(table, database=tuple(database) if len(database) > 1 else database[0])
    except Exception as exc:
        raise ContractError(f"sources.{name}.table: table {wanted!r} cannot be opened: "
                            f"{str(exc).splitlines()[0]}") from None


# Engines whose column names match without regard to case, even quoted.
_CASELESS_COLUMNS = {"duckdb", "pyspark"}


def _canonical_columns(name: str, raw: ir.Table, spec: TableSpec, source: SourceTable, caseless: bool):
    """(the canonical selection, absent optional columns, problems with required or mapped columns)."""
    selected, absent, problems = {}, [], []
    for column in spec.columns:
        mapped = source.columns.get(column.name)
        try:
            actual = find_name(mapped or column.name, list(raw.columns),
                               f"sources.{name}.columns.{column.name}: column", caseless)
        except ContractError as exc:
            problems.append(str(exc))
            continue
        if actual is None:
            if mapped is not None:
                problems.append(f"table {name}: column {column.name} is mapped to {mapped!r}, "
                                f"which does not exist (columns: {', '.join(raw.columns)})")
            elif column.required:
                problems.append(f"table {name}: required column {column.name} not found "
                                f"(map it under sources.{name}.columns.{column.name})")
            else:
                absent.append(f"{name}.{column.name}")
            continue
        selected[column.name] = _cast(raw[actual], column.dtype)
    if spec.one_of and not set(spec.one_of) & set(selected):
        problems.append(f"table {name}: needs a column {' or '.join(spec.one_of)} (map one under "
                        + " or ".join(f"sources.{name}.columns.{c}" for c in spec.one_of) + ")")
    return raw.select(**selected), absent, problems


def _cast(value: ir.Value, dtype: str) -> ir.Value:
    target = ibis.dtype(dtype)
    if value.type().copy(nullable=True) == target or (target.is_timestamp() and value.type().is_timestamp()):
        return value
    return value.cast(target)
