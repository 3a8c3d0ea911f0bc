"""Optional sources: a warehouse without users, tickets, surveys and milestones still trains and scores."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml
from typer.testing import CliRunner

from features.catalog import SUPPORT, VOICE, expand_catalog
from features.config import FeatureConfig
from pipelines.cli import app

pytestmark = pytest.mark.slow
OPTIONAL = ("users", "tickets", "surveys", "milestones")


def _params(root: Path, name: str, sources_off: bool, model: str | None = None) -> Path:
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["warehouse"]["url"] = f"duckdb://{root}/warehouse.duckdb"
    params["mlflow"] |= {"tracking_uri": f"sqlite:///{root}/mlruns.db", "artifact_root": str(root / "mlruns"),
                         "model_name": model or name}
    params["simulate"] |= {"accounts": 300, "months": 16, "seed": 5}
    if sources_off:
        params["sources"] |= {table: None for table in OPTIONAL}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _churn(params: Path, *args: str):
    return CliRunner().invoke(app, ["--params", str(params), *args])


def test_without_optional_tables_the_dependent_features_are_left_out_and_the_run_goes_on(tmp_path):
    full, lean = _params(tmp_path, "full", False), _params(tmp_path, "lean", True)
    assert _churn(full, "simulate").exit_code == 0
    assert _churn(full, "train").exit_code == 0
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        for table in OPTIONAL:
            con.execute(f"DROP TABLE {table}")

    trained = _churn(lean, "train")
    assert trained.exit_code == 0, trained.output
    note = next(line for line in trained.output.splitlines() if "features left out" in line)
    windows = FeatureConfig().windows_by_kind()
    expected = {s.name for s in expand_catalog(SUPPORT + VOICE, windows)} | {"onboarding_share", "days_to_onboard"}
    left_out = {item.split(" (")[0] for item in note.split(": ", 1)[1].split(", ") if " (needs" in item}
    assert left_out == expected
    assert _churn(lean, "score").exit_code == 0

    # The full model needs ticket and survey features this warehouse no longer has: a clear error, no scores.
    refused = _churn(_params(tmp_path, "lean-data-full-model", True, model="full"), "score")
    assert refused.exit_code == 1
    assert "model needs features the warehouse cannot provide" in refused.output and "open_tickets" in refused.output
    assert "Traceback" not in refused.output
