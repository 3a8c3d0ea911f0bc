"""The train stage: features for the grid, out-of-time experiment with baselines, MLflow run, champion gate, report."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features.catalog import FeatureSpec
from features.feature_table import FeatureSet
from features.vocabulary import feature_settings
from pipelines.config import Params
from pipelines.errors import StageError
from pipelines.features_run import (
    account_attributes,
    build_feature_frame,
    catalog_specs,
    grid_dates,
)
from pipelines.files import ensure_writable, write_files
from pipelines.progress import Progress
from pipelines.provenance import git_commit
from pipelines.validation.validate import run_validate, validate_feature_table
from pipelines.warehouse import open_warehouse
from serving.drift import reference_distribution
from serving.explain import BENCHMARKS_ARTIFACT, compute_benchmarks
from serving.reason_accuracy import ReasonAccuracy, reason_accuracy
from serving.score import rank_and_tier
from serving.tables import PERFORMANCE_TABLE
from serving.writeback import PERFORMANCE_SCHEMA, describe_schema_problems
from training.dataset import split_out_of_time
from training.errors import ChampionFilesMissing
from training.experiment import (
    MODEL,
    Experiment,
    max_backtest_folds,
    run_backtest,
    run_experiment,
    score_contender,
    summarise_backtest,
)
from training.promotion import decide_promotion
from training.registry import (
    RegisteredModel,
    RunRecord,
    load_model_version,
    log_training_run,
    record_decision,
    set_alias,
)
from training.report import RunFacts, render_model_card, render_plots, render_training_report

SIM_TRUTH = "sim_truth"
SIM_NOWCAST = "sim_nowcast"


@dataclass(frozen=True)
class TrainResult:
    """What `run_train` produced: the model's validation metrics beside its baselines' (and the oracle's on a
    simulated warehouse), its MLflow run and registered version, the champion decision, the data it learned from,
    the training report it wrote and, with `--backtest`, the per-contender backtest summary."""

    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    oracle_roc_auc: float | None
    run_id: str
    version: str
    decision: dict
    features: list[str]
    rows: int
    accounts: int
    churn_rate: float
    report_path: Path
    backtest: pd.DataFrame | None
    labelled: tuple[int, int]  # labelled rows and churners among them (train, calibration and validation)
    validated: tuple[int, int]  # validation rows and churners among them: what the metrics are measured on
    reasons: ReasonAccuracy | None = None
    nowcast_roc_auc: float | None = None
    # The validation rows (account_id, label) with each contender's probability (model, health_score,
    # logistic_regression): what the metrics were computed on, for comparisons with intervals (`churn evaluate`).
    validation: pd.DataFrame | None = None


@dataclass(frozen=True)
class TrainingData:
    """What training reads from the warehouse: the feature frame (with account attributes), its feature set, the
    simulation's truth (None for a real warehouse), the newest event time and how the scoring models did in the wild
    (churn_model_performance; None before `churn outcomes` wrote it)."""

    frame: pd.DataFrame
    feature_set: FeatureSet
    truth: pd.DataFrame | None
    data_end: datetime
    performance: pd.DataFrame | None = None
    nowcast: pd.DataFrame | None = None  # the simulation's nowcast oracle (sim_nowcast)


@dataclass(frozen=True)
class TrainingOutcome:
    """What a training run produced before it is published: the experiment, the backtest (per-fold table and
    summary) if asked for, the oracle's ROC-AUC, the current champion, the promotion decision and, on a warehouse that
    records its churn causes, the reasons' accuracy."""

    experiment: Experiment
    backtest: tuple[pd.DataFrame, pd.DataFrame] | None
    oracle: float | None
    champion: RegisteredModel | None
    decision: dict
    reasons: ReasonAccuracy | None = None
    nowcast: float | None = None


def _truth_keys(truth: pd.DataFrame) -> pd.DataFrame:
    # The contract reads account ids as text; a warehouse may store them (and so sim_truth's) as integers.
    return truth.assign(account_id=truth["account_id"].astype(str), renewal_at=pd.to_datetime(truth["renewal_at"]))


