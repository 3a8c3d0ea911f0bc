"""Every KPI declared once: its name in `churn_kpis`, its label, formula, the sources it reads, unit and which way
is better. The computation's output names, `docs/KPIS.md` and the report's labels all come from here.

A formula "A ÷ B" is stored as numerator A and denominator B beside the value; a total is its own numerator; a
median keeps the number of values it is the median of as its denominator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from features.markdown import grouped_tables

GROUPS = ("churn", "revenue", "accounts", "voice", "support", "usage", "ttv")
GROUP_TITLES = {"churn": "Churn and retention", "revenue": "Revenue", "accounts": "Accounts",
                "voice": "Voice of the customer", "support": "Support", "usage": "Usage: frequency, breadth, depth",
                "ttv": "Time to value"}
UNITS = ("share", "currency", "count", "points", "score", "hours", "days")
# `month`: one value per calendar month; `cohort`: one value per sign-up month (the accounts created in it).
GRAINS = ("month", "cohort")


@dataclass(frozen=True)
class KpiSpec:
    """One KPI. `name`, `title` and `formula` may hold `{day}` (the time-to-value curves, one KPI per day).

    `better`: `up` (higher is better), `down`, or None (neither). `needs`: the source tables, `table.column`s or
    settings (`features.value_events`) it reads. `settles`: the KPI counts churn, so a month is reported only once
    `label.grace_days` have passed after it.
    """

    name: str
    title: str
    group: str
    unit: str
    better: str | None
    needs: tuple[str, ...]
    formula: str
    grain: str = "month"
    settles: bool = False
    per_day: bool = False
    day: int | None = None

    def for_day(self, day: int) -> KpiSpec:
        """The concrete KPI for one day of the time-to-value curve."""
        return replace(self, name=self.name.format(day=day), title=self.title.format(day=day),
                       formula=self.formula.format(day=day), day=day)


def _k(name, title, group, unit, better, needs, formula, **kwargs) -> KpiSpec:
    return KpiSpec(name, title, group, unit, better, tuple(needs.split()), formula, **kwargs)


CHURN = (
    _k("logo_churn_rate", "Logo churn rate", "churn", "share", "down", "subscriptions",
       "churned accounts ÷ accounts active on the 1st", settles=True),
    _k("logo_churn_rate_12m", "Logo churn rate, 12-month average", "churn", "share", "down", "subscriptions",
       "Σ churned accounts ÷ Σ accounts active on the 1st, over the month and the 11 before it (fewer while the "
       "data is younger)", settles=True),
    _k("revenue_churn_rate", "Revenue churn rate", "churn", "share", "down", "subscriptions",
       "churned MRR ÷ MRR on the 1st", settles=True),
    _k("gross_revenue_retention", "Gross revenue retention (month)", "churn", "share", "up", "subscriptions",
       "(MRR on the 1st − contraction MRR − churned MRR) ÷ MRR on the 1st", settles=True),
    _k("net_revenue_retention", "Net revenue retention (month)", "churn", "share", "up", "subscriptions",
       "(MRR on the 1st + expansion MRR − contraction MRR − churned MRR) ÷ MRR on the 1st", settles=True),
    _k("gross_revenue_retention_12m", "Gross revenue retention (12 months)", "churn", "share", "up", "subscriptions",
       "Σ min(MRR at the month's end, MRR 12 months before) ÷ Σ MRR 12 months before, over the accounts paying "
       "12 months before", settles=True),
    _k("net_revenue_retention_12m", "Net revenue retention (12 months)", "churn", "share", "up", "subscriptions",
       "Σ MRR at the month's end ÷ Σ MRR 12 months before, over the accounts paying 12 months before",
       settles=True),
)

REVENUE = (
    _k("mrr", "MRR", "revenue", "currency", "up", "subscriptions",
       "Σ MRR of the paid rows in force at the month's end (on the 1st of the next month)"),
    _k("new_mrr", "New MRR", "revenue", "currency", "up", "subscriptions",
       "MRR at the month's end of the accounts whose first paid row (MRR > 0) started in the month", settles=True),
    _k("expansion_mrr", "Expansion MRR", "revenue", "currency", "up", "subscriptions",
       "Σ (MRR at the month's end − MRR on the 1st) of the accounts that grew, plus the MRR of accounts back from "
       "a lapse shorter than the grace period", settles=True),
    _k("contraction_mrr", "Contraction MRR", "revenue", "currency", "down", "subscriptions",
       "Σ (MRR on the 1st − MRR at the month's end) of the accounts that shrank without churning, a lapse shorter "
       "than the grace period included", settles=True),
    _k("churned_mrr", "Churned MRR", "revenue", "currency", "down", "subscriptions",
       "Σ MRR on the 1st of the accounts that churned in the month", settles=True),
    _k("reactivation_mrr", "Reactivation MRR", "revenue", "currency", "up", "subscriptions",
       "MRR at the month's end of the accounts that had churned before and pay again", settles=True),
    _k("arpu", "ARPU", "revenue", "currency", "up", "subscriptions",
       "MRR ÷ active accounts, at the month's end"),
    _k("customer_lifetime_value", "Customer lifetime value", "revenue", "currency", "up", "subscriptions",
       "ARPU × kpis.gross_margin ÷ logo_churn_rate_12m (the monthly gross margin of an account times its expected "
       "lifetime in months, 1 ÷ monthly churn)", settles=True),
)

ACCOUNTS = (
    _k("active_accounts", "Active accounts", "accounts", "count", "up", "subscriptions",
       "accounts with a paid subscription row in force at the month's end (on the 1st of the next month)"),
)

VOICE = (
    _k("nps", "NPS", "voice", "points", "up", "surveys",
       "100 × (promoters − detractors) ÷ NPS responses in the month (promoter 9–10, detractor 0–6)"),
    _k("csat", "CSAT", "voice", "share", "up", "surveys",
       "CSAT responses of 4 or 5 ÷ CSAT responses in the month (scale 1–5)"),
    _k("ces", "CES", "voice", "score", "up", "surveys",
       "Σ CES scores ÷ CES responses in the month (scale 1–7, higher is easier)"),
)

SUPPORT = (
    _k("first_contact_resolution", "First-contact resolution", "support", "share", "up",
       "tickets.resolved_at tickets.first_contact_resolved",
       "tickets resolved in the month at the first contact ÷ tickets resolved in the month (those with "
       "first_contact_resolved known)"),
    _k("median_resolution_hours", "Median resolution time", "support", "hours", "down", "tickets.resolved_at",
       "median hours from created_at to resolved_at of the tickets resolved in the month"),
)

USAGE = (
    _k("stickiness", "Stickiness (DAU/MAU)", "usage", "share", "up", "events.user_id",
       "average daily active users ÷ monthly active users (a user is active on a UTC day with any event; the "
       "average runs over every day of the month)"),
    _k("seats_in_use", "Seats in use", "usage", "share", "up", "events.user_id subscriptions.seats",
       "Σ min(users active in the month, seats) ÷ Σ seats, over the accounts paying for seats at the month's end"),
    _k("core_feature_share", "Core features used", "usage", "share", "up", "events features.core_events",
       "Σ core features used in the month ÷ (active accounts at the month's end × core features)"),
)

_CURVE = "accounts of the sign-up month that {what} within {{day}} days of {start} ÷ the month's accounts {which}"
_MEDIAN = "median days from {start} to {event}, over the sign-up month's accounts that got there"
# (curve stem, median stem, title, what the curve counts, clock start, which accounts it counts, the median's
# event, needs)
_MILESTONES = (
    ("first_value", "to_first_value", "Reached first value", "had a value event (features.value_events)",
     "sign-up", "observed", "the first value event", "events features.value_events"),
    ("onboarded", "to_onboard", "Completed onboarding",
     "achieved every milestone of features.onboarding_milestones", "sign-up", "observed",
     "the last onboarding milestone", "milestones features.onboarding_milestones"),
    ("trial_converted", "trial_to_paid", "Converted from trial", "started a paid row", "their first trial",
     "with a trial observed", "the first paid row", "subscriptions.is_trial"),
    ("expanded", "to_first_expansion", "First expansion", "first grew their MRR", "their first paid row",
     "paying and observed", "the first MRR increase", "subscriptions"),
)


# Curve stem → median stem and → title, and the quartiles of churn by days to first value: the names the
# computation writes.
MILESTONES = {stem: median for stem, median, *_ in _MILESTONES}
MILESTONE_TITLES = {stem: title for stem, _, title, *_ in _MILESTONES}
QUARTILES = ("q1", "q2", "q3", "q4")


def _milestone_kpis() -> tuple[KpiSpec, ...]:
    out = []
    for stem, median, title, what, start, which, event, needs in _MILESTONES:
        curve = _CURVE.format(what=what, start=start, which=which) + " for {day} days"
        out.append(_k(f"{stem}_by_day_{{day}}", f"{title} by day {{day}}", "ttv", "share", "up", needs, curve,
                      grain="cohort", per_day=True))
        out.append(_k(f"median_days_{median}", f"{title}: median days", "ttv", "days", "down", needs,
                      _MEDIAN.format(start=start.replace("their ", "the "), event=event), grain="cohort"))
    return tuple(out)


_QUARTILE_WHO = dict(zip((*QUARTILES, "none"), ("the fastest quarter", "the second quarter", "the third quarter",
                                                 "the slowest quarter", "no first value yet"), strict=True))


def _quartile_kpis() -> tuple[KpiSpec, ...]:
    out = []
    for quartile, who in _QUARTILE_WHO.items():
        title = (f"Churn rate, {who} to first value" if quartile != "none"
                 else "Churn rate, no first value by the month's end")
        scope = (f"accounts in {who} of days to first value (quartiles of the accounts that reached it by the "
                 "month's end)" if quartile != "none" else "accounts with no value event by the month's end")
        out.append(_k(f"churn_rate_ttv_{quartile}", title, "ttv", "share", "down",
                      "subscriptions events features.value_events",
                      f"Σ churned accounts ÷ Σ accounts active on the 1st over the month and the 11 before it, "
                      f"{scope}; accounts created before the events begin are left out", settles=True))
    return tuple(out)


TTV = _milestone_kpis() + _quartile_kpis()

KPIS = CHURN + REVENUE + ACCOUNTS + VOICE + SUPPORT + USAGE + TTV


def expand_kpis(specs: tuple[KpiSpec, ...], days: list[int]) -> list[KpiSpec]:
    """Concrete KPIs: each per-day KPI once per day of the time-to-value curve."""
    out: list[KpiSpec] = []
    for spec in specs:
        out.extend([spec.for_day(d) for d in days] if spec.per_day else [spec])
    return out


def missing_kpi_needs(spec: KpiSpec, missing: list[str]) -> list[str]:
    """The needs of `spec` the warehouse (or the settings) lack: a table, a `table.column` or a setting."""
    gone = set(missing)
    return [need for need in spec.needs if need in gone or need.split(".")[0] in gone]


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


_FORMATS = {
    "share": lambda v: f"{v:.1%}", "currency": lambda v: f"{v:,.0f}", "count": lambda v: f"{v:,.0f}",
    "points": lambda v: f"{v:+.0f}", "score": lambda v: f"{v:.2f}", "hours": lambda v: f"{v:,.1f} h",
    "days": lambda v: f"{v:,.0f} d",
}


def format_kpi(spec: KpiSpec, value) -> str:
    """A KPI value in its unit for a person to read; "–" when there is none."""
    return "–" if _is_missing(value) else _FORMATS[spec.unit](value)


def format_kpi_change(spec: KpiSpec, now, before) -> str:
    """The change from `before` to `now` in the KPI's unit: points for shares, relative for amounts."""
    if _is_missing(now) or _is_missing(before):
        return "–"
    if spec.unit == "share":
        return f"{100 * (now - before):+.1f} pp"
    if spec.unit in ("points", "score", "days", "hours"):
        suffix = {"days": " d", "hours": " h"}.get(spec.unit, "")
        return f"{now - before:+,.{2 if spec.unit == 'score' else 1}f}{suffix}"
    return f"{now / before - 1:+.1%}" if before else "–"


