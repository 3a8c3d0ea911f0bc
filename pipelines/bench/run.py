"""`churn bench`: how fast the pipeline is on scaled synthetic warehouses, beside what a team would write in pandas.

For each scale point (smallest first, the main one last) the warehouse is generated once and cached; the
project's feature build runs on DuckDB and the notebook-style pandas engagement features run on the same data,
each in a fresh process so each one's peak RSS is its own, and their shared features must agree exactly. On the
main warehouse the model is trained and a scoring population is scored with drivers and written back. One table
is printed and `reports/bench.json` written, with machine info and each target's PASS/MISS.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pipelines.bench.config import BenchConfig
from pipelines.bench.pandas_notebook import check_agreement, compared_features
from pipelines.bench.process import run_step
from pipelines.bench.warehouse import WarehouseSpec, generate_bench_warehouse, read_meta
from pipelines.config import Params
from pipelines.progress import Progress

GB = 1e9

__all__ = ["BenchConfig", "run_bench"]


def machine_info(params: Params) -> dict:
    """Cores, memory, CPU, library versions, threads used and the date of the run."""
    import duckdb
    import ibis
    import lightgbm
    import numpy

    from pipelines.provenance import git_commit

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {
        "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)), "cpu": cpu,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB, 1),
        "platform": platform.platform(), "python": platform.python_version(), "duckdb": duckdb.__version__,
        "lightgbm": lightgbm.__version__, "pandas": pd.__version__, "numpy": numpy.__version__,
        "ibis": ibis.__version__, "duckdb_threads": params.warehouse.threads,
        "lightgbm_threads": params.model.num_threads, "date": datetime.now().isoformat(timespec="seconds"),
        "git_commit": git_commit(), "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _spec(config: BenchConfig, accounts: int) -> WarehouseSpec:
    return WarehouseSpec(accounts=accounts, months=config.months, seed=config.seed, start=config.start,
                         chunk_accounts=config.chunk_accounts)


def ensure_warehouse(params: Params, config: BenchConfig, accounts: int, progress: Progress) -> dict:
    """The cached warehouse for `accounts` (generated in a child process when missing or stale)."""
    spec = _spec(config, accounts)
    path = spec.path(config.cache_dir).resolve()
    with progress.stage(f"warehouse {accounts:,} accounts") as info:
        meta = read_meta(path)
        cached = meta is not None and meta.get("key") == spec.key()
        if not cached:
            step = run_step(f"{generate_bench_warehouse.__module__}:generate_bench_warehouse", spec, path,
                            params.warehouse.threads)
            meta = step.value | {"generate_peak_rss_gb": round(step.peak_rss_bytes / GB, 2)}
            path.with_suffix(".json").write_text(json.dumps(meta, indent=2))
        info["detail"] = (f"{meta['rows']['events']:,} events, "
                          + ("cached" if cached else f"generated in {meta['chunks']} chunk(s), "
                                                      f"peak {meta['generate_peak_rss_gb']:.2f} GB"))
    return {"accounts": accounts, "events": meta["rows"]["events"], "path": str(path), "cached": cached,
            "generated_at": meta["generated_at"], "generate_seconds": meta["generate_seconds"],
            "chunks": meta["chunks"], "generate_peak_rss_gb": meta.get("generate_peak_rss_gb")}


def _duckdb_build(params: Params, config: BenchConfig, warehouse: dict, frame_path: Path,
                  progress: Progress) -> dict:
    with progress.stage(f"features duckdb {warehouse['events'] / 1e6:.1f} M") as info:
        step = run_step("pipelines.bench.steps:run_feature_build", params, Path(warehouse["path"]),
                        config.as_of_dates, frame_path)
        built = step.value
        info["detail"] = (f"{built['rows']:,} rows × {len(built['features'])} features, "
                          f"{warehouse['events'] / built['seconds']:,.0f} events/s, "
                          f"peak {step.peak_rss_bytes / GB:.2f} GB")
    return {**built, "peak_rss_gb": step.peak_rss_bytes / GB}


def _pandas_build(params: Params, config: BenchConfig, warehouse: dict, dates: list,
                  progress: Progress) -> dict:
    with progress.stage(f"features pandas {warehouse['events'] / 1e6:.1f} M") as info:
        step = run_step("pipelines.bench.pandas_notebook:run_pandas_features", Path(warehouse["path"]), dates,
                        list(params.features.windows), params.snapshots.include_trials, params.warehouse.threads,
                        memory_limit_bytes=int(config.pandas_memory_limit_gb * GB))
        if step.killed:
            info["detail"] = f"did not fit: passed {config.pandas_memory_limit_gb:g} GB after {step.seconds:.0f} s"
            return {"fits": False, "peak_rss_gb": step.peak_rss_bytes / GB, "seconds_until_killed": step.seconds}
        result = step.value
        info["detail"] = (f"load {result['load_seconds']:.1f} s + groupby {result['compute_seconds']:.1f} s, "
                          f"peak {step.peak_rss_bytes / GB:.2f} GB")
    return {"fits": True, **result, "peak_rss_gb": step.peak_rss_bytes / GB}


def measure_scale(params: Params, config: BenchConfig, warehouse: dict, work: Path, progress: Progress) -> dict:
    """DuckDB feature build and pandas engagement features on one warehouse, checked to agree."""
    frame_path = work / f"features_{warehouse['accounts']}.parquet"
    duck = _duckdb_build(params, config, warehouse, frame_path, progress)
    notebook = _pandas_build(params, config, warehouse, duck["as_of_dates"], progress)
    row = {"accounts": warehouse["accounts"], "events": warehouse["events"], "as_of_dates": len(duck["as_of_dates"]),
           "rows": duck["rows"], "features": len(duck["features"]), "duckdb_seconds": duck["seconds"],
           "duckdb_events_per_second": warehouse["events"] / duck["seconds"], "duckdb_peak_rss_gb": duck["peak_rss_gb"],
           "duckdb_stage_seconds": duck["stages"], "pandas_fits": notebook["fits"],
           "pandas_peak_rss_gb": notebook["peak_rss_gb"], "frame_path": str(frame_path),
           "feature_names": duck["features"]}
    if not notebook["fits"]:
        row |= {"pandas_memory_limit_gb": config.pandas_memory_limit_gb,
                "pandas_killed_after_seconds": notebook["seconds_until_killed"]}
    if notebook["fits"]:
        with progress.stage("agreement") as info:
            compared = compared_features(list(params.features.windows))
            agreed = check_agreement(pd.read_parquet(frame_path, columns=["account_id", "as_of", *compared]),
                                     notebook["frame"], compared)
            info["detail"] = f"{len(compared)} features × {agreed['rows']:,} rows identical"
        row |= {"pandas_seconds": notebook["seconds"], "pandas_load_seconds": notebook["load_seconds"],
                "pandas_compute_seconds": notebook["compute_seconds"],
                "speedup": notebook["seconds"] / duck["seconds"], "agreement_rows": agreed["rows"]}
    return row


def measure_training(params: Params, main: dict, work: Path, progress: Progress) -> dict:
    """Train on the main warehouse's feature frame in a fresh process."""
    with progress.stage("training") as info:
        step = run_step("pipelines.bench.steps:run_training", params, Path(main["frame_path"]),
                        main["feature_names"], work / "model.pkl")
        trained = step.value
        info["detail"] = (f"{trained['rows']:,} rows × {trained['features']} features, {trained['trees']} trees, "
                          f"ROC-AUC {trained['roc_auc']:.3f}")
    return {**trained, "peak_rss_gb": step.peak_rss_bytes / GB}


