"""Per-account drivers: exact TreeSHAP contributions from LightGBM, their effect in probability points, and
reasons in plain words with a comparison a person can judge.

Probability points. A contribution φ_j is in log-odds of the booster's raw score f = bias + Σ φ. Its effect in
points is the change in the account's *calibrated* probability when φ_j is taken out of the log-odds:

    points_j = 100 × (cal(σ(f)) − cal(σ(f − φ_j)))

with σ the logistic function and cal the model's calibrator (identity, Platt or isotonic). A risk driver has
positive points, a protective factor negative ones. Points are not additive: with a non-linear σ and calibrator,
the points of several drivers do not sum to the probability's distance from the average account, and an
isotonic calibrator's flat steps can give a small contribution zero points.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit

from features.catalog import (
    LAST_COMMENT,
    MIX_CHANGE,
    MIX_SHARE,
    NEGATIVE_AT,
    FeatureSpec,
    describe_change,
    format_value,
    render_reason,
    spoken_event,
)
from training.calibrate import Calibrator
from training.train import TrainedModel

RAISES, LOWERS = "raises risk", "lowers risk"
OVERALL = "(all)"
BENCHMARKS_ARTIFACT = "benchmarks.json"  # name of Benchmarks.to_dict() among a training run's MLflow artifacts

# Short names for charts and tables; the catalog's descriptions are sentences and its names are identifiers.
# Keyed by the catalog name before its window is bound.
FEATURE_LABELS = {
    "active_days_{window}d": "Active days (last {window} days)",
    "events_{window}d": "Product events (last {window} days)",
    "logins_per_active_user_{window}d": "Logins per active user (last {window} days)",
    "days_since_last_activity": "Days since last product activity",
    "active_users_{window}d": "Active users (last {window} days)",
    "seat_utilisation_{window}d": "Paid seats in use (last {window} days)",
    "distinct_events_{window}d": "Different product actions used (last {window} days)",
    "core_feature_share_{window}d": "Core features used (last {window} days)",
    "sessions_{window}d": "Sessions (last {window} days)",
    "session_minutes_{window}d": "Session length (last {window} days)",
    "events_per_session_{window}d": "Actions per session (last {window} days)",
    "active_users_trend": "Change in active users",
    "events_trend": "Change in product events",
    "sessions_trend": "Change in sessions",
    "events_per_day_{window}d": "Product events a day (last {window} days)",
    "active_day_share_{window}d": "Share of days active (last {window} days)",
    "events_per_user_day_{window}d": "Actions per user on a day of use (last {window} days)",
    "seat_day_utilisation_{window}d": "Paid seat-days in use (last {window} days)",
    "daily_users_per_100_mrr": "Daily active users per 100 of MRR",
    "daily_events_per_100_mrr": "Daily product events per 100 of MRR",
    MIX_SHARE + "{event}": "Share of {event} events",
    MIX_CHANGE + "{event}": "Change in the share of {event} events",
    "tenure_days": "Time as a customer",
    "value_reached": "First value reached",
    "days_to_first_value": "Time to first value",
    "onboarding_share": "Onboarding milestones done",
    "days_to_onboard": "Time to complete onboarding",
    "trial_to_paid_days": "Time from trial to paid",
    "days_to_first_expansion": "Time to first expansion",
    "core_adoption_share": "Core features ever adopted",
    "core_adoption_median_days": "Time to adopt core features",
    "onboarding_overdue_days": "First value overdue against the segment's target",
    "tickets_{window}d": "Support tickets (last {window} days)",
    "open_tickets": "Open support tickets",
    "open_high_priority_tickets": "Open high-priority tickets",
    "high_priority_tickets_{window}d": "High-priority tickets (last {window} days)",
    "median_resolution_hours_{window}d": "Ticket resolution time (last {window} days)",
    "first_contact_resolution_rate_{window}d": "Tickets solved at first contact (last {window} days)",
    "reopen_rate_{window}d": "Tickets reopened (last {window} days)",
    "ticket_csat_{window}d": "Ticket satisfaction (last {window} days)",
    "days_since_last_ticket": "Days since last support ticket",
    "last_nps": "Last NPS score",
    "last_nps_category": "Last NPS category",
    "nps_change": "Change in NPS",
    "detractor_share_{window}d": "Detractors among responding users (last {window} days)",
    "csat_avg_{window}d": "CSAT (last {window} days)",
    "ces_avg_{window}d": "Customer effort score (last {window} days)",
    "survey_responses_{window}d": "Survey responses (last {window} days)",
    "days_since_last_response": "Days since last survey response",
    "days_since_admin_active": "Days since an admin was active",
    "admin_active_share_{window}d": "Admins active (last {window} days)",
    "admins_lost_{window}d": "Admins gone quiet (last {window} days)",
    "value_realised_{window}d": "Value realised (last {window} days)",
    "value_realised_trend": "Change in value realised",
    "value_per_mrr": "Value realised per unit of MRR (last {window} days)",
    "outcome_success_rate_{window}d": "Outcomes won (last {window} days)",
    "outcome_success_change_{window}d": "Change in outcomes won (last {window} days)",
    "outcomes_{window}d": "Outcomes (last {window} days)",
    "days_to_first_outcome": "Time to first won outcome",
    "negative_comment_share_{window}d": "Negative survey comments (last {window} days)",
    "last_comment_sentiment": "Sentiment of the latest survey comment",
    "days_since_cs_touch": "Days since the last CS touch",
    "cs_touches_{window}d": "CS touches (last {window} days)",
    "mrr": "MRR",
    "mrr_change_90d": "MRR change against 90 days ago",
    "seats": "Paid seats",
    "plan": "Plan",
    "days_to_renewal": "Days to renewal",
    "billing_period_months": "Billing period",
    "in_trial": "In trial",
    "downgrades_365d": "Downgrades (last year)",
    "price_increases_365d": "Price increases per seat (last year)",
}

# What a missing value means, in words: the catalog's templates read badly with "no data" in them
# ("Took no data to reach first value"), and for several features a missing value is itself the signal.
MISSING_REASONS = {
    "days_since_last_activity": "No product activity on record",
    "seat_utilisation_{window}d": "Seat use unknown: no paid seats on record",
    "logins_per_active_user_{window}d": "No active users in the last {window} days",
    "session_minutes_{window}d": "No sessions in the last {window} days",
    "events_per_session_{window}d": "No sessions in the last {window} days",
    "active_users_trend": "Active users: no earlier {window} days to compare with",
    "events_trend": "Product events: no earlier {window} days to compare with",
    "sessions_trend": "Sessions: no earlier {window} days to compare with",
    "days_to_first_value": "First value not reached yet",
    "days_to_onboard": "Onboarding not complete yet",
    "trial_to_paid_days": "No converted trial on record",
    "days_to_first_expansion": "Never expanded",
    "core_adoption_median_days": "No core feature adopted yet",
    "onboarding_overdue_days": "No first-value target for the account's segment",
    "median_resolution_hours_{window}d": "No tickets resolved in the last {window} days",
    "first_contact_resolution_rate_{window}d": "No tickets resolved in the last {window} days",
    "reopen_rate_{window}d": "No tickets resolved in the last {window} days",
    "ticket_csat_{window}d": "No ticket satisfaction ratings in the last {window} days",
    "days_since_last_ticket": "No support ticket on record",
    "last_nps": "No NPS answer on record",
    "last_nps_category": "No NPS answer on record",
    "nps_change": "Fewer than two NPS answers on record",
    "detractor_share_{window}d": "No NPS answer in the last {window} days",
    "csat_avg_{window}d": "No CSAT answer in the last {window} days",
    "ces_avg_{window}d": "No effort-score answer in the last {window} days",
    "days_since_last_response": "No survey answer on record",
    "mrr_change_90d": "No MRR 90 days ago to compare with",
    "days_since_admin_active": "No admin activity on record",
    "admin_active_share_{window}d": "No admin-role user on record",
    "value_realised_trend": "Value realised: no earlier {window} days to compare with",
    "value_per_mrr": "Value per MRR unknown: no MRR on record",
    "outcome_success_rate_{window}d": "No outcome won or lost in the last {window} days",
    "outcome_success_change_{window}d": "Outcome success: no two periods of {window} days to compare",
    "days_to_first_outcome": "No outcome won yet",
    "negative_comment_share_{window}d": "No survey comment in the last {window} days",
    "last_comment_sentiment": "No survey comment on record",
    "days_since_cs_touch": "No CS touch on record",
    "days_to_renewal": "Renewal date unknown",
    "billing_period_months": "Billing period unknown",
    "plan": "Plan unknown",
    "seats": "Paid seats unknown",
}


def _base_name(spec: FeatureSpec) -> str:
    if spec.subject is not None:  # a mix feature: one sentence for every event
        return (MIX_CHANGE if spec.name.startswith(MIX_CHANGE) else MIX_SHARE) + "{event}"
    if spec.window is None:
        return spec.name
    return re.sub(rf"_{spec.window}d$", "_{window}d", spec.name)


def _is_missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def feature_label(spec: FeatureSpec) -> str:
    """A short name for a feature that a person can read (charts, tables); never the identifier."""
    label = getattr(spec, "label", None) or FEATURE_LABELS.get(_base_name(spec))
    if label is None:  # a feature newer than this table: the first clause of its description
        label = re.split(r"[.;:(]", re.sub(r"\([^)]*\)", "", spec.description))[0].strip()
    return label.replace("{window}", str(spec.window)).replace("{event}", spoken_event(spec.subject) if spec.subject
                                                               else "")


def explain_predictions(model: TrainedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Return TreeSHAP contributions in log-odds, one column per feature plus `bias` (the expected value).

    Each row sums to the model's raw score for that account.
    """
    return pd.DataFrame(model.contributions(frame), columns=[*model.features, "bias"], index=frame.index)


