"""The score stage: features as of a date, the champion's probabilities and drivers, atomic write-back."""

from __future__ import annotations

from datetime import date, datetime

from features.snapshots import latest_as_of
from pipelines.config import Params
from pipelines.progress import Progress
from pipelines.stages import StageError, build_feature_frame, catalog_specs, check_as_of, open_warehouse
from serving.score import ScoredModel, score_accounts
from serving.writeback import write_scores
from training.registry import load_model_version


def _predict(params: Params, champion, frame, progress: Progress):
    with progress.stage("predict + explain") as info:
        try:
            scores, drivers = score_accounts(
                ScoredModel(champion.model, champion.name, champion.version), frame, catalog_specs(params),
                params.scoring, scored_at=datetime.now().replace(microsecond=0),
                health=params.evaluation.health_score)
        except ValueError as exc:
            raise StageError(str(exc)) from None
        info["detail"] = f"{len(scores):,} accounts, tiers {scores['risk_tier'].value_counts().to_dict()}"
    return scores, drivers


def run_score(params: Params, progress: Progress, as_of: date | None = None) -> dict:
    """Score every account active at `as_of` (default: the latest the data supports) and publish the scores."""
    with progress.stage("load champion") as info:
        champion = load_model_version(params.mlflow)
        if champion is None:
            raise StageError(f"model {params.mlflow.model_name}: no version has the alias 'champion' in "
                             f"{params.mlflow.tracking_uri} (run `churn train` first)")
        info["detail"] = f"{champion.name} v{champion.version}, {len(champion.model.features)} features"
    with open_warehouse(params, progress) as wh:
        as_of = as_of or latest_as_of(wh.data_end)
        check_as_of(as_of, wh)
        frame, _ = build_feature_frame(params, wh, [as_of], progress)
        scores, drivers = _predict(params, champion, frame, progress)
        with progress.stage("write back") as info:
            write_scores(wh.con, scores, drivers, [as_of])
            info["detail"] = f"churn_scores {len(scores):,} rows, churn_score_drivers {len(drivers):,} rows"
    tiers = scores["risk_tier"].value_counts().to_dict()
    return {"as_of": as_of, "accounts": len(scores), "tiers": tiers, "model_version": champion.version,
            "mrr_at_risk": float((scores.churn_probability * scores.mrr).sum())}
