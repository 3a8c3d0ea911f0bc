"""The model's life on a real MLflow store: the champion gate, reproducibility, a fresh process reproducing the
scores from the registry, the backtest, the training report, and directional behaviour of the trained model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.config import load_params
from training.registry import load_model_version

pytestmark = pytest.mark.slow
WEAK = {"n_estimators": 3, "num_leaves": 2, "learning_rate": 0.01}


def _write_params(root: Path, name: str, **lightgbm) -> Path:
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["warehouse"]["url"] = f"duckdb://{root}/warehouse.duckdb"
    params["mlflow"] |= {"tracking_uri": f"sqlite:///{root}/mlruns.db", "artifact_root": str(root / "mlruns")}
    params["simulate"] |= {"accounts": 400, "months": 18, "seed": 3}
    params["model"]["lightgbm"] |= lightgbm
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _churn(params: Path, *args: str, cwd: Path | None = None) -> str:
    result = CliRunner().invoke(app, ["--params", str(params), *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.fixture(scope="module")
def project(tmp_path_factory, monkeypatch_module):
    root = tmp_path_factory.mktemp("lifecycle")
    monkeypatch_module.chdir(root)   # reports/ lands in the project folder
    paths = {"default": _write_params(root, "default"), "weak": _write_params(root, "weak", **WEAK),
             "weaker": _write_params(root, "weaker", n_estimators=1, num_leaves=2, learning_rate=0.001)}
    _churn(paths["default"], "simulate")
    return root, paths


@pytest.fixture(scope="module")
def monkeypatch_module():
    patch = pytest.MonkeyPatch()
    yield patch
    patch.undo()


def _champion(root: Path) -> str:
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlruns.db")
    return str(MlflowClient().get_model_version_by_alias("churn-lightgbm", "champion").version)


def _decision(root: Path, version: str) -> dict:
    run_id = MlflowClient().get_model_version("churn-lightgbm", version).run_id
    folder = root / f"decision-{version}"
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="promotion.json", dst_path=str(folder))
    return json.loads(Path(path).read_text())


def test_the_gate_moves_the_champion_only_for_a_better_or_forced_challenger(project):
    root, paths = project
    assert "no champion yet" in _churn(paths["weak"], "train") and _champion(root) == "1"
    assert "beats champion" in _churn(paths["default"], "train") and _champion(root) == "2"
    assert "champion kept" in _churn(paths["default"], "train") and _champion(root) == "2"   # equal is not better
    assert "champion kept" in _churn(paths["weaker"], "train") and _champion(root) == "2"
    assert "promotion forced" in _churn(paths["weaker"], "train", "--force-promote") and _champion(root) == "5"
    moves = [_decision(root, v) for v in ("2", "4", "5")]
    assert [m["promoted"] for m in moves] == [True, False, True]
    assert moves[0]["from_version"] == "1" and moves[0]["to_version"] == "2" and moves[0]["by"] and moves[0]["at"]
    _churn(paths["default"], "train", "--force-promote")   # leave the good model as champion for what follows


def test_same_data_params_and_seed_give_identical_metrics(project):
    root, _ = project
    client = MlflowClient()
    runs = [client.get_run(client.get_model_version("churn-lightgbm", v).run_id) for v in ("2", "3")]
    first, second = (r.data.metrics for r in runs)
    assert first == second and first["valid_roc_auc"] > 0.6


def test_a_fresh_process_reproduces_the_scores_from_the_registry(project):
    root, paths = project
    _churn(paths["default"], "score")
    _churn(paths["default"], "features")
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        scores = con.sql("SELECT account_id, churn_probability, health_score FROM churn_scores").df()
        as_of = con.sql("SELECT max(as_of) FROM churn_scores").fetchall()[0][0]
        features = con.sql(f"SELECT * FROM churn_features WHERE as_of = DATE '{as_of}'").df()
    assert scores.health_score.between(0, 100).all()
    features.to_parquet(root / "rows.parquet")
    code = (f"import mlflow, pandas as pd; mlflow.set_tracking_uri('sqlite:///{root}/mlruns.db'); "
            f"m = mlflow.pyfunc.load_model('models:/churn-lightgbm@champion'); "
            f"rows = pd.read_parquet('{root}/rows.parquet'); "
            f"pd.DataFrame({{'account_id': rows.account_id, 'p': m.predict(rows)}}).to_parquet('{root}/p.parquet')")
    subprocess.run([sys.executable, "-c", code], check=True, env={"MLFLOW_DISABLE_TELEMETRY": "true",
                                                                  "PATH": "/usr/bin:/bin"})
    fresh = pd.read_parquet(root / "p.parquet").merge(scores, on="account_id")
    assert len(fresh) == len(scores)
    np.testing.assert_allclose(fresh.p, fresh.churn_probability, rtol=0, atol=1e-12)


def test_backtest_reports_each_fold_and_the_spread(project):
    _, paths = project
    out = _churn(paths["default"], "train", "--backtest", "2")
    assert "backtest" in out and "2 folds" in out
    assert "backtest lightgbm" in out and "±" in out


def test_the_training_report_is_self_contained(project):
    root, _ = project
    reports = sorted((root / "reports").glob("training_*.html"))
    assert reports
    html = reports[-1].read_text()
    for part in ("Model against baselines", "health_score", "logistic_regression", "Top global drivers",
                 "data:image/png;base64,", "Calibration of the model", "By segment"):
        assert part in html, part
    assert "http://" not in html and "https://" not in html


@pytest.fixture(scope="module")
def champion_rows(project):
    root, paths = project
    params = load_params(paths["default"])
    model = load_model_version(params.mlflow).model
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        rows = con.sql("SELECT * FROM churn_features WHERE label IS NOT NULL").df()
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


def test_a_detractor_response_never_lowers_risk(champion_rows):
    model, rows = champion_rows
    detractor = rows.assign(last_nps=np.minimum(rows.last_nps.fillna(10), 3.0), last_nps_category="detractor")
    assert (model.predict(detractor) >= model.predict(rows) - 1e-12).all()


def _published(root: Path) -> pd.DataFrame:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        return con.sql("SELECT * FROM churn_scores ORDER BY as_of, account_id").df()


def test_an_as_of_outside_the_data_is_refused_and_nothing_is_written(project):
    root, paths = project
    before = _published(root)
    result = CliRunner().invoke(app, ["--params", str(paths["default"]), "score", "--as-of", "2031-01-01"])
    assert result.exit_code == 1 and "--as-of 2031-01-01: outside the data" in result.output
    assert "Traceback" not in result.output
    pd.testing.assert_frame_equal(_published(root), before)


def test_a_missing_champion_alias_is_a_clear_error(project):
    root, paths = project
    before = _published(root)
    params = yaml.safe_load(paths["default"].read_text())
    params["mlflow"]["model_name"] = "never-trained"
    path = root / "never.yaml"
    path.write_text(yaml.safe_dump(params))
    result = CliRunner().invoke(app, ["--params", str(path), "score"])
    assert result.exit_code == 1 and "model never-trained: no version has the alias 'champion'" in result.output
    assert "Traceback" not in result.output
    pd.testing.assert_frame_equal(_published(root), before)
