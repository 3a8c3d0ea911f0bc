"""Scaled synthetic warehouses for the benchmark, generated once into cached DuckDB files.

A warehouse is keyed on its size, seed and start plus a hash of the generator's source (`pipelines/synthetic/`),
so a change to the generator (or the config) makes a new one while an unchanged one is reused. The generator
builds its frames in memory; big warehouses are generated in account chunks (each with its own seed derived from
the main one) and appended, so memory stays bounded by the chunk size. Ids get a chunk prefix so chunks never
collide.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np

from pipelines import synthetic

ID_COLUMNS = ("account_id", "user_id", "session_id", "ticket_id", "response_id")
_GENERATOR_MEMORY = "4GB"  # DuckDB's limit while appending chunks and sorting events by time


@dataclass(frozen=True)
class WarehouseSpec:
    """One scaled warehouse: its size, seed, history and chunking."""

    accounts: int
    months: int
    seed: int
    start: date
    chunk_accounts: int

    def key(self) -> str:
        """Hash of this spec and the generator's source: equal keys mean an identical warehouse."""
        sources = sorted(Path(synthetic.__file__).parent.glob("*.py"))
        code = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()
        payload = json.dumps({**asdict(self), "start": self.start.isoformat(), "generator": code}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def path(self, cache_dir: Path) -> Path:
        """The cached DuckDB file of this spec."""
        return cache_dir / f"warehouse_{self.accounts}a_{self.months}m_{self.key()}.duckdb"


def chunk_plan(spec: WarehouseSpec) -> list[tuple[int, int]]:
    """(accounts, seed) per chunk: equal-sized chunks; one chunk keeps the main seed (as `churn simulate` does)."""
    count = max(1, -(-spec.accounts // spec.chunk_accounts))
    sizes = np.full(count, spec.accounts // count) + (np.arange(count) < spec.accounts % count)
    if count == 1:
        return [(spec.accounts, spec.seed)]
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(spec.seed).spawn(count)]
    return list(zip(sizes.tolist(), seeds, strict=True))


def read_meta(path: Path) -> dict | None:
    """The sidecar of a cached warehouse (what generated it and how big it is), or None."""
    meta = path.with_suffix(".json")
    return json.loads(meta.read_text()) if meta.exists() and path.exists() else None


def _select(columns: list[str], chunk: int | None) -> str:
    """SELECT list that prefixes ids with the chunk number: A00042 becomes A03-00042 in chunk 3."""
    def one(column: str) -> str:
        if chunk is None or column not in ID_COLUMNS:
            return f'"{column}"'
        return f"substr(\"{column}\", 1, 1) || '{chunk:02d}-' || substr(\"{column}\", 2) AS \"{column}\""
    return ", ".join(one(c) for c in columns)


def _append_chunk(con, frames: dict, chunk: int | None, first: bool) -> None:
    for name, frame in frames.items():
        target = "_events_unsorted" if name == "events" else name
        con.register("_chunk", frame)
        select = f"SELECT {_select(list(frame.columns), chunk)} FROM _chunk"
        con.execute(f"CREATE TABLE {target} AS {select}" if first else f"INSERT INTO {target} {select}")
        con.unregister("_chunk")


def generate_bench_warehouse(spec: WarehouseSpec, path: Path, threads: int) -> dict:
    """Generate the warehouse of `spec` into the DuckDB file `path` (written beside it, then moved into place).

    Returns:
        The sidecar written next to it: spec, key, row counts, generation seconds and time.
    """
    import duckdb

    from pipelines.synthetic.config import SimulationConfig
    from pipelines.synthetic.generate import generate_warehouse

    start = time.perf_counter()
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    path.with_suffix(".json").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    plan = chunk_plan(spec)
    with duckdb.connect(str(partial)) as con:
        con.execute(f"SET threads = {threads}; SET memory_limit = '{_GENERATOR_MEMORY}'")
        for index, (accounts, seed) in enumerate(plan):
            frames = generate_warehouse(SimulationConfig(accounts=accounts, months=spec.months, seed=seed,
                                                         start=spec.start))
            _append_chunk(con, frames, index if len(plan) > 1 else None, first=index == 0)
            del frames
        # One generator call returns events in time order; keep the appended chunks that way too.
        con.execute("CREATE TABLE events AS SELECT * FROM _events_unsorted ORDER BY event_at")
        con.execute("DROP TABLE _events_unsorted")
        con.execute("CHECKPOINT")
        counts = {t: con.sql(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                  for t in ("accounts", "events", "subscriptions", "users", "tickets", "surveys", "milestones")}
    os.replace(partial, path)
    meta = {"spec": {**asdict(spec), "start": spec.start.isoformat()}, "key": spec.key(), "rows": counts,
            "chunks": len(plan), "generate_seconds": round(time.perf_counter() - start, 2),
            "generated_at": datetime.now().isoformat(timespec="seconds")}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return meta