def oracle_roc_auc(truth: pd.DataFrame | None, valid: pd.DataFrame, horizon_days: int) -> float | None:
    """ROC-AUC of the true churn probabilities on the validation rows, when the warehouse is a simulated one."""
    if truth is None or not {"account_id", "renewal_at", "hazard"} <= set(truth.columns):
        return None
    from pipelines.synthetic.oracle import compute_oracle_probabilities

    oracle = compute_oracle_probabilities(_truth_keys(truth), valid[["account_id", "as_of"]], horizon_days)
    return float(roc_auc_score(valid["label"], oracle))


def nowcast_roc_auc(nowcast: pd.DataFrame | None, valid: pd.DataFrame, horizon_days: int,
                    progress: Progress | None = None) -> float | None:
    """ROC-AUC of the nowcast oracle (`sim_nowcast`) on the validation rows, when the warehouse is a simulated one
    whose nowcast covers every validation row (month-start as-ofs, paying accounts, the label horizon); else None,
    said in a note."""
    if nowcast is None:
        return None
    from pipelines.synthetic.oracle import nowcast_probabilities

    probability = nowcast_probabilities(nowcast, valid[["account_id", "as_of"]], horizon_days)
    missing = int(np.isnan(probability).sum())
    if missing:
        if progress is not None:
            progress.note(f"{SIM_NOWCAST} lacks {missing:,} of {len(valid):,} validation rows (it holds month-start "
                          f"as-ofs of paying accounts for the horizon `churn simulate` ran with): no nowcast oracle")
        return None
    return float(roc_auc_score(valid["label"], probability))


def check_reasons(truth: pd.DataFrame | None, experiment: Experiment, contributions: np.ndarray, params: Params,
                  specs: dict[str, FeatureSpec]) -> ReasonAccuracy | None:
    """Reason accuracy on the validation rows when the warehouse records its true churn causes (a simulated one):
    the top tier is drawn as scoring draws it (`scoring.tiers` or `scoring.capacity`).

    Args:
        contributions: the model's SHAP contributions on the validation rows (features + bias), computed once.
    """
    if truth is None or "cause" not in truth.columns:
        return None
    from pipelines.synthetic.oracle import CAUSE_GROUPS, true_causes

    split, model = experiment.split, experiment.model
    valid = split.valid.reset_index(drop=True)
    causes = true_causes(_truth_keys(truth), valid[["account_id", "as_of"]], params.label.horizon_days)
    groups = np.array([CAUSE_GROUPS.get(c) for c in causes], dtype=object)
    _, tiers = rank_and_tier(experiment.predictions[MODEL], valid["as_of"].to_numpy(), params.scoring,
                             model.base_rate)
    contributions = pd.DataFrame(contributions, columns=[*model.features, "bias"])
    return reason_accuracy(contributions, valid, split.train, specs, tiers == params.scoring.tier_names[0], groups)


def _champion_metrics(params: Params, split, progress: Progress):
    try:
        champion = load_model_version(params.mlflow)
    except ChampionFilesMissing as exc:
        # A champion that cannot be loaded cannot defend its place: the challenger is judged as if there were none.
        progress.note(f"{exc}; the new model is judged as if there were no champion")
        return None, None, None
    if champion is None:
        return None, None, None
    lacking = [f for f in champion.model.features if f not in split.valid.columns]
    if lacking:
        return champion, None, f"champion v{champion.version} needs features this run lacks ({', '.join(lacking)})"
    return champion, score_contender(split, champion.model.predict(split.valid), params.evaluation), None


def _run_params(params: Params, data_end: datetime, chosen: dict) -> dict:
    flat = {f"lgb.{k}": v for k, v in params.model.lightgbm.items()}
    flat |= {f"lgb.{k}": v for k, v in chosen.items()} | {"lgb.chosen": ",".join(sorted(chosen)) or "none"}
    flat |= {"seed": params.model.seed, "bagging_seeds": params.model.bagging_seeds,
             "validation_snapshots": params.model.validation_snapshots,
             "calibration_snapshots": params.model.calibration_snapshots,
             "horizon_days": params.label.horizon_days, "grace_days": params.label.grace_days,
             "windows": ",".join(map(str, params.features.windows)), "snapshots.every": params.snapshots.every,
             "capacity": params.evaluation.capacity, "data_end": f"{data_end:%Y-%m-%d %H:%M:%S}"}
    return flat


