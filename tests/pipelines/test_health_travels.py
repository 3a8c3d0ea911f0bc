"""The fitted health score travels: on a warehouse with ten times the demo's activity (and, like a self-serve company,
no tickets, surveys or milestones) it still ranks churners above chance, where the fixed thresholds of the old
params.yaml call nearly every account healthy."""

from __future__ import annotations

import io

import duckdb
import pandas as pd
import pytest
import yaml
from rich.console import Console
from sklearn.metrics import roc_auc_score

from pipelines.config import load_params
from pipelines.features_run import build_feature_frame, catalog_specs, grid_dates
from pipelines.progress import Progress
from pipelines.warehouse import open_warehouse
from tests.e2e import Simulation, copy_warehouse, write_params
from training.baselines import health_risk
from training.config import EvaluationConfig
from training.dataset import split_out_of_time
from training.experiment import fit_health, health_segments

pytestmark = pytest.mark.slow

# Enough accounts for the held-out rows to hold a few hundred churners.
BUSY = Simulation(accounts=900, months=16, seed=11)
# The fixed thresholds params.yaml shipped before the score was fitted.
FIXED = [{"feature": "active_days_30d", "weight": 15, "good": 15, "bad": 3},
         {"feature": "seat_utilisation_30d", "weight": 15, "good": 0.7, "bad": 0.2},
         {"feature": "core_feature_share_30d", "weight": 10, "good": 0.8, "bad": 0.2},
         {"feature": "session_minutes_30d", "weight": 10, "good": 20, "bad": 3},
         {"feature": "onboarding_share", "weight": 10, "good": 1.0, "bad": 0.4},
         {"feature": "value_reached", "weight": 5, "good": 1, "bad": 0},
         {"feature": "open_high_priority_tickets", "weight": 10, "good": 0, "bad": 2},
         {"feature": "tickets_30d", "weight": 5, "good": 0, "bad": 4},
         {"feature": "last_nps", "weight": 15, "good": 9, "bad": 6},
         {"feature": "active_users_trend", "weight": 5, "good": 0.0, "bad": -0.4}]


def _tenfold_activity(warehouse) -> None:
    """Each event happens on ten consecutive days, each session lasting ten times as long."""
    with duckdb.connect(str(warehouse)) as con:
        con.sql("""CREATE OR REPLACE TABLE events AS
                   SELECT e.* REPLACE (e.event_at + to_days(k) AS event_at, e.duration_s * 10 AS duration_s)
                   FROM events e, range(10) t(k)
                   WHERE e.event_at + to_days(k) <= (SELECT max(event_at) FROM events)""")


def test_fitted_health_score_ranks_above_chance_on_ten_times_the_activity_where_fixed_thresholds_do_not(
        tmp_path, simulated_warehouse):
    warehouse = copy_warehouse(simulated_warehouse(BUSY), tmp_path)
    _tenfold_activity(warehouse)
    params = load_params(write_params(tmp_path, {"sources": {"tickets": None, "surveys": None, "milestones": None}}))
    quiet = Progress(Console(file=io.StringIO()))
    with open_warehouse(params, quiet, read_only=True) as wh:
        frame, _ = build_feature_frame(params, wh, grid_dates(params, wh), quiet)
    split = split_out_of_time(frame, params.model.validation_snapshots, params.model.calibration_snapshots)
    held_out = pd.concat([split.calib, split.valid])   # out of time: never seen by the fit
    assert held_out["label"].sum() > 200

    def held_out_auc(evaluation: EvaluationConfig) -> float:
        health = fit_health(split, evaluation, catalog_specs(params))
        return roc_auc_score(held_out["label"], health_risk(health.score(held_out, health_segments(held_out, health))))

    assert params.evaluation.health_score.auto and not params.evaluation.health_score.fully_pinned
    assert held_out_auc(params.evaluation) > 0.6
    fixed = EvaluationConfig.model_validate(yaml.safe_load(yaml.safe_dump({"health_score": FIXED})))
    assert held_out_auc(fixed) < 0.6