def measure_scoring(params: Params, config: BenchConfig, main: dict, work: Path, progress: Progress) -> dict:
    """Score the scoring population with drivers and write it back, in a fresh process."""
    with progress.stage(f"scoring {config.scoring_accounts:,}") as info:
        step = run_step("pipelines.bench.steps:run_scoring", params, Path(main["frame_path"]), work / "model.pkl",
                        config.scoring_accounts, work / "scores.duckdb")
        scored = step.value
        info["detail"] = (f"{scored['accounts']:,} accounts, {scored['drivers']:,} drivers, "
                          f"{scored['accounts_per_second']:,.0f} accounts/s")
    return {**scored, "peak_rss_gb": step.peak_rss_bytes / GB}


def _target(name: str, goal: str, value: float | None, met: bool, note: str = "") -> dict:
    return {"target": name, "goal": goal, "value": value, "status": "PASS" if met else "MISS", "note": note}


def _speedup_target(config: BenchConfig, growth: list[dict], note: str) -> dict:
    name, goal = "feature build speed-up over pandas", f">= {config.target_speedup:g}x"
    main, measured = growth[-1], [row for row in growth if row["pandas_fits"]]
    if main["pandas_fits"]:
        return _target(name, goal, main["speedup"], main["speedup"] >= config.target_speedup, note)
    if not measured:
        return _target(name, goal, None, False, f"pandas fit in {config.pandas_memory_limit_gb:g} GB at no scale point")
    # pandas cannot run at the main scale here; judge on the largest scale it could run at, and say so.
    largest = measured[-1]
    return _target(name, goal, largest["speedup"], largest["speedup"] >= config.target_speedup,
                   f"pandas did not fit in {config.pandas_memory_limit_gb:g} GB at {main['events']:,} events; "
                   f"ratio at {largest['events']:,} events, the largest where it ran")