def calibrated_probability(log_odds: np.ndarray, calibrator: Calibrator) -> np.ndarray:
    """The model's calibrated probability for raw log-odds (any shape)."""
    log_odds = np.asarray(log_odds, dtype=float)
    return np.asarray(calibrator.apply(expit(log_odds).ravel())).reshape(log_odds.shape)


def probability_points(contributions: pd.DataFrame, calibrator: Calibrator) -> pd.DataFrame:
    """Each feature's effect in percentage points of the calibrated probability (see the module docstring).

    Args:
        contributions: TreeSHAP contributions in log-odds, one column per feature plus `bias`.
    """
    features = [c for c in contributions.columns if c != "bias"]
    matrix = contributions[features].to_numpy(dtype=float)
    raw = contributions.to_numpy(dtype=float).sum(axis=1)
    full = calibrated_probability(raw, calibrator)
    without = calibrated_probability(raw[:, None] - matrix, calibrator)
    return pd.DataFrame(100 * (full[:, None] - without), columns=features, index=contributions.index)


@dataclass(frozen=True)
class Benchmarks:
    """What retained accounts (label 0) look like, per feature: overall and per segment.

    `values[group][feature]` is the median for numbers, the share of yes for flags, and the most common value for
    categories; `group` is a value of the account attribute `by` (e.g. "Mid-Market") or OVERALL. `rows[group]` is
    how many retained rows each group stands on; groups below `min_rows` were left out (the overall one is used).
    """

    by: str | None
    values: dict[str, dict[str, float | str]]
    rows: dict[str, int] = field(default_factory=dict)

    def lookup(self, feature: str, segment) -> tuple[float | str | None, str | None]:
        """(benchmark value, segment it is for — None for overall) of a feature for an account's segment."""
        if not _is_missing(segment) and feature in self.values.get(str(segment), {}):
            return self.values[str(segment)][feature], str(segment)
        return self.values.get(OVERALL, {}).get(feature), None

    def to_dict(self) -> dict:
        return {"by": self.by, "values": self.values, "rows": self.rows}

    @classmethod
    def from_dict(cls, data: dict) -> Benchmarks:
        return cls(by=data.get("by"), values=data["values"], rows=data.get("rows", {}))