RULES = """\
## How they are counted

- **Months** are calendar months in UTC. "On the 1st" is midnight at the start of the month; "at the month's end"
  is midnight at the start of the next month. A subscription row is **in force** at an instant when
  `start_at ≤ instant < end_at` (a null `end_at` is open), as in the contract.
- **Paid rows** are the rows that are not trials (`is_trial`); trial rows add no MRR and make no account active.
  An account is **active** at an instant when a paid row is in force then; its **MRR** is the sum over them.
- **Churn uses the label's grace rule**: an account active on the 1st **churned in the month** when its active
  period (its rows, trials included, merged when they overlap or follow one another within `label.grace_days`)
  ends after the 1st and at or before the 1st of the next month, i.e. it has no subscription on the 1st of the next
  month and none starts within `label.grace_days` of the end. A renewal within the grace period is not churn.
- **Pending**: whether a month's accounts churned is known only once `label.grace_days` have passed after its
  end, so the KPIs marked *settles* are written for a month only when the 1st of the next month plus
  `label.grace_days` is at or before the data end (the newest event, or `snapshots.data_end`). Later months are
  pending: they have no rows yet, and `churn kpis` says until when. Other KPIs are written for every complete month.
- **MRR movements** compare each account's MRR on the 1st with its MRR at the month's end:
  MRR at the end = MRR on the 1st + new + reactivation + expansion − contraction − churned, exactly. An account that
  churned loses its MRR on the 1st (churned MRR); one whose first paid row (MRR > 0) started in the month brings
  new MRR; one that had churned before and pays again brings reactivation MRR. A lapse shorter than the grace period
  is not churn: the account's drop to 0 counts as contraction and its return as expansion.
- **Retention over 12 months** follows the accounts paying 12 months before the month's end (on the 1st of the
  month 11 months earlier) and compares their MRR then with their MRR at the month's end; an account between two
  rows on either day (a lapse shorter than the grace period) counts with no MRR that day.
- **A month reads only what exists by its end** (rows in force at its end, responses, tickets resolved and events
  in it); only churn looks `label.grace_days` further, to see renewals.
- **Segments**: every KPI is computed for each value of the accounts column `kpis.segment_by` (empty or blank
  values as `unknown`) and for all accounts together, as segment `all` (computed over the accounts, not averaged
  over the segments), so no account's segment may be `all`. Without the column, for `all` only.
- **Columns of `churn_kpis`**: month (the calendar month, or the sign-up month for cohort KPIs), segment, kpi,
  value, numerator, denominator. For "A ÷ B", numerator is A and denominator is B; for a total, numerator is the
  total and denominator is empty; for a median, denominator is the number of values. A value is empty when its
  denominator is 0. A month and segment with nothing to count has no row. The view `churn_kpis_latest` holds each
  KPI's newest month per segment.
- **Time-to-value cohorts** group the accounts by the month they were created in (their sign-up month); only
  accounts created once the events begin are counted (earlier ones' first value is older than the data). A day-*d*
  share counts the accounts observed for *d* days (their clock start plus *d* days is at or before the data end), so
  a young cohort's later days count its earliest accounts only. Days are calendar days, as in the features.
- **Missing sources**: a KPI whose source table, column or setting is missing is left out; `churn kpis` names it
  and what it needs.
"""


def kpis_markdown(specs: list[KpiSpec]) -> str:
    """The KPI definitions as a Markdown document: the counting rules, then one table per group."""
    lines = [
        "# KPI definitions", "",
        "Generated from `features/kpis/definitions.py` for the settings in `params.yaml` by",
        "`churn kpis --markdown docs/KPIS.md` (`make docs`); do not edit by hand. `churn kpis` writes every KPI here",
        "to the warehouse table `churn_kpis`, per month and segment; the managers' report shows them.", "",
        RULES,
    ]
    better = {"up": "higher", "down": "lower", None: "–"}
    lines += grouped_tables(
        specs, GROUPS, GROUP_TITLES, ["kpi", "label", "unit", "better", "grain", "settles", "needs", "formula"],
        lambda s: [f"`{s.name}`", s.title, s.unit, better[s.better], s.grain, "yes" if s.settles else "no",
                   ", ".join(s.needs), s.formula])
    return "\n".join(lines)
