"""The whole pipeline and the model's life on a real MLflow store: simulate → train → score (twice) → features, the
champion gate, reproducibility, a fresh process reproducing the scores from the registry, the backtest, the training
report, and directional behaviour of the trained model.

The module simulates once and trains one sequence (`history`), which the gate is checked on; it leaves the good
model champion. `scored` scores and builds the feature table with it. Each test asks for the stage it needs, so any
order works; the tests that add to the project leave what the others check as it was (scoring the same as-of again
and the refusals write the same rows or none). The test that changes the feature set has a project of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines.config import load_params
from tests.e2e import MEDIUM, TINY, Project, churn
from training.registry import load_model_version, set_alias

pytestmark = pytest.mark.slow
WEAK = {"n_estimators": 3, "num_leaves": 2, "learning_rate": 0.01}


@dataclass(frozen=True)
class Lifecycle:
    project: Project
    weak: Path

    @property
    def default(self) -> Path:
        return self.project.params

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.project.tracking_uri)


@pytest.fixture(scope="module")
def lifecycle(make_project) -> Lifecycle:
    """A simulated warehouse and two params files that differ only in the strength of LightGBM."""
    project = make_project(simulation=MEDIUM, name="lifecycle")
    return Lifecycle(project, weak=project.variant("weak.yaml", {"model.lightgbm": WEAK}))


@dataclass(frozen=True)
class Step:
    output: str
    champion: str   # the version holding the alias after the step


@pytest.fixture(scope="module")
def history(lifecycle) -> list[Step]:
    """Train weak (v1), default (v2), default again with a two-fold backtest (v3), weak forced (v4), recording what
    each printed and the champion after it; then the champion alias goes back to v2 (the default model) for what
    follows, as the registry's own `set_alias` moves it. A worse challenger kept out is the gate's unit test
    (tests/training): here the equal one is kept out."""
    steps = []
    for params, *options in ((lifecycle.weak,), (lifecycle.default,), (lifecycle.default, "--backtest", "2"),
                             (lifecycle.weak, "--force-promote")):
        output = churn(params, "train", *options)
        steps.append(Step(output, _champion(lifecycle)))
    set_alias(load_params(lifecycle.default).mlflow, "2")
    return steps


def _champion(lifecycle: Lifecycle) -> str:
    return str(lifecycle.client.get_model_version_by_alias("churn-lightgbm", "champion").version)


def _decision(lifecycle: Lifecycle, version: str) -> dict:
    root, uri = lifecycle.project.root, lifecycle.project.tracking_uri
    run_id = lifecycle.client.get_model_version("churn-lightgbm", version).run_id
    folder = root / f"decision-{version}"
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="promotion.json", dst_path=str(folder),
                                               tracking_uri=uri)
    return json.loads(Path(path).read_text())


def test_the_gate_moves_the_champion_only_for_a_better_or_forced_challenger(lifecycle, history):
    weak, better, equal, forced = history
    assert "no champion yet" in weak.output and weak.champion == "1"
    assert "beats champion" in better.output and better.champion == "2"
    assert "champion kept" in equal.output and equal.champion == "2"   # equal is not better
    assert "promotion forced" in forced.output and forced.champion == "4"
    moves = [_decision(lifecycle, v) for v in ("2", "3", "4")]
    assert [m["promoted"] for m in moves] == [True, False, True]
    assert moves[0]["from_version"] == "1" and moves[0]["to_version"] == "2" and moves[0]["by"] and moves[0]["at"]


def test_same_data_params_and_seed_give_identical_metrics(lifecycle, history):
    client = lifecycle.client
    runs = [client.get_run(client.get_model_version("churn-lightgbm", v).run_id) for v in ("2", "3")]
    first, second = (r.data.metrics for r in runs)
    # v3 ran a backtest beside its training: its metrics are logged besides the model's, which it leaves as they were.
    backtest = {k for k in second if k.startswith("backtest_")}
    assert backtest and not any(k.startswith("backtest_") for k in first)
    second = {k: v for k, v in second.items() if k not in backtest}
    assert set(first) == set(second) and first["valid_roc_auc"] > 0.6
    # The model's metrics are identical. The logistic baseline reads raw feature values, whose last bits follow the
    # order of DuckDB's parallel float sums (session minutes, rates): its metrics agree to 7 significant digits (the
    # binned calibration error moved in the 9th).
    logistic = {k for k in first if "logistic_regression" in k}
    assert {k: first[k] for k in set(first) - logistic} == {k: second[k] for k in set(second) - logistic}
    assert {k: second[k] for k in logistic} == pytest.approx({k: first[k] for k in logistic}, rel=1e-7)


@pytest.fixture(scope="module")
def scored(lifecycle, history) -> Lifecycle:
    """The history's champion (the default model) has scored the latest as-of, and the feature table is built."""
    churn(lifecycle.default, "score")
    churn(lifecycle.default, "features")
    return lifecycle


