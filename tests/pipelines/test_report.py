"""The managers' report end to end: simulate → train → score two as-ofs through the CLI → report, opened in a real
headless Chromium (screenshot, console, DOM), plus the params errors of playbook rules; and the history columns
the two scorings wrote (consistent with each other, the same on a re-run, rebuilt after an upgrade)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from rich.console import Console

from pipelines.config import ParamsError, load_params
from pipelines.errors import StageError
from pipelines.progress import Progress
from pipelines.report_run import keep_cause_drivers, run_report
from tests.e2e import SMALL, WAREHOUSE, churn, write_params
from tests.e2e import query as query_warehouse
from tests.serving.test_report import external_urls, parse_report

CHROMIUM = Path("/usr/bin/chromium")
PREVIOUS, LATEST = "2025-04-01", "2025-05-01"   # simulate.start 2024-01-01 + 16 months: data ends 2025-04-30
IDENTIFIER = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found: the report is checked in "
                                    "Debian's chromium (apt-get install chromium; CI installs it)")


# 300 accounts drift a lot between months by chance; this test is about the report, not the drift guard.
OVERRIDES = {"scoring.drift": {"warn": 1e6, "stop": 1e6}}


@pytest.fixture(scope="module")
def report(make_project) -> dict:
    """A small scored warehouse (two as-ofs) and the report rendered from it."""
    project = make_project(OVERRIDES, simulation=SMALL, name="report")
    root = project.root
    project.churn("train")
    project.churn("score", "--as-of", PREVIOUS)
    project.churn("score")
    start = time.perf_counter()
    path = run_report(load_params(root / "params.yaml"), Progress(Console(file=io.StringIO())),
                      reports_dir=root / "reports").html
    return {"root": root, "path": path, "seconds": time.perf_counter() - start, "html": path.read_text(),
            "project": project}


def query(root: Path, sql: str) -> pd.DataFrame:
    return query_warehouse(root / WAREHOUSE, sql)


def expected_at_risk(root: Path) -> list[str]:
    """The high-tier accounts of the latest as-of by expected MRR loss, as the scorer wrote them."""
    return query(root, f"""SELECT account_id FROM churn_scores WHERE as_of = DATE '{LATEST}' AND risk_tier = 'high'
                           ORDER BY churn_probability * mrr DESC, account_id LIMIT 200""").account_id.tolist()


def chromium(url: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args, url],
            capture_output=True, text=True, timeout=180, check=False)


def rising_rows(html: str) -> list[str]:
    """The accounts of the page's "Rising fast" table, in order."""
    section = html.split('id="rising-fast"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-account="([^"]+)"', section)


def console_messages(stderr: str) -> list[str]:
    # Chromium logs every console message (any level) and uncaught error as a CONSOLE line; the page logs none.
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.mark.slow
def test_the_report_and_its_exports_list_the_high_risk_accounts(report):
    root, path = report["root"], report["path"]
    assert path == root / "reports" / f"churn_report_{LATEST}.html"
    expected = expected_at_risk(root)
    assert expected, "the simulated warehouse should have high-risk accounts"
    assert parse_report(report["html"]).rows == expected
    exported = pd.read_csv(root / "reports" / f"churn_report_{LATEST}_at_risk.csv")
    assert exported.account_id.tolist() == expected
    # Accounts held back by the playbook experiment get no action on purpose (churn_scores.arm says so).
    arms = query(root, f"SELECT account_id, arm FROM churn_scores WHERE as_of = DATE '{LATEST}'")
    held = exported.account_id.map(arms.set_index("account_id").arm).eq("holdout").to_numpy()
    assert exported[~held].recommended_action.notna().all() and exported[~held].owner_role.notna().all()
    assert exported[held].recommended_action.isna().all()
    markdown = (root / "reports" / f"churn_report_{LATEST}_at_risk.md").read_text().splitlines()
    assert len(markdown) == 4 + len(expected)
    assert f"compared with the scoring of {PREVIOUS}" in report["html"]
    for section in ("MRR at risk", "Entered the high tier", "Signals that move risk most", "Risk by segment",
                    "Risk by plan", "Risk by CSM owner", "Validation metrics", "Model's average account"):
        assert section in report["html"], section


