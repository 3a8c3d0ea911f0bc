"""The score stage: features as of a date, the champion's probabilities and drivers, atomic write-back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import ibis
import pandas as pd

from features.snapshots import latest_as_of
from pipelines.config import Params
from pipelines.errors import StageError
from pipelines.features_run import (
    account_attributes,
    build_feature_frame,
    catalog_specs,
    check_as_of,
)
from pipelines.progress import Progress
from pipelines.validation.validate import run_validate, validate_feature_table, validate_scores
from pipelines.warehouse import Warehouse, open_warehouse
from serving.drift import compute_drift, summarise_drift
from serving.explain import BENCHMARKS_ARTIFACT, Benchmarks
from serving.score import ScoredModel, ScoringContext, score_accounts
from serving.writeback import replace_as_of_rows, write_scores
from training.registry import RegisteredModel, load_model_version, store_exists


@dataclass(frozen=True)
class ScoreResult:
    """What `run_score` published: the as-of, how many accounts (in all and per tier), the model version, and the
    MRR at risk (the sum of probability × MRR)."""

    as_of: date
    accounts: int
    tiers: dict[str, int]
    model_version: str
    mrr_at_risk: float


@dataclass(frozen=True)
class ScoringBatch:
    """What one scoring run works on: the champion, the open warehouse, the as-of and its feature rows."""

    champion: RegisteredModel
    wh: Warehouse
    as_of: date
    frame: pd.DataFrame


def _benchmarks(champion) -> Benchmarks | None:
    """Retained accounts' values from the champion's training run; None for a model trained before they were logged."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return Benchmarks.from_dict(mlflow.artifacts.load_dict(f"runs:/{champion.run_id}/{BENCHMARKS_ARTIFACT}"))
    except MlflowException:
        return None


def _predict(params: Params, batch: ScoringBatch, progress: Progress):
    champion = batch.champion
    with progress.stage("predict + explain") as info:
        try:
            scored_at = datetime.now().replace(microsecond=0)
            context = ScoringContext(catalog_specs(params), params.scoring, health=params.evaluation.health_score,
                                     benchmarks=_benchmarks(champion), attributes=account_attributes(batch.wh))
            scores, drivers = score_accounts(ScoredModel(champion.model, champion.name, champion.version),
                                             batch.frame, context, scored_at)
        except ValueError as exc:
            raise StageError(str(exc)) from None
        info["detail"] = f"{len(scores):,} accounts, tiers {scores['risk_tier'].value_counts().to_dict()}"
    return scores, drivers


DRIFT_TABLE = "churn_drift"
SUMMARY_ROW = "(all features, importance-weighted)"
DRIFT_SCHEMA = ibis.schema({"as_of": "date", "feature": "string", "psi": "float64", "status": "string",
                           "model_name": "string", "model_version": "string", "computed_at": "timestamp"})


def _guard_drift(params: Params, batch: ScoringBatch, allow: bool, progress: Progress) -> dict:
    """Compare the features to the model's reference window, record it in churn_drift, stop if too far."""
    champion = batch.champion
    reference = champion.model.reference
    if not reference:
        progress.note(f"drift: model v{champion.version} carries no reference distribution; not checked")
        return {"psi": 0.0, "status": "unchecked"}
    with progress.stage("drift check") as info:
        drift = compute_drift(reference["features"], batch.frame, params.scoring.drift)
        summary = summarise_drift(drift, reference["importance"], params.scoring.drift)
        table = pd.concat([drift, pd.DataFrame([{"feature": SUMMARY_ROW, **summary}])], ignore_index=True)
        record = table.assign(as_of=pd.Timestamp(batch.as_of), model_name=champion.name, model_version=champion.version,
                              computed_at=pd.Timestamp(datetime.now().replace(microsecond=0)))
        replace_as_of_rows(batch.wh.con, {DRIFT_TABLE: (record, DRIFT_SCHEMA)}, [batch.as_of])
        info["detail"] = (f"weighted PSI {summary['psi']:.3f} ({summary['status']}) against {reference['window']}; "
                          f"largest {drift.feature.iloc[0]} {drift.psi.iloc[0]:.3f}")
    for row in drift[drift.status != "ok"].head(5).itertuples():
        progress.note(f"drift {row.status}: {row.feature} PSI {row.psi:.3f}")
    if summary["status"] == "stop" and not allow:
        moved = ", ".join(drift[drift.status == "stop"].feature.head(5))
        raise StageError(f"drift: the importance-weighted PSI {summary['psi']:.3f} is above scoring.drift.stop "
                         f"{params.scoring.drift.stop} (most moved: {moved}); scores not published. "
                         f"See table {DRIFT_TABLE}; retrain, or pass --allow-drift to publish anyway")
    return summary


def run_score(params: Params, progress: Progress, as_of: date | None = None,
              allow_drift: bool = False) -> ScoreResult:
    """Score every account active at `as_of` (default: the latest the data supports) and publish the scores."""
    with progress.stage("load champion") as info:
        if not store_exists(params.mlflow):
            raise StageError(f"mlflow.tracking_uri: no MLflow store at {params.mlflow.tracking_uri} (nothing was "
                             f"trained there yet: run `churn train`, or fix the path)")
        champion = load_model_version(params.mlflow)
        if champion is None:
            raise StageError(f"model {params.mlflow.model_name}: no version has the alias 'champion' in "
                             f"{params.mlflow.tracking_uri} (run `churn train` first)")
        info["detail"] = f"{champion.name} v{champion.version}, {len(champion.model.features)} features"
    run_validate(params, params.validation, progress, datetime.now()).raise_for_errors()
    with open_warehouse(params, progress) as wh:
        as_of = as_of or latest_as_of(wh.data_end)
        check_as_of(as_of, wh)
        frame, feature_set = build_feature_frame(params, wh, [as_of], progress)
        validate_feature_table(frame, feature_set.names, params.validation).raise_for_errors()
        batch = ScoringBatch(champion, wh, as_of, frame)
        _guard_drift(params, batch, allow_drift, progress)
        scores, drivers = _predict(params, batch, progress)
        validate_scores(scores, params.scoring.tier_names, params.validation).raise_for_errors()
        with progress.stage("write back") as info:
            write_scores(wh.con, scores, drivers, [as_of])
            info["detail"] = f"churn_scores {len(scores):,} rows, churn_score_drivers {len(drivers):,} rows"
    tiers = scores["risk_tier"].value_counts().to_dict()
    return ScoreResult(as_of=as_of, accounts=len(scores), tiers=tiers, model_version=champion.version,
                       mrr_at_risk=float((scores.churn_probability * scores.mrr).sum()))
