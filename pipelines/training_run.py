"""The train stage: features for the grid, out-of-time split, LightGBM, MLflow run, champion gate."""

from __future__ import annotations

import pandas as pd
from sklearn.metrics import roc_auc_score

from pipelines.config import Params
from pipelines.progress import Progress
from pipelines.stages import (
    StageError,
    build_feature_frame,
    git_commit,
    grid_dates,
    open_warehouse,
)
from training.dataset import split_out_of_time
from training.evaluate import evaluate_predictions
from training.promotion import decide_promotion
from training.registry import load_model_version, log_training_run, record_decision, set_alias
from training.train import train_model

SIM_TRUTH = "sim_truth"


def oracle_roc_auc(truth: pd.DataFrame | None, valid: pd.DataFrame, horizon_days: int) -> float | None:
    """ROC-AUC of the true churn probabilities on the validation rows, when the warehouse is a simulated one."""
    if truth is None:
        return None
    from pipelines.simulate import compute_oracle_probabilities

    oracle = compute_oracle_probabilities(truth, valid[["account_id", "as_of"]], horizon_days)
    return float(roc_auc_score(valid["label"], oracle))


def _champion_metrics(params: Params, valid: pd.DataFrame):
    champion = load_model_version(params.mlflow)
    if champion is None:
        return None, None, None
    lacking = [f for f in champion.model.features if f not in valid.columns]
    if lacking:
        return champion, None, f"champion v{champion.version} needs features this run lacks ({', '.join(lacking)})"
    return champion, evaluate_predictions(valid["label"], champion.model.predict(valid)), None


def _run_params(params: Params, data_end) -> dict:
    flat = {f"lgb.{k}": v for k, v in params.model.lightgbm.items()}
    flat |= {"seed": params.model.seed, "validation_snapshots": params.model.validation_snapshots,
             "horizon_days": params.label.horizon_days, "grace_days": params.label.grace_days,
             "windows": ",".join(map(str, params.features.windows)), "snapshots.every": params.snapshots.every,
             "data_end": f"{data_end:%Y-%m-%d %H:%M:%S}"}
    return flat


def run_train(params: Params, progress: Progress, force_promote: bool = False) -> dict:
    """Train a challenger, log and register it, and move `champion` only if it passes the gate."""
    with open_warehouse(params, progress) as wh:
        frame, feature_set = build_feature_frame(params, wh, grid_dates(params, wh), progress)
        truth = wh.con.table(SIM_TRUTH).execute() if SIM_TRUTH in wh.con.list_tables() else None
        data_end = wh.data_end
    try:
        split = split_out_of_time(frame, params.model.validation_snapshots)
    except ValueError as exc:
        raise StageError(str(exc)) from None
    with progress.stage("train LightGBM") as info:
        model = train_model(split, feature_set.names, params.model)
        info["detail"] = (f"{len(split.train):,} train / {len(split.valid):,} validation rows, "
                          f"{model.best_iteration} trees")
    with progress.stage("evaluate") as info:
        metrics = evaluate_predictions(split.valid["label"], model.predict(split.valid))
        oracle = oracle_roc_auc(truth, split.valid, params.label.horizon_days)
        champion, champion_metrics, unavailable = _champion_metrics(params, split.valid)
        info["detail"] = f"validation ROC-AUC {metrics['roc_auc']:.3f}" + (
            f", oracle {oracle:.3f}" if oracle is not None else "")
    with progress.stage("MLflow run + registry") as info:
        logged = {f"valid_{k}": v for k, v in metrics.items()}
        logged |= {"train_rows": float(len(split.train)), "train_churn_rate": float(split.train.label.mean())}
        if oracle is not None:
            logged["valid_oracle_roc_auc"] = oracle
        tags = {"git_commit": git_commit(), **split.window, "features": ",".join(feature_set.names),
                "features_left_out": ",".join(feature_set.left_out) or "none"}
        run = log_training_run(
            params.mlflow, model, split.valid, _run_params(params, data_end), logged, tags,
            artifacts={"features.json": {"features": feature_set.names, "left_out": feature_set.left_out},
                       "metrics.json": {"validation": metrics, "oracle_roc_auc": oracle}})
        decision = decide_promotion(metrics, champion_metrics, params.model.promotion, force_promote, unavailable)
        decision |= {"from_version": champion.version if champion else None, "to_version": run.version}
        if decision["promoted"]:
            set_alias(params.mlflow, run.version)
        record_decision(run.run_id, decision)
        info["detail"] = f"{params.mlflow.model_name} v{run.version}: {decision['reason']}"
    return {"metrics": metrics, "oracle_roc_auc": oracle, "run_id": run.run_id, "version": run.version,
            "decision": decision, "features": feature_set.names, "rows": len(frame),
            "accounts": int(frame["account_id"].nunique()), "churn_rate": float(split.train.label.mean())}
