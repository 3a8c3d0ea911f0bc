"""The Portfolio KPIs section of the managers' report, from the KPIs of the hand-built warehouse
(tests/features/kpi_warehouse.py): latest month against the month before and a year before, by segment, churn by
time-to-first-value quartile, the trend and time-to-value plots, and the page without KPIs."""

from __future__ import annotations

import re
import subprocess
import tempfile
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import ibis
import pandas as pd
import pytest

from serving.config import ReportConfig
from serving.report.inputs import ReportInputs
from serving.report.kpi_plots import plot_ttv_curves, plot_ttv_medians
from serving.report.kpis import build_kpi_section, kpi_specs, kpis_until, trend_series
from serving.report.render import render_manager_report
from tests.features.kpi_warehouse import kpi_tables
from tests.features.test_kpis import compute_kpis, load
from tests.serving.test_report import external_urls, parse_report

AS_OF = date(2024, 4, 1)
SPECS = kpi_specs([7, 30, 60])
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def kpis(tmp_path_factory) -> pd.DataFrame:
    con = ibis.duckdb.connect(str(tmp_path_factory.mktemp("report_kpis") / "warehouse.duckdb"), threads=1)
    try:
        frame, _ = compute_kpis(load(con, kpi_tables()))
    finally:
        con.disconnect()
    return frame


def _inputs(kpis: pd.DataFrame | None, as_of: date = AS_OF) -> ReportInputs:
    scores = pd.DataFrame({"account_id": ["steady"], "churn_probability": [0.5], "mrr": [150.0],
                           "risk_tier": ["high"], "as_of": as_of, "top_reasons": "", "recommended_action": None,
                           "owner_role": None, "model_name": "churn-lightgbm", "model_version": "1"})
    drivers = pd.DataFrame(columns=["account_id", "rank", "feature", "value", "contribution", "reason", "as_of",
                                    "probability_points", "direction"])
    return ReportInputs(as_of=as_of, scores=scores, drivers=drivers,
                        attributes=pd.DataFrame({"account_id": ["steady"]}), specs={}, tier_names=["high", "low"],
                        kpis=kpis, kpi_days=[7, 30, 60])


def test_each_kpi_is_its_latest_month_against_the_month_and_the_year_before(kpis):
    section = build_kpi_section(kpis, SPECS, AS_OF)
    rows = {r["name"]: r for r in section.comparison}
    mrr, churn, nps = rows["mrr"], rows["logo_churn_rate"], rows["nps"]
    assert (mrr["month"], mrr["value"]) == (pd.Timestamp("2024-03-01"), "1,960")
    assert (mrr["previous"]["value"], mrr["previous"]["change"], mrr["previous"]["direction"]) == ("1,860", "+5.4%",
                                                                                                  "good")
    assert (mrr["year"]["value"], mrr["year"]["change"]) == ("1,100", "+78.2%")          # March 2023
    # Churn settles a month later: February (1 of 7) against January (2 of 7) and February 2023 (0 of 2).
    assert (churn["month"], churn["value"]) == (pd.Timestamp("2024-02-01"), "14.3%")
    assert (churn["previous"]["change"], churn["previous"]["direction"]) == ("-14.3 pp", "good")
    assert (churn["year"]["value"], churn["year"]["direction"]) == ("0.0%", "bad")
    assert (nps["value"], nps["previous"]["change"], nps["year"]["value"]) == ("-100", "-125.0", "–")
    assert section.latest_month == pd.Timestamp("2024-03-01") and section.settled_month == pd.Timestamp("2024-02-01")
    assert [r["name"] for r in section.comparison][:3] == ["mrr", "active_accounts", "arpu"]


def test_an_earlier_report_shows_only_the_months_that_had_ended(kpis):
    section = build_kpi_section(kpis, SPECS, date(2024, 2, 1))
    rows = {r["name"]: r for r in section.comparison}
    assert rows["mrr"]["month"] == pd.Timestamp("2024-01-01") and rows["mrr"]["value"] == "1,420"
    assert "nps" in rows and rows["nps"]["value"] == "+25"
    assert build_kpi_section(kpis, SPECS, date(2023, 2, 1)).available is False


