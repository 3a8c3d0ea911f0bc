"""Guards around publishing and the MLflow store: drift stops a scoring, names are never injected, secrets never
shown, and a broken store or champion, or text that looks like console markup, gives one clear line and exit 1.

The module trains one champion on a small simulated warehouse (`trained`), with the warehouse URL passed the way a
deployment passes a connection string; the tests that change a warehouse or a store change their own copy of it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines.config import ParamsError, load_params
from tests.e2e import SMALL, WAREHOUSE, Project, churn, invoke, write_params

pytestmark = pytest.mark.slow


def _write_params(root: Path, warehouse: Path, **changes) -> Path:
    """Params with the MLflow store (and reports) in `root`, on `warehouse`."""
    return write_params(root, {"warehouse.url": f"duckdb://{warehouse}",
                               "report.dir": str(root / "reports"),
                               "validation.data_docs_dir": str(root / "validation"), **changes})


def _one_error_line(result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def trained(make_project) -> Project:
    """A small simulated warehouse and its champion, trained with the warehouse URL in CHURN_WAREHOUSE_URL."""
    project = make_project(simulation=SMALL, name="guards")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHURN_WAREHOUSE_URL", f"duckdb://{project.warehouse}")
        output = project.churn("train")
    assert "type hints" not in output.lower()  # MLflow's warning had a cause: fixed, not filtered
    return project


@pytest.fixture
def store(trained, tmp_path) -> Path:
    """A copy of the trained store, its own params file pointing at it (same warehouse)."""
    root = tmp_path / "copy"
    root.mkdir()
    shutil.copy(trained.root / "mlruns.db", root / "mlruns.db")
    _write_params(root, trained.warehouse)
    return root


def test_drift_beyond_the_stop_threshold_refuses_to_publish(trained, make_project, tmp_path):
    # A copy of the simulated warehouse, scored with the module's champion.
    store = {"tracking_uri": trained.tracking_uri, "artifact_root": str(trained.root / "mlruns")}
    project = make_project({"mlflow": store}, simulation=SMALL, root=tmp_path)
    project.churn("score")
    database = str(project.warehouse)
    with duckdb.connect(database) as con:
        before = con.sql("SELECT * FROM churn_scores ORDER BY account_id").df()
        con.execute("UPDATE subscriptions SET mrr = mrr * 20, seats = seats * 10")   # a broken upstream load

    refused = project.churn("score", expect=1)
    assert "drift:" in refused and "scores not published" in refused and "mrr" in refused
    with duckdb.connect(database) as con:
        assert con.sql("SELECT * FROM churn_scores ORDER BY account_id").df().equals(before)
        drift = con.sql("SELECT feature, status FROM churn_drift").df()
    assert {"mrr", "seats"} <= set(drift[drift.status == "stop"].feature)

    project.churn("score", "--allow-drift")
    with duckdb.connect(database, read_only=True) as con:
        assert con.sql("SELECT max(mrr) FROM churn_scores").fetchone()[0] > before.mrr.max()


def test_an_injected_table_name_is_rejected_and_nothing_is_dropped(make_project, tmp_path):
    project = make_project(simulation=SMALL, root=tmp_path)
    for attempt in ({"accounts": {"table": "accounts; DROP TABLE events"}},
                    {"events": {"table": "events", "columns": {"event_at": "event_at; DROP TABLE events"}}},
                    {"events": {"sql": "SELECT * FROM events; DROP TABLE events"}},
                    {"events": {"sql": "DROP TABLE events"}}):
        output = churn(project.variant("injected.yaml", {"sources": attempt}), "validate", expect=1)
        assert "sources." in output and "Traceback" not in output
    assert project.query("SELECT count(*) AS n FROM events").n[0] > 0


def test_passwords_come_from_the_environment_and_never_show(tmp_path, monkeypatch):
    path = tmp_path / "params.yaml"
    path.write_text("warehouse:\n  url: postgres://analyst:hunter2@127.0.0.1:9/db\n")
    with pytest.raises(ParamsError, match="the password is written in the file") as error:
        load_params(path)
    assert "hunter2" not in str(error.value)

    path.write_text("warehouse:\n  url: postgres://analyst:${CHURN_DB_PASSWORD}@127.0.0.1:9/db\n")
    with pytest.raises(ParamsError, match="CHURN_DB_PASSWORD is not set"):
        load_params(path)
    monkeypatch.setenv("CHURN_DB_PASSWORD", "s3cr3t-value")
    assert load_params(path).warehouse.url == "postgres://analyst:s3cr3t-value@127.0.0.1:9/db"
    output = churn(path, "validate", expect=1)   # nothing listens on port 9: the error must not show the password
    assert "cannot open" in output and "s3cr3t-value" not in output


def test_training_runs_log_no_connection_string(trained):
    client = MlflowClient(tracking_uri=trained.tracking_uri)
    run = client.search_runs([client.get_experiment_by_name("churn").experiment_id])[0]
    logged = " ".join(map(str, [*run.data.params.values(), *run.data.tags.values()]))
    assert "duckdb://" not in logged and str(trained.root) not in logged


def test_a_champion_whose_files_are_gone_stops_scoring_but_not_training(trained, tmp_path):
    # Its own store (the shared one's artifacts must stay) and its own copy of the warehouse (it scores).
    params = _write_params(tmp_path, Path(shutil.copy(trained.warehouse, tmp_path / WAREHOUSE)))
    churn(params, "train")
    shutil.rmtree(tmp_path / "mlruns" / "models")
    _one_error_line(invoke(params, "score"), "churn-lightgbm v1 (champion): its model files cannot be loaded",
                    "retrain with `churn train`")
    retrained = churn(params, "train")
    assert "model v2" in retrained and "judged as if there were no champion" in retrained
    churn(params, "score")


def test_scoring_with_other_feature_settings_than_the_champion_was_trained_with_is_refused(trained):
    """Another trend window or session gap gives features of the same names that mean something else: the champion
    scored them and the scores were published, with drift warnings only. Every changed setting is named, nothing
    is written."""
    tables = "SELECT table_name FROM information_schema.tables ORDER BY 1"
    before = trained.query(tables)
    params = trained.variant("retimed.yaml", {"features.trend_window_days": 7, "features.session_gap_minutes": 5,
                                              "features.windows": [7, 30]})
    _one_error_line(invoke(params, "score"), "churn-lightgbm v1 was trained with other feature settings",
                    "features.session_gap_minutes: trained with 30, params say 5; features.trend_window_days: "
                    "trained with 30, params say 7; features.windows: trained with [7, 30, 90], params say [7, 30] "
                    "(retrain with `churn train`, or set them back)")
    pd.testing.assert_frame_equal(trained.query(tables), before)


def test_a_corrupt_store_is_named(store):
    (store / "mlruns.db").write_bytes((store / "mlruns.db").read_bytes()[:3000])
    for command in ("score", "train"):
        _one_error_line(invoke(store / "params.yaml", command), "mlflow.tracking_uri: cannot read the MLflow store")


def test_a_store_in_a_missing_folder_is_named_and_not_created(trained, tmp_path):
    missing = tmp_path / "no" / "such" / "folder"
    params = _write_params(tmp_path, trained.warehouse, **{"mlflow.tracking_uri": f"sqlite:///{missing}/mlruns.db"})
    _one_error_line(invoke(params, "score"), "no MLflow store at", "run `churn train`")
    assert not (tmp_path / "no").exists()


def test_an_unreachable_tracking_server_is_named(tmp_path):
    params = _write_params(tmp_path, tmp_path / WAREHOUSE, **{"mlflow.tracking_uri": "http://127.0.0.1:9"})
    _one_error_line(invoke(params, "score"), "cannot read the MLflow store http://127.0.0.1:9")


@pytest.mark.parametrize("name", ["[/red]", "[bold]x[/]", "[link=http://evil]x"])
def test_markup_in_user_text_prints_as_text(tmp_path, name):
    params = _write_params(tmp_path, tmp_path / WAREHOUSE, **{"sources.accounts": {"table": name}})
    line = _one_error_line(invoke(params, "validate"), "sources.accounts")
    assert name in line
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text(f"warehouse: {name}: [\n")
    _one_error_line(invoke(bad_yaml, "validate"), "not valid YAML")