def _typical(spec: FeatureSpec, values: pd.Series) -> float | str | None:
    present = values.dropna()
    if present.empty:
        return None
    if spec.is_categorical:
        return str(present.astype(str).mode().sort_values().iloc[0])
    numbers = pd.to_numeric(present, errors="coerce").dropna()
    if numbers.empty:
        return None
    return float(numbers.mean() if spec.unit == "flag" else numbers.median())


def compute_benchmarks(frame: pd.DataFrame, specs: dict[str, FeatureSpec], by: str | None = "segment",
                       min_rows: int = 30) -> Benchmarks:
    """Benchmarks from the labelled rows of a feature table: the retained ones (label 0), overall and per `by`.

    Args:
        frame: feature table rows with `label` and, when `by` is given and present, that account attribute.
        specs: catalog entries of the features to benchmark (those missing from `frame` are skipped).
        min_rows: a segment with fewer retained rows gets no benchmarks of its own (the overall ones apply).
    """
    retained = frame[frame["label"] == 0]
    features = [name for name in specs if name in retained.columns]
    groups = {OVERALL: retained}
    if by is not None and by in retained.columns:
        groups |= {str(k): g for k, g in retained.groupby(by, sort=True) if len(g) >= min_rows}
    else:
        by = None
    values = {name: {f: v for f in features if (v := _typical(specs[f], rows[f])) is not None}
              for name, rows in groups.items()}
    return Benchmarks(by=by, values=values, rows={name: len(rows) for name, rows in groups.items()})