def evaluate_targets(config: BenchConfig, growth: list[dict], scoring: dict) -> list[dict]:
    """Each target with its measured value and PASS/MISS; a note says when the bench ran below target scale."""
    main = growth[-1]
    below = main["events"] < config.target_events
    note = (f"measured at {main['events']:,} events, below the {config.target_events:,} the target is set at"
            if below else "")
    rss = main["duckdb_peak_rss_gb"]
    return [
        _speedup_target(config, growth, note),
        _target("feature build peak RSS", f"< {config.target_feature_rss_gb:g} GB", rss,
                rss < config.target_feature_rss_gb, note),
        _target(f"score + drivers + write {scoring['accounts']:,} accounts", f"< {config.target_scoring_seconds:g} s",
                scoring["seconds"], scoring["seconds"] < config.target_scoring_seconds,
                "" if scoring["accounts"] >= 100_000 else "scoring population below 100,000 accounts"),
    ]


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{unit}"


def render_table(result: dict) -> Table:
    """The benchmark as one table: feature build per scale point, training, scoring, then the targets."""
    m = result["machine"]
    table = Table(title=f"churn bench: {m['cores']} cores, {m['memory_gb']:g} GB, DuckDB {m['duckdb']} "
                        f"({m['duckdb_threads']} threads), LightGBM {m['lightgbm']} ({m['lightgbm_threads']} thread), "
                        f"Python {m['python']}, load avg {m['load_average'][0]:.1f}", title_justify="left")
    for column in ("measurement", "size", "seconds", "rate", "peak RSS", "pandas s", "pandas RSS", "DuckDB ×"):
        table.add_column(column, justify="left" if column in ("measurement", "size") else "right", no_wrap=True)
    for row in result["growth"]:
        pandas_s = _fmt(row.get("pandas_seconds"), ".1f") if row["pandas_fits"] else "did not fit"
        pandas_rss = (f"{row['pandas_peak_rss_gb']:.2f} GB" if row["pandas_fits"]
                      else f"> {row['pandas_memory_limit_gb']:g} GB")
        table.add_row(f"feature build ({row['as_of_dates']} as-ofs)",
                      f"{row['events'] / 1e6:.1f} M events, {row['accounts']:,} accounts",
                      f"{row['duckdb_seconds']:.1f}", f"{row['duckdb_events_per_second'] / 1e6:.2f} M ev/s",
                      f"{row['duckdb_peak_rss_gb']:.2f} GB", pandas_s, pandas_rss,
                      _fmt(row.get("speedup"), ".1f", "×"))
    t, s = result["training"], result["scoring"]
    table.add_row("training (run_experiment)", f"{t['rows']:,} rows × {t['features']} features", f"{t['seconds']:.1f}",
                  f"{t['trees']} trees", f"{t['peak_rss_gb']:.2f} GB", "", "", "")
    table.add_row("score + drivers + write", f"{s['accounts']:,} accounts", f"{s['seconds']:.1f}",
                  f"{s['accounts_per_second']:,.0f} acc/s", f"{s['peak_rss_gb']:.2f} GB", "", "", "")
    table.add_section()
    for target in result["targets"]:
        color = "green" if target["status"] == "PASS" else "red"
        table.add_row(f"target: {target['target']}", target["goal"], _fmt(target["value"], ".2f"),
                      Text(target["status"], style=color), "", "", "", "")
    return table