def test_a_fresh_process_reproduces_the_scores_from_the_registry(scored):
    project = scored.project
    root = project.root
    scores = project.query("SELECT account_id, churn_probability, health_score FROM churn_scores")
    as_of = project.query("SELECT max(as_of) AS as_of FROM churn_scores").as_of[0]
    features = project.query(f"SELECT * FROM churn_features WHERE as_of = DATE '{as_of:%Y-%m-%d}'")
    assert scores.health_score.between(0, 100).all()
    features.to_parquet(root / "rows.parquet")
    code = (f"import mlflow, pandas as pd; mlflow.set_tracking_uri('{project.tracking_uri}'); "
            f"m = mlflow.pyfunc.load_model('models:/churn-lightgbm@champion'); "
            f"rows = pd.read_parquet('{root}/rows.parquet'); "
            f"pd.DataFrame({{'account_id': rows.account_id, 'p': m.predict(rows)}}).to_parquet('{root}/p.parquet')")
    subprocess.run([sys.executable, "-c", code], check=True, env={"MLFLOW_DISABLE_TELEMETRY": "true",
                                                                  "PATH": "/usr/bin:/bin"})
    fresh = pd.read_parquet(root / "p.parquet").merge(scores, on="account_id")
    assert len(fresh) == len(scores)
    np.testing.assert_allclose(fresh.p, fresh.churn_probability, rtol=0, atol=1e-12)


def test_the_model_sits_below_the_fair_ceiling_and_scores_every_active_account_the_same_twice(history, scored):
    def roc_auc(name: str) -> float:
        return float(next(line for line in history[1].output.splitlines() if line.strip().startswith(name))
                     .split(name)[1].split()[0])

    # The fair ceiling sits between the model and the oracle that knows the future (a fixed seed: no flakiness).
    hindsight, nowcast, model = roc_auc("hindsight oracle"), roc_auc("nowcast oracle"), roc_auc("lightgbm (calibrated)")
    assert model < nowcast < hindsight and nowcast > 0.6

    project = scored.project
    scores = project.query("SELECT * FROM churn_scores")
    active = project.query(f"""
        SELECT COUNT(DISTINCT account_id) AS n FROM subscriptions
        WHERE start_at <= DATE '{scores.as_of[0]:%Y-%m-%d}' AND NOT COALESCE(is_trial, false)
          AND (end_at IS NULL OR end_at > DATE '{scores.as_of[0]:%Y-%m-%d}')""").n[0]
    assert len(scores) == active and scores.account_id.is_unique
    assert scores.churn_probability.between(0, 1).all()
    assert (scores.model_version == "2").all() and scores.top_reasons.str.len().gt(0).any()

    project.churn("score")
    again = project.query("SELECT * FROM churn_scores")
    pd.testing.assert_frame_equal(again.drop(columns="scored_at"), scores.drop(columns="scored_at"))
    assert len(project.query("SELECT * FROM churn_scores_latest")) == len(scores)
    # A re-run replaces the drivers: one row per account and feature, each cause rank once.
    drivers = project.query("SELECT account_id, as_of, feature, rank, role FROM churn_score_drivers")
    assert not drivers.duplicated(["account_id", "as_of", "feature"]).any()
    assert not drivers.dropna(subset=["rank"]).duplicated(["account_id", "as_of", "rank"]).any()
    assert set(drivers.role) == {"cause", "context"} and drivers[drivers.role == "context"]["rank"].isna().all()


def test_features_writes_the_feature_table(scored):
    table = scored.project.query("SELECT * FROM churn_features")
    assert not table.duplicated(["account_id", "as_of"]).any()
    assert {"label", "mrr", "active_users_30d", "events_trend", "open_tickets", "plan", "last_nps_category",
            "onboarding_share"} <= set(table.columns)
    assert set(table.plan.dropna()) <= {"Starter", "Growth", "Scale", "Enterprise", "Add-on"}
    assert table.label.notna().any() and table.label.isna().any()


