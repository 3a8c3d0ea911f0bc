"""params.yaml, parsed once into typed config objects; each stage gets only its own section."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from features.catalog import CATALOG, expand_catalog
from features.config import FeatureConfig, LabelConfig, SnapshotConfig, SourcesConfig
from features.kpis.config import KpiConfig
from pipelines.bench.config import BenchConfig
from pipelines.synthetic.config import check_cause_rates
from pipelines.synthetic.profiles import get_profile
from pipelines.urls import fill_references, find_literal_secrets
from pipelines.validation.config import ValidationConfig
from serving.config import DriftConfig, OutcomesConfig, ReportConfig, ScoringConfig
from training.config import EvaluationConfig, ModelConfig, RegistryConfig

WAREHOUSE_URL_ENV = "CHURN_WAREHOUSE_URL"


class ParamsError(ValueError):
    """params.yaml is unreadable or invalid; the message names the key."""


class WarehouseConfig(BaseModel):
    """The `warehouse:` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "duckdb://data/warehouse.duckdb"
    threads: int = Field(default=2, ge=1, le=1024)


class CsTeamSection(BaseModel):
    """`simulate.cs_team`: the simulated CS team's holdout share, effect window and true playbook effects
    (pipelines/synthetic/cs_team.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    holdout_share: float = Field(default=0.5, ge=0, lt=1, allow_inf_nan=False, strict=True)
    effect_days: int = Field(default=90, ge=1, le=3650, strict=True)
    effects: dict[str, float] = Field(default_factory=dict)

    @field_validator("effects", mode="before")
    @classmethod
    def _numbers(cls, value):
        if value is None:   # an `effects:` with every line commented out: the defaults
            return {}
        if not isinstance(value, dict):
            raise ValueError("a mapping of playbook name to its relative effect, e.g. {adoption_workshop: -0.3}")
        for name, effect in value.items():
            if isinstance(effect, bool) or not isinstance(effect, int | float):
                raise ValueError(f"{name}: the relative effect on the churn probability must be a number above -1 "
                                 f"and at most 1 (-0.3 = 30% lower, 0 = none), not {effect!r}")
        return value

    @model_validator(mode="after")
    def _known_playbooks(self):
        self.team()
        return self

    def team(self):
        """The generator's CsTeamConfig (raises ValueError naming the unknown playbook or the bad effect)."""
        from pipelines.synthetic.config import CsTeamConfig

        return CsTeamConfig(holdout_share=self.holdout_share, effect_days=self.effect_days, effects=self.effects)


# The generator holds a whole simulated company in memory (3,000 to 3,600 event rows per account over two years):
# more accounts than this need more memory than any laptop has. Larger warehouses are `make bench`'s, generated in
# chunks.
MAX_SIMULATED_ACCOUNTS = 100_000


class SimulateConfig(BaseModel):
    """The `simulate:` section: the synthetic warehouse `churn simulate` and `churn demo` build."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: int = Field(default=4000, ge=20, le=MAX_SIMULATED_ACCOUNTS)
    months: int = Field(default=24, ge=6)
    seed: int = 1
    start: date = date(2024, 1, 1)
    profile: str = "demo"
    causes: dict[str, float] = Field(default_factory=lambda: check_cause_rates({}))
    cs_team: CsTeamSection = Field(default_factory=lambda: CsTeamSection())
    nowcast_paths: int = Field(default=100, ge=0, le=100_000, strict=True)

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        get_profile(value)   # one line naming the unknown profile and the known ones
        return value

    @field_validator("cs_team", mode="before")
    @classmethod
    def _team_defaults(cls, value):
        return {} if value is None else value   # a `cs_team:` with every line commented out: the defaults

    @field_validator("causes", mode="before")
    @classmethod
    def _known_non_negative(cls, value):
        if value is None:
            return check_cause_rates({})
        if not isinstance(value, dict):
            raise ValueError("a mapping of cause name to rate multiplier, e.g. {support_pain: 0}")
        return check_cause_rates(value)

    def with_options(self, **options: int | None) -> SimulateConfig:
        """This section with the command line's options laid over it (`accounts=`, `months=`, `seed=`; None = not
        given, 0 is a value), checked like the file's values.

        Raises:
            ParamsError: one line per bad option, naming it (`--accounts: ...`).
        """
        given = {key: value for key, value in options.items() if value is not None}
        try:
            return SimulateConfig.model_validate(self.model_dump() | given)
        except ValidationError as exc:
            raise ParamsError("\n".join(f"--{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) \
                from None


class EvaluateSize(BaseModel):
    """One profile's warehouse in `churn evaluate --profiles`: accounts and months of history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: int = Field(ge=20, le=MAX_SIMULATED_ACCOUNTS)
    months: int = Field(ge=6)


def _default_evaluate_sizes() -> dict[str, EvaluateSize]:
    return {"demo": EvaluateSize(accounts=1500, months=18), "self_serve": EvaluateSize(accounts=1500, months=18),
            "enterprise": EvaluateSize(accounts=800, months=36)}