@pytest.mark.slow
def test_the_report_references_no_external_url(report):
    html = report["html"]
    page = parse_report(html)
    assert external_urls(html, page) == []
    assert page.images == 3   # importance, beeswarm, calibration (from the model's MLflow run)
    assert "<link" not in html and "@import" not in html


@pytest.mark.slow
def test_scores_carry_points_actions_and_reasons_without_feature_names(report):
    root = report["root"]
    drivers = query(root, f"SELECT * FROM churn_score_drivers WHERE as_of = DATE '{LATEST}'")
    scores = query(root, f"SELECT * FROM churn_scores WHERE as_of = DATE '{LATEST}'")
    assert drivers.probability_points.notna().all()
    # Points never contradict the direction; an isotonic calibrator's flat steps may give a driver zero points.
    raises = drivers.direction == "raises risk"
    points = drivers.probability_points
    assert not (raises & (points < 0)).any() and not (~raises & (points > 0)).any()
    assert (points[raises] > 0).any()
    assert set(drivers.direction) == {"raises risk", "lowers risk"}
    high = scores[scores.risk_tier == "high"]
    treated, held = high[high.arm == "treatment"], high[high.arm == "holdout"]
    assert len(treated) + len(held) == len(high) and high.playbook.notna().all()
    assert treated.recommended_action.notna().all() and treated.owner_role.notna().all()
    assert held[["recommended_action", "owner_role", "due_by"]].isna().all().all()
    texts = " ".join(scores.top_reasons) + " " + " ".join(drivers.reason)
    assert IDENTIFIER.findall(texts) == []


@pytest.mark.slow
@needs_chromium
def test_chromium_renders_the_report_without_console_errors(report):
    root, url = report["root"], report["path"].as_uri()
    screenshot = root / "screenshot.png"
    shot = chromium(url, f"--screenshot={screenshot}", "--window-size=1366,900")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert console_messages(shot.stderr) == []
    pixels = np.asarray(Image.open(screenshot).convert("RGB"))
    assert pixels.shape[:2] == (900, 1366)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200          # text, cards, badges: not a blank page
    assert (pixels < 245).any(axis=2).mean() > 0.05                     # well beyond a few stray pixels
    dom = chromium(url, "--dump-dom")
    assert console_messages(dom.stderr) == []
    assert parse_report(dom.stdout).rows == expected_at_risk(root)
    assert rising_rows(dom.stdout) == rising_rows(report["html"]) and len(rising_rows(dom.stdout)) == 10


@pytest.mark.slow
@needs_chromium
def test_the_at_risk_table_sorts_in_the_browser(report):
    exported = pd.read_csv(report["root"] / "reports" / f"churn_report_{LATEST}_at_risk.csv")
    dom = chromium(report["path"].as_uri() + "#sort=probability&dir=asc", "--dump-dom")
    assert console_messages(dom.stderr) == []
    by_probability = exported.sort_values(["churn_probability"], kind="stable").account_id.tolist()
    assert parse_report(dom.stdout).rows == by_probability


HISTORY = ["previous_as_of", "previous_probability", "previous_tier", "probability_change", "tier_since",
           "days_in_tier"]


def scores_of(root: Path, as_of: str, warehouse: str = WAREHOUSE) -> pd.DataFrame:
    frame = query_warehouse(root / warehouse, f"SELECT * FROM churn_scores WHERE as_of = DATE '{as_of}'")
    return frame.set_index("account_id").sort_index()


