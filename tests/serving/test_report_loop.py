"""The closed loop in the managers' report, on hand-built outcome tables: each playbook's verdict in a plain sentence,
the biased per-protocol view labelled so, missed churns with the lead time of the flagged ones, one sentence instead
of an empty section when nothing is judged yet, held-back accounts explained in the page and the exports, and
warehouse text escaped."""

from __future__ import annotations

import io
import re
from datetime import date

import numpy as np
import pandas as pd
import pytest

from serving.config import ReportConfig
from serving.effects import EFFECT_COLUMNS, PER_PROTOCOL_CAVEAT, compare_arms
from serving.outcomes import MISSED_COLUMNS
from serving.report.exports import at_risk_csv, at_risk_markdown
from serving.report.inputs import LoopFacts
from serving.report.loop import build_missed_section, build_playbook_section, describe_effect
from serving.report.render import render_manager_report
from serving.report.tables import build_at_risk
from tests.serving.test_report import inputs  # noqa: F401  (the fixture: hand-built scores as of 2025-05-01)

MATURED = [date(2025, 1, 1), date(2025, 2, 1)]
PENDING = [(date(2025, 3, 1), date(2025, 6, 29)), (date(2025, 4, 1), date(2025, 7, 30))]


def _arm(accounts: int, churned: int) -> np.ndarray:
    return np.r_[np.ones(churned), np.zeros(accounts - churned)]


def effect_row(playbook: str, treated: tuple[int, int], holdout: tuple[int, int], analysis: str = "intent_to_treat",
               tier: str = "all", window: str = "all") -> dict:
    """A churn_playbook_effects row as `churn outcomes` computes it, from (accounts, churned) per arm."""
    t, h = _arm(*treated), _arm(*holdout)
    found = compare_arms(t, h, 1000 * t, 1000 * h)
    return {"analysis": analysis, "playbook": playbook, "tier": tier, "window": window,
            "window_start": MATURED[0], "window_end": MATURED[-1], **found,
            "caveat": PER_PROTOCOL_CAVEAT if analysis == "per_protocol" else None}


def effects(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=EFFECT_COLUMNS)


def missed_rows() -> pd.DataFrame:
    rows = [("a1", date(2025, 3, 10), 1000.0, True, 2, MATURED[1], "medium", 0.21, "Seats fell 40%; 3 tickets open",
             None, None),
            ("a9", date(2025, 3, 20), 3000.0, True, 1, MATURED[1], "low", 0.04, None, None, None),
            ("a2", date(2025, 2, 15), 500.0, False, 2, MATURED[1], "high", 0.6, "x", MATURED[0], 45),
            ("a3", date(2025, 4, 1), 800.0, False, 2, MATURED[1], "high", 0.5, "y", MATURED[0], 90),
            ("a4", date(2025, 4, 5), 800.0, False, 1, MATURED[1], "high", 0.5, "y", MATURED[1], 63)]
    frame = pd.DataFrame(rows, columns=MISSED_COLUMNS)
    return frame.astype({"lead_days": "Int64"})


def facts(**changes) -> LoopFacts:
    base = {"effects": effects(effect_row("adoption_workshop", (1000, 180), (500, 135))), "missed": missed_rows(),
            "judged": MATURED, "matured": MATURED, "pending": PENDING}
    return LoopFacts(**(base | changes))


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_playbook_that_works_reads_as_a_plain_sentence_with_its_interval():
    row = effects(effect_row("adoption_workshop", (1000, 180), (500, 135))).iloc[0]
    low, high = 100 * row.absolute_low, 100 * row.absolute_high
    assert row.verdict == "works" and high < 0
    assert describe_effect(row, 20) == (f"works: churn 18.0% vs 27.0% held back, −9.0 pp "
                                        f"(−{abs(low):.1f} to −{abs(high):.1f})")


@pytest.mark.parametrize(("treated", "holdout", "sentence"), [
    ((1000, 300), (500, 100), r"^harms: churn 30\.0% vs 20\.0% held back, \+10\.0 pp \(\+\d+\.\d to \+\d+\.\d\)$"),
    ((1000, 250), (500, 130), r"^no evidence: churn 25\.0% vs 26\.0% held back, −1\.0 pp \(−\d+\.\d to \+\d+\.\d\); "
                              r"the interval holds no difference too$"),
    ((1000, 100), (7, 5), r"^no evidence yet: too few held-back accounts \(7 of the 20 needed\); churn 10\.0% vs "
                          r"71\.4% held back so far$"),
    ((10, 1), (300, 100), r"^no evidence yet: too few treated accounts \(10 of the 20 needed\)"),
    ((100, 10), (0, 0), r"^no evidence yet: no held-back accounts$"),
])
def test_each_verdict_reads_as_its_own_sentence(treated, holdout, sentence):
    row = effects(effect_row("p", treated, holdout)).iloc[0]
    assert re.match(sentence, describe_effect(row, 20)), describe_effect(row, 20)


