"""params.yaml, parsed once into typed config objects; each stage gets only its own section."""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.config import FeatureConfig, LabelConfig, SnapshotConfig, SourcesConfig
from pipelines.bench.config import BenchConfig
from pipelines.validation.config import ValidationConfig
from serving.config import DriftConfig, ReportConfig, ScoringConfig
from training.config import EvaluationConfig, ModelConfig, RegistryConfig

WAREHOUSE_URL_ENV = "CHURN_WAREHOUSE_URL"


class ParamsError(ValueError):
    """params.yaml is unreadable or invalid; the message names the key."""


class WarehouseConfig(BaseModel):
    """The `warehouse:` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "duckdb://data/warehouse.duckdb"
    threads: int = Field(default=2, ge=1)


class SimulateConfig(BaseModel):
    """The `simulate:` section: the synthetic warehouse `churn simulate` and `churn demo` build."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: int = Field(default=1500, ge=20)
    months: int = Field(default=24, ge=6)
    seed: int = 7
    start: date = date(2024, 1, 1)


class ScoringSection(ScoringConfig):
    """The `scoring:` section: the scorer's settings and its drift guard."""

    drift: DriftConfig = DriftConfig()


class Params(BaseModel):
    """All of params.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warehouse: WarehouseConfig = WarehouseConfig()
    validation: ValidationConfig = ValidationConfig()
    sources: SourcesConfig = Field(default_factory=dict)
    snapshots: SnapshotConfig = SnapshotConfig()
    label: LabelConfig = LabelConfig()
    features: FeatureConfig = FeatureConfig()
    model: ModelConfig = ModelConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    mlflow: RegistryConfig = RegistryConfig()
    scoring: ScoringSection = ScoringSection()
    report: ReportConfig = ReportConfig()
    simulate: SimulateConfig = SimulateConfig()
    bench: BenchConfig = BenchConfig()


def _describe(error: ValidationError, path: Path) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        lines.append(f"{path}: {key}: {item['msg']}")
    return "\n".join(lines)


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PASSWORD = re.compile(r"://[^:/@]+:([^@]+)@")


def resolve_warehouse_url(url: str, path: Path) -> str:
    """Fill `${VAR}` references in the warehouse URL from the environment; refuse a password written in the file.

    Raises:
        ParamsError: a referenced variable is unset, or the URL carries a literal password.
    """
    literal = _PASSWORD.search(url)
    if literal and not _ENV_REFERENCE.fullmatch(literal.group(1)):
        raise ParamsError(f"{path}: warehouse.url: a password is written in the file; use ${{VAR}} in the URL and "
                          f"put the password in the environment variable VAR (or set {WAREHOUSE_URL_ENV})")
    missing = [name for name in _ENV_REFERENCE.findall(url) if name not in os.environ]
    if missing:
        raise ParamsError(f"{path}: warehouse.url: environment variable {', '.join(missing)} is not set")
    return _ENV_REFERENCE.sub(lambda m: os.environ[m.group(1)], url)


def load_params(path: Path) -> Params:
    """Read params.yaml into Params; `CHURN_WAREHOUSE_URL` overrides `warehouse.url`.

    Raises:
        ParamsError: the file is missing, not YAML, or a key is unknown or has a bad value.
    """
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise ParamsError(f"{path}: no such params file (pass --params PATH)") from exc
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    warehouse = raw.get("warehouse") or {}
    if os.environ.get(WAREHOUSE_URL_ENV):
        raw["warehouse"] = {**warehouse, "url": os.environ[WAREHOUSE_URL_ENV]}
    elif isinstance(warehouse, dict) and isinstance(warehouse.get("url"), str):
        raw["warehouse"] = {**warehouse, "url": resolve_warehouse_url(warehouse["url"], path)}
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(_describe(exc, path)) from None
