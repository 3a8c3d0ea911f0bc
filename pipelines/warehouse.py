"""Opening the warehouse from its URL, resolving its sources for a stage, and loading frames into it."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlglot as sg
import sqlglot.expressions as sge

from features.snapshots import find_data_bounds
from features.sources import Sources, load_sources
from pipelines.progress import Progress

if TYPE_CHECKING:
    from pipelines.config import Params

_CREDENTIALS = re.compile(r"(://[^:/@]+):[^@]*@")


class WarehouseError(RuntimeError):
    """The warehouse cannot be opened or written."""


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, safe to print."""
    return _CREDENTIALS.sub(r"\1:***@", url)


def connect_warehouse(url: str, threads: int) -> ibis.BaseBackend:
    """Open an Ibis backend from a connection URL (`duckdb://path.duckdb`, `postgres://user@host/db`, ...).

    DuckDB files get their folder created and `threads` worker threads.
    """
    try:
        if url.startswith("duckdb://"):
            path = url.removeprefix("duckdb://") or ":memory:"
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            return ibis.duckdb.connect(path, threads=threads)
        return prepare_backend(ibis.connect(url))
    except Exception as exc:
        raise WarehouseError(f"warehouse.url: cannot open {redact_url(url)}: "
                             f"{redact_url(str(exc)).splitlines()[0]}") from None


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


@dataclass
class Warehouse:
    """An open warehouse, its sources resolved through the mapping, and the span its data covers."""

    con: ibis.BaseBackend
    sources: Sources
    data_start: datetime
    data_end: datetime


@contextmanager
def open_warehouse(params: Params, progress: Progress) -> Iterator[Warehouse]:
    """Connect, resolve the source mapping (failing on a missing required table or column), find the data span;
    disconnect when the block ends."""
    con = connect_warehouse(params.warehouse.url, params.warehouse.threads)
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
