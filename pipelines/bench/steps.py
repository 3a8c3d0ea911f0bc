"""The measured benchmark steps, each run in its own process: the warehouse feature build, training, and
scoring with drivers and write-back. They talk to each other through files in the bench's work folder."""

from __future__ import annotations

import json
import pickle
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from features.vocabulary import EventVocabulary
from pipelines.config import Params
from pipelines.progress import Progress


def bench_params(params: Params, warehouse: Path) -> Params:
    """The params pointed at a synthetic warehouse: canonical source names, the as-of grid from its data span."""
    return params.model_copy(update={
        "warehouse": params.warehouse.model_copy(update={"url": f"duckdb://{warehouse}"}),
        "sources": {},
        "snapshots": params.snapshots.model_copy(update={"start": None, "end": None, "data_end": None}),
    })


def _vocabulary_path(frame_path: Path) -> Path:
    """Where the feature step keeps the event names it picked, for the training step to record in the model."""
    return frame_path.with_name(frame_path.stem + "_vocabulary.json")


def run_feature_build(params: Params, warehouse: Path, as_of_count: int, frame_path: Path) -> dict:
    """Build the feature frame for the newest `as_of_count` monthly as-of dates with the project's own pipeline
    (`build_feature_frame`), timed from opening the warehouse; save the frame to `frame_path` (a bench step)."""
    from pipelines.features_run import build_feature_frame, grid_dates
    from pipelines.warehouse import open_warehouse

    progress = Progress(Console(quiet=True))
    params = bench_params(params, warehouse)
    start = time.perf_counter()
    with open_warehouse(params, progress) as wh:
        dates = grid_dates(params, wh)[-as_of_count:]
        frame, feature_set = build_feature_frame(params, wh, dates, progress)
    seconds = time.perf_counter() - start
    frame.to_parquet(frame_path)
    _vocabulary_path(frame_path).write_text(json.dumps(feature_set.vocabulary.to_dict()))
    return {"seconds": seconds, "stages": dict(progress.timings), "rows": len(frame),
            "features": feature_set.names, "as_of_dates": dates}


def run_training(params: Params, frame_path: Path, features: list[str], model_path: Path) -> dict:
    """Split the feature frame out of time and run the experiment (LightGBM + baselines); save the model."""
    from pipelines.features_run import catalog_specs
    from training.dataset import split_out_of_time
    from training.experiment import MODEL, run_experiment

    frame = pd.read_parquet(frame_path)
    split = split_out_of_time(frame, params.model.validation_snapshots, params.model.calibration_snapshots)
    start = time.perf_counter()
    vocabulary = EventVocabulary.from_dict(json.loads(_vocabulary_path(frame_path).read_text()))
    experiment = run_experiment(split, features, params.model, params.evaluation, catalog_specs(params, vocabulary))
    seconds = time.perf_counter() - start
    experiment.model.vocabulary = vocabulary.to_dict()
    model_path.write_bytes(pickle.dumps(experiment.model))
    calib = 0 if split.calib is None else len(split.calib)
    return {"seconds": seconds, "rows": len(split.train) + calib + len(split.valid), "train_rows": len(split.train),
            "calibration_rows": calib, "validation_rows": len(split.valid), "features": len(features),
            "trees": experiment.model.best_iteration, "roc_auc": experiment.metrics[MODEL]["roc_auc"]}


def build_scoring_population(frame: pd.DataFrame, features: list[str], accounts: int, seed: int) -> pd.DataFrame:
    """`accounts` rows of the newest as-of: its active accounts, then copies of them under new ids with every
    numeric feature jittered (x lognormal(0, 0.1)) until there are enough."""
    latest = frame[frame["as_of"] == frame["as_of"].max()].reset_index(drop=True)
    numeric = [f for f in features if pd.api.types.is_numeric_dtype(latest[f])]
    rng = np.random.default_rng(seed)
    parts = [latest]
    for copy in range(1, -(-accounts // len(latest))):
        part = latest.copy()
        part["account_id"] = part["account_id"] + f"-r{copy:02d}"
        part[numeric] = part[numeric].to_numpy(dtype="float64") * rng.lognormal(0.0, 0.1, (len(part), len(numeric)))
        parts.append(part)
    return pd.concat(parts, ignore_index=True).head(accounts)


def run_scoring(params: Params, frame_path: Path, model_path: Path, accounts: int, scores_path: Path) -> dict:
    """Score `accounts` accounts with SHAP drivers and reasons, and write them to a fresh DuckDB file (a bench step).

    Timed: predict + explain + reasons (`score_accounts`) and the history columns, and the atomic write-back
    (`write_scores`).
    """
    from pipelines.features_run import catalog_specs
    from pipelines.warehouse import connect_warehouse
    from serving.experiments import assignment_rows
    from serving.history import chain_history
    from serving.score import ScoredModel, ScoringContext, score_accounts
    from serving.writeback import write_scores

    model = pickle.loads(model_path.read_bytes())
    frame = pd.read_parquet(frame_path)
    population = build_scoring_population(frame, model.features, accounts, params.model.seed)
    as_of = population["as_of"].max().date()
    specs = catalog_specs(params, EventVocabulary.of_model(model.vocabulary, params.features))
    scores_path.unlink(missing_ok=True)
    start = time.perf_counter()
    scores, drivers = score_accounts(ScoredModel(model, "bench", "0"), population,
                                     ScoringContext(specs, params.scoring, health=model.health),
                                     scored_at=datetime.now().replace(microsecond=0))
    scores = chain_history(scores, None)  # a fresh file: no earlier scoring, as for a first `churn score`
    scored = time.perf_counter()
    con = connect_warehouse(f"duckdb://{scores_path}", params.warehouse.threads, create=True)
    try:
        # As `churn score` publishes: the experiment's arms (when switched on) in the same transaction.
        assignments = (assignment_rows(scores, scores["scored_at"].iloc[0]) if params.scoring.experiments.enabled
                       else None)
        write_scores(con, scores, drivers, [as_of], assignments=assignments)
    finally:
        con.disconnect()
    done = time.perf_counter()
    return {"accounts": len(scores), "drivers": len(drivers), "distinct_accounts": int((frame["as_of"] ==
            frame["as_of"].max()).sum()), "score_seconds": scored - start, "write_seconds": done - scored,
            "seconds": done - start, "accounts_per_second": len(scores) / (done - start)}
