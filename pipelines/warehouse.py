"""Opening the warehouse from its URL, resolving its sources for a stage, and loading frames into it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlglot as sg
import sqlglot.expressions as sge

from features.snapshots import find_data_bounds
from features.sources import Sources, load_sources
from pipelines.progress import Progress
from pipelines.urls import password_forms, redact

if TYPE_CHECKING:
    from pipelines.config import Params

class WarehouseError(RuntimeError):
    """The warehouse cannot be opened or written."""


# Engines the write-back cannot write to yet, by URL scheme: it stages rows in temporary tables and replaces a table's
# rows in one transaction, and Ibis's PySpark backend has neither (a write stopped on NotImplementedError after all
# the work).
_UNWRITABLE = {"pyspark": "Spark"}


def check_writable(params: Params, writes: str) -> None:
    """Refuse, before any work, a stage that writes `writes` (its tables) to an engine the write-back cannot write.

    Raises:
        WarehouseError: the warehouse is such an engine.
    """
    scheme = urlsplit(params.warehouse.url).scheme.lower()
    if scheme in _UNWRITABLE:
        raise WarehouseError(f"warehouse.url {scheme}://: this command writes {writes} to the warehouse, and writing "
                             f"to {_UNWRITABLE[scheme]} is not supported yet (no temporary tables or transactions to "
                             f"replace rows in); validate and train run on {_UNWRITABLE[scheme]}")


def count_of(value) -> int:
    """A count the warehouse returned, as an int. A SUM over no rows (an empty table, an as-of without labels) is
    SQL NULL, which DuckDB gives as None and Spark as NaN: that is 0."""
    return 0 if pd.isna(value) else int(value)


def naive_utc(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its time-zone-aware columns in UTC without the zone, as the pipeline compares every time: a
    warehouse may keep `timestamptz` columns, which pandas refuses to compare with the plain as-of dates."""
    aware = [c for c in frame.columns if isinstance(frame[c].dtype, pd.DatetimeTZDtype)]
    return frame.assign(**{c: frame[c].dt.tz_convert("UTC").dt.tz_localize(None) for c in aware})


def redact_url(url: str, text: str | None = None) -> str:
    """The URL (or a message about it) with its password and secret query values replaced by ***, safe to print."""
    return redact(url if text is None else text, password_forms(url))


def connect_warehouse(url: str, threads: int, *, read_only: bool = False, create: bool = False) -> ibis.BaseBackend:
    """Open an Ibis backend from a connection URL (`duckdb://path.duckdb`, `postgres://user@host/db`, ...).

    DuckDB: the file must exist unless `create` (only `churn simulate` creates one; a mistyped path is an error,
    not a new empty warehouse); `read_only` opens it so nothing can be written; `threads` worker threads; and no
    access to other files (no COPY TO, ATTACH or read_csv through this connection).

    Raises:
        WarehouseError: the URL does not parse, the DuckDB file is missing, or the engine refuses the connection.
    """
    if url.startswith("duckdb://"):
        return _connect_duckdb(url.removeprefix("duckdb://") or ":memory:", threads, read_only, create)
    _check_parses(url)
    try:
        return prepare_backend(ibis.connect(url))
    except Exception as exc:
        raise WarehouseError(f"warehouse.url: cannot open {redact_url(url)}: "
                             f"{redact_url(url, str(exc)).splitlines()[0]}") from None


def _connect_duckdb(path: str, threads: int, read_only: bool, create: bool) -> ibis.BaseBackend:
    if path != ":memory:" and not Path(path).is_file():
        if not create:
            raise WarehouseError(f"warehouse.url: no DuckDB file at {Path(path).resolve()} (fix the path, or run "
                                 "`churn simulate` to create the demo warehouse there)")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        con = ibis.duckdb.connect(path, threads=threads, read_only=read_only and path != ":memory:")
    except Exception as exc:
        raise WarehouseError(f"warehouse.url: cannot open duckdb://{path}: {str(exc).splitlines()[0]}") from None
    con.raw_sql("SET enable_external_access = false")
    return con


