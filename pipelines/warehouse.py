"""Opening the warehouse from its URL and loading frames into it."""

from __future__ import annotations

import re
from pathlib import Path

import ibis
import pandas as pd

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
        return ibis.connect(url)
    except Exception as exc:
        raise WarehouseError(f"warehouse.url: cannot open {redact_url(url)}: "
                             f"{redact_url(str(exc)).splitlines()[0]}") from None


def write_tables(con: ibis.BaseBackend, frames: dict[str, pd.DataFrame]) -> None:
    """Create or replace one warehouse table per frame."""
    for name, frame in frames.items():
        con.create_table(name, frame, overwrite=True)