@pytest.mark.slow
def test_two_scorings_write_consistent_history_columns(report):
    root = report["root"]
    before, now = scores_of(root, PREVIOUS), scores_of(root, LATEST)
    assert before.previous_as_of.isna().all()                           # the first scoring of this warehouse
    assert (before.tier_since == pd.Timestamp(PREVIOUS)).all() and (before.days_in_tier == 0).all()
    assert (now.previous_as_of == pd.Timestamp(PREVIOUS)).all()
    both = now.index.intersection(before.index)
    new = now.index.difference(before.index)
    assert len(both) > 100 and len(new) > 0                             # accounts kept and accounts new
    pd.testing.assert_series_equal(now.loc[both, "previous_probability"], before.loc[both, "churn_probability"],
                                   check_names=False)
    assert (now.loc[both, "previous_tier"] == before.loc[both, "risk_tier"]).all()
    np.testing.assert_allclose(now.loc[both, "probability_change"],
                               now.loc[both, "churn_probability"] - before.loc[both, "churn_probability"], atol=1e-12)
    assert now.loc[new, ["previous_probability", "previous_tier", "probability_change"]].isna().all().all()
    kept = now.index.isin(both) & (now.previous_tier == now.risk_tier)
    assert kept.sum() > 0 and (~kept).sum() > 0                          # tiers kept and tiers changed
    assert (now.tier_since[kept] == pd.Timestamp(PREVIOUS)).all() and (now.days_in_tier[kept] == 30).all()
    assert (now.tier_since[~kept] == pd.Timestamp(LATEST)).all() and (now.days_in_tier[~kept] == 0).all()


@pytest.mark.slow
def test_the_rising_fast_table_lists_the_largest_rises_the_scorer_wrote(report):
    rising = query(report["root"], f"""SELECT account_id FROM churn_scores WHERE as_of = DATE '{LATEST}'
                                       AND probability_change > 0 ORDER BY probability_change DESC, account_id
                                       LIMIT 10""").account_id.tolist()
    assert len(rising) == 10 and rising_rows(report["html"]) == rising


@pytest.mark.slow
def test_scoring_the_same_as_of_again_writes_the_same_history(report):
    root = report["root"]
    first = scores_of(root, LATEST)
    report["project"].churn("score")
    again = scores_of(root, LATEST)
    pd.testing.assert_frame_equal(again.drop(columns="scored_at"), first.drop(columns="scored_at"))
    assert again[HISTORY].notna().any().all()


@pytest.mark.slow
def test_scoring_over_a_table_written_by_an_older_version_adds_the_columns_and_rebuilds_the_tier_run(report):
    """The same warehouse as an older version left it (no history columns, only the previous scoring): the next
    `churn score` migrates both tables and gives the history a fresh scoring gives."""
    project, root = report["project"], report["root"]
    upgraded = project.variant("upgraded.yaml", {"warehouse": {"url": f"duckdb://{root}/upgraded.duckdb"}})
    copy = Path(shutil.copyfile(root / WAREHOUSE, root / "upgraded.duckdb"))
    with duckdb.connect(str(copy)) as con:
        con.execute(f"DELETE FROM churn_scores WHERE as_of = DATE '{LATEST}'")
        con.execute(f"DELETE FROM churn_score_drivers WHERE as_of = DATE '{LATEST}'")
        for column in HISTORY:
            con.execute(f"ALTER TABLE churn_scores DROP COLUMN {column}")
        con.execute("ALTER TABLE churn_score_drivers DROP COLUMN probability_points")
    output = churn(upgraded, "score")
    assert f"against {PREVIOUS}" in output
    now, fresh = scores_of(root, LATEST, "upgraded.duckdb"), scores_of(root, LATEST)
    pd.testing.assert_frame_equal(now[HISTORY], fresh[HISTORY])
    assert scores_of(root, PREVIOUS, "upgraded.duckdb")[HISTORY].isna().all().all()   # older rows keep nulls
    drivers = query_warehouse(copy, "SELECT * FROM churn_score_drivers")
    assert drivers.probability_points.isna().any() and drivers.probability_points.notna().any()