def _load(params: Params, progress: Progress) -> TrainingData:
    run_validate(params, params.validation, progress, datetime.now()).raise_for_errors()
    with open_warehouse(params, progress, read_only=True) as wh:
        frame, feature_set = build_feature_frame(params, wh, grid_dates(params, wh), progress)
        validate_feature_table(frame, feature_set.names, params.validation).raise_for_errors()
        attributes = account_attributes(wh)
        tables = wh.con.list_tables()
        truth = wh.con.table(SIM_TRUTH).execute() if SIM_TRUTH in tables else None
        nowcast = wh.con.table(SIM_NOWCAST).execute() if SIM_NOWCAST in tables else None
        data_end = wh.data_end
        performance = _read_performance(wh.con, progress)
    return TrainingData(frame.merge(attributes, on="account_id", how="left"), feature_set, truth, data_end,
                        performance, nowcast)


def _read_performance(con, progress: Progress) -> pd.DataFrame | None:
    """The rows of churn_model_performance for the training report's "In the wild", or None without the table (or
    with one of another shape: said in a note, since it does not bear on training)."""
    if PERFORMANCE_TABLE not in con.list_tables():
        return None
    problems = describe_schema_problems(con, PERFORMANCE_TABLE, PERFORMANCE_SCHEMA, writing=False)
    if problems:
        progress.note(f"table {PERFORMANCE_TABLE}: {'; '.join(problems)}; the training report leaves out how the "
                      "models did in the wild (run `churn outcomes` to write it again)")
        return None
    return con.table(PERFORMANCE_TABLE).select(*PERFORMANCE_SCHEMA.names).execute()


def _backtest(params: Params, frame, features, folds: int, specs: dict[str, FeatureSpec], progress: Progress):
    if not folds:
        return None
    possible = max_backtest_folds(frame, params.model)
    if folds > possible:
        raise StageError(f"--backtest {folds}: the labelled as-of dates allow at most {possible} folds of "
                         f"{params.model.validation_snapshots} validation dates")
    with progress.stage("backtest") as info:
        table = run_backtest(frame, features, params.model, params.evaluation, folds, specs)
        summary = summarise_backtest(table)
        model = summary[summary.contender == MODEL].iloc[0]
        info["detail"] = f"{folds} folds: ROC-AUC {model.roc_auc_mean:.3f} ± {model.roc_auc_std:.3f}"
    return table, summary


def _metrics_to_log(experiment, oracle, backtest, reasons: ReasonAccuracy | None = None,
                    nowcast: float | None = None) -> dict[str, float]:
    logged = {f"valid_{name}_{k}": v for name, m in experiment.metrics.items() for k, v in m.items()}
    logged |= {f"valid_{k}": v for k, v in experiment.metrics[MODEL].items()}  # the model's, unprefixed too
    logged |= {"train_rows": float(len(experiment.split.train)),
               "train_churn_rate": float(experiment.split.train.label.mean())}
    model = experiment.metrics[MODEL]["roc_auc"]
    for name, ceiling in (("oracle", oracle), ("nowcast", nowcast)):   # the hindsight and the nowcast oracle
        if ceiling is not None:
            logged[f"valid_{name}_roc_auc"] = ceiling
            logged[f"valid_gap_to_{name}"] = ceiling - model
    if reasons is not None:
        logged |= {f"valid_{k}": v for k, v in reasons.metrics().items() if not np.isnan(v)}
    if backtest is not None:
        for row in backtest[1].itertuples():
            logged |= {f"backtest_{row.contender}_{k}": float(getattr(row, k)) for k in backtest[1].columns[1:]}
    return logged


