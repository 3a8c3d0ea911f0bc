"""Hostile values in the warehouse never become live HTML on the validation page, and the page loads nothing.

The page replaced Great Expectations' Data Docs, where an orphan `events.account_id` of
`<img src=x onerror=alert(document.domain)>` ran as markup and every page pulled scripts from public CDNs. Each
test puts several shapes of hostile text into several tables and columns, renders the page, and compares its markup
with the page of a twin warehouse whose every hostile value is replaced one for one by a plain token: the tags and
attributes must be the same, so none of them came from the data, and the hostile text must read back as text.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path

import ibis
import pandas as pd
from rich.console import Console

from features.sources import load_sources
from pipelines.config import Params, WarehouseConfig
from pipelines.progress import Progress
from pipelines.validation.page import render_validation_page, write_validation_page
from pipelines.validation.report import MAX_VALUE_CHARS
from pipelines.validation.validate import ValidationConfig, run_validate, validate_scores, validate_sources
from serving.writeback import SCORES_SCHEMA
from tests.conftest import tiny_accounts, ts

NOW = datetime(2025, 1, 1)
CONFIG = ValidationConfig(data_docs_dir=None, max_examples=20)
LONG = "<script>" + "a" * 5_000 + "</script><img src=x onerror=alert(1)>"
HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(document.domain)>",
    '"><svg onload=alert(1)>',
    "'><svg/onload=alert(1)>",
    "javascript:alert(1)",
    '<a href="javascript:alert(1)">click</a>',
    "&lt;script&gt;alert(1)&lt;/script&gt;",  # an entity must stay the text "&lt;", never become "<"
    "</code></li></ul></div><script>alert(1)</script>",
    "--><!--<script>alert(1)</script>",
    "</title></style><iframe srcdoc=x>",
    LONG,
]


class Page(HTMLParser):
    """Every tag with its attributes, every text node (entities decoded) and every comment of a page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple[tuple[str, str | None], ...]]] = []
        self.text: list[str] = []
        self.comments: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, tuple(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, tuple(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def handle_comment(self, data):
        self.comments.append(data)


def shown(value: str) -> str:
    """A value as the page shows it: Python's repr, cut to the longest text shown."""
    text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def hostile_tables(values: list[str]) -> dict[str, pd.DataFrame]:
    """A warehouse where every value lands on the page: duplicate account ids (with names and segments), orphan
    events (with event names), unknown survey types and text in the numeric mrr column."""
    n = len(values)
    accounts = pd.concat([tiny_accounts("a1", "a2"), pd.DataFrame({
        "account_id": values * 2, "created_at": ts(*["2023-06-01"] * 2 * n),
        "name": values * 2, "segment": values * 2})], ignore_index=True)
    return {
        "accounts": accounts,
        "subscriptions": pd.DataFrame({
            "account_id": ["a1"] * (n + 1), "start_at": ts(*["2024-01-01"] * (n + 1)),
            "end_at": ts(*[None] * (n + 1)), "mrr": ["100", *values]}),
        "events": pd.DataFrame({
            "account_id": ["a1", *[f"{v} (orphan)" for v in values]],
            "event_at": ts(*["2024-03-01"] * (n + 1)), "event_name": ["login", *values]}),
        "surveys": pd.DataFrame({
            "response_id": [f"r{i}" for i in range(n)], "account_id": ["a1"] * n,
            "responded_at": ts(*["2024-03-01"] * n), "survey_type": values, "score": [5.0] * n}),
    }


def tokens(values: list[str]) -> list[str]:
    return [f"token{i}" for i in range(len(values))]


def validated_page(tmp_path: Path, values: list[str]) -> tuple[str, str]:
    """Run the validate stage on the hostile warehouse; return the page it wrote and what it printed."""
    tmp_path.mkdir()
    url = f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    con = ibis.duckdb.connect(str(tmp_path / "warehouse.duckdb"), threads=1)
    for name, frame in hostile_tables(values).items():
        con.create_table(name, frame)
    con.disconnect()
    out = io.StringIO()
    config = CONFIG.model_copy(update={"data_docs_dir": tmp_path / "docs"})
    run_validate(Params(warehouse=WarehouseConfig(url=url, threads=1)), config,
                 Progress(Console(file=out, width=400)), NOW)
    return (tmp_path / "docs" / "index.html").read_text(encoding="utf-8"), out.getvalue()


def assert_inert(html: str, twin: str, values: list[str]) -> Page:
    """The page has the twin's exact tags and attributes, no script or link of any kind, and shows each value as
    text."""
    page, plain = Page(html), Page(twin)
    assert page.tags == plain.tags  # no element or attribute came from the data
    assert not [tag for tag, _ in page.tags if tag in {"script", "img", "svg", "iframe", "a", "link", "object"}]
    assert not [name for _, attrs in page.tags for name, _ in attrs
                if name.startswith("on") or name in {"src", "href", "srcdoc", "style"}]
    assert page.comments == []
    text = "".join(page.text)
    for value in values:
        assert shown(value) in text, value
    lowered = html.lower()
    assert "<script" not in lowered and "http://" not in lowered and "https://" not in lowered
    assert "//cdn" not in lowered and "@import" not in lowered and "url(" not in lowered
    return page


def test_hostile_values_in_every_table_stay_text_on_the_validation_page(tmp_path):
    html, printed = validated_page(tmp_path / "hostile", HOSTILE)
    twin, _ = validated_page(tmp_path / "twin", tokens(HOSTILE))
    page = assert_inert(html, twin, HOSTILE)
    text = "".join(page.text)
    # Each column carried them: duplicate ids, segments and names, orphan ids and event names, survey types, mrr text.
    for heading in ("accounts.account_id — unique", "events.account_id — foreign_key",
                    "surveys.survey_type — allowed_values", "subscriptions.mrr — castable"):
        assert heading in text
    for column in ("segment", "name", "event_name"):
        assert f"<th>{column}</th>" in html
    assert shown(HOSTILE[0] + " (orphan)") in text
    # The entity trick reads back as the entity's text, written with its ampersand escaped.
    assert "'&lt;script&gt;alert(1)&lt;/script&gt;'" in text
    assert "&amp;lt;script&amp;gt;" in html
    # The long value is cut, not dropped, and the page stays small.
    assert shown(LONG).endswith("…") and len(html) < 200_000
    # The console still shows the real values (as repr, escaped for the terminal only).
    assert "validation failed: 4 error(s)" in printed and any(repr(v) in printed for v in HOSTILE[:-1])


def test_hostile_scores_stay_text_on_the_page_of_a_frame_validation():
    def scores(values: list[str]) -> pd.DataFrame:
        n = len(values)
        frame = {"account_id": values * 2, "as_of": [date(2024, 6, 1)] * 2 * n,
                 "churn_probability": [0.5] * 2 * n, "risk_tier": values * 2,
                 "scored_at": [datetime(2024, 6, 1, 6)] * 2 * n}
        other = {name: values * 2 if dtype.is_string() else [1.0] * 2 * n for name, dtype in SCORES_SCHEMA.items()
                 if name not in frame}
        return pd.DataFrame(frame | other)[list(SCORES_SCHEMA.names)]

    def page(values: list[str]) -> str:
        return render_validation_page(validate_scores(scores(values), ["high", "low"], CONFIG), NOW)

    html = page(HOSTILE)
    assert_inert(html, page(tokens(HOSTILE)), HOSTILE)
    assert "churn_scores.risk_tier — allowed_values" in html and "churn_scores.account_id, as_of — unique" in html


def test_the_console_table_shows_the_real_value_and_no_terminal_control_character(load_tables):
    escape = "\x1b]0;owned\x07\x1b[2J[bold red]x[/bold red]\r"
    tables = hostile_tables(["<img src=x onerror=alert(document.domain)>", escape])
    report = validate_sources(load_sources(load_tables(**tables), {}), CONFIG, NOW)
    orphans = next(f for f in report.rows if (f.table, f.column, f.rule) == ("events", "account_id", "foreign_key"))
    assert orphans.examples == ("'<img src=x onerror=alert(document.domain)> (orphan)'",
                                repr(escape + " (orphan)"))
    summary = report.summary()
    assert "'<img src=x onerror=alert(document.domain)>" in summary
    assert "\x1b" not in summary and "\x07" not in summary and "\r" not in summary
    assert "\\x1b]0;owned\\x07" in summary


def test_the_page_replaces_gx_data_docs_left_by_an_earlier_version(load_tables, tmp_path):
    folder = tmp_path / "validation"
    for path in ("static/styles/data_docs_default_styles.css", "validations/events/run/churn-events.html",
                 "expectations/events.html", "index.html"):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text("<img src=x onerror=alert(1)>")
    (folder / "notes.txt").write_text("ours")
    report = validate_sources(load_sources(load_tables(**hostile_tables(HOSTILE[:2])), {}), CONFIG, NOW)
    assert write_validation_page(report, folder, NOW) == folder / "index.html"
    assert sorted(p.name for p in folder.iterdir()) == ["index.html", "notes.txt"]
    assert "onerror=alert(1)>" not in (folder / "index.html").read_text()


def test_folders_not_marked_as_gx_data_docs_are_left_alone(load_tables, tmp_path):
    folder, folder_files = tmp_path / "validation", ["static/styles/other.css", "validations/keep.html"]
    for path in folder_files:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text("theirs")
    report = validate_sources(load_sources(load_tables(**hostile_tables(HOSTILE[:1])), {}), CONFIG, NOW)
    write_validation_page(report, folder, NOW)
    assert all((folder / path).read_text() == "theirs" for path in folder_files)
