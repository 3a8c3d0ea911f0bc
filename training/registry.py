"""MLflow tracking and model registry: log a training run, register the model, move the `champion` alias."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from training.calibrate import Calibrator
from training.config import RegistryConfig
from training.errors import ChampionFilesMissing, RegistryError
from training.health import HealthScore
from training.train import TrainedModel

CHAMPION = "champion"


@dataclass(frozen=True)
class RegisteredModel:
    """A model version loaded from the registry."""

    model: TrainedModel
    name: str
    version: str
    run_id: str


@dataclass
class RunRecord:
    """Everything a training run logs besides the model."""

    params: dict
    metrics: dict[str, float]
    tags: dict[str, str]
    json_artifacts: dict[str, object] = field(default_factory=dict)
    text_artifacts: dict[str, str] = field(default_factory=dict)
    binary_artifacts: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingRun:
    """What a training run logged: its id and the registered version."""

    run_id: str
    version: str


def open_experiment(config: RegistryConfig) -> str:
    """Point MLflow at the tracking store and return the experiment id, creating it with its artifact root.

    Raises:
        RegistryError: the store cannot be reached or read.
    """
    path = _sqlite_path(config.tracking_uri)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)  # training may create a new local store
    _probe_database_store(config)
    mlflow.set_tracking_uri(config.tracking_uri)
    try:
        experiment = mlflow.get_experiment_by_name(config.experiment)
        if experiment is not None:
            return experiment.experiment_id
        return mlflow.create_experiment(config.experiment,
                                        artifact_location=Path(config.artifact_root).resolve().as_uri())
    except Exception as exc:  # MLflow, SQLAlchemy and HTTP errors alike: the store is broken or unreachable
        raise _store_error(config, exc) from None


class ChurnModel(mlflow.pyfunc.PythonModel):
    """The registered model: the LightGBM booster and its calibration, as one pyfunc returning probabilities.

    `mlflow.pyfunc.load_model("models:/NAME@champion").predict(frame)` gives calibrated churn probabilities in
    any process that has this package installed; `unwrap_python_model().model` gives the TrainedModel.
    """

    def load_context(self, context) -> None:
        self.model = read_model_files({name: Path(path) for name, path in context.artifacts.items()})

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> np.ndarray:
        return self.model.predict(model_input)


def write_model_files(model: TrainedModel, folder: Path) -> dict[str, str]:
    """Write the booster (LightGBM text), its calibration, the training reference distribution, the fitted
    health score, the training churn rate and the event vocabulary (JSON); return the pyfunc artifact paths by name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"booster": folder / "booster.txt", "calibration": folder / "calibration.json",
             "reference": folder / "reference.json"}
    model.booster.save_model(str(paths["booster"]))
    paths["calibration"].write_text(json.dumps(model.calibrator.to_dict()))
    paths["reference"].write_text(json.dumps(model.reference))
    if model.base_rate is not None:
        paths["training"] = folder / "training.json"
        paths["training"].write_text(json.dumps({"base_rate": model.base_rate}))
    if model.health is not None:
        paths["health"] = folder / "health.json"
        paths["health"].write_text(json.dumps(model.health.to_dict()))
    if model.vocabulary:
        paths["vocabulary"] = folder / "vocabulary.json"
        paths["vocabulary"].write_text(json.dumps(model.vocabulary))
    if model.feature_settings:
        paths["feature_settings"] = folder / "feature_settings.json"
        paths["feature_settings"].write_text(json.dumps(model.feature_settings))
    return {name: str(path) for name, path in paths.items()}


def read_model_files(paths: dict[str, Path]) -> TrainedModel:
    """The TrainedModel written by `write_model_files` (a model without a reference, health, training, vocabulary or
    feature settings file has none of what it holds)."""
    booster = lgb.Booster(model_file=str(paths["booster"]))
    calibrator = Calibrator.from_dict(json.loads(paths["calibration"].read_text()))
    reference = json.loads(paths["reference"].read_text()) if "reference" in paths else {}
    health = HealthScore.from_dict(json.loads(paths["health"].read_text())) if "health" in paths else None
    training = json.loads(paths["training"].read_text()) if "training" in paths else {}
    vocabulary = json.loads(paths["vocabulary"].read_text()) if "vocabulary" in paths else {}
    settings = json.loads(paths["feature_settings"].read_text()) if "feature_settings" in paths else {}
    return TrainedModel(booster=booster, features=booster.feature_name(),
                        best_iteration=booster.current_iteration(), calibrator=calibrator, reference=reference,
                        health=health, base_rate=training.get("base_rate"), vocabulary=vocabulary,
                        feature_settings=settings)


