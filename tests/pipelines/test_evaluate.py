"""`churn evaluate --profiles`: every company profile simulated and trained through params alone, in temporary
folders, into one table."""

from __future__ import annotations

import contextlib
import re

import pytest
from typer.testing import CliRunner

import pipelines.evaluate_run
from pipelines.cli import app
from pipelines.config import load_params
from pipelines.errors import StageError
from pipelines.evaluate_run import ProfileScore, format_leads, format_table, run_evaluate
from pipelines.progress import Progress
from tests.e2e import REPO, churn, write_params

TINY = {"demo": {"accounts": 300, "months": 16}, "self_serve": {"accounts": 300, "months": 15},
        "enterprise": {"accounts": 150, "months": 30}}


def _score(profile: str, nowcast: float | None = None) -> ProfileScore:
    metrics = {label: {"roc_auc": 0.8, "pr_auc": 0.4, "brier": brier, "top_decile_lift": 3.0}
               for label, brier in (("model", 0.0712), ("health", 0.0805), ("logistic", 0.0791))}
    return ProfileScore(profile=profile, rows=1000, churners=100, valid_churners=30, metrics=metrics,
                        oracle_roc_auc=0.85, nowcast_roc_auc=nowcast, seconds=12.0)


def test_the_table_shows_the_nowcast_oracle_only_when_training_reports_one():
    without = format_table([_score("demo"), _score("enterprise")])
    assert "hindsight oracle" in without[0] and "nowcast" not in "".join(without)
    assert re.search(r"^demo\s+1,000\s+100\s+30\s+0\.800 / 0\.800 / 0\.800\s+0\.400 / 0\.400 / 0\.400\s+"
                     r"0\.0712 / 0\.0805 / 0\.0791\s+3\.000 / 3\.000 / 3\.000\s+0\.850\s+0\.050\s+12$", without[2])
    with_nowcast = format_table([_score("demo", 0.83), _score("enterprise")])
    assert "nowcast oracle" in with_nowcast[0]
    assert with_nowcast[2].split()[-3:] == ["0.830", "0.030", "12"]
    assert with_nowcast[3].split()[-2:] == ["n/a", "12"]   # a profile without one says so


def test_the_leads_table_gives_each_lead_with_its_interval_and_a_verdict():
    ahead = {"roc_auc": (0.02, 0.01, 0.03), "brier": (0.004, 0.002, 0.006)}
    level = {"roc_auc": (0.001, -0.005, 0.007), "brier": (-0.0015, -0.0025, -0.0005)}
    lines = format_leads([ProfileScore(**{**vars(_score("demo")), "leads": {"health": ahead, "logistic": ahead}}),
                          ProfileScore(**{**vars(_score("self_serve")), "leads": {"health": ahead,
                                                                                  "logistic": level}})])
    assert "bootstrap over accounts" in lines[0]
    assert lines[1].split()[:4] == ["profile", "ROC-AUC", "vs", "health"] and lines[1].endswith("verdict")
    assert re.search(r"^demo\s+\+0\.0200 \(\+0\.0100, \+0\.0300\)\s+\+0\.0040 \(\+0\.0020, \+0\.0060\)", lines[2])
    assert lines[2].endswith("ahead of both on ROC-AUC and Brier")
    assert lines[3].endswith("level with logistic on ROC-AUC; behind logistic on Brier")


