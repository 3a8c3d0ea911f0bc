"""The loop end to end on a simulated warehouse: train, score three monthly as-ofs with the holdout experiment on,
then `churn outcomes` judges the two that have matured against what happened, beside the champion's validation
figures from MLflow, and names the third as pending."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from tests.e2e import SMALL

pytestmark = pytest.mark.slow
AS_OFS = ("2024-11-01", "2024-12-01", "2025-01-01")   # the data ends 2025-04-30: + 90 + 30 days matures the first two


@pytest.fixture(scope="module")
def project(make_project):
    # The simulated CS team's own arms (cs_actions) are switched off: this module reads back the scorer's arms
    # (tests/pipelines/test_cs_team.py judges the team's).
    # The at-risk list holds the medium tier too, so a held-back account is in it whatever the simulated data.
    project = make_project({"sources": {"cs_actions": None}, "report.at_risk_tiers": ["high", "medium"]},
                           simulation=SMALL, name="outcomes_e2e")
    project.churn("train")
    scored = [project.churn("score", "--as-of", as_of) for as_of in AS_OFS]
    return project, scored, project.churn("outcomes")


def test_scoring_assigns_arms_and_holds_back_about_the_configured_share(project):
    project, scored, _ = project
    assert all("held out" in out.splitlines()[-1] for out in scored)
    scores = project.query("SELECT * FROM churn_scores")
    assignments = project.query("SELECT * FROM churn_playbook_assignments")
    in_playbook = scores[scores.playbook.notna()]
    assert len(assignments) == len(in_playbook) == in_playbook.arm.notna().sum()
    merged = in_playbook.merge(assignments, on=["account_id", "as_of"], suffixes=("", "_assigned"))
    assert (merged.arm == merged.arm_assigned).all() and (merged.playbook == merged.playbook_assigned).all()
    held = scores[scores.arm == "holdout"]
    assert 0 < len(held) < 0.3 * len(in_playbook)
    assert held[["recommended_action", "owner_role", "due_by", "urgency"]].isna().all().all()
    # Sticky: an account in the same playbook in two scorings has the same arm in both.
    runs = in_playbook.groupby(["account_id", "playbook"]).arm.nunique()
    assert (runs == 1).all() and (in_playbook.groupby(["account_id", "playbook"]).size() > 1).any()


def test_outcomes_judge_the_matured_scorings_and_name_the_pending_one(project):
    project, _, output = project
    assert "scoring of 2025-01-01 pending: its outcome is known once the data reaches 2025-05-01" in output
    assert "judged 2 scoring(s), 2024-11-01 to 2024-12-01" in output
    outcomes = project.query("SELECT * FROM churn_outcomes")
    assert sorted(outcomes.as_of.dt.strftime("%Y-%m-%d").unique()) == ["2024-11-01", "2024-12-01"]
    scores = project.query("SELECT account_id, as_of, churn_probability FROM churn_scores "
                           "WHERE as_of <= DATE '2024-12-01'")
    assert len(outcomes) == len(scores) and outcomes.churned.isin([0, 1]).all()
    assert (outcomes.churned_mrr == outcomes.churned * outcomes.mrr).all()
    assert outcomes.churn_date.notna().sum() == outcomes.churned.sum() > 0


def test_performance_in_the_wild_sits_beside_the_validation_figures(project):
    project, _, output = project
    performance = project.query("SELECT * FROM churn_model_performance ORDER BY as_of")
    assert len(performance) == 2 and (performance.model_version == "1").all()
    assert performance.roc_auc.between(0.5, 1).all() and performance.validation_roc_auc.notna().all()
    assert (performance.roc_auc_change == performance.roc_auc - performance.validation_roc_auc).all()
    tiers = json.loads(performance.calibration_by_tier[0])
    assert list(tiers)[0] == "high" and sum(t["accounts"] for t in tiers.values()) == performance.accounts[0]
    assert "in the wild vs" in output


def test_effects_and_missed_churns_are_written(project):
    project, _, output = project
    effects = project.query("SELECT * FROM churn_playbook_effects")
    assignments = project.query("SELECT * FROM churn_playbook_assignments WHERE as_of <= DATE '2024-12-01'")
    assert set(effects.playbook) == set(assignments.playbook)
    assert set(effects.analysis) == {"intent_to_treat"} and set(effects.verdict) <= {"works", "no evidence", "harms"}
    pooled = effects[(effects.tier == "all") & (effects.window == "all")]
    first = assignments.sort_values("as_of").drop_duplicates(["playbook", "account_id"])
    assert pooled.set_index("playbook").treated.to_dict() == first[first.arm == "treatment"].groupby(
        "playbook").size().to_dict()
    missed = project.query("SELECT * FROM churn_missed")
    assert len(missed) > 0 and missed.missed.any()
    flagged = missed[~missed.missed]
    assert (flagged.lead_days > 0).all() and flagged.first_flagged_as_of.notna().all()
    assert pd.api.types.is_bool_dtype(missed.missed)
    assert "playbook effects (intent to treat, every matured as-of pooled, 95% intervals):" in output


@pytest.fixture(scope="module")
def closed(project):
    """After the outcomes: the managers' report of the first scoring, and
    a training run whose report reads back how the champion did in the wild."""
    project, _, _ = project
    project.churn("report", "--as-of", AS_OFS[0])
    project.churn("train")
    folder = project.root / "reports"
    trained = max(folder.glob("training_*.html"), key=lambda p: p.stat().st_mtime)
    return project, (folder / f"churn_report_{AS_OFS[0]}.html").read_text(), trained.read_text()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_managers_report_shows_the_playbook_verdicts_and_the_missed_churns(closed):
    project, html, _ = closed
    text = _text(html)
    effects = project.query("SELECT * FROM churn_playbook_effects WHERE analysis = 'intent_to_treat' "
                            "AND tier = 'all' AND \"window\" = 'all' ORDER BY playbook")
    assert re.findall(r'<tr data-playbook="([^"]+)">', html) == effects.playbook.tolist()
    for row in effects.itertuples():
        assert re.search(rf"{row.verdict}( yet)?: ", text), row.verdict
    assert "every tier and matured scoring from 2024-11-01 to 2024-12-01 pooled" in text
    assert "1 scoring(s) still pending: the next, as of 2025-01-01, is known once the data reaches 2025-05-01" in text
    missed = project.query("SELECT * FROM churn_missed")
    assert f"Of {len(missed):,} churn(s) within the horizon of a scoring, {int(missed.missed.sum()):,} (" in text
    assert len(re.findall(r'<tr data-account="[^"]+">', html[html.index('id="missed"'):])) == min(
        25, int(missed.missed.sum()))


def test_held_back_accounts_in_the_at_risk_export_say_why(closed):
    project, _, _ = closed
    # The first scoring whose at-risk tiers hold a held-back account (which one depends on the simulated data).
    held_high = project.query("SELECT DISTINCT as_of FROM churn_scores WHERE arm = 'holdout' "
                              "AND risk_tier IN ('high', 'medium') ORDER BY as_of")
    assert len(held_high)
    as_of = f"{pd.Timestamp(held_high.as_of.iloc[0]):%Y-%m-%d}"
    if as_of != AS_OFS[0]:
        project.churn("report", "--as-of", as_of)
    csv = pd.read_csv(project.root / "reports" / f"churn_report_{as_of}_at_risk.csv", keep_default_na=False)
    held = csv[csv.arm == "holdout"]
    assert len(held) and (held.recommended_action == "").all()
    assert (held.no_action_reason == "held back: control group of playbook " + held.playbook).all()
    assert (csv[csv.arm != "holdout"].no_action_reason == "").all()


def test_the_training_report_shows_performance_in_the_wild_beside_validation(closed):
    project, _, html = closed
    performance = project.query("SELECT * FROM churn_model_performance ORDER BY as_of")
    table = html[html.index('id="wild"'):]
    table = table[:table.index("</table>")]
    assert re.findall(r"<tr><td>(\d{4}-\d{2}-\d{2})</td>", table) == ["2024-11-01", "2024-12-01"]
    newest = performance.iloc[-1]
    assert f"<td>{newest.roc_auc:,.3f}</td>" in table or f">{newest.roc_auc:,.3f}</td>" in table
    assert f"<td>{newest.validation_roc_auc:,.3f}</td>" in table
    assert "On its newest judged scoring (2024-12-01" in _text(html)
