"""A broken MLflow store or champion, and text that looks like console markup, give one clear line and exit 1.

One small project is simulated and trained once; each fault is made on a copy of its store.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e import WAREHOUSE, churn, invoke, write_params

pytestmark = pytest.mark.slow


def _write_params(root: Path, warehouse: Path | None = None, **changes) -> Path:
    """The shared project params (store in `root`), on the module's warehouse beside it unless `warehouse`."""
    return write_params(root, {"warehouse.url": f"duckdb://{warehouse or root.parent / WAREHOUSE}",
                               "simulate": {"accounts": 300, "months": 15, "seed": 5},
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
def trained(tmp_path_factory) -> Path:
    """A folder with a trained store (mlruns.db + mlruns/) beside a simulated warehouse."""
    base = tmp_path_factory.mktemp("store")
    root = base / "trained"
    root.mkdir()
    params = _write_params(root)
    churn(params, "simulate")
    assert "type hints" not in churn(params, "train").lower()  # MLflow's warning had a cause: fixed, not filtered
    return root


@pytest.fixture
def store(trained, tmp_path) -> Path:
    """A copy of the trained store, its own params file pointing at it (same warehouse)."""
    root = trained.parent / f"copy_{tmp_path.name}"
    shutil.copytree(trained, root, ignore=shutil.ignore_patterns("params.yaml", "reports"))
    _write_params(root)
    return root


def test_a_champion_whose_files_are_gone_stops_scoring_but_not_training(trained, tmp_path):
    # Its own store (the shared one's artifacts must stay), the same warehouse.
    params = _write_params(tmp_path, trained.parent / "warehouse.duckdb")
    churn(params, "train")
    shutil.rmtree(tmp_path / "mlruns" / "models")
    _one_error_line(invoke(params, "score"), "churn-lightgbm v1 (champion): its model files cannot be loaded",
                    "retrain with `churn train`")
    retrained = churn(params, "train")
    assert "model v2" in retrained and "judged as if there were no champion" in retrained
    churn(params, "score")


def test_a_corrupt_store_is_named(store):
    (store / "mlruns.db").write_bytes((store / "mlruns.db").read_bytes()[:3000])
    for command in ("score", "train"):
        _one_error_line(invoke(store / "params.yaml", command), "mlflow.tracking_uri: cannot read the MLflow store")


def test_a_store_in_a_missing_folder_is_named_and_not_created(trained, tmp_path):
    missing = tmp_path / "no" / "such" / "folder"
    params = _write_params(tmp_path, **{"mlflow.tracking_uri": f"sqlite:///{missing}/mlruns.db"})
    _one_error_line(invoke(params, "score"), "no MLflow store at", "run `churn train`")
    assert not (tmp_path / "no").exists()


def test_an_unreachable_tracking_server_is_named(tmp_path):
    params = _write_params(tmp_path, **{"mlflow.tracking_uri": "http://127.0.0.1:9"})
    _one_error_line(invoke(params, "score"), "cannot read the MLflow store http://127.0.0.1:9")


@pytest.mark.parametrize("name", ["[/red]", "[bold]x[/]", "[link=http://evil]x"])
def test_markup_in_user_text_prints_as_text(tmp_path, name):
    params = _write_params(tmp_path, **{"sources.accounts": {"table": name}})
    line = _one_error_line(invoke(params, "validate"), "sources.accounts")
    assert name in line
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text(f"warehouse: {name}: [\n")
    _one_error_line(invoke(bad_yaml, "validate"), "not valid YAML")