def test_drivers_written_before_roles_quote_no_context_as_a_reason():
    # An older version ranked "Renewal due in 12 days" among the reasons and wrote no role: the catalog's role
    # keeps it out of the entered, left and rising tables, as it does for a row of today's role `context`.
    from features.catalog import CATALOG, expand_catalog
    from features.config import FeatureConfig

    specs = {s.name: s for s in expand_catalog(CATALOG, FeatureConfig(windows=[30]).windows_by_kind())}
    old = pd.DataFrame({"account_id": ["a", "a", "a", "a"], "rank": [1, 2, 3, 4],
                        "feature": ["days_to_renewal", "active_users_30d", "tenure_days", "retired_feature"],
                        "reason": ["Renewal due in 12 days", "2 active users", "Customer for 90 days", "Old text"]})
    assert keep_cause_drivers(old, specs)["feature"].tolist() == ["active_users_30d", "retired_feature"]
    mixed = old.assign(role=["cause", None, "context", None])   # a stored role wins over the catalog's
    assert keep_cause_drivers(mixed, specs)["feature"].tolist() == ["days_to_renewal", "active_users_30d",
                                                                    "retired_feature"]
    assert keep_cause_drivers(None, specs) is None


@pytest.mark.slow
def test_reporting_an_as_of_that_was_not_scored_names_the_scored_dates(report):
    with pytest.raises(StageError, match=f"no scores for that date .* {PREVIOUS}, {LATEST}"):
        run_report(load_params(report["root"] / "params.yaml"), Progress(Console(file=io.StringIO())),
                   as_of=pd.Timestamp("2025-03-01").date(), reports_dir=report["root"] / "reports")


@pytest.mark.slow
def test_the_kpi_section_from_churn_kpis_as_it_may_be_found(report, tmp_path):
    """Empty or one month: the report says so or shows it. Another shape or repeated rows (never written by
    `churn kpis`): one line naming the table and the rule, exit 1, no report written."""
    for name in (WAREHOUSE, "mlruns.db"):
        shutil.copyfile(report["root"] / name, tmp_path / name)
    params = write_params(tmp_path, OVERRIDES)
    html = tmp_path / "reports" / f"churn_report_{LATEST}.html"
    columns = "month DATE, segment VARCHAR, kpi VARCHAR, value DOUBLE, numerator DOUBLE, denominator DOUBLE"
    cases = [
        ([f"CREATE TABLE churn_kpis ({columns})"], "No KPIs in the warehouse yet"),
        (["INSERT INTO churn_kpis VALUES (DATE '2025-04-01', 'all', 'mrr', 1234, 1234, NULL)"], "April 2025"),
        (["DELETE FROM churn_kpis", "ALTER TABLE churn_kpis ALTER value TYPE VARCHAR",
          "INSERT INTO churn_kpis VALUES (DATE '2025-04-01', 'all', 'mrr', 'many', 1, NULL)"],
         "error: table churn_kpis: column value is string, not floating (written by another version or tool; drop "
         "it and run `churn kpis`)"),
        (["DROP TABLE churn_kpis", f"CREATE TABLE churn_kpis ({columns})",
          "INSERT INTO churn_kpis VALUES (DATE '2025-04-01', 'all', 'mrr', 1, 1, NULL), "
          "(DATE '2025-04-01', 'all', 'mrr', 2, 2, NULL)"],
         "error: table churn_kpis: 1 row(s) repeat a month, segment and kpi (rule: one row each; run `churn kpis` "
         "to write it again)"),
    ]
    for statements, said in cases:
        with duckdb.connect(str(tmp_path / WAREHOUSE)) as con:
            for statement in statements:
                con.execute(statement)
        html.unlink(missing_ok=True)
        if said.startswith("error: "):
            assert churn(params, "report", expect=1).rstrip().splitlines()[-1] == said
            assert not html.exists()
        else:
            churn(params, "report")
            assert said in html.read_text()


def test_an_invalid_playbook_rule_in_params_is_a_clear_error(tmp_path):
    path = write_params(tmp_path, OVERRIDES | {"scoring.playbooks": {"rules": [
        {"tier": "high", "group": "*", "action": "Executive sponsor call", "owner_role": "CS manager"},
        {"tier": "hihg", "group": "support", "action": "Escalate tickets", "owner_role": "Support lead"}]}})
    with pytest.raises(ParamsError, match=r"scoring: .*rule 2 \(tier 'hihg', group 'support'\): unknown tier 'hihg'"):
        load_params(path)


CAUSES_AND_TIMING = ["urgency", "due_by", "renewal_date", "days_to_renewal", "billing_period_months"]


