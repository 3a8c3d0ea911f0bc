"""MLflow tracking and model registry: log a training run, register the model, move the `champion` alias."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path

import lightgbm as lgb
import mlflow
import mlflow.lightgbm
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from training.config import RegistryConfig
from training.train import TrainedModel

CHAMPION = "champion"


@dataclass(frozen=True)
class RegisteredModel:
    """A model version loaded from the registry."""

    model: TrainedModel
    name: str
    version: str
    run_id: str


@dataclass(frozen=True)
class TrainingRun:
    """What a training run logged: its id and the registered version."""

    run_id: str
    version: str


def open_experiment(config: RegistryConfig) -> str:
    """Point MLflow at the tracking store and return the experiment id, creating it with its artifact root."""
    mlflow.set_tracking_uri(config.tracking_uri)
    experiment = mlflow.get_experiment_by_name(config.experiment)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(config.experiment,
                                    artifact_location=Path(config.artifact_root).resolve().as_uri())


def log_training_run(config: RegistryConfig, model: TrainedModel, example: pd.DataFrame,
                     params: dict, metrics: dict[str, float], tags: dict[str, str],
                     artifacts: dict[str, object]) -> TrainingRun:
    """Log params, metrics, tags and JSON artifacts, then log and register the booster.

    Args:
        example: a few feature rows, logged as the model's input example and used for its signature.
        artifacts: file name → JSON-serialisable object, each written as an artifact of the run.
    """
    experiment_id = open_experiment(config)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        mlflow.set_tags(tags)
        for name, payload in artifacts.items():
            mlflow.log_text(json.dumps(payload, indent=2, default=str), name)
        sample = example[model.features]
        with contextlib.redirect_stderr(io.StringIO()):  # MLflow prints "Successfully registered" there
            info = mlflow.lightgbm.log_model(
                model.booster, name="model", registered_model_name=config.model_name,
                signature=infer_signature(sample, model.predict(sample)), input_example=sample.head(5),
                pip_requirements=[f"lightgbm=={package_version('lightgbm')}"])
    return TrainingRun(run_id=run.info.run_id, version=str(info.registered_model_version))


def load_model_version(config: RegistryConfig, alias: str = CHAMPION) -> RegisteredModel | None:
    """Load the registered model under `alias`, or None when the alias is not set."""
    mlflow.set_tracking_uri(config.tracking_uri)
    try:
        version = MlflowClient().get_model_version_by_alias(config.model_name, alias)
    except MlflowException:
        return None
    booster: lgb.Booster = mlflow.lightgbm.load_model(f"models:/{config.model_name}@{alias}")
    model = TrainedModel(booster=booster, features=booster.feature_name(),
                         best_iteration=booster.current_iteration())
    return RegisteredModel(model=model, name=config.model_name, version=str(version.version),
                           run_id=version.run_id)


def set_alias(config: RegistryConfig, version: str, alias: str = CHAMPION) -> None:
    """Point `alias` at a registered version."""
    mlflow.set_tracking_uri(config.tracking_uri)
    MlflowClient().set_registered_model_alias(config.model_name, alias, version)


def record_decision(run_id: str, decision: dict) -> None:
    """Attach the promotion decision to the run as tags and a JSON artifact."""
    client = MlflowClient()
    client.set_tag(run_id, "promotion", "promoted" if decision["promoted"] else "kept")
    client.set_tag(run_id, "promotion_reason", decision["reason"])
    client.log_text(run_id, json.dumps(decision, indent=2, default=str), "promotion.json")
