"""What the report stage gathers for the managers' report: the scores of an as-of (and the previous one), account
attributes, the portfolio's exact explanations and the facts of the model that wrote the scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from features.catalog import FeatureSpec
from serving.explain import Benchmarks
from training.calibrate import Calibrator


@dataclass
class ModelFacts:
    """What the model-quality panel says about the model version that wrote the scores."""

    name: str
    version: str
    run_id: str | None = None
    trained_at: str | None = None
    window: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    calibration_png: bytes | None = None
    calibration_method: str | None = None
    data_end: str | None = None
    capacity: int | None = None


@dataclass
class Portfolio:
    """Exact explanations of the scored accounts: TreeSHAP contributions (features + bias, log-odds) and feature
    values, both indexed by account_id, and the calibrator turning log-odds into the published probability."""

    contributions: pd.DataFrame
    values: pd.DataFrame
    calibrator: Calibrator


@dataclass
class LoopFacts:
    """What `churn outcomes` wrote and what the scorings still wait for: the playbook effects and missed churns (None
    when the table does not exist), the as-ofs churn_model_performance judged (None without it), and the scored
    as-ofs whose outcome is known at the data's end or pending (as-of, known from)."""

    effects: pd.DataFrame | None = None
    missed: pd.DataFrame | None = None
    judged: list[date] | None = None
    matured: list[date] = field(default_factory=list)
    pending: list[tuple[date, date]] = field(default_factory=list)
    confidence: float = 0.95
    min_arm_accounts: int = 20
    # On a simulated warehouse, each playbook's true effect (pipelines.synthetic.oracle.true_playbook_effects,
    # indexed by playbook: true_effect, true_difference, hazard_effect); None elsewhere.
    true_effects: pd.DataFrame | None = None


@dataclass
class ReportInputs:
    """What the scorer wrote for the as-of (and the previous one), account attributes and the model's facts."""

    as_of: date
    scores: pd.DataFrame
    drivers: pd.DataFrame
    attributes: pd.DataFrame
    specs: dict[str, FeatureSpec]
    tier_names: list[str]
    previous_as_of: date | None = None
    # How the tiers were drawn, in one sentence (serving.score.describe_tiers); stated under the headline.
    tier_rule: str = ""
    previous_scores: pd.DataFrame | None = None
    previous_drivers: pd.DataFrame | None = None
    portfolio: Portfolio | None = None
    model: ModelFacts | None = None
    benchmarks: Benchmarks | None = None
    horizon_days: int | None = None
    notes: list[str] = field(default_factory=list)
    # The rows of churn_kpis (None when `churn kpis` has not run) and the days of their time-to-value curves.
    kpis: pd.DataFrame | None = None
    kpi_days: list[int] = field(default_factory=lambda: [7, 14, 30, 60, 90])
    # The closed loop: playbook effects, missed churns and pending scorings (None: not read, as without outcomes).
    loop: LoopFacts | None = None

    @property
    def top_tier(self) -> str:
        return self.tier_names[0]