@pytest.mark.slow
def test_reasons_stay_honest_over_an_older_warehouse_with_accounts_that_never_reached_value(report):
    """The warehouse as a version before causes and context left it (no role on the drivers, no timing columns on
    the scores), with a dozen accounts that signed up inside the history stripped of every value and core event:
    the next `churn score` (all ten reasons, five protective factors) upgrades the tables, says "has not reached
    first value" instead of "took N days", never gives timing as a reason, and the report renders renewal timing."""
    project, root = report["project"], report["root"]
    copy = Path(shutil.copyfile(root / WAREHOUSE, root / "honest.duckdb"))
    honest = project.variant("honest.yaml", {"warehouse": {"url": f"duckdb://{root}/honest.duckdb"},
                                             "scoring.top_reasons": 10, "scoring.protective_factors": 5})
    params = load_params(honest)
    stripped = sorted(set(params.features.value_events) | set(params.features.core_events))
    with duckdb.connect(str(copy)) as con:
        for column in CAUSES_AND_TIMING:
            con.execute(f"ALTER TABLE churn_scores DROP COLUMN {column}")
        con.execute("DELETE FROM churn_score_drivers WHERE rank IS NULL")
        con.execute("ALTER TABLE churn_score_drivers DROP COLUMN role")
        never = [row[0] for row in con.execute(
            f"""SELECT a.account_id FROM accounts a JOIN churn_scores s USING (account_id)
                WHERE s.as_of = DATE '{LATEST}' AND a.created_at > TIMESTAMP '2024-03-01'
                ORDER BY s.churn_probability DESC, a.account_id LIMIT 12""").fetchall()]
        con.execute("DELETE FROM events WHERE list_contains($1, account_id) AND list_contains($2, event_name)",
                    [never, stripped])
    churn(honest, "score", "--allow-drift")
    drivers = query_warehouse(copy, f"SELECT * FROM churn_score_drivers WHERE as_of = DATE '{LATEST}'")
    scores = scores_of(root, LATEST, "honest.duckdb")
    assert len(never) == 12
    # Whichever of their time-to-value drivers made the list (how many depends on the model) reads as not reached.
    mine = drivers[drivers.account_id.isin(never) & drivers.feature.isin(["days_to_first_value", "value_reached"])]
    assert len(mine) >= 1 and mine.value.fillna(0).eq(0).all()
    assert mine.reason.str.fullmatch(r"Has not reached first value in [\d,]+ days? since sign-up").all()
    assert not drivers.reason.str.contains(r"^Took [\d,]+ days? to reach first value", regex=True)[
        drivers.feature.eq("days_to_first_value") & drivers.value.isna()].any()
    assert not scores.top_reasons.str.contains("Renewal due|Billed every|Customer for|paid seats$").any()
    assert drivers.loc[drivers.role == "context", "rank"].isna().all()
    assert drivers.loc[drivers.role == "cause", "rank"].notna().all() and drivers["rank"].max() > 3
    high = scores[scores.risk_tier == "high"]
    assert high.loc[high.arm != "holdout", "recommended_action"].notna().all()
    assert scores[CAUSES_AND_TIMING].notna().any().all()
    path = run_report(params, Progress(Console(file=io.StringIO())), reports_dir=root / "honest_reports").html
    assert re.search(r"renews (today|tomorrow|in [\d,]+ days)", path.read_text())


def test_other_feature_settings_than_the_models_skip_the_portfolio_drivers_and_say_why(report, tmp_path):
    """The portfolio plots recompute today's features: under another trend window they would mean something else
    to the model, and the report blamed the difference on changes in the warehouse."""
    project = report["project"]
    params = project.variant("retimed.yaml", {"features.trend_window_days": 14, "report.dir": str(tmp_path)})
    output = churn(params, "report")
    assert ("  ! portfolio drivers skipped: the model was trained with other feature settings: "
            "features.trend_window_days: trained with 30, params say 14") in output.splitlines()
    assert "changed in the warehouse since they were scored" not in output
    assert list(tmp_path.glob("churn_report_*.html"))