def test_the_section_has_one_row_per_playbook_and_the_per_protocol_view_is_labelled_biased(inputs):  # noqa: F811
    inputs.loop = facts(effects=effects(
        effect_row("onboarding_review", (1000, 250), (500, 130)),
        effect_row("adoption_workshop", (1000, 180), (500, 135)),
        effect_row("adoption_workshop", (300, 50), (200, 60), tier="high"),          # not the headline row
        effect_row("adoption_workshop", (400, 60), (200, 60), window="2025-01-01"),  # nor this
        effect_row("adoption_workshop", (600, 80), (500, 135), analysis="per_protocol")))
    section = build_playbook_section(inputs.loop)
    assert [e["row"].playbook for e in section["rows"]] == ["adoption_workshop", "onboarding_review"]
    assert [e["verdict"] for e in section["rows"]] == ["works", "no evidence"]
    assert section["window"] == ("2025-01-01", "2025-02-01")
    chart = section["rows"][0]["chart"]
    assert chart["from"] < chart["point"] < chart["from"] + chart["width"] < chart["zero"]   # all of it below 0
    html = render_manager_report(inputs, ReportConfig())
    text = _text(html)
    assert "Do our playbooks work?" in text and "works: churn 18.0% vs 27.0% held back, −9.0 pp" in text
    assert text.count("Per protocol biased") == 1 and f"Caveat: {PER_PROTOCOL_CAVEAT}." in text
    assert "2 scoring(s) still pending: the next, as of 2025-03-01, is known once the data reaches 2025-06-29" in text
    assert 'id="playbook-effects"' in html and html.count('data-playbook="adoption_workshop"') == 2


def test_on_a_simulated_warehouse_each_playbook_shows_its_true_effect_and_whether_the_interval_holds_it(
        inputs):  # noqa: F811
    """The workshop's interval (−13.8 to −4.2 pp) holds a true −7 pp; the review's (−3.8 to +6.1 pp) misses a true
    −10 pp; a truth that is not known (NaN) shows no claim."""
    truth = pd.DataFrame({"hazard_effect": [-0.3, -0.2, 0.0], "true_effect": [-0.27, -0.4, np.nan],
                          "true_difference": [-0.07, -0.10, np.nan]},
                         index=pd.Index(["adoption_workshop", "onboarding_review", "commercial_review"],
                                        name="playbook"))
    inputs.loop = facts(effects=effects(effect_row("adoption_workshop", (1000, 180), (500, 135)),
                                        effect_row("onboarding_review", (1000, 250), (500, 120)),
                                        effect_row("commercial_review", (1000, 100), (500, 50))),
                        true_effects=truth)
    section = build_playbook_section(inputs.loop)
    truths = {e["row"].playbook: e["truth"] for e in section["rows"]}
    assert truths["adoption_workshop"]["inside"] is True and truths["onboarding_review"]["inside"] is False
    assert truths["commercial_review"] is None
    low, high = section["scale"]
    assert low <= -0.10 and all(0 <= t["at"] <= 100 for t in truths.values() if t)
    text = _text(render_manager_report(inputs, ReportConfig()))
    assert "Simulated truth" in text and "−7.0 pp −27% relative; inside the interval" in text
    assert "−10.0 pp −40% relative; outside the interval" in text and "+0% relative" not in text
    inputs.loop = facts()
    assert "Simulated truth" not in _text(render_manager_report(inputs, ReportConfig()))


def test_missed_churns_are_listed_by_churned_mrr_with_the_lead_time_of_the_flagged_ones(inputs):  # noqa: F811
    section = build_missed_section(facts(), inputs.attributes, "high")
    assert [r["account_id"] for r in section["rows"]] == ["a9", "a1"]
    assert [r["account"] for r in section["rows"]] == ["a9", "Acme | Co"]
    assert section["rows"][1]["reasons"] == ["Seats fell 40%", "3 tickets open"]
    assert section["summary"] == ("Of 5 churn(s) within the horizon of a scoring, 2 (4,000 MRR) were never in the high "
                                  "tier before they left. The 3 flagged one(s) were first flagged a median of 63 "
                                  "days before they churned (45 to 90).")
    inputs.loop = facts()
    text = _text(render_manager_report(inputs, ReportConfig()))
    assert "What we missed" in text and section["summary"] in text and "no risk reason given" in text


