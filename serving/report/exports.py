"""The at-risk list as files for tools that import them: CSV with raw numbers, Markdown as the page shows them.

Account names, segments, owners, reasons and actions come from the warehouse and its users, so both files treat them
as hostile. A text cell a spreadsheet would run as a formula gets a leading single quote (OWASP's rule for CSV
injection), in the Markdown too, since a table pasted from it into a spreadsheet runs the same way; numbers stay
numbers. In the Markdown, text also cannot become HTML, a link or a broken table row.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from serving.report.formatting import format_day, format_days, format_money, format_percent, format_points, format_text

# A spreadsheet reads a cell starting with one of these as a formula (tab and carriage return too: some strip them).
FORMULA_STARTS = frozenset("=+-@\t\r")
# Markdown's own characters that could turn text into markup, a link or a new column; the backslash comes first so
# the escapes added after it stay escapes.
_MARKDOWN_ESCAPES = {"\\": "\\\\", "|": "\\|", "[": "\\[", "]": "\\]", "`": "\\`"}
_HTML_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def neutralise_formula(value):
    """The value with a single quote in front when it is text a spreadsheet would run as a formula: it starts with
    = + - @, a tab or a carriage return, also after leading whitespace. Numbers, None and NaN come back unchanged."""
    if isinstance(value, str) and (value[:1] in FORMULA_STARTS or value.lstrip()[:1] in FORMULA_STARTS):
        return "'" + value
    return value


def escape_markdown_cell(text: str) -> str:
    """Text that reads as itself in one Markdown table cell: HTML and Markdown characters escaped, line breaks as
    spaces."""
    escapes = _MARKDOWN_ESCAPES | _HTML_ESCAPES
    escaped = "".join(escapes.get(char, char) for char in text)
    return escaped.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def at_risk_csv(at_risk: pd.DataFrame) -> str:
    """The at-risk list as CSV (AT_RISK_COLUMNS: a held-back account has an empty recommended_action, its playbook,
    arm `holdout` and no_action_reason saying why): raw numbers (probabilities and their change 0–1, as in
    churn_scores; MRR; days), dates as YYYY-MM-DD, text cells that would run as a formula quoted; rows end in CRLF
    (RFC 4180)."""
    text = at_risk.select_dtypes(include=["object", "string"]).columns
    safe = at_risk.assign(**{c: at_risk[c].map(neutralise_formula, na_action="ignore") for c in text})
    # With "\n" as the line end, Python's csv writer leaves a lone "\r" in a cell unquoted, and readers take it as
    # a new row (whose first cell may be a formula); with "\r\n" every cell holding either is quoted.
    return safe.to_csv(index=False, float_format="%.6g", lineterminator="\r\n")


MARKDOWN_HEADER = ["#", "account", "segment", "CSM owner", "MRR", "churn probability", "change", "expected MRR loss",
                   "tier", "top reasons", "recommended action", "owner", "previous probability", "previous tier",
                   "in tier since", "days in tier", "renewal", "due by"]


def _action(row) -> object:
    """The action to show: the recommended one, or why there is none (a held-back account of the experiment)."""
    missing = row.recommended_action is None or (isinstance(row.recommended_action, float)
                                                 and pd.isna(row.recommended_action))
    return row.no_action_reason if missing and isinstance(row.no_action_reason, str) else row.recommended_action


def at_risk_markdown(at_risk: pd.DataFrame, as_of: date) -> str:
    """The at-risk list as a Markdown table, highest expected MRR loss first; a held-back account's action cell says
    why it has none ("held back: control group of playbook X")."""
    def cell(value) -> str:
        return escape_markdown_cell(format_text(neutralise_formula(value)))

    lines = [f"# Accounts at risk as of {as_of}", "", "| " + " | ".join(MARKDOWN_HEADER) + " |",
             "|" + " --- |" * len(MARKDOWN_HEADER)]
    for i, r in enumerate(at_risk.itertuples(), start=1):
        lines.append(" | ".join(["", str(i), cell(r.account), cell(r.segment), cell(r.csm_owner),
                                 format_money(r.mrr), format_percent(r.churn_probability, 1),
                                 format_points(r.probability_change), format_money(r.expected_mrr_loss),
                                 cell(r.risk_tier), cell(r.top_reasons), cell(_action(r)),
                                 cell(r.owner_role), format_percent(r.previous_probability, 1),
                                 cell(r.previous_tier), format_day(r.tier_since), format_days(r.days_in_tier),
                                 cell(r.renewal), cell(r.due_by), ""]).strip())
    return "\n".join(lines) + "\n"