def test_segments_and_churn_by_time_to_first_value(kpis):
    section = build_kpi_section(kpis, SPECS, AS_OF)
    assert [r["segment"] for r in section.segment_rows] == ["ENT", "SMB", "unknown", "All accounts"]
    titles = [c["title"] for c in section.segment_columns]
    assert titles[:2] == ["MRR", "Active accounts"]
    smb = dict(zip(titles, section.segment_rows[1]["values"], strict=True))
    # gone and quick churned; steady, upgrade, gone, quick and newbie were active on 21 firsts since March 2023
    assert smb["MRR"] == "590" and smb["Logo churn rate, 12-month average"] == "9.5%"
    assert section.quartile_month == pd.Timestamp("2024-02-01")
    assert section.quartile_rows[-1] == {"segment": "All accounts", "shown": "All accounts",
                                         "cells": ["100.0% (1)", "0.0% (1)", "0.0% (1)", "–", "–"]}


def test_the_plots_draw_the_last_twelve_months_and_the_cohorts(kpis):
    kpis = kpis_until(kpis, AS_OF)
    series = trend_series(kpis)
    assert list(series) == ["logo_churn_rate", "net_revenue_retention", "gross_revenue_retention", "nps", "mrr"]
    assert len(series["mrr"]) == 12 and series["mrr"].index.max() == pd.Timestamp("2024-03-01")
    assert len(series["nps"]) == 2
    assert plot_ttv_curves(kpis, [7, 30, 60]).startswith(PNG) and plot_ttv_medians(kpis).startswith(PNG)
    assert plot_ttv_curves(kpis[~kpis.kpi.str.contains("_by_day_")], [7, 30, 60]) is None


class _KpiTable(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.kpis: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-kpi" in attrs:
            self.kpis.append(attrs["data-kpi"])


def test_the_report_renders_the_section_self_contained(kpis):
    html = render_manager_report(_inputs(kpis), ReportConfig())
    page, table = parse_report(html), _KpiTable()
    table.feed(html)
    assert "Portfolio KPIs" in html and 'href="#kpis"' in html
    assert table.kpis[:4] == ["mrr", "active_accounts", "arpu", "new_mrr"] and len(table.kpis) == 23
    assert page.images == 5 + 2                     # five trends, the curves, the medians
    assert external_urls(html, page) == []
    assert "ARPU × kpis.gross_margin ÷ logo_churn_rate_12m" in html   # the formula is shown


def test_without_kpis_the_section_says_how_to_compute_them():
    html = render_manager_report(_inputs(None), ReportConfig())
    assert "No KPIs in the warehouse yet" in html and parse_report(html).images == 0


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found: apt-get install chromium (CI installs it)")
def test_chromium_renders_the_section_without_console_errors(kpis, tmp_path):
    path = tmp_path / "report.html"
    path.write_text(render_manager_report(_inputs(kpis), ReportConfig()))
    with tempfile.TemporaryDirectory() as profile:
        run = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--disable-background-networking", f"--user-data-dir={profile}",
                              "--enable-logging=stderr", "--v=0", "--dump-dom",
                              path.as_uri()], capture_output=True, text=True, timeout=180, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert [line for line in run.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line] == []
    table = _KpiTable()
    table.feed(run.stdout)
    assert len(table.kpis) == 23


# --- odd and hostile tables ---------------------------------------------------------------------------------------

HOSTILE = {"ENT": '"><img src=x onerror=alert(1)>', "SMB": "<script>alert(1)</script>" + "x" * 5000,
           "unknown": "=HYPERLINK(\"http://evil.example\")\n**bold** [link](http://evil.example)"}