def run_train(params: Params, progress: Progress, force_promote: bool = False, backtest: int = 0,
              reports_dir: Path | None = None) -> TrainResult:
    """Train a challenger beside its baselines, log and register it, move `champion` only through the gate,
    and write the training report (to `reports_dir`, default `report.dir`, checked writable before any work)."""
    reports_dir = ensure_writable(Path(reports_dir or params.report.dir), "report.dir")
    data = _load(params, progress)
    feature_set = data.feature_set
    try:
        split = split_out_of_time(data.frame, params.model.validation_snapshots, params.model.calibration_snapshots)
    except ValueError as exc:
        raise StageError(str(exc)) from None
    specs = catalog_specs(params, feature_set.vocabulary)
    with progress.stage("train + baselines") as info:
        experiment = run_experiment(split, feature_set.names, params.model, params.evaluation, specs)
        experiment.model.vocabulary = feature_set.vocabulary.to_dict()
        experiment.model.feature_settings = feature_settings(params.features)
        # The drift reference is the newest labelled window, the population the validation metrics describe.
        contributions = experiment.model.contributions(split.valid)  # also read by the reason accuracy
        importance = np.abs(contributions[:, :-1]).mean(axis=0)
        clocks = {name: spec.as_of_clock for name, spec in specs.items() if spec.as_of_clock}
        experiment.model.reference = {
            "features": reference_distribution(split.valid, feature_set.names, params.scoring.drift.bins, clocks),
            "importance": dict(zip(experiment.model.features, importance.tolist(), strict=True)),
            "window": split.window["valid_as_of"]}
        info["detail"] = (f"{len(split.train):,} train / {len(split.tuning):,} calibration / {len(split.valid):,} "
                          f"validation rows, {experiment.model.best_iteration} trees "
                          f"({', '.join(f'{k} {v:g}' for k, v in experiment.model.chosen.items()) or 'as pinned'}), "
                          f"{experiment.model.calibrator.method} calibration")
    backtested = _backtest(params, data.frame, feature_set.names, backtest, specs, progress)
    with progress.stage("evaluate") as info:
        oracle = oracle_roc_auc(data.truth, split.valid, params.label.horizon_days)
        nowcast = nowcast_roc_auc(data.nowcast, split.valid, params.label.horizon_days, progress)
        reasons = check_reasons(data.truth, experiment, contributions, params, specs)
        champion, champion_metrics, unavailable = _champion_metrics(params, split, progress)
        m = experiment.metrics
        info["detail"] = (f"ROC-AUC {m[MODEL]['roc_auc']:.3f} (health score {m['health_score']['roc_auc']:.3f}, "
                          f"logistic {m['logistic_regression']['roc_auc']:.3f}"
                          + (f", hindsight oracle {oracle:.3f}" if oracle is not None else "")
                          + (f", nowcast oracle {nowcast:.3f}" if nowcast is not None else "") + ")"
                          + (f"; reason accuracy {reasons.churners['model']:.2f} on {reasons.churners_rows} "
                             "top-tier churners" if reasons is not None else ""))
    decision = decide_promotion(experiment.metrics[MODEL], champion_metrics, params.model.promotion,
                                force_promote, unavailable)
    outcome = TrainingOutcome(experiment, backtested, oracle, champion, decision, reasons, nowcast)
    return _publish(params, progress, data, outcome, reports_dir)


def _run_facts(params: Params, data: TrainingData, outcome: TrainingOutcome) -> RunFacts:
    valid = outcome.experiment.split.valid
    return RunFacts(model_name=params.mlflow.model_name, version="(pending)", run_id="(pending)",
                    trained_at=f"{datetime.now():%Y-%m-%d %H:%M}", git_commit=git_commit(),
                    capacity=params.evaluation.capacity, decision=outcome.decision, oracle=outcome.oracle,
                    nowcast=outcome.nowcast, reasons=outcome.reasons,
                    left_out=", ".join(data.feature_set.left_out),
                    vocabulary=data.feature_set.vocabulary.describe(),
                    segments={s: valid[s].to_numpy() for s in params.evaluation.segments if s in valid.columns},
                    bagging_seeds=params.model.bagging_seeds)