def _check_parses(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise WarehouseError(f"warehouse.url: {redact_url(url)} does not parse as a URL; percent-encode special "
                             "characters in the user name and password (@ as %40, / as %2F, : as %3A, # as %23, "
                             "? as %3F, % as %25, + as %2B)") from None


def prepare_backend(con: ibis.BaseBackend) -> ibis.BaseBackend:
    """The same connection, with the workarounds its Ibis backend needs to run this pipeline."""
    if con.name == "pyspark":
        _register_memtables_before_caching(con)
        # Ibis stops the Spark session on disconnect, but the session belongs to the process (a local session that
        # holds the tables, spark-submit, a Databricks cluster), not to one stage: the next stage needs it again.
        con.disconnect = lambda: None
    return con


def _register_memtables_before_caching(con: ibis.BaseBackend) -> None:
    # Ibis 12's PySpark backend caches an expression (Table.cache) without first registering the in-memory tables
    # it reads, such as the as-of grid, so Spark cannot find them. Register them as execute() would.
    create_cached = con._create_cached_table

    def create_registered(name, expr):
        con._run_pre_execute_hooks(expr)
        return create_cached(name, expr)

    con._create_cached_table = create_registered


def write_tables(con: ibis.BaseBackend, frames: dict[str, pd.DataFrame]) -> None:
    """Create or replace one warehouse table per frame.

    PostgreSQL tables are filled with COPY: Ibis would insert a frame row by row (about 25 k rows/s here).
    """
    for name, frame in frames.items():
        if con.name == "postgres":
            _copy_to_postgres(con, name, frame)
        else:
            con.create_table(name, frame, overwrite=True)


def _copy_to_postgres(con: ibis.BaseBackend, name: str, frame: pd.DataFrame, batch_rows: int = 500_000) -> None:
    """Replace table `name` with the frame in one transaction, streaming CSV batches through COPY.

    Arrow's CSV writer quotes every string and leaves nulls unquoted and empty, which is how PostgreSQL's CSV
    format tells '' from NULL; floats are written in their shortest exact form, so values survive bit for bit.
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    schema = ibis.Schema.from_pyarrow(table.schema)
    target = sg.table(name, quoted=True)
    create = sge.Create(kind="TABLE", this=sge.Schema(this=target,
                                                      expressions=schema.to_sqlglot_column_defs(con.dialect)))
    columns = ", ".join(sg.to_identifier(c, quoted=True).sql(con.dialect) for c in schema.names)
    options = pa_csv.WriteOptions(include_header=False)
    with con.begin() as cursor:
        cursor.execute(sge.Drop(kind="TABLE", this=target, exists=True).sql(con.dialect))
        cursor.execute(create.sql(con.dialect))
        with cursor.copy(f"COPY {target.sql(con.dialect)} ({columns}) FROM STDIN (FORMAT csv)") as copy:
            for batch in table.to_batches(max_chunksize=batch_rows):
                buffer = io.BytesIO()
                pa_csv.write_csv(pa.Table.from_batches([batch], schema=table.schema), buffer, options)
                copy.write(buffer.getbuffer())


def warehouse_location(url: str) -> str:
    """Where the warehouse is, for people: a file path for DuckDB, else the redacted URL."""
    if url.startswith("duckdb://"):
        return str(Path(url.removeprefix("duckdb://")).resolve())
    return redact_url(url)


@contextmanager
def open_writer(params: Params, writes: str) -> Iterator[ibis.BaseBackend]:
    """A connection for a stage's write-back only, opened after its reading connection closed (DuckDB allows one
    configuration per file in a process) and closed when the block ends.

    Stages call `check_writable` with the same `writes` before their work, so that an engine the write-back cannot
    write is refused at once; checking again here keeps a stage that forgot it from writing half its tables.

    Raises:
        WarehouseError: the warehouse is an engine the write-back cannot write (`check_writable`).
    """
    check_writable(params, writes)
    con = connect_warehouse(params.warehouse.url, params.warehouse.threads)
    try:
        yield con
    finally:
        con.disconnect()


@dataclass
class Warehouse:
    """An open warehouse, its sources resolved through the mapping, and the span its data covers."""

    con: ibis.BaseBackend
    sources: Sources
    data_start: datetime
    data_end: datetime


@contextmanager
def open_warehouse(params: Params, progress: Progress, *, read_only: bool = False) -> Iterator[Warehouse]:
    """Connect, resolve the source mapping (failing on a missing required table or column), find the data span;
    disconnect when the block ends. Stages that write nothing open it `read_only` (DuckDB refuses every write)."""
    con = connect_warehouse(params.warehouse.url, params.warehouse.threads, read_only=read_only)
    try:
        with progress.stage("warehouse") as info:
            sources = load_sources(con, params.sources)
            start, end = find_data_bounds(sources, params.snapshots)
            info["detail"] = f"{redact_url(params.warehouse.url)}  data {start:%Y-%m-%d}..{end:%Y-%m-%d}"
        if sources.missing:
            progress.note(f"not in the warehouse (features needing them are off): {', '.join(sources.missing)}")
        yield Warehouse(con=con, sources=sources, data_start=start, data_end=end)
    finally:
        con.disconnect()