@pytest.mark.parametrize(("loop", "playbooks", "missed"), [
    (None, "Outcomes were not read for this report: run `churn outcomes` (make outcomes)", None),
    (LoopFacts(effects=None, missed=None, judged=None, matured=MATURED, pending=PENDING),
     "2 scoring(s) have matured (2025-01-01, 2025-02-01) and are not judged yet: run `churn outcomes` (make "
     "outcomes) to read back what happened, then this report again.", None),
    (LoopFacts(effects=None, missed=None, judged=None, matured=[], pending=PENDING),
     "No scoring has an outcome yet: the earliest pending one, as of 2025-03-01, is known once the data reaches "
     "2025-06-29 (horizon plus grace after it); 1 later scoring(s) follow. Then run `churn outcomes` (make outcomes).",
     None),
    (LoopFacts(effects=effects(), missed=pd.DataFrame(columns=MISSED_COLUMNS), judged=[], matured=[],
               pending=PENDING[:1]),   # `churn outcomes` ran before anything matured
     "No scoring has an outcome yet: the earliest pending one, as of 2025-03-01, is known once the data reaches "
     "2025-06-29 (horizon plus grace after it). Then run `churn outcomes` (make outcomes).", None),
    (LoopFacts(effects=effects(), missed=pd.DataFrame(columns=MISSED_COLUMNS), judged=MATURED, matured=MATURED),
     "No playbook held accounts back in the judged scorings (2025-01-01, 2025-02-01): with "
     "scoring.experiments.enabled, each playbook keeps a random control group",
     "No account churned within the horizon of a scoring yet."),
])
def test_nothing_to_show_is_one_sentence_saying_what_to_run_and_when(inputs, loop, playbooks, missed):  # noqa: F811
    inputs.loop = loop
    text = _text(render_manager_report(inputs, ReportConfig()))
    section = text[text.index("Do our playbooks work? "):text.index("Model quality Th")]
    assert playbooks in section
    assert (missed or playbooks) in section[section.index("What we missed"):]
    assert "Difference" not in section and "Churned MRR" not in section   # no empty tables


def test_scorings_matured_since_outcomes_ran_are_named_under_the_effects():
    section = build_playbook_section(facts(matured=[*MATURED, date(2025, 3, 1)], pending=[]))
    assert section["notes"] == ["1 more scoring(s) have matured since `churn outcomes` ran (2025-03-01): run `churn "
                                "outcomes` (make outcomes) again to include them."]


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_warehouse_text_in_the_loop_sections_is_escaped(inputs):  # noqa: F811
    missed = missed_rows()
    missed.loc[0, "top_reasons"] = HOSTILE + "; fine"
    inputs.attributes.loc[inputs.attributes.account_id == "a1", "name"] = HOSTILE
    inputs.loop = facts(effects=effects(effect_row(HOSTILE, (1000, 180), (500, 135)),
                                        effect_row(HOSTILE, (600, 80), (500, 135), analysis="per_protocol")),
                        missed=missed)
    html = render_manager_report(inputs, ReportConfig())
    assert "<script>alert" not in html and "<img src=x" not in html
    assert html.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") >= 5   # playbook ×2, name, reason, row


def test_held_back_accounts_say_why_they_have_no_action_in_the_page_and_the_exports(inputs):  # noqa: F811
    scores = inputs.scores
    scores["playbook"] = ["adoption_workshop", "support_escalation", None, None, None, None]
    scores["arm"] = ["holdout", "treatment", None, None, None, None]
    why = "held back: control group of playbook adoption_workshop"
    at_risk = build_at_risk(inputs, ReportConfig())
    assert at_risk.set_index("account_id").no_action_reason.to_dict() == {"a2": None, "a1": why, "a3": None}
    html = render_manager_report(inputs, ReportConfig(), at_risk)
    row = re.search(r'<tr data-account="a1">.*?</tr>', html, re.S).group(0)
    assert f'<td class="action"><span class="urgent">Urgent</span> <span class="held">{why}</span>' in row
    assert f"No action, on purpose:</b> <span class=\"held\">{why}</span>" in html
    csv = pd.read_csv(io.StringIO(at_risk_csv(at_risk)), keep_default_na=False).set_index("account_id")
    assert csv.loc["a1", ["recommended_action", "playbook", "arm", "no_action_reason"]].tolist() == [
        "", "adoption_workshop", "holdout", why]
    assert csv.loc["a2", "no_action_reason"] == "" and csv.loc["a2", "recommended_action"] != ""
    markdown = at_risk_markdown(at_risk, inputs.as_of).splitlines()
    assert f"| {why} |" in markdown[4 + at_risk.account_id.tolist().index("a1")]
    assert "Escalate the open tickets" in markdown[4 + at_risk.account_id.tolist().index("a2")]
