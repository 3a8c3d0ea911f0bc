"""The whole pipeline on a small simulated warehouse: simulate → train → score (twice) → features."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from pipelines.cli import app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A params file pointing a small synthetic warehouse and an MLflow store into a temporary folder."""
    root = tmp_path_factory.mktemp("project")
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["warehouse"]["url"] = f"duckdb://{root}/warehouse.duckdb"
    params["mlflow"] |= {"tracking_uri": f"sqlite:///{root}/mlruns.db", "artifact_root": str(root / "mlruns")}
    params["simulate"] |= {"accounts": 400, "months": 18, "seed": 11}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def churn(project: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["--params", str(project / "params.yaml"), *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def query(project: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).df()


def test_simulate_train_score_end_to_end(project):
    churn(project, "simulate")
    trained = churn(project, "train")
    assert "no champion yet" in trained and "oracle" in trained
    oracle = float(next(line for line in trained.splitlines() if "oracle (simulation)" in line).split()[-1])
    assert oracle > 0.6

    churn(project, "score")
    scores = query(project, "SELECT * FROM churn_scores")
    active = query(project, f"""
        SELECT COUNT(DISTINCT account_id) AS n FROM subscriptions
        WHERE start_at <= DATE '{scores.as_of[0]:%Y-%m-%d}' AND NOT COALESCE(is_trial, false)
          AND (end_at IS NULL OR end_at > DATE '{scores.as_of[0]:%Y-%m-%d}')""").n[0]
    assert len(scores) == active and scores.account_id.is_unique
    assert scores.churn_probability.between(0, 1).all()
    assert (scores.model_version == "1").all() and scores.top_reasons.str.len().gt(0).any()

    churn(project, "score")
    again = query(project, "SELECT * FROM churn_scores")
    pd.testing.assert_frame_equal(again.drop(columns="scored_at"), scores.drop(columns="scored_at"))
    assert len(query(project, "SELECT * FROM churn_scores_latest")) == len(scores)
    drivers = query(project, "SELECT account_id, as_of, rank, COUNT(*) AS n FROM churn_score_drivers GROUP BY ALL")
    assert drivers.n.max() == 1


def test_retraining_the_same_data_reproduces_metrics_and_keeps_the_champion(project):
    second = churn(project, "train")
    assert "champion kept" in second and "gain +0.0000" in second


def test_features_writes_the_feature_table(project):
    churn(project, "features")
    table = query(project, "SELECT * FROM churn_features")
    assert not table.duplicated(["account_id", "as_of"]).any()
    assert {"label", "mrr", "active_users_30d", "events_trend", "open_tickets", "plan", "last_nps_category",
            "onboarding_share"} <= set(table.columns)
    assert set(table.plan.dropna()) <= {"Starter", "Growth", "Scale", "Enterprise", "Add-on"}
    assert table.label.notna().any() and table.label.isna().any()
