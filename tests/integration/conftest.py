"""One small simulated warehouse, loaded into DuckDB and into another engine, run through the same code: the
helpers both integration modules import, and the folder every test here works in."""

from __future__ import annotations

import io
from pathlib import Path

import ibis
import pandas as pd
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from features.snapshots import find_data_bounds
from features.sources import load_sources
from pipelines.cli import app
from pipelines.config import Params
from pipelines.features_run import Warehouse, build_feature_frame, grid_dates
from pipelines.progress import Progress

# Small enough for a test, big enough for every feature group, churn in the labels and six labelled as-of dates.
SIMULATION = {"accounts": 150, "months": 12, "seed": 11}
KEYS = ["as_of", "account_id"]
# Engines add floats up in their own order, so a mean of non-integer values may differ in the last bits (seen:
# up to 3.4e-14 on session minutes around 10; one step more if the features are rounded and the two values fall on
# either side of a rounding boundary). These columns are compared to 1e-9 (absolute); all others must be identical.
LAST_BITS = ("session_minutes_",)
LAST_BITS_TOLERANCE = 1e-9
# Sums of event amounts (cents, up to millions) differ the same way, in proportion to their size: compared relatively.
SUMS = ("value_realised_", "value_per_mrr")
SUMS_TOLERANCE = 1e-12


@pytest.fixture(scope="module", autouse=True)
def _isolated(tmp_path_factory):
    """Work in a temporary folder (the training report goes to ./reports), and ignore CHURN_WAREHOUSE_URL,
    which would point every params file of these tests at one warehouse."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("CHURN_WAREHOUSE_URL", raising=False)
        patch.chdir(tmp_path_factory.mktemp("cwd"))
        yield


def yaml_params(url: str, mlflow_root: Path) -> dict:
    """params.yaml for the small warehouse at `url`, with its MLflow store under `mlflow_root`.

    Twelve months give six labelled as-of dates: two validate, two calibrate, two train. The drift guard is
    opened wide: a model trained on 150 accounts sees every feature drift, and these tests compare engines.
    """
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["warehouse"]["url"] = url
    params["mlflow"] |= {"tracking_uri": f"sqlite:///{mlflow_root}/mlruns.db", "artifact_root": str(mlflow_root)}
    params["simulate"] |= SIMULATION
    params["model"] |= {"validation_snapshots": 2, "calibration_snapshots": 2}
    params["model"]["lightgbm"]["min_child_samples"] = 20
    params["scoring"]["drift"]["stop"] = 1e9
    return params


def small_params(url: str, mlflow_root: Path) -> Params:
    """Params for the small warehouse at `url`, with its MLflow store under `mlflow_root`."""
    return Params.model_validate(yaml_params(url, mlflow_root))


def write_params(path: Path, url: str, mlflow_root: Path) -> Path:
    """A params file for the small warehouse at `url`."""
    path.write_text(yaml.safe_dump(yaml_params(url, mlflow_root)))
    return path


def churn(params: Path, *args: str) -> str:
    """Run one command, failing the test with its output if it fails."""
    result = CliRunner().invoke(app, ["--params", str(params), *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def sort_rows(frame: pd.DataFrame, keys: list[str] = KEYS) -> pd.DataFrame:
    return frame.sort_values(keys).reset_index(drop=True)


def features_of(con: ibis.BaseBackend, params: Params) -> pd.DataFrame:
    """The grid's feature table computed in `con` by the code `churn features` runs, sorted by as_of and account."""
    progress = Progress(Console(file=io.StringIO()))
    sources = load_sources(con, params.sources)
    start, end = find_data_bounds(sources, params.snapshots)
    wh = Warehouse(con=con, sources=sources, data_start=start, data_end=end)
    frame, _ = build_feature_frame(params, wh, grid_dates(params, wh), progress)
    return sort_rows(frame)


def assert_same_features(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Identical, but for LAST_BITS columns (absolute LAST_BITS_TOLERANCE) and SUMS (relative SUMS_TOLERANCE)."""
    assert list(actual.columns) == list(expected.columns)
    loose = [c for c in expected.columns if c.startswith(LAST_BITS)]
    sums = [c for c in expected.columns if c.startswith(SUMS)]
    exact = [c for c in expected.columns if c not in loose + sums]
    pd.testing.assert_frame_equal(actual[exact], expected[exact], check_exact=True)
    pd.testing.assert_frame_equal(actual[sums], expected[sums], check_exact=False, rtol=SUMS_TOLERANCE, atol=0)
    pd.testing.assert_frame_equal(actual[loose], expected[loose], check_exact=False, rtol=0,
                                  atol=LAST_BITS_TOLERANCE)
