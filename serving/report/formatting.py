"""How numbers and text read in the managers' report and its Markdown export; a missing value reads as a dash."""

from __future__ import annotations

import math

import pandas as pd


def format_money(value) -> str:
    """An amount with thousands separators and no decimals ("12,345"); "–" when missing."""
    return "–" if value is None or pd.isna(value) else f"{value:,.0f}"


def format_percent(value, digits: int = 0) -> str:
    """A share 0–1 as a percentage ("45.6%" with digits=1); "–" when missing."""
    return "–" if value is None or pd.isna(value) else f"{100 * value:.{digits}f}%"


def format_points(value) -> str:
    """A change of probability (0–1 units, as churn_scores.probability_change) in percentage points with its sign
    ("+2.5 pp" for 0.025); "new" when the account was not scored before."""
    return "new" if value is None or pd.isna(value) else f"{100 * value:+.1f} pp"


def format_days(value) -> str:
    """A whole number of days ("1 day", "45 days"); "–" when missing."""
    return "–" if value is None or pd.isna(value) else f"{int(value):,} day{'' if int(value) == 1 else 's'}"


def format_text(value) -> str:
    """The value as text; "–" for None or NaN."""
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


_PERIODS = {1: "monthly", 3: "quarterly", 6: "half-yearly", 12: "annual", 24: "two-year", 36: "three-year"}


def format_renewal(days, period_months) -> str:
    """When the account renews, as a person says it: "renews in 18 days (annual)", "renews today (monthly)";
    "renewal date unknown" when the warehouse does not say."""
    if days is None or pd.isna(days):
        return "renewal date unknown"
    days = int(days)
    when = "renews today" if days == 0 else "renews tomorrow" if days == 1 else f"renews in {days:,} days"
    if period_months is None or pd.isna(period_months):
        return when
    period = int(period_months)
    return f"{when} ({_PERIODS.get(period, f'every {period} months')})"


def format_day(value) -> str:
    """A date as YYYY-MM-DD, whether it comes as a date or a timestamp; "–" when missing."""
    return "–" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d}"