def test_features_after_a_params_change_rebuild_the_grid_and_refuse_one_as_of(make_project):
    """The feature table's columns follow the params: a grid run with another window rebuilds it whole (no column
    or as-of left from the old set), and one as-of with the old params is then refused rather than mixed in. Its
    own project: the rebuilt table is not the one the champion was trained on."""
    project = make_project(simulation=TINY, name="feature_set")
    project.churn("features")
    before = project.query("SELECT * FROM churn_features")
    wider = project.variant("wider.yaml", {"features": {"windows": [7, 30, 90, 180]}})

    assert "(rebuilt: its columns were another feature set's)" in churn(wider, "features")
    rebuilt = project.query("SELECT * FROM churn_features")
    assert {"active_days_180d", "events_180d"} <= set(rebuilt.columns) and set(before.columns) < set(rebuilt.columns)
    # A 180-day window needs more history, so its grid starts later: no row of an older as-of is left behind.
    assert set(rebuilt.as_of) < set(before.as_of) and not rebuilt.duplicated(["account_id", "as_of"]).any()

    refused = project.churn("features", "--as-of", f"{before.as_of.max():%Y-%m-%d}", expect=1)
    assert "error: churn_features: holds column(s) these params do not compute: active_days_180d" in refused
    assert "without --as-of to rebuild it" in refused
    pd.testing.assert_frame_equal(project.query("SELECT * FROM churn_features"), rebuilt)


def test_backtest_reports_each_fold_and_the_spread(history):
    out = history[2].output   # default params again, with --backtest 2: a tie, so the gate keeps the champion
    assert "backtest" in out and "2 folds" in out
    assert "backtest lightgbm" in out and "±" in out
    assert "champion kept" in out


def test_the_training_report_is_self_contained(lifecycle, history):
    reports = sorted((lifecycle.project.root / "reports").glob("training_*.html"))
    assert reports
    html = reports[-1].read_text()
    for part in ("Model against baselines", "health_score", "logistic_regression", "Top global drivers",
                 "data:image/png;base64,", "Calibration of the model", "By segment"):
        assert part in html, part
    assert "http://" not in html and "https://" not in html
    assert "In the wild" in html and "No scoring has been judged yet: `churn outcomes` writes" in html


@pytest.fixture(scope="module")
def champion_rows(scored):
    model = load_model_version(load_params(scored.default).mlflow).model
    rows = scored.project.query("SELECT * FROM churn_features WHERE label IS NOT NULL")
    return model, rows.sample(400, random_state=0).reset_index(drop=True)


def test_fewer_active_users_never_lowers_risk(champion_rows):
    model, rows = champion_rows
    fewer = rows.copy()
    for column in [c for c in rows.columns if c.startswith("active_users_") and c.endswith("d")]:
        fewer[column] = np.floor(rows[column] / 2)
    assert (model.predict(fewer) >= model.predict(rows) - 1e-12).all()


def test_an_open_high_priority_ticket_never_lowers_risk(champion_rows):
    model, rows = champion_rows
    more = rows.assign(open_tickets=rows.open_tickets + 1,
                       open_high_priority_tickets=rows.open_high_priority_tickets + 1)
    assert (model.predict(more) >= model.predict(rows) - 1e-12).all()


def test_a_lower_nps_score_never_lowers_risk(champion_rows):
    # last_nps is constrained (direction down); its category is a categorical, which LightGBM cannot constrain, so
    # it is held as it was: the promise is the catalog's, feature by feature.
    model, rows = champion_rows
    answered = rows[rows.last_nps.notna()]
    lower = answered.assign(last_nps=np.minimum(answered.last_nps, 3.0))
    assert len(answered) > 0 and (lower.last_nps < answered.last_nps).any()
    assert (model.predict(lower) >= model.predict(answered) - 1e-12).all()


def _published(project: Project) -> pd.DataFrame:
    return project.query("SELECT * FROM churn_scores ORDER BY as_of, account_id")


def test_an_as_of_outside_the_data_is_refused_and_nothing_is_written(scored):
    project = scored.project
    before = _published(project)
    output = project.churn("score", "--as-of", "2031-01-01", expect=1)
    assert "--as-of 2031-01-01: outside the data" in output
    assert "Traceback" not in output
    pd.testing.assert_frame_equal(_published(project), before)


def test_a_missing_champion_alias_is_a_clear_error(scored):
    project = scored.project
    before = _published(project)
    path = project.variant("never.yaml", {"mlflow": {"model_name": "never-trained"}})
    output = churn(path, "score", expect=1)
    assert "model never-trained: no version has the alias 'champion'" in output
    assert "Traceback" not in output
    pd.testing.assert_frame_equal(_published(project), before)
