"""The score stage: features as of a date, the champion's probabilities and drivers, atomic write-back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import ibis
import pandas as pd

from features.snapshots import latest_as_of
from features.vocabulary import EventVocabulary
from pipelines.config import Params
from pipelines.errors import StageError
from pipelines.features_run import (
    account_attributes,
    build_feature_frame,
    catalog_specs,
    changed_feature_settings,
    check_as_of,
)
from pipelines.progress import Progress
from pipelines.validation.validate import run_validate, validate_feature_table, validate_scores
from pipelines.warehouse import Warehouse, check_writable, open_warehouse, open_writer
from serving.drift import compare_mrr, compute_drift, stop_reasons, summarise_drift
from serving.experiments import HOLDOUT, assignment_rows
from serving.explain import BENCHMARKS_ARTIFACT, Benchmarks
from serving.history import chain_history
from serving.score import ScoredModel, ScoringContext, check_features_available, score_accounts
from serving.tables import ASSIGNMENTS_TABLE, DRIFT_TABLE, DRIVERS_TABLE, SCORES_TABLE
from serving.writeback import (
    add_missing_columns,
    read_previous_scores,
    read_previous_scorings,
    replace_as_of_rows,
    write_scores,
)
from training.health import HealthScore
from training.registry import RegisteredModel, load_model_version, store_exists


@dataclass(frozen=True)
class ScoreResult:
    """What `run_score` published: the as-of, how many accounts (in all and per tier), the model version, the
    MRR at risk (the sum of probability × MRR), and how many accounts got an experiment arm and how many of them
    are held back."""

    as_of: date
    accounts: int
    tiers: dict[str, int]
    model_version: str
    mrr_at_risk: float
    assigned: int = 0
    held_out: int = 0


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


def _health(params: Params, champion: RegisteredModel) -> HealthScore | None:
    """The health score fitted with the champion; for a model trained before it carried one, the params' when they
    pin every measure, else none."""
    if champion.model.health is not None:
        return champion.model.health
    config = params.evaluation.health_score
    return HealthScore.from_pins(config.measures) if config.fully_pinned else None


def _predict(params: Params, batch: ScoringBatch, progress: Progress):
    """The scores (with their history against the scoring before) and the drivers."""
    champion = batch.champion
    with progress.stage("predict + explain") as info:
        try:
            scored_at = datetime.now().replace(microsecond=0)
            vocabulary = EventVocabulary.of_model(champion.model.vocabulary, params.features)
            context = ScoringContext(catalog_specs(params, vocabulary), params.scoring,
                                     health=_health(params, champion), benchmarks=_benchmarks(champion),
                                     attributes=account_attributes(batch.wh))
            scores, drivers = score_accounts(ScoredModel(champion.model, champion.name, champion.version),
                                             batch.frame, context, scored_at)
            # Read in this read-only pass: the published scoring before the as-of (several as-ofs chain in order).
            scores = chain_history(scores, read_previous_scorings(batch.wh.con, [batch.as_of]))
        except ValueError as exc:
            raise StageError(str(exc)) from None
        info["detail"] = f"{len(scores):,} accounts, tiers {scores['risk_tier'].value_counts().to_dict()}"
    return scores, drivers


DRIFT_SCHEMA = ibis.schema({"as_of": "date", "feature": "string", "psi": "float64", "ratio": "float64",
                           "status": "string", "reason": "string", "model_name": "string", "model_version": "string",
                           "computed_at": "timestamp"})


def _check_drift(params: Params, batch: ScoringBatch) -> tuple[pd.DataFrame, str]:
    """Every drift check as a row (each feature, the weighted summary, the MRR against the previous scoring), and
    a one-line account of them."""
    config, reference, frame = params.scoring.drift, batch.champion.model.reference, batch.frame
    parts, detail = [], []
    if reference:
        drift = compute_drift(reference["features"], frame, reference["importance"], config)
        summary = summarise_drift(drift, reference["importance"], config)
        parts += [drift, pd.DataFrame([summary])]
        counts = ", ".join(f"{n} {status}" for status, n in drift.status.value_counts().items())
        detail.append(f"weighted PSI {summary['psi']:.3f} ({summary['status']}) against {reference['window']}; "
                      f"features {counts}")
    previous_as_of, previous = read_previous_scores(batch.wh.con, batch.as_of)
    money = compare_mrr(previous, frame, config, f"the scoring of {previous_as_of}")
    total = money.iloc[0]
    detail.append(f"MRR ×{total.ratio:.2f} against {previous_as_of} ({total.status})" if total.status != "unchecked"
                  else f"MRR unchecked ({total.reason})")
    return pd.concat([*parts, money], ignore_index=True), "; ".join(detail)


def _record_drift(con: ibis.BaseBackend, table: pd.DataFrame, batch: ScoringBatch) -> None:
    champion = batch.champion
    record = table.assign(as_of=pd.Timestamp(batch.as_of), model_name=champion.name, model_version=champion.version,
                          computed_at=pd.Timestamp(datetime.now().replace(microsecond=0)))
    add_missing_columns(con, DRIFT_TABLE, DRIFT_SCHEMA)   # tables written before ratio and reason existed
    replace_as_of_rows(con, {DRIFT_TABLE: (record, DRIFT_SCHEMA)}, [batch.as_of])


def _guard_drift(params: Params, batch: ScoringBatch, progress: Progress) -> pd.DataFrame:
    """Run every drift check and say what it found; `_stop_on_drift` decides once the checks are recorded."""
    with progress.stage("drift check") as info:
        table, info["detail"] = _check_drift(params, batch)
    champion = batch.champion
    reference = champion.model.reference
    if not reference:
        progress.note(f"drift: model v{champion.version} carries no reference distribution; features not checked")
    elif any("rows" not in ref for ref in reference["features"].values()):
        progress.note(f"drift: model v{champion.version}'s reference predates the median, sample-size and as-of "
                      "checks; retrain for them")
    warned = table[table.status == "warn"]
    for reason in warned.reason.head(5):
        progress.note(f"drift warn: {reason}")
    if len(warned) > 5:
        progress.note(f"drift warn: {len(warned) - 5} more (see table {DRIFT_TABLE})")
    return table


def _stop_on_drift(table: pd.DataFrame, allow: bool, progress: Progress) -> None:
    """Refuse to publish (unless allowed), naming every reason to stop."""
    reasons = stop_reasons(table)
    if reasons and not allow:
        raise StageError(f"drift: scores not published; {len(reasons)} reason(s) to stop: " + "; ".join(reasons)
                         + f". See table {DRIFT_TABLE}; fix the load or retrain, or pass --allow-drift to publish "
                           "anyway")
    if reasons:
        progress.note(f"drift: publishing despite {len(reasons)} reason(s) to stop (--allow-drift): "
                      + "; ".join(reasons))


def _describe_history(scores: pd.DataFrame) -> str:
    """What changed since the previous scoring, in a few words."""
    before = scores["previous_as_of"].dropna()
    if before.empty:
        return "no earlier scoring to compare with"
    moved = scores["previous_tier"].notna() & (scores["previous_tier"] != scores["risk_tier"])
    return (f"against {before.iloc[0]}: {int(moved.sum()):,} changed tier, "
            f"{int(scores['previous_tier'].isna().sum()):,} not scored then")


def _describe_experiment(assignments: pd.DataFrame | None) -> str:
    if assignments is None:
        return "experiments off"
    held = int((assignments["arm"] == HOLDOUT).sum())
    return (f"churn_playbook_assignments {len(assignments):,} rows ({held:,} held out, "
            f"{assignments['playbook'].nunique()} playbooks)")


# What `churn score` writes, for the refusal of an engine the write-back cannot write.
WRITES = f"{SCORES_TABLE}, {DRIVERS_TABLE}, {DRIFT_TABLE} and (with experiments on) {ASSIGNMENTS_TABLE}"


def run_score(params: Params, progress: Progress, as_of: date | None = None,
              allow_drift: bool = False) -> ScoreResult:
    """Score every account active at `as_of` (default: the latest the data supports) and publish the scores."""
    check_writable(params, WRITES)
    with progress.stage("load champion") as info:
        if not store_exists(params.mlflow):
            raise StageError(f"mlflow.tracking_uri: no MLflow store at {params.mlflow.tracking_uri} (nothing was "
                             f"trained there yet: run `churn train`, or fix the path)")
        champion = load_model_version(params.mlflow)
        if champion is None:
            raise StageError(f"model {params.mlflow.model_name}: no version has the alias 'champion' in "
                             f"{params.mlflow.tracking_uri} (run `churn train` first)")
        info["detail"] = f"{champion.name} v{champion.version}, {len(champion.model.features)} features"
    changed = changed_feature_settings(champion.model, params)
    if changed:
        raise StageError(f"{champion.name} v{champion.version} was trained with other feature settings, so its "
                         f"features would mean something else now: {'; '.join(changed)} (retrain with "
                         "`churn train`, or set them back)")
    run_validate(params, params.validation, progress, datetime.now()).raise_for_errors()
    # Everything is read through a read-only connection; the writer opens only to record and publish.
    with open_warehouse(params, progress, read_only=True) as wh:
        as_of = as_of or latest_as_of(wh.data_end)
        check_as_of(as_of, wh, params.features.lookback_days)
        vocabulary = EventVocabulary.of_model(champion.model.vocabulary, params.features)
        frame, feature_set = build_feature_frame(params, wh, [as_of], progress, vocabulary)
        validate_feature_table(frame, feature_set.names, params.validation).raise_for_errors()
        try:  # before the drift guard: a feature the warehouse cannot give is the problem to name, not its drift
            check_features_available(champion.model, frame)
        except ValueError as exc:
            raise StageError(str(exc)) from None
        batch = ScoringBatch(champion, wh, as_of, frame)
        drift = _guard_drift(params, batch, progress)
        publish = allow_drift or not stop_reasons(drift)
        scores, drivers = _predict(params, batch, progress) if publish else (None, None)
    with open_writer(params, WRITES) as con:
        _record_drift(con, drift, batch)
        _stop_on_drift(drift, allow_drift, progress)
        validate_scores(scores, params.scoring.tier_names, params.validation).raise_for_errors()
        assignments = (assignment_rows(scores, scores["scored_at"].iloc[0]) if params.scoring.experiments.enabled
                       else None)
        with progress.stage("write back") as info:
            write_scores(con, scores, drivers, [as_of], assignments=assignments)
            info["detail"] = (f"churn_scores {len(scores):,} rows, churn_score_drivers {len(drivers):,} rows, "
                              f"{_describe_experiment(assignments)}; " + _describe_history(scores))
    tiers = scores["risk_tier"].value_counts().to_dict()
    return ScoreResult(as_of=as_of, accounts=len(scores), tiers=tiers, model_version=champion.version,
                       mrr_at_risk=float((scores.churn_probability * scores.mrr).sum()),
                       assigned=int(scores["arm"].notna().sum()), held_out=int((scores["arm"] == HOLDOUT).sum()))
