"""Optional sources: a warehouse without users, tickets, surveys and milestones still trains and scores."""

from __future__ import annotations

import duckdb
import pytest

from features.catalog import CHAMPIONS, SUPPORT, VOICE, WORDS, expand_catalog
from features.config import FeatureConfig
from tests.e2e import SMALL, churn

pytestmark = pytest.mark.slow
OPTIONAL = ("users", "tickets", "surveys", "milestones")
WITHOUT_OPTIONAL = {"sources": dict.fromkeys(OPTIONAL)}


def test_without_optional_tables_the_dependent_features_are_left_out_and_the_run_goes_on(make_project, tmp_path):
    project = make_project({"mlflow": {"model_name": "full"}}, simulation=SMALL, root=tmp_path)
    lean = project.variant("lean.yaml", WITHOUT_OPTIONAL | {"mlflow": {"model_name": "lean"}})
    project.churn("train")
    with duckdb.connect(str(project.warehouse)) as con:
        for table in OPTIONAL:
            con.execute(f"DROP TABLE {table}")

    # The shipped params still name the dropped tables: every one in one message, with the lines that switch them off.
    refused = project.churn("train", expect=1)
    assert "Traceback" not in refused
    lines = [line.strip() for line in refused.splitlines()]
    for table in OPTIONAL:
        assert f"sources.{table}.table: table '{table}' does not exist in the warehouse" in refused
    paste = next((i for i, line in enumerate(lines) if line.startswith("to run without them")), None)
    assert paste is not None, refused
    assert [line for line in lines[paste:] if line.endswith(": null")] == [f"{t}: null" for t in OPTIONAL]

    trained = churn(lean, "train")
    note = next(line for line in trained.splitlines() if "features left out" in line)
    windows = FeatureConfig().windows_by_kind()
    # Comments and champions (users.role) go with their tables; CS touches stay (the simulated CS team logs
    # cs_actions, which is not switched off here).
    expected = {s.name for s in expand_catalog(SUPPORT + VOICE + WORDS + CHAMPIONS, windows)} | {
        "onboarding_share", "days_to_onboard"}
    left_out = {item.split(" (")[0] for item in note.split(": ", 1)[1].split(", ") if " (needs" in item}
    assert left_out == expected
    churn(lean, "score")

    # The full model needs ticket and survey features this warehouse no longer has: a clear error, no scores.
    refused = churn(project.variant("lean-data-full-model.yaml", WITHOUT_OPTIONAL), "score", expect=1)
    assert "model needs features the warehouse cannot provide" in refused and "open_tickets" in refused
    assert "Traceback" not in refused
