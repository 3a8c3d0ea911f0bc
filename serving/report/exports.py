"""The at-risk list as files for tools that import them: CSV with raw numbers, Markdown as the page shows them."""

from __future__ import annotations

from datetime import date

import pandas as pd

from serving.report.formatting import format_money, format_percent, format_points, format_text


def at_risk_csv(at_risk: pd.DataFrame) -> str:
    """The at-risk list as CSV (probability 0–1, change in percentage points, MRR as numbers)."""
    return at_risk.to_csv(index=False, float_format="%.6g")


def at_risk_markdown(at_risk: pd.DataFrame, as_of: date) -> str:
    """The at-risk list as a Markdown table, highest expected MRR loss first."""
    def cell(value) -> str:
        return format_text(value).replace("|", "\\|").replace("\n", " ")

    lines = [f"# Accounts at risk as of {as_of}", "",
             "| # | account | segment | CSM owner | MRR | churn probability | change | expected MRR loss | tier | "
             "top reasons | recommended action | owner |", "|" + " --- |" * 12]
    for i, r in enumerate(at_risk.itertuples(), start=1):
        lines.append(" | ".join(["", str(i), cell(r.account), cell(r.segment), cell(r.csm_owner),
                                 format_money(r.mrr), format_percent(r.churn_probability, 1),
                                 format_points(r.probability_change), format_money(r.expected_mrr_loss),
                                 cell(r.risk_tier), cell(r.top_reasons), cell(r.recommended_action),
                                 cell(r.owner_role), ""]).strip())
    return "\n".join(lines) + "\n"