def log_training_run(config: RegistryConfig, model: TrainedModel, example: pd.DataFrame,
                     record: RunRecord) -> TrainingRun:
    """Log the run's params, metrics, tags and artifacts, then log and register the model.

    Args:
        example: a few rows of the feature table, logged as the model's input example and used for its signature.
    """
    experiment_id = open_experiment(config)
    with mlflow.start_run(experiment_id=experiment_id) as run, tempfile.TemporaryDirectory() as folder:
        mlflow.log_params(record.params)
        mlflow.log_metrics({k: v for k, v in record.metrics.items() if np.isfinite(v)})
        mlflow.set_tags(record.tags)
        for name, payload in record.json_artifacts.items():
            mlflow.log_text(json.dumps(payload, indent=2, default=_json_default), name)
        for name, text in record.text_artifacts.items():
            mlflow.log_text(text, name)
        for name, data in record.binary_artifacts.items():
            path = Path(folder) / "files" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            parent = str(Path(name).parent)
            mlflow.log_artifact(str(path), artifact_path=None if parent == "." else parent)
        sample = example[model.features].head(5)
        with contextlib.redirect_stderr(io.StringIO()):  # MLflow prints "Successfully registered" there
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(Path(__file__).with_name("pyfunc_entry.py")),
                registered_model_name=config.model_name,
                artifacts=write_model_files(model, Path(folder) / "model"),
                signature=infer_signature(sample, model.predict(sample)), input_example=sample,
                pip_requirements=[f"lightgbm=={package_version('lightgbm')}", f"pandas=={package_version('pandas')}",
                                  f"scikit-learn=={package_version('scikit-learn')}"])
    return TrainingRun(run_id=run.info.run_id, version=str(info.registered_model_version))


def _json_default(value):
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    return str(value)


def _sqlite_path(tracking_uri: str) -> Path | None:
    return Path(tracking_uri.removeprefix("sqlite:///")) if tracking_uri.startswith("sqlite:///") else None


def store_exists(config: RegistryConfig) -> bool:
    """False for a SQLite store whose file is not there yet (nothing was trained into it); True for other stores."""
    path = _sqlite_path(config.tracking_uri)
    return path is None or path.is_file()


_DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")


def _probe_database_store(config: RegistryConfig) -> None:
    """Connect once to a database-backed store before MLflow does: MLflow retries a failed connection ten times
    with growing pauses (close to two minutes), printing a warning each time."""
    if config.tracking_uri.split(":", 1)[0].split("+", 1)[0] not in _DATABASE_SCHEMES:
        return
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(config.tracking_uri)
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:
        raise _store_error(config, exc) from None


def _store_error(config: RegistryConfig, exc: Exception) -> RegistryError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # The message names the store's URI; the CLI redacts any password in what it prints.
    return RegistryError(f"mlflow.tracking_uri: cannot read the MLflow store {config.tracking_uri}: {detail[:300]}")


def load_model_version(config: RegistryConfig, alias: str = CHAMPION) -> RegisteredModel | None:
    """Load the registered model under `alias`, or None when the store holds no such model or alias.

    Raises:
        RegistryError: the store cannot be reached or read (a server that does not answer, a corrupt SQLite
            file), or the alias points at a version whose model files are gone.
    """
    if not store_exists(config):
        return None
    _probe_database_store(config)
    mlflow.set_tracking_uri(config.tracking_uri)
    try:
        version = MlflowClient().get_model_version_by_alias(config.model_name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise _store_error(config, exc) from None
    except Exception as exc:  # SQLAlchemy and HTTP errors: the store itself is broken or unreachable
        raise _store_error(config, exc) from None
    try:
        pyfunc = mlflow.pyfunc.load_model(f"models:/{config.model_name}@{alias}")
    except (MlflowException, OSError) as exc:
        raise ChampionFilesMissing(
            f"{config.model_name} v{version.version} ({alias}): its model files cannot be loaded from "
            f"{version.source} ({str(exc).splitlines()[0][:200]}); retrain with `churn train`, or point the alias "
            f"at a version whose files exist") from None
    return RegisteredModel(model=pyfunc.unwrap_python_model().model, name=config.model_name,
                           version=str(version.version), run_id=version.run_id)


def set_alias(config: RegistryConfig, version: str, alias: str = CHAMPION) -> None:
    """Point `alias` at a registered version."""
    mlflow.set_tracking_uri(config.tracking_uri)
    MlflowClient().set_registered_model_alias(config.model_name, alias, version)


def record_decision(run_id: str, decision: dict, text_artifacts: dict[str, str] | None = None) -> None:
    """Attach the promotion decision (who, when, from, to, why) to the run as tags and a JSON artifact, with any
    documents written after the model was registered (the model card, the report)."""
    client = MlflowClient()
    for name, text in (text_artifacts or {}).items():
        client.log_text(run_id, text, name)
    client.set_tag(run_id, "promotion", "promoted" if decision["promoted"] else "kept")
    client.set_tag(run_id, "promotion_reason", decision["reason"])
    client.log_text(run_id, json.dumps(decision, indent=2, default=str), "promotion.json")


def read_validation_metrics(config: RegistryConfig, models: list[tuple[str, str]],
                            metrics: list[str]) -> dict[tuple[str, str], dict[str, float]]:
    """The validation figures each (model name, version) was promoted on: its training run's `valid_<metric>`
    values, by (name, version). A version the store does not hold (or a store that is not there) is left out.

    Raises:
        RegistryError: the store exists but cannot be reached or read.
    """
    if not store_exists(config) or not models:
        return {}
    _probe_database_store(config)
    mlflow.set_tracking_uri(config.tracking_uri)
    client, found = MlflowClient(), {}
    for name, version in models:
        try:
            run_id = client.get_model_version(name, version).run_id
            logged = client.get_run(run_id).data.metrics
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                continue
            raise _store_error(config, exc) from None
        except Exception as exc:  # SQLAlchemy and HTTP errors: the store itself is broken or unreachable
            raise _store_error(config, exc) from None
        found[(name, version)] = {m: float(logged[f"valid_{m}"]) for m in metrics if f"valid_{m}" in logged}
    return found