def _print_wide(progress: Progress, table: Table) -> None:
    console = progress.console
    if not console.is_terminal:  # a pipe or file gets 80 columns by default: too narrow for the table
        console = Console(file=console.file, width=170, highlight=False, soft_wrap=True)
    console.print(table)


def run_bench(params: Params, config: BenchConfig, progress: Progress) -> dict:
    """Generate (or reuse) the scaled warehouses, measure feature build, training and scoring, print one table and
    write `config.output` (JSON) with machine info and each target's PASS/MISS.

    Returns:
        The result written to JSON: machine, config, warehouses, growth (one row per scale point), feature_build
        (the main scale point), agreement, training, scoring, targets, all_targets_met.

    Raises:
        EngagementMismatch: the pandas and DuckDB engagement features differ on any compared value.
    """
    machine = machine_info(params)  # load average and date as the run starts
    work = (config.cache_dir / "run").resolve()
    work.mkdir(parents=True, exist_ok=True)
    warehouses = [ensure_warehouse(params, config, n, progress) for n in config.scale_points]
    growth = [measure_scale(params, config, w, work, progress) for w in warehouses]
    main = growth[-1]
    training = measure_training(params, main, work, progress)
    scoring = measure_scoring(params, config, main, work, progress)
    targets = evaluate_targets(config, growth, scoring)
    result = {
        "machine": machine | {"load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "config": config.model_dump(mode="json"), "warehouses": warehouses,
        "growth": [{k: v for k, v in row.items() if k not in ("feature_names", "frame_path")} for row in growth],
        # check_agreement raises on any difference, so every scale point that was checked agreed exactly;
        # "identical" says whether any was checked at all (pandas may fit at none).
        "agreement": {"features": compared_features(list(params.features.windows)),
                      "checked_at_events": [row["events"] for row in growth if row["pandas_fits"]],
                      "rows": sum(row.get("agreement_rows", 0) for row in growth),
                      "identical": any(row["pandas_fits"] for row in growth)},
        "training": training, "scoring": scoring, "targets": targets,
        "all_targets_met": all(t["status"] == "PASS" for t in targets),
    }
    result["feature_build"] = result["growth"][-1]
    config.output.parent.mkdir(parents=True, exist_ok=True)
    config.output.write_text(json.dumps(result, indent=2, default=str))
    _print_wide(progress, render_table(result))
    for target in targets:
        if target["status"] == "MISS":
            progress.note(f"MISS {target['target']}: {_fmt(target['value'], '.2f')} against {target['goal']}")
        if target["note"]:
            progress.note(f"{target['target']}: {target['note']}")
    progress.note(f"wrote {config.output}")
    return result
