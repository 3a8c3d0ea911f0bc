"""Guards around publishing: drift stops a scoring, names are never injected, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import duckdb
import mlflow
import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.config import ParamsError, load_params

pytestmark = pytest.mark.slow


def _params(root: Path, **overrides) -> Path:
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["warehouse"]["url"] = f"duckdb://{root}/warehouse.duckdb"
    params["mlflow"] |= {"tracking_uri": f"sqlite:///{root}/mlruns.db", "artifact_root": str(root / "mlruns")}
    params["simulate"] |= {"accounts": 300, "months": 16, "seed": 9}
    for section, values in overrides.items():
        params[section] = (params.get(section) or {}) | values
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _churn(params: Path, *args: str):
    return CliRunner().invoke(app, ["--params", str(params), *args])


def test_drift_beyond_the_stop_threshold_refuses_to_publish(tmp_path):
    params = _params(tmp_path)
    for step in (["simulate"], ["train"], ["score"]):
        assert _churn(params, *step).exit_code == 0
    database = str(tmp_path / "warehouse.duckdb")
    with duckdb.connect(database) as con:
        before = con.sql("SELECT * FROM churn_scores ORDER BY account_id").df()
        con.execute("UPDATE subscriptions SET mrr = mrr * 20, seats = seats * 10")   # a broken upstream load

    refused = _churn(params, "score")
    assert refused.exit_code == 1
    assert "drift:" in refused.output and "scores not published" in refused.output and "mrr" in refused.output
    with duckdb.connect(database) as con:
        assert con.sql("SELECT * FROM churn_scores ORDER BY account_id").df().equals(before)
        drift = con.sql("SELECT feature, status FROM churn_drift").df()
    assert {"mrr", "seats"} <= set(drift[drift.status == "stop"].feature)

    allowed = _churn(params, "score", "--allow-drift")
    assert allowed.exit_code == 0, allowed.output
    with duckdb.connect(database, read_only=True) as con:
        assert con.sql("SELECT max(mrr) FROM churn_scores").fetchone()[0] > before.mrr.max()


def test_an_injected_table_name_is_rejected_and_nothing_is_dropped(tmp_path):
    params = _params(tmp_path)
    assert _churn(params, "simulate").exit_code == 0
    bad = yaml.safe_load(params.read_text())
    for attempt in ({"accounts": {"table": "accounts; DROP TABLE events"}},
                    {"events": {"table": "events", "columns": {"event_at": "event_at; DROP TABLE events"}}},
                    {"events": {"sql": "SELECT * FROM events; DROP TABLE events"}},
                    {"events": {"sql": "DROP TABLE events"}}):
        params.write_text(yaml.safe_dump(bad | {"sources": {**bad["sources"], **attempt}}))
        result = _churn(params, "validate")
        assert result.exit_code == 1 and "sources." in result.output and "Traceback" not in result.output
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM events").fetchone()[0] > 0


def test_passwords_come_from_the_environment_and_never_show(tmp_path, monkeypatch):
    path = tmp_path / "params.yaml"
    path.write_text("warehouse:\n  url: postgres://analyst:hunter2@127.0.0.1:9/db\n")
    with pytest.raises(ParamsError, match="a password is written in the file") as error:
        load_params(path)
    assert "hunter2" not in str(error.value)

    path.write_text("warehouse:\n  url: postgres://analyst:${CHURN_DB_PASSWORD}@127.0.0.1:9/db\n")
    with pytest.raises(ParamsError, match="CHURN_DB_PASSWORD is not set"):
        load_params(path)
    monkeypatch.setenv("CHURN_DB_PASSWORD", "s3cr3t-value")
    assert load_params(path).warehouse.url == "postgres://analyst:s3cr3t-value@127.0.0.1:9/db"
    result = _churn(path, "validate")   # nothing listens on port 9: the error must not show the password
    assert result.exit_code == 1 and "cannot open" in result.output and "s3cr3t-value" not in result.output


def test_training_runs_log_no_connection_string(tmp_path, monkeypatch):
    params = _params(tmp_path)
    monkeypatch.setenv("CHURN_WAREHOUSE_URL", f"duckdb://{tmp_path}/warehouse.duckdb")
    for step in (["simulate"], ["train"]):
        assert _churn(params, *step).exit_code == 0
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns.db")
    run = MlflowClient().search_runs([MlflowClient().get_experiment_by_name("churn").experiment_id])[0]
    logged = " ".join(map(str, [*run.data.params.values(), *run.data.tags.values()]))
    assert "duckdb://" not in logged and str(tmp_path) not in logged