def _run_record(params: Params, data: TrainingData, outcome: TrainingOutcome, facts: RunFacts,
                specs: dict[str, FeatureSpec], plots: dict[str, bytes]) -> RunRecord:
    experiment, backtested, names = outcome.experiment, outcome.backtest, data.feature_set.names
    return RunRecord(
        params=_run_params(params, data.data_end, experiment.model.chosen),
        metrics=_metrics_to_log(experiment, outcome.oracle, backtested, outcome.reasons, outcome.nowcast),
        tags={"git_commit": facts.git_commit, **experiment.split.window, "features": ",".join(names),
              "features_left_out": facts.left_out or "none", "calibration": experiment.model.calibrator.method},
        json_artifacts={"features.json": {"features": names, "left_out": data.feature_set.left_out,
                                          "vocabulary": data.feature_set.vocabulary.to_dict()},
                        BENCHMARKS_ARTIFACT: compute_benchmarks(data.frame, {n: specs[n] for n in names}).to_dict(),
                        "metrics.json": {"validation": experiment.metrics, "oracle_roc_auc": outcome.oracle,
                                         "nowcast_roc_auc": outcome.nowcast,
                                         "calibration_brier": experiment.calibration_scores,
                                         "backtest": None if backtested is None
                                         else backtested[0].to_dict(orient="records")}},
        binary_artifacts={f"plots/{name}.png": png for name, png in plots.items()})


def _publish(params: Params, progress: Progress, data: TrainingData, outcome: TrainingOutcome,
             reports_dir: Path) -> TrainResult:
    experiment, backtested = outcome.experiment, outcome.backtest
    with progress.stage("MLflow run + registry") as info:
        specs = catalog_specs(params, data.feature_set.vocabulary)
        plots = render_plots(experiment)
        facts = _run_facts(params, data, outcome)
        run = log_training_run(params.mlflow, experiment.model, experiment.split.valid,
                               _run_record(params, data, outcome, facts, specs, plots))
        facts.version, facts.run_id = run.version, run.run_id
        decision = outcome.decision  # updated in place: the facts the reports render hold the same dict
        decision |= {"from_version": outcome.champion.version if outcome.champion else None,
                     "to_version": run.version, "by": getpass.getuser(),
                     "at": datetime.now().isoformat(timespec="seconds")}
        if decision["promoted"]:
            set_alias(params.mlflow, run.version)
        summary = None if backtested is None else backtested[1]
        report = render_training_report(experiment, facts, specs, plots, summary, 0 if summary is None
                                        else int(backtested[0].fold.max()), data.performance)
        record_decision(run.run_id, decision, {"model_card.md": render_model_card(experiment, facts, summary),
                                               "training_report.html": report})
        report_path = reports_dir / f"training_{run.run_id}.html"
        write_files({report_path: report}, "report.dir")
        info["detail"] = f"{params.mlflow.model_name} v{run.version}: {decision['reason']}"
    progress.note(f"training report: {report_path}")
    split = experiment.split
    return TrainResult(
        metrics=experiment.metrics[MODEL], baselines={k: v for k, v in experiment.metrics.items() if k != MODEL},
        oracle_roc_auc=outcome.oracle, run_id=run.run_id, version=run.version, decision=decision,
        features=data.feature_set.names, rows=len(data.frame), accounts=int(data.frame["account_id"].nunique()),
        churn_rate=float(experiment.split.train.label.mean()), report_path=report_path, backtest=summary,
        labelled=_counts(*(part for part in (split.train, split.calib, split.valid) if part is not None)),
        validated=_counts(split.valid), reasons=outcome.reasons, nowcast_roc_auc=outcome.nowcast,
        validation=split.valid[["account_id", "label"]].reset_index(drop=True).assign(**experiment.predictions))


def _counts(*frames: pd.DataFrame) -> tuple[int, int]:
    return sum(len(f) for f in frames), sum(int(f["label"].sum()) for f in frames)