class EvaluateConfig(BaseModel):
    """The `evaluate:` section: the companies `churn evaluate --profiles` simulates and trains on, their sizes, and
    where each one's params file lies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profiles: dict[str, EvaluateSize] = Field(default_factory=_default_evaluate_sizes, min_length=1)
    params_dir: Path = Path("docs/profiles")

    @field_validator("profiles")
    @classmethod
    def _known_profiles(cls, value: dict[str, EvaluateSize]) -> dict[str, EvaluateSize]:
        for name in value:
            get_profile(name)
        return value


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
    outcomes: OutcomesConfig = OutcomesConfig()
    report: ReportConfig = ReportConfig()
    kpis: KpiConfig = KpiConfig()
    simulate: SimulateConfig = SimulateConfig()
    bench: BenchConfig = BenchConfig()
    evaluate: EvaluateConfig = EvaluateConfig()

    @model_validator(mode="after")
    def _health_score_features_exist(self) -> Params:
        known = {spec.name for spec in expand_catalog(CATALOG, self.features.windows_by_kind())}
        unknown = [c.feature for c in self.evaluation.health_score.measures if c.feature not in known]
        if unknown:
            raise ValueError(f"evaluation.health_score: unknown feature(s) {', '.join(unknown)} (see "
                             f"`churn features --list` for the names)")
        return self


def _describe(error: ValidationError, path: Path) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        lines.append(f"{path}: {key}: {item['msg']}")
    return "\n".join(lines)


def resolve_url(url: str, key: str, path: Path) -> str:
    """Fill `${VAR}` references in a URL from the environment; refuse a secret written in the file.

    Raises:
        ParamsError: the URL carries a password or secret query value as text, or a referenced variable is unset.
    """
    literal = find_literal_secrets(url)
    if literal:
        raise ParamsError(f"{path}: {key}: {' and '.join(literal)} is written in the file; write ${{VAR}} there "
                          f"and put the secret in the environment variable VAR" +
                          (f" (or set {WAREHOUSE_URL_ENV})" if key == "warehouse.url" else ""))
    try:
        return fill_references(url, os.environ)[0]
    except KeyError as exc:
        raise ParamsError(f"{path}: {key}: environment variable {exc.args[0]} is not set") from None


def _resolve_urls(raw: dict, path: Path) -> None:
    for section, field in (("warehouse", "url"), ("mlflow", "tracking_uri")):
        values = raw.get(section)
        if isinstance(values, dict) and isinstance(values.get(field), str):
            raw[section] = {**values, field: resolve_url(values[field], f"{section}.{field}", path)}
    if os.environ.get(WAREHOUSE_URL_ENV):
        raw["warehouse"] = {**(raw.get("warehouse") or {}), "url": os.environ[WAREHOUSE_URL_ENV]}


class _TextDatesLoader(yaml.SafeLoader):
    """YAML without its own date parsing: dates stay text for pydantic, so an impossible one (2025-02-30) is an
    error naming its key instead of a ValueError from the YAML reader. A key given twice in one mapping is an error
    too: YAML keeps the last silently, so a line pasted above the shipped entry (`tickets: null` under `sources:`)
    would do nothing."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key, mark = (key_node.tag, key_node.value), key_node.start_mark
            if key in seen:
                first = seen[key]
                where = (f"lines {first.line + 1} and {mark.line + 1}" if first.line != mark.line else
                         f"line {mark.line + 1}, columns {first.column + 1} and {mark.column + 1}")
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key_node.value!r} appears twice in one mapping ({where}); YAML would keep "
                    "the second silently: keep one", mark)
            seen[key] = mark
        return super().construct_mapping(node, deep)


_TextDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def load_params(path: Path, *overlays: Path) -> Params:
    """Read params.yaml into Params, with each overlay file laid over it in turn (a company profile's params,
    docs/profiles/); `CHURN_WAREHOUSE_URL` overrides `warehouse.url`.

    An overlay's sections are merged key by key into the ones below; a key's value (a mapping such as
    `features.ttv_targets` included) replaces the one below whole.

    Raises:
        ParamsError: a file is missing, not YAML, or a key is unknown or has a bad value (naming the last file).
    """
    raw = _read_yaml(path)
    for overlay in overlays:
        raw = merge_params(raw, _read_yaml(overlay))
    path = Path(" + ".join(map(str, (path, *overlays))))  # errors name the files laid over each other
    _resolve_urls(raw, path)
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(_describe(exc, path)) from None


def merge_params(base: dict, overlay: dict) -> dict:
    """`overlay` laid over `base`: each section merged key by key, each key's value replaced whole (so an overlay's
    `ttv_targets` or `evaluate.profiles` is the whole mapping, not added to the one below)."""
    merged = dict(base)
    for section, values in overlay.items():
        below = merged.get(section)
        merged[section] = {**below, **values} if isinstance(below, dict) and isinstance(values, dict) else values
    return merged


def _read_yaml(path: Path) -> dict:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_TextDatesLoader) or {}
    except UnicodeDecodeError:
        raise ParamsError(f"{path}: not a text file (params.yaml is UTF-8 YAML)") from None
    except IsADirectoryError:
        raise ParamsError(f"{path}: is a folder, not a params file (pass --params PATH/params.yaml)") from None
    except FileNotFoundError as exc:
        raise ParamsError(f"{path}: no such params file (pass --params PATH)") from exc
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return raw