def _comparison(spec: FeatureSpec, benchmark, segment: str | None) -> str:
    who = f"retained {segment} accounts" if segment else "retained accounts"
    if spec.unit == "flag":
        return f"{who}: {benchmark:.0%} yes"
    if spec.is_categorical:
        return f"{who}: mostly {benchmark}"
    return f"{who}: median {format_value(spec, benchmark)}"


def _seat_detail(spec: FeatureSpec, value, row: Callable[[str], object]) -> str | None:
    users, seats = row(f"active_users_{spec.window}d"), row("seats")
    if _is_missing(users) or _is_missing(seats) or not seats:
        return None
    return (f"{users:,.0f} active user{'' if round(users) == 1 else 's'} of {seats:,.0f} paid seats "
            f"({value:.0%}) in the last {spec.window} days")


def _since_signup(row: Callable[[str], object]) -> str | None:
    """The account's tenure as "730 days" (None when unknown)."""
    tenure = row("tenure_days")
    return None if _is_missing(tenure) else f"{tenure:,.0f} day" + ("" if round(tenure) == 1 else "s")


def _no_first_value(spec: FeatureSpec, value, row: Callable[[str], object]) -> str | None:
    if not _is_missing(value) and value:  # value_reached = 1: not a censored value
        return None
    days = _since_signup(row)
    return f"Has not reached first value in {days} since sign-up" if days else None


def _no_core_adoption(spec: FeatureSpec, value, row: Callable[[str], object]) -> str | None:
    if not _is_missing(value) and value:  # some core feature adopted
        return None
    days = _since_signup(row)
    return f"No core feature adopted yet ({days} since sign-up)" if days else None


def _no_outcome_won(spec: FeatureSpec, value, row: Callable[[str], object]) -> str | None:
    days = _since_signup(row)
    return f"No outcome won with the product in {days} since sign-up" if days else None


# A quoted comment is cut to this many characters (an ellipsis marks the cut).
COMMENT_CHARS = 80
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]+|\s+")