class _Segments(HTMLParser):
    """The segment cells of the section's tables: (text, title), and every element the page opens."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str | None]] = []
        self.tags: set[str] = set()
        self._title: str | None = None
        self._in = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        self._in = tag == "td" and attrs.get("class") == "seg"
        self._title = attrs.get("title")

    def handle_data(self, data):
        if self._in:
            self.cells.append((data, self._title))
            self._in = False


def _renamed(kpis: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    return kpis.assign(segment=kpis.segment.map(lambda s: names.get(s, s)))


def test_hostile_segment_names_are_text_clipped_in_the_cell_and_whole_in_its_title(kpis):
    html = render_manager_report(_inputs(_renamed(kpis, HOSTILE)), ReportConfig())
    page = _Segments()
    page.feed(html[html.index('id="kpis"'):html.index('id="quality"')])
    assert "script" not in page.tags and "img" in page.tags          # the charts' <img>s, not the segment's
    cells = dict(page.cells)
    longest = next(text for text in cells if text.startswith("<script>"))
    assert len(longest) == 40 and longest.endswith("…")
    assert cells[longest] == HOSTILE["SMB"]                          # the whole name, as an attribute's text
    assert cells['"><img src=x onerror=alert(1)>'] == HOSTILE["ENT"]
    assert [text for text, _ in page.cells].count("All accounts") == 2


def test_many_segments_list_the_largest_and_say_how_many_more(kpis):
    """Hundreds of segments made tables hundreds of rows long; the largest 30 by active accounts are listed."""
    smb = kpis[kpis.segment == "SMB"]
    many = [smb.assign(segment=f"S{i:03d}", value=smb.value * (1 + i)) for i in range(40)]
    section = build_kpi_section(pd.concat([kpis[kpis.segment == "all"], *many]), SPECS, AS_OF)
    shown = [r["segment"] for r in section.segment_rows]
    assert shown == [f"S{i:03d}" for i in range(10, 40)] + ["All accounts"]
    assert section.segments_hidden == 10
    assert [r["segment"] for r in section.quartile_rows] == shown
    html = render_manager_report(_inputs(pd.concat([kpis[kpis.segment == "all"], *many])), ReportConfig())
    assert "10 smaller segments (by active accounts) are not listed; churn_kpis has them all" in html


def test_a_table_without_mrr_or_quartile_counts_still_renders(kpis):
    """A churn_kpis without MRR rows (nothing active at any month's end) crashed on the missing latest month; a
    quartile row without its count on int(None)."""
    no_mrr = kpis[~kpis.kpi.isin(["mrr"])]
    section = build_kpi_section(no_mrr, SPECS, AS_OF)
    assert section.latest_month == pd.Timestamp("2024-03-01")
    quartiles = kpis.assign(denominator=kpis.denominator.where(~kpis.kpi.str.startswith("churn_rate_ttv"), None))
    assert build_kpi_section(quartiles, SPECS, AS_OF).quartile_rows[-1]["cells"][:2] == ["100.0%", "0.0%"]
    only_nps = kpis[kpis.kpi == "nps"]
    for frame in (no_mrr, quartiles, only_nps):
        assert "Portfolio KPIs" in render_manager_report(_inputs(frame), ReportConfig())


def test_curve_days_no_cohort_reached_leave_the_plot_as_it_was(kpis):
    """A kpis.ttv_days day longer than the data has no rows; its tick stretched the axis and flattened the curves."""
    kpis = kpis_until(kpis, AS_OF)
    assert plot_ttv_curves(kpis, [7, 30, 60, 3000]) == plot_ttv_curves(kpis, [7, 30, 60])


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found: apt-get install chromium (CI installs it)")
def test_chromium_lays_a_long_segment_name_out_within_the_page(kpis, tmp_path):
    """A 5,000-character segment name made the segment table thousands of pixels wide, pushing its numbers out of
    sight; the page measures its tables after layout and writes the widths into the DOM Chromium dumps."""
    html = render_manager_report(_inputs(_renamed(kpis, HOSTILE)), ReportConfig())
    probe = ("<script>document.body.dataset.widths = [...document.querySelectorAll("
             "'#kpi-table, #kpi-segments, #kpi-quartiles')]"
             ".map(t => t.scrollWidth + '/' + t.parentElement.clientWidth).join(' ')</script></body>")
    path = tmp_path / "report.html"
    path.write_text(html.replace("</body>", probe))
    with tempfile.TemporaryDirectory() as profile:
        run = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--disable-background-networking", f"--user-data-dir={profile}", "--window-size=1366,900",
                              "--enable-logging=stderr", "--v=0", "--dump-dom", path.as_uri()],
                             capture_output=True, text=True, timeout=180, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert [line for line in run.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line] == []
    widths = re.search(r'data-widths="([^"]*)"', run.stdout).group(1).split()
    assert len(widths) == 3                                  # the KPI table, by segment, churn by TTV quartile
    for pair in widths:
        table, card = (int(x) for x in pair.split("/"))
        assert table <= card + 1, widths
