"""The managers' report on hand-built scores: the at-risk list, headline, what changed, exports, waterfalls, and a
page that needs no network."""

from __future__ import annotations

import io
import re
from datetime import date
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from features.catalog import CATALOG, expand_catalog
from features.config import FeatureConfig
from serving.config import ReportConfig
from serving.explain import OVERALL, Benchmarks
from serving.report.accounts import build_waterfall
from serving.report.exports import at_risk_csv, at_risk_markdown
from serving.report.inputs import ModelFacts, Portfolio, ReportInputs
from serving.report.render import render_manager_report
from serving.report.tables import build_at_risk, build_headline, build_rising_fast, build_tier_changes
from training.calibrate import Calibrator

SPECS = {s.name: s for s in expand_catalog(CATALOG, FeatureConfig(windows=[30]).windows_by_kind())}
NOW, BEFORE = date(2025, 5, 1), date(2025, 4, 1)
TIERS = ["high", "medium", "low"]


class ReportPage(HTMLParser):
    """What the tests read from a rendered report: at-risk rows in order, every src/href, scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.links: list[str] = []
        self.images = 0
        self._table = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == "at-risk":
            self._table = True
        if tag == "tr" and self._table and "data-account" in attrs:
            self.rows.append(attrs["data-account"])
        self.links += [attrs[k] for k in ("src", "href") if attrs.get(k)]
        self.images += tag == "img" and str(attrs.get("src", "")).startswith("data:image/png;base64,")

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = False


def parse_report(html: str) -> ReportPage:
    page = ReportPage()
    page.feed(html)
    return page


def external_urls(html: str, page: ReportPage) -> list[str]:
    """Every src/href that would reach the network, and any http(s) URL anywhere in the text."""
    linked = [u for u in page.links if not (u.startswith("#") or u.startswith("data:"))]
    return linked + re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}", html)


def _scores(rows: list[tuple], as_of: date) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["account_id", "churn_probability", "mrr", "risk_tier"])
    return frame.assign(as_of=as_of, top_reasons="", recommended_action=None, owner_role=None,
                        model_name="churn-lightgbm", model_version="3")


def _drivers(rows: list[tuple], as_of: date) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["account_id", "rank", "feature", "value", "contribution", "reason"])
    return frame.assign(as_of=as_of, probability_points=10 * frame.contribution,
                        direction=np.where(frame.contribution > 0, "raises risk", "lowers risk"))


@pytest.fixture
def inputs() -> ReportInputs:
    scores = _scores([("a1", 0.6, 1000.0, "high"), ("a2", 0.4, 2000.0, "high"), ("a3", 0.5, 100.0, "high"),
                      ("a4", 0.2, 500.0, "medium"), ("a5", 0.05, 300.0, "low"), ("a6", 0.1, 50.0, "low")], NOW)
    scores.loc[scores.account_id == "a2", ["top_reasons", "recommended_action", "owner_role"]] = [
        "2 active users in the last 30 days; 3 high-priority tickets open", "Escalate the open tickets", "Support"]
    scores["days_to_renewal"] = pd.array([18, 200, None, 40, 5, 300], dtype="Int64")
    scores["billing_period_months"] = pd.array([12, 12, None, 1, 1, 3], dtype="Int64")
    scores["urgency"] = ["urgent", "routine", None, None, None, None]
    scores["due_by"] = [date(2025, 5, 10), date(2025, 5, 15), None, None, None, None]
    previous = _scores([("a1", 0.5, 1000.0, "high"), ("a2", 0.2, 2000.0, "medium"), ("a4", 0.4, 500.0, "high"),
                        ("a5", 0.05, 300.0, "low"), ("a6", 0.5, 50.0, "high"), ("a7", 0.7, 900.0, "high")], BEFORE)
    drivers = _drivers([("a2", 1, "active_users_30d", 2.0, 0.8, "2 active users in the last 30 days"),
                        ("a2", 2, "open_high_priority_tickets", 3.0, 0.5, "3 high-priority tickets open"),
                        ("a4", 1, "days_to_renewal", 200.0, -0.4, "Renewal due in 200 days"),
                        ("a1", 1, "active_users_30d", 1.0, 0.9, "1 active user in the last 30 days")], NOW)
    previous_drivers = _drivers([("a2", 1, "open_high_priority_tickets", 2.0, 0.3, "2 high-priority tickets open"),
                                 ("a4", 1, "tickets_30d", 6.0, 0.6, "6 support tickets in the last 30 days")], BEFORE)
    attributes = pd.DataFrame({"account_id": [f"a{i}" for i in range(1, 8)],
                               "name": ["Acme | Co", "Globex", None, "Initech", "Umbrella", "Hooli", "Stark"],
                               "segment": ["SMB", "Enterprise", "SMB", "SMB", "Mid-Market", "SMB", "SMB"]})
    return ReportInputs(as_of=NOW, scores=scores, drivers=drivers, attributes=attributes, specs=SPECS,
                        tier_names=TIERS, previous_as_of=BEFORE, previous_scores=previous,
                        previous_drivers=previous_drivers, horizon_days=90)


def _portfolio(accounts: list[str], seed: int = 0) -> Portfolio:
    rng = np.random.default_rng(seed)
    features = ["active_users_30d", "open_high_priority_tickets", "days_to_renewal", "plan", "last_nps"]
    contributions = pd.DataFrame(rng.normal(0, 0.5, (len(accounts), len(features))), index=accounts,
                                 columns=features).assign(bias=-1.5)
    values = pd.DataFrame({"active_users_30d": rng.integers(0, 30, len(accounts)).astype(float),
                           "open_high_priority_tickets": rng.integers(0, 3, len(accounts)).astype(float),
                           "days_to_renewal": rng.integers(1, 365, len(accounts)).astype(float),
                           "plan": rng.choice(["Starter", "Growth"], len(accounts)),
                           "last_nps": [np.nan] * len(accounts)}, index=accounts)
    return Portfolio(contributions=contributions, values=values, calibrator=Calibrator("none", {}))


def test_the_at_risk_list_is_the_top_tier_by_expected_mrr_loss(inputs):
    at_risk = build_at_risk(inputs, ReportConfig())
    assert at_risk.account_id.tolist() == ["a2", "a1", "a3"]          # 800, 600, 50 expected MRR loss
    assert at_risk.expected_mrr_loss.tolist() == pytest.approx([800, 600, 50])
    assert at_risk.account.tolist() == ["Globex", "Acme | Co", "a3"]  # no name: the id stands in
    assert at_risk.probability_change.tolist()[:2] == pytest.approx([0.2, 0.1])   # probability units
    assert np.isnan(at_risk.probability_change[2])                     # not scored last time
    assert at_risk.previous_tier.tolist() == ["medium", "high", None]
    # No tier_since in these rows (written before it existed): the run counts from the previous scoring.
    assert at_risk.days_in_tier.tolist() == [0, 30, 0]
    assert at_risk.csm_owner.isna().all()                              # the warehouse has no CSM owners
    assert build_at_risk(inputs, ReportConfig(at_risk_tiers=["high", "medium"], max_accounts=2)).account_id.tolist() \
        == ["a2", "a1"]


def test_the_headline_adds_probability_times_mrr_and_its_change(inputs):
    headline = build_headline(inputs)
    assert headline["accounts"] == 6 and headline["previous_accounts"] == 6
    assert headline["mrr_at_risk"] == pytest.approx(600 + 800 + 50 + 100 + 15 + 5)
    assert headline["previous_mrr_at_risk"] == pytest.approx(500 + 400 + 200 + 15 + 25 + 630)
    assert headline["mrr_at_risk_change"] == pytest.approx(1570 - 1770)
    assert [(t["tier"], t["accounts"], t["previous"]) for t in headline["tiers"]] == [
        ("high", 3, 4), ("medium", 1, 1), ("low", 2, 1)]


def test_what_changed_names_who_entered_and_left_the_top_tier_and_why(inputs):
    entered, left = build_tier_changes(inputs)
    assert [(e["account_id"], e["was"]) for e in entered] == [("a2", "medium"), ("a3", "not scored")]
    assert entered[0]["why"] == ["2 active users in the last 30 days"]   # the driver that is new since last time
    assert [(e["account_id"], e["is"]) for e in left] == [("a7", "not scored"), ("a4", "medium"), ("a6", "low")]
    assert left[0]["why"] == ["Not scored at this as-of: no active subscription (churned, ended or paused)"]
    assert left[1]["why"] == ["No longer a risk: 6 support tickets in the last 30 days",
                              "Now helping: Renewal due in 200 days"]


def test_rising_fast_lists_the_largest_rises_since_the_previous_scoring(inputs):
    rising = build_rising_fast(inputs, ReportConfig())
    # a2 +20 pp, a1 +10 pp; a5 did not move, a4 and a6 fell, a3 was not scored before.
    assert rising.account_id.tolist() == ["a2", "a1"]
    assert rising.probability_change.tolist() == pytest.approx([0.2, 0.1])
    assert rising.previous_probability.tolist() == pytest.approx([0.2, 0.5])
    assert list(zip(rising.previous_tier, rising.risk_tier, strict=True)) == [("medium", "high"), ("high", "high")]
    # Why: the risk reasons new since the previous scoring (a2's ticket driver was there already).
    assert rising.why.tolist() == [["2 active users in the last 30 days"], ["1 active user in the last 30 days"]]
    assert build_rising_fast(inputs, ReportConfig(rising_fast=1)).account_id.tolist() == ["a2"]
    # The tier run written with the rows wins over the one counted from the previous scoring.
    inputs.scores["tier_since"] = [date(2025, 1, 1), NOW, NOW, NOW, date(2024, 5, 1), NOW]
    rising = build_rising_fast(inputs, ReportConfig())
    assert rising.days_in_tier.tolist() == [0, 120] and rising.tier_since.tolist() == [NOW, date(2025, 1, 1)]
    inputs.previous_as_of, inputs.previous_scores = None, None
    assert build_rising_fast(inputs, ReportConfig()).empty


def _rising_rows(html: str) -> list[str]:
    section = html.split('id="rising-fast"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-account="([^"]+)"', section)


def test_the_page_shows_rising_fast_beside_the_tier_movements_escaped(inputs):
    inputs.attributes.loc[inputs.attributes.account_id == "a2", "name"] = "<img src=x onerror=alert(1)>"
    html = render_manager_report(inputs, ReportConfig())
    assert _rising_rows(html) == ["a2", "a1"]
    section = html.split('id="rising-fast"', 1)[1].split("</table>", 1)[0]
    assert "&lt;img src=x onerror=alert(1)&gt;" in section and "<img src=x" not in html
    assert "20.0% → <b>40.0%</b>" in section and "+20.0 pp" in section and "0 days" in section
    assert html.index('id="rising-fast"') < html.index("Entered the high tier") < html.index('id="drivers"')
    inputs.previous_as_of, inputs.previous_scores, inputs.previous_drivers = None, None, None
    assert _rising_rows(render_manager_report(inputs, ReportConfig())) == []


def test_the_exports_hold_the_same_rows(inputs):
    at_risk = build_at_risk(inputs, ReportConfig())
    csv = pd.read_csv(io.StringIO(at_risk_csv(at_risk)))
    assert csv.account_id.tolist() == ["a2", "a1", "a3"]
    assert csv.columns.tolist()[:6] == ["account_id", "account", "segment", "csm_owner", "mrr", "churn_probability"]
    markdown = at_risk_markdown(at_risk, NOW).splitlines()
    assert markdown[0] == "# Accounts at risk as of 2025-05-01"
    assert markdown[4] == ("| 1 | Globex | Enterprise | – | 2,000 | 40.0% | +20.0 pp | 800 | high | "
                           "2 active users in the last 30 days; 3 high-priority tickets open | Escalate the open "
                           "tickets | Support | 20.0% | medium | 2025-05-01 | 0 days | renews in 200 days (annual) | "
                           "2025-05-15 |")
    assert "renews in 18 days (annual)" in markdown[3 + csv.account_id.tolist().index("a1") + 1]
    assert csv.renewal.tolist() == ["renews in 200 days (annual)", "renews in 18 days (annual)",
                                    "renewal date unknown"]
    assert "Acme \\| Co" in markdown[5] and len(markdown) == 7
    assert "| 50.0% | high | 2025-04-01 | 30 days | renews in 18 days (annual) | 2025-05-10 |" in markdown[5]
    assert csv.columns.tolist()[-11:] == ["previous_probability", "previous_tier", "tier_since", "days_in_tier",
                                          "days_to_renewal", "renewal", "urgency", "due_by", "playbook", "arm",
                                          "no_action_reason"]
    assert csv.probability_change.tolist()[:2] == pytest.approx([0.2, 0.1])
    assert csv.tier_since.tolist() == ["2025-05-01", "2025-04-01", "2025-05-01"]


def test_the_waterfall_runs_exactly_from_the_average_account_to_the_probability(inputs):
    inputs.portfolio = _portfolio(["a1", "a2", "a3"])
    row = inputs.portfolio.contributions.loc["a2"]
    waterfall = build_waterfall(inputs, "a2", steps=2)
    assert waterfall["base"] == pytest.approx(1 / (1 + np.exp(1.5)))
    assert waterfall["final"] == pytest.approx(1 / (1 + np.exp(-row.sum())))
    assert len(waterfall["bars"]) == 3 and waterfall["bars"][-1]["label"] == "3 other signals together"
    assert sum(b["points"] for b in waterfall["bars"]) == pytest.approx(100 * (waterfall["final"] - waterfall["base"]))
    assert build_waterfall(inputs, "a9", steps=2) is None


def test_the_waterfall_compares_causes_with_retained_accounts_but_not_context(inputs):
    inputs.portfolio = _portfolio(["a1", "a2", "a3"])
    inputs.benchmarks = Benchmarks(by=None, values={OVERALL: {"days_to_renewal": 19.0, "active_users_30d": 8.0}})
    labels = [bar["label"] for bar in build_waterfall(inputs, "a2", steps=5)["bars"]]
    renewal = next(label for label in labels if label.startswith("Renewal due"))
    users = next(label for label in labels if "active user" in label)
    assert "retained" not in renewal and users.endswith("(retained accounts: median 8)")


def test_the_page_lists_the_accounts_and_needs_no_network(inputs):
    inputs.portfolio = _portfolio(["a1", "a2", "a3", "a4", "a5", "a6"])
    inputs.model = ModelFacts(name="churn-lightgbm", version="3", run_id="r1", trained_at="2025-04-30 06:00",
                              window={"train_as_of": "2024-04-01..2024-12-01"},
                              metrics={"lightgbm": {"roc_auc": 0.81, "top_decile_lift": 3.2}}, capacity=50)
    html = render_manager_report(inputs, ReportConfig())
    page = parse_report(html)
    assert page.rows == ["a2", "a1", "a3"]
    assert page.images == 2                            # importance and beeswarm; no calibration plot in this run
    assert external_urls(html, page) == []
    assert "Escalate the open tickets" in html and "Globex" in html and "Risk by plan" in html
    assert "CSM owner" not in html.split('id="at-risk"')[1].split("</thead>")[0]   # no owners: no column
    assert html.count("<details") == 3


def test_the_page_degrades_without_model_explanations_or_a_previous_scoring(inputs):
    inputs.previous_as_of, inputs.previous_scores, inputs.previous_drivers = None, None, None
    html = render_manager_report(inputs, ReportConfig())
    assert parse_report(html).rows == ["a2", "a1", "a3"]
    assert "first scoring, nothing to compare with" in html
    assert "Portfolio plots unavailable" in html and "not found in MLflow" in html


def test_a_quoted_comment_is_escaped_once_by_each_output(inputs):
    reason = "Latest survey comment reads negative (-0.72): “Exports <b>fail</b> | again & [again]”"
    inputs.scores.loc[inputs.scores.account_id == "a2", "top_reasons"] = reason
    html = render_manager_report(inputs, ReportConfig())
    assert "“Exports &lt;b&gt;fail&lt;/b&gt; | again &amp; [again]”" in html
    assert "<b>fail</b>" not in html and "&amp;lt;" not in html and "&amp;amp;" not in html
    markdown = at_risk_markdown(build_at_risk(inputs, ReportConfig()), NOW)
    assert "“Exports &lt;b&gt;fail&lt;/b&gt; \\| again &amp; \\[again\\]”" in markdown and "&amp;lt;" not in markdown