def quote_comment(text: str, limit: int = COMMENT_CHARS) -> str:
    """A customer's comment as one line of plain text in typographic quotes, cut to `limit` characters.

    Control characters and line breaks become spaces and "; " (which joins reasons) becomes ", ". The text is not
    escaped here: the reasons are plain text in the warehouse, and each output escapes for its own format (the
    HTML report through Jinja's autoescape, the Markdown export through `escape_markdown_cell`), so escaping here
    would show `&amp;` to readers.
    """
    clean = _UNPRINTABLE.sub(" ", text).replace(";", ",").strip()
    if len(clean) > limit:
        clean = clean[:limit - 1].rstrip() + "…"
    return f"“{clean}”"


def _comment_detail(spec: FeatureSpec, value, row: Callable[[str], object]) -> str | None:
    comment = row(LAST_COMMENT)
    if not isinstance(comment, str) or not comment.strip():
        return None
    mood = "negative" if value <= NEGATIVE_AT else "positive" if value >= -NEGATIVE_AT else "neutral"
    return f"Latest survey comment reads {mood} ({value:+.2f}): {quote_comment(comment)}"


def _onboarding_open(spec: FeatureSpec, value, row: Callable[[str], object]) -> str | None:
    days, share = _since_signup(row), row("onboarding_share")
    if days is None:
        return None
    done = "" if _is_missing(share) else f" ({share:.0%} of milestones done)"
    return f"Onboarding not complete after {days}{done}"


def _mix_detail(spec: FeatureSpec, value, row: Callable[[str], object]) -> str | None:
    """"Share of “export report” events fell from 30% to 5% against the previous 30 days"."""
    now = row(MIX_SHARE + spec.name.removeprefix(MIX_CHANGE))
    if _is_missing(now) or _is_missing(value):
        return None
    before = now - value / 100.0
    if abs(value) < 0.5:
        return f"Share of {spoken_event(spec.subject)} events held at {now:.0%} against the previous {spec.window} days"
    return (f"Share of {spoken_event(spec.subject)} events {'fell' if value < 0 else 'rose'} from {before:.0%} to "
            f"{now:.0%} against the previous {spec.window} days")


# Reasons that say more than the template when the account's other values are at hand: for a value, or for a
# censored one (missing or zero because the thing has not happened yet), which the template would misstate.
_DETAILS = {"seat_utilisation_{window}d": _seat_detail, "last_comment_sentiment": _comment_detail,
            MIX_CHANGE + "{event}": _mix_detail}
_CENSORED = {"days_to_first_value": _no_first_value, "value_reached": _no_first_value,
             "core_adoption_median_days": _no_core_adoption, "core_adoption_share": _no_core_adoption,
             "days_to_onboard": _onboarding_open, "days_to_first_outcome": _no_outcome_won}
# The censored features whose 0 means "not yet" (a flag, a share); for the others, day counts, only a missing value
# does: 0 days is a first value (or onboarding, or core adoption) on the day of sign-up.
_CENSORED_AT_ZERO = {"value_reached", "core_adoption_share"}

# What a count of zero means, in words ("0 support tickets in the last 30 days" reads as a glitch).
ZERO_REASONS = {
    "active_days_{window}d": "Not active on any of the last {window} days",
    "events_{window}d": "No product events in the last {window} days",
    "active_users_{window}d": "No active users in the last {window} days",
    "distinct_events_{window}d": "No product actions used in the last {window} days",
    "core_feature_share_{window}d": "No core feature used in the last {window} days",
    "sessions_{window}d": "No sessions in the last {window} days",
    "seat_utilisation_{window}d": "None of the paid seats used in the last {window} days",
    "onboarding_share": "No onboarding milestone done yet",
    "tickets_{window}d": "No support tickets in the last {window} days",
    "open_tickets": "No open support tickets",
    "open_high_priority_tickets": "No open high-priority tickets",
    "high_priority_tickets_{window}d": "No high-priority tickets in the last {window} days",
    "survey_responses_{window}d": "No survey answers in the last {window} days",
    "downgrades_365d": "No downgrades in the last year",
    "price_increases_365d": "No price increases in the last year",
    "admins_lost_{window}d": "No admin gone quiet in the last {window} days",
    "value_realised_{window}d": "No value realised in the last {window} days",
    "outcomes_{window}d": "No outcomes (won or lost) in the last {window} days",
    "cs_touches_{window}d": "No CS touches in the last {window} days",
    "days_to_first_value": "Reached first value on the day of sign-up",
    "days_to_onboard": "Completed onboarding on the day of sign-up",
    "core_adoption_median_days": "Adopted core features on the day of sign-up (median)",
    "days_to_renewal": "Renewal due today",
}