def test_the_help_names_every_column_of_the_table():
    result = CliRunner().invoke(app, ["evaluate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for column in ("ROC-AUC", "PR-AUC", "Brier score", "lift in the top decile", "hindsight", "nowcast"):
        assert column in text, column


def test_evaluate_says_what_to_evaluate(tmp_path):
    output = churn(write_params(tmp_path), "evaluate", expect=1)
    assert "--profiles" in output


def test_a_profile_params_file_must_simulate_its_profile(tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "self_serve.yaml").write_text("simulate:\n  profile: enterprise\n")
    params = write_params(tmp_path, {"evaluate": {"params_dir": str(tmp_path / "profiles"),
                                                  "profiles": {"self_serve": {"accounts": 50, "months": 12}}}})
    output = churn(params, "evaluate", "--profiles", expect=1)
    assert "self_serve.yaml: simulate.profile is 'enterprise', not 'self_serve'" in output


def test_a_missing_profile_params_file_is_named(tmp_path):
    params = write_params(tmp_path, {"evaluate": {"params_dir": str(tmp_path),
                                                  "profiles": {"enterprise": {"accounts": 50, "months": 12}}}})
    output = churn(params, "evaluate", "--profiles", expect=1)
    assert f"no params file {tmp_path / 'enterprise.yaml'} for profile enterprise" in output


def test_a_history_running_past_today_is_refused_before_anything_is_simulated(tmp_path):
    params = write_params(tmp_path, {"evaluate": {"params_dir": str(REPO / "docs" / "profiles"), "profiles": {
        "demo": {"accounts": 50, "months": 12}, "enterprise": {"accounts": 50, "months": 1200}}}})
    output = churn(params, "evaluate", "--profiles", expect=1)
    assert re.search(r"evaluate\.profiles\.enterprise\.months: 1200 months from simulate\.start 2023-01-01 run "
                     r"past today \(\d{4}-\d\d-\d\d\); at most \d+, or an earlier simulate\.start in "
                     r".*enterprise\.yaml",
                     " ".join(output.split())), output
    assert "demo:" not in output and "generate" not in output   # not even the first profile was simulated


def test_a_warehouse_too_large_for_memory_is_one_line_naming_the_profile(tmp_path, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(pipelines.evaluate_run, "run_simulate", out_of_memory)
    params = write_params(tmp_path, {"evaluate": {"params_dir": str(REPO / "docs" / "profiles"),
                                                  "profiles": {"demo": {"accounts": 100_000, "months": 12}}}})
    with pytest.raises(StageError, match=r"^evaluate\.profiles\.demo: 100,000 accounts over 12 months do "
                                         r"not fit in this machine's memory; give it fewer accounts$"):
        run_evaluate([params], load_params(params).evaluate, Progress())


@pytest.mark.slow
def test_every_profile_is_trained_and_scored_into_one_table(tmp_path):
    params = write_params(tmp_path, {"evaluate": {"params_dir": str(REPO / "docs" / "profiles"), "profiles": TINY}})
    with contextlib.chdir(tmp_path):
        result = CliRunner().invoke(app, ["--params", str(params), "evaluate", "--profiles"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("profile "))
    rows = {line.split()[0]: line for line in lines[head + 2:head + 5]}
    assert sorted(rows) == sorted(TINY)   # in the order of `evaluate.profiles` (sorted when the file was written)
    for line in rows.values():
        numbers = [float(v) for v in re.findall(r"\b\d+\.\d{3}\b", line)]
        model_roc, oracle, gap = numbers[0], numbers[-2], numbers[-1]
        assert 0.5 < model_roc < oracle <= 1.0, line   # better than chance, below the oracle
        assert gap == pytest.approx(oracle - model_roc, abs=0.002), line
        briers = [float(v) for v in re.findall(r"\b0\.\d{4}\b", line)]   # model / health / logistic
        assert len(briers) == 3 and all(0 < b < 0.25 for b in briers), line
    # The second table: the model's lead over each baseline, every estimate inside its interval, and a verdict.
    lead_head = next(i for i, line in enumerate(lines) if line.startswith("the model's lead over each baseline"))
    leads = {line.split()[0]: line for line in lines[lead_head + 2:lead_head + 5]}
    assert sorted(leads) == sorted(TINY)
    for line in leads.values():
        triples = re.findall(r"([+-]\d\.\d{4}) \(([+-]\d\.\d{4}), ([+-]\d\.\d{4})\)", line)
        assert len(triples) == 4, line   # ROC-AUC and Brier, against the health score and the logistic regression
        assert all(float(low) <= float(estimate) <= float(high) for estimate, low, high in triples), line
        assert re.search(r"(ahead of both on ROC-AUC and Brier|(level with|behind) (health|logistic) on)", line), line
    # Everything ran in temporary folders: the project's warehouse and MLflow store were never created.
    assert not (tmp_path / "warehouse.duckdb").exists() and not (tmp_path / "mlruns.db").exists()
