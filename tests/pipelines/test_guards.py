"""Guards around publishing: drift stops a scoring, names are never injected, secrets never shown.

The module trains one champion (`trained`); the tests that change a warehouse change their own copy of it.
"""

from __future__ import annotations

import duckdb
import pytest
from mlflow import MlflowClient

from pipelines.config import ParamsError, load_params
from tests.e2e import SMALL, Project, churn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(make_project) -> Project:
    """A small simulated warehouse and its champion, trained with the warehouse URL passed the way a deployment
    passes a connection string: in CHURN_WAREHOUSE_URL."""
    project = make_project(simulation=SMALL, name="guards")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHURN_WAREHOUSE_URL", f"duckdb://{project.warehouse}")
        project.churn("train")
    return project


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