def describe_driver(spec: FeatureSpec, value, benchmarks: Benchmarks | None = None, segment=None,
                    row: Callable[[str], object] | None = None) -> str:
    """One reason in words: the catalog's sentence with the account's value, then the retained accounts' value.

    Args:
        row: the account's other feature values by name (for richer sentences, e.g. users of seats), if any.
    """
    base = _base_name(spec)
    censored = _CENSORED.get(base)
    not_yet = _is_missing(value) or (value == 0 and base in _CENSORED_AT_ZERO)
    if censored and row and not_yet and (text := censored(spec, value, row)):
        return text
    if _is_missing(value):
        return MISSING_REASONS.get(base, f"{feature_label(spec)}: not on record").replace("{window}",
                                                                                            str(spec.window))
    if value == 0 and base in ZERO_REASONS:
        return ZERO_REASONS[base].replace("{window}", str(spec.window))
    detail = _DETAILS.get(base)
    text = (detail and row and detail(spec, value, row)) or render_reason(spec, value)
    reference, where = benchmarks.lookup(spec.name, segment) if benchmarks else (None, None)
    if reference is not None:
        text += f" ({_comparison(spec, reference, where)})"
    return text


def _pick(matrix: np.ndarray, count: int, sign: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of each row's `count` largest contributions of one sign (sign × value > 0), in order."""
    if count <= 0 or matrix.size == 0:
        return np.array([], dtype=int), np.array([], dtype=int)
    order = np.argsort(-sign * matrix, axis=1, kind="stable")[:, :count]
    rows = np.repeat(np.arange(len(matrix)), order.shape[1])
    cols = order.ravel()
    keep = sign * matrix[rows, cols] > 0
    return rows[keep], cols[keep]


@dataclass(frozen=True)
class ExplainContext:
    """How drivers are picked and put in words: the catalog, how many of each kind, and what retained accounts
    look like.

    Attributes:
        specs: catalog entries by feature name (the reasons' templates).
        top_n: risk-raising drivers per row.
        protective: risk-lowering factors per row, after the risk drivers.
        benchmarks: what retained accounts look like, quoted beside each reason; None for no comparison.
    """

    specs: dict[str, FeatureSpec]
    top_n: int
    protective: int = 0
    benchmarks: Benchmarks | None = None


def _context_cells(n_rows: int, is_cause: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of every context feature of every row, the largest |contribution| first within a row."""
    context = np.flatnonzero(~is_cause)
    if n_rows == 0 or context.size == 0:
        return np.array([], dtype=int), np.array([], dtype=int)
    order = np.argsort(-np.abs(matrix[:, context]), axis=1, kind="stable")
    return np.repeat(np.arange(n_rows), context.size), context[order].ravel()


def rank_drivers(contributions: pd.DataFrame, values: pd.DataFrame, context: ExplainContext,
                 segments: pd.Series | None = None, points: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return each row's drivers: its `context.top_n` largest risk-raising contributions among the cause features,
    then its `context.protective` most risk-lowering cause features, then every context feature of the model
    (timing and who: days to renewal, tenure, plan, ...) with its exact contribution, so nothing is hidden.

    Columns: row, rank (1.. within the row for causes, risk drivers first; missing for context), feature, role,
    value, contribution, probability_points (NaN without `points`), direction, reason. Rows with fewer drivers of
    a kind get fewer.

    Args:
        values: the feature values of the same rows (the reasons quote them).
        segments: each row's value of `benchmarks.by`, for the comparison with retained accounts of its segment.
        points: `probability_points(contributions, calibrator)`.
    """
    features = [c for c in contributions.columns if c != "bias"]
    matrix = contributions[features].to_numpy(dtype=float)
    is_cause = np.array([context.specs[f].role == "cause" for f in features], dtype=bool)
    causes = np.where(is_cause, matrix, 0.0)
    up_rows, up_cols = _pick(causes, context.top_n, 1)
    down_rows, down_cols = _pick(causes, context.protective, -1)
    rows, cols = np.concatenate([up_rows, down_rows]), np.concatenate([up_cols, down_cols])
    order = np.lexsort((np.arange(len(rows)), rows))  # per row: risk drivers (in order), then protective factors
    rows, cols = rows[order], cols[order]
    ranks = pd.Series(rows).groupby(rows).cumcount().to_numpy() + 1
    context_rows, context_cols = _context_cells(len(matrix), is_cause, matrix)
    rows, cols = np.concatenate([rows, context_rows]), np.concatenate([cols, context_cols])
    order = np.lexsort((np.arange(len(rows)), rows))
    rows, cols = rows[order], cols[order]
    names = np.asarray(features, dtype=object)[cols]
    raw = values[features].astype(object).where(values[features].notna(), None).to_numpy()[rows, cols]
    segment_of = segments.to_numpy() if segments is not None else np.full(len(matrix), None)
    contrib = matrix[rows, cols]
    cause_cell = is_cause[cols]
    rank = pd.Series(np.concatenate([ranks, np.zeros(len(context_rows), dtype=int)])[order], dtype="Int64")
    drivers = pd.DataFrame({
        "row": rows, "rank": rank.mask(~cause_cell), "feature": names,
        "role": np.where(cause_cell, "cause", "context"),
        "value": pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce"),
        "contribution": contrib,
        "probability_points": points[features].to_numpy()[rows, cols] if points is not None else np.nan,
        "direction": np.where(contrib > 0, RAISES, LOWERS),
    })
    # Categorical values (a plan, an NPS category) have no number; their text goes into the reason.
    drivers["reason"] = _describe_all(context, names, raw, rows, values, segment_of)
    return drivers


def _describe_all(context: ExplainContext, names: np.ndarray, raw: np.ndarray, rows: np.ndarray,
                  values: pd.DataFrame, segment_of: np.ndarray) -> list[str]:
    # Accounts share values (counts, days, shares), so each (feature, value, segment) is put in words once;
    # only sentences quoting other columns of the account (_DETAILS) are made per row. `raw` holds None for
    # missing values already.
    specs, benchmarks = context.specs, context.benchmarks
    detailed = {name for name in set(names) if _base_name(specs[name]) in _DETAILS | _CENSORED}
    segments = pd.Series(segment_of, dtype=object)
    segments = segments.where(segments.notna(), None).to_numpy()
    columns: dict[str, np.ndarray] = {}

    def lookup(row: int) -> Callable[[str], object]:
        def value_of(name: str):
            if name not in columns:
                columns[name] = values[name].to_numpy() if name in values.columns else np.full(len(values), None)
            return columns[name][row]
        return value_of

    said: dict[tuple, str] = {}
    out = []
    for feature, value, row in zip(names, raw, rows, strict=True):
        segment = segments[row]
        spec = specs[feature]
        compared = benchmarks if spec.role == "cause" else None  # timing and who: no "retained accounts" median
        if feature in detailed:
            out.append(describe_driver(spec, value, compared, segment, lookup(row)))
            continue
        # Keyed on the value as the sentence shows it (41.7 and 42.2 minutes both read "42 min"), so continuous
        # values share sentences too.
        key = (feature, segment, None if _is_missing(value) else format_value(spec, value),
               describe_change(value) if "{change}" in spec.reason else None)
        text = said.get(key)
        if text is None:
            text = said[key] = describe_driver(spec, value, compared, segment)
        out.append(text)
    return out
