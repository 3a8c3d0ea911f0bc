"""The feature catalog: every feature declared once, with what it needs, what it means and how to say it in words.

The feature table, `docs/FEATURES.md` and the reasons in the score tables all come from here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from features.markdown import grouped_tables

GROUPS = ("frequency", "breadth", "depth", "trend", "champions", "value", "realised", "support", "voice", "words",
          "touches", "commercial")
UNITS = ("count", "days", "months", "hours", "minutes", "share", "change", "points", "number", "currency", "flag",
         "category", "score", "sentiment")

# How a feature's window is chosen: one feature per configured window, or the one window of its kind.
WINDOW_KINDS = ("each", "trend", "support", "survey", "outcome", "admin", "admin_lost", "touch")

# How a feature counted in days from or to the as-of itself moves when only the as-of moves: `age` grows a day per
# day for every account (tenure); `since` counts from the last event before the as-of and restarts when it recurs;
# `until` counts down to a date after the as-of and restarts there. The drift guard compares them accordingly.
AS_OF_CLOCKS = ("age", "since", "until")

# What a feature is to the people acting on it. A `cause` is behaviour or experience the CS team can change (usage,
# adoption, time to value, tickets, survey answers, seat use, contraction, price increases): reasons and playbooks
# come from causes only. A `context` feature says when and for whom risk applies (days to renewal, billing period,
# tenure, plan, MRR level): it stays in the model and is shown as timing and urgency, never as a reason.
ROLES = ("cause", "context")


@dataclass(frozen=True)
class FeatureSpec:
    """One feature. `name`, `description` and `reason` may hold `{window}` for windowed features.

    `needs` lists the source tables or `table.column`s the feature reads; `direction` says which way risk goes
    (`up`: higher value, higher risk; `down`: lower value, higher risk; `mixed`).
    `reason` is a sentence with `{value}` (formatted in the feature's unit), `{window}` and, for changes, `{change}`.
    `window_kind` says which configured window fills `{window}` (see WINDOW_KINDS); `window` is that number once bound.
    `as_of_clock` is set on features whose value is a count of days from or to the as-of (see AS_OF_CLOCKS).
    `role` says whether the feature is a cause a CS team can act on or context (see ROLES).
    `subject` names the event of a mix feature (`mix_specs`), so a reason can quote it as the warehouse spells it.
    """

    name: str
    group: str
    needs: tuple[str, ...]
    description: str
    unit: str
    direction: str
    reason: str
    window_kind: str | None = None
    window: int | None = None
    as_of_clock: str | None = None
    role: str = "cause"
    subject: str | None = None  # the event name a mix feature is about, as the warehouse spells it

    def for_window(self, window: int) -> FeatureSpec:
        """The concrete feature for one window."""
        return replace(self, name=self.name.format(window=window),
                       description=self.description.format(window=window),
                       reason=self.reason.replace("{window}", str(window)), window=window)

    @property
    def is_categorical(self) -> bool:
        return self.unit == "category"


def _f(name, group, needs, description, unit, direction, reason, window=None, clock=None,
       role="cause") -> FeatureSpec:
    return FeatureSpec(name, group, tuple(needs.split()), description, unit, direction, reason, window_kind=window,
                       as_of_clock=clock, role=role)


ENGAGEMENT = (
    _f("active_days_{window}d", "frequency", "events", "Days with any product event in the last {window} days.",
       "days", "down", "Active on {value} of the last {window} days", "each"),
    _f("events_{window}d", "frequency", "events", "Product events in the last {window} days.",
       "count", "down", "{value} product events in the last {window} days", "each"),
    _f("logins_per_active_user_{window}d", "frequency", "events.user_id features.login_event",
       "Logins per active user in the last {window} days.", "number", "down",
       "{value} logins per active user in the last {window} days", "each"),
    _f("days_since_last_activity", "frequency", "events", "Days since the last product event before the as-of.",
       "days", "up", "No product activity for {value}", clock="since"),
    _f("active_users_{window}d", "breadth", "events.user_id", "Distinct users active in the last {window} days.",
       "count", "down", "{value} active users in the last {window} days", "each"),
    _f("seat_utilisation_{window}d", "breadth", "events.user_id subscriptions.seats",
       "Active users in the last {window} days over the seats paid for.", "share", "down",
       "{value} of paid seats used in the last {window} days", "each"),
    _f("distinct_events_{window}d", "breadth", "events", "Distinct event types used in the last {window} days.",
       "count", "down", "{value} different product actions used in the last {window} days", "each"),
    _f("core_feature_share_{window}d", "breadth", "events",
       "Share of the core features used at least once in the last {window} days.", "share", "down",
       "{value} of core features used in the last {window} days", "each"),
    _f("sessions_{window}d", "depth", "events", "Sessions in the last {window} days (per user and day).",
       "count", "down", "{value} sessions in the last {window} days", "each"),
    _f("session_minutes_{window}d", "depth", "events", "Average session length in minutes, last {window} days.",
       "minutes", "down", "Sessions lasted {value} on average over the last {window} days", "each"),
    _f("events_per_session_{window}d", "depth", "events", "Average events per session, last {window} days.",
       "number", "down", "{value} actions per session over the last {window} days", "each"),
    _f("active_users_trend", "trend", "events.user_id",
       "Change in active users: the last trend window against the one before it.", "change", "down",
       "Active users {change} against the previous {window} days", "trend"),
    _f("events_trend", "trend", "events",
       "Change in product events: the last trend window against the one before it.", "change", "down",
       "Product events {change} against the previous {window} days", "trend"),
    _f("sessions_trend", "trend", "events",
       "Change in sessions: the last trend window against the one before it.", "change", "down",
       "Sessions {change} against the previous {window} days", "trend"),
)

# Rates that travel between warehouses of other scales: per observed day (the window's days, or the days since
# sign-up for an account younger than the window, so a 10-day-old account is not judged on a 90-day count), per
# active user-day (a user active on a day counts once), per seat-day and per 100 of MRR.
RATES = (
    _f("events_per_day_{window}d", "frequency", "events accounts",
       "Product events per day over the last {window} days, or per day since sign-up for a younger account.",
       "number", "down", "{value} product events a day over the last {window} days (or since sign-up)", "each"),
    _f("active_day_share_{window}d", "frequency", "events accounts",
       "Share of the last {window} days (or of the days since sign-up, if fewer) with any product event.",
       "share", "down", "Active on {value} of the days in the last {window} days (or since sign-up)", "each"),
    _f("events_per_user_day_{window}d", "frequency", "events.user_id",
       "Product events per active user-day (a user active on a day counts once) in the last {window} days.",
       "number", "down", "{value} actions per user on a day of use, last {window} days", "each"),
    _f("seat_day_utilisation_{window}d", "breadth", "events.user_id subscriptions.seats accounts",
       "Active user-days over seat-days (paid seats × days observed) in the last {window} days or since sign-up.",
       "share", "down", "Paid seats in use on {value} of the days in the last {window} days (or since sign-up)",
       "each"),
    _f("daily_users_per_100_mrr", "realised", "events.user_id subscriptions accounts",
       "Average daily active users over the last {window} days (or since sign-up) per 100 of MRR: use for the "
       "money (value for money); empty without MRR.",
       "number", "down", "{value} daily active users per 100 of MRR over the last {window} days", "trend"),
    _f("daily_events_per_100_mrr", "realised", "events subscriptions accounts",
       "Product events per day over the last {window} days (or since sign-up) per 100 of MRR; empty without MRR.",
       "number", "down", "{value} product events a day per 100 of MRR over the last {window} days", "trend"),
)

# The features that read the configured (or automatically picked) core and value event names: a warehouse that lacks
# one of those names cannot provide them.
# The features that count `features.login_event`.
LOGIN_EVENT_FEATURES = ("logins_per_active_user_{window}d",)
CORE_EVENT_FEATURES = ("core_feature_share_{window}d", "core_adoption_share", "core_adoption_median_days")
VALUE_EVENT_FEATURES = ("value_reached", "days_to_first_value", "onboarding_overdue_days")

VALUE = (
    _f("tenure_days", "value", "accounts", "Days from the account's creation to the as-of.",
       "days", "down", "Customer for {value}", clock="age", role="context"),
    _f("value_reached", "value", "events",
       "1 when the account had its first value event (features.value_events) before the as-of, else 0.",
       "flag", "down", "First value reached: {value}"),
    _f("days_to_first_value", "value", "events",
       "Days from creation to the first value event; empty while not reached by the as-of, and for accounts created "
       "before the event history's first event (their first value may predate it).",
       "days", "up", "Took {value} to reach first value"),
    _f("onboarding_share", "value", "milestones",
       "Share of the onboarding milestones (features.onboarding_milestones) achieved before the as-of.",
       "share", "down", "{value} of onboarding milestones done"),
    _f("days_to_onboard", "value", "milestones",
       "Days from creation to the last onboarding milestone; empty while onboarding is incomplete.",
       "days", "up", "Onboarding took {value}"),
    _f("trial_to_paid_days", "value", "subscriptions.is_trial",
       "Days from the first trial start to the first paid subscription; empty without a converted trial.",
       "days", "up", "Took {value} from trial to paid"),
    _f("days_to_first_expansion", "value", "subscriptions",
       "Days from the first paid subscription to the first MRR increase; empty before any expansion.",
       "days", "up", "First expansion came after {value}"),
    _f("core_adoption_share", "value", "events",
       "Share of the core features (features.core_events) ever used before the as-of.",
       "share", "down", "{value} of core features ever adopted"),
    _f("core_adoption_median_days", "value", "events",
       "Median days from creation to the first use of each adopted core feature; empty for accounts created before "
       "the event history's first event.",
       "days", "up", "Core features took a median {value} to adopt"),
    _f("onboarding_overdue_days", "value", "events accounts.segment",
       "Days past the segment's first-value target (features.ttv_targets; '*' for other segments) without a value "
       "event; 0 once first value is reached or while within the target; empty without a target and for accounts "
       "created before the event history's first event.",
       "days", "up", "First value is {value} overdue against the segment's target"),
)

SUPPORT = (
    _f("tickets_{window}d", "support", "tickets", "Support tickets opened in the last {window} days.",
       "count", "up", "{value} support tickets in the last {window} days", "each"),
    _f("open_tickets", "support", "tickets",
       "Tickets opened before the as-of and not resolved before it.", "count", "up", "{value} tickets open"),
    _f("open_high_priority_tickets", "support", "tickets.priority",
       "Open tickets whose priority is in features.high_priorities.", "count", "up",
       "{value} high-priority tickets open"),
    _f("high_priority_tickets_{window}d", "support", "tickets.priority",
       "High-priority tickets opened in the last {window} days.", "count", "up",
       "{value} high-priority tickets in the last {window} days", "support"),
    _f("median_resolution_hours_{window}d", "support", "tickets.resolved_at",
       "Median hours from opening to resolution of tickets resolved in the last {window} days.",
       "hours", "up", "Tickets took a median {value} to resolve over the last {window} days", "support"),
    _f("first_contact_resolution_rate_{window}d", "support", "tickets.resolved_at tickets.first_contact_resolved",
       "Share of tickets resolved in the last {window} days that were solved at first contact.",
       "share", "down", "{value} of tickets solved at first contact over the last {window} days", "support"),
    _f("reopen_rate_{window}d", "support", "tickets.resolved_at tickets.reopened",
       "Share of tickets resolved in the last {window} days that were reopened.",
       "share", "up", "{value} of tickets reopened over the last {window} days", "support"),
    _f("ticket_csat_{window}d", "support", "tickets.resolved_at tickets.csat",
       "Average CSAT (1–5) of tickets resolved in the last {window} days.",
       "score", "down", "Ticket satisfaction averaged {value} of 5 over the last {window} days", "support"),
    _f("days_since_last_ticket", "support", "tickets", "Days since the last ticket opened before the as-of.",
       "days", "mixed", "Last support ticket {value} ago", clock="since"),
)

VOICE = (
    _f("last_nps", "voice", "surveys", "The account's last NPS score (0–10) before the as-of.",
       "score", "down", "Last NPS score {value}"),
    _f("last_nps_category", "voice", "surveys",
       "Category of the last NPS score: promoter (9–10), passive (7–8) or detractor (0–6).",
       "category", "mixed", "Last NPS response was a {value}"),
    _f("nps_change", "voice", "surveys", "Last NPS score minus the one before it.",
       "points", "down", "NPS moved {value} since the previous response"),
    _f("detractor_share_{window}d", "voice", "surveys.user_id",
       "Share of users answering NPS in the last {window} days whose latest answer is a detractor.",
       "share", "up", "{value} of responding users are detractors (last {window} days)", "survey"),
    _f("csat_avg_{window}d", "voice", "surveys", "Average CSAT survey score (1–5) in the last {window} days.",
       "score", "down", "CSAT averaged {value} of 5 over the last {window} days", "survey"),
    _f("ces_avg_{window}d", "voice", "surveys",
       "Average customer effort score (1–7, higher is easier) in the last {window} days.",
       "score", "down", "Customer effort score averaged {value} of 7 over the last {window} days", "survey"),
    _f("survey_responses_{window}d", "voice", "surveys", "Survey responses of any type in the last {window} days.",
       "count", "down", "{value} survey responses in the last {window} days", "survey"),
    _f("days_since_last_response", "voice", "surveys", "Days since the last survey response before the as-of.",
       "days", "up", "Last survey response {value} ago", clock="since"),
)

COMMERCIAL = (
    _f("mrr", "commercial", "subscriptions", "MRR of the subscription rows open just before the as-of.",
       "currency", "mixed", "MRR {value}", role="context"),
    _f("mrr_change_90d", "commercial", "subscriptions", "Relative change of MRR against 90 days before the as-of.",
       "change", "down", "MRR {change} against 90 days ago"),
    _f("seats", "commercial", "subscriptions.seats", "Seats paid for just before the as-of.",
       "count", "mixed", "{value} paid seats", role="context"),
    _f("plan", "commercial", "subscriptions.plan",
       "Plan of the base row: the largest open paid row with seats (a seatless row counts as an add-on).",
       "category", "mixed", "On the {value} plan", role="context"),
    _f("days_to_renewal", "commercial", "subscriptions.billing_period_months",
       "Days from the as-of to the next renewal of the base row (start + whole billing periods).",
       "days", "mixed", "Renewal due in {value}", clock="until", role="context"),
    _f("billing_period_months", "commercial", "subscriptions.billing_period_months",
       "Billing period in months of the base row (1 monthly, 12 annual).",
       "months", "mixed", "Billed every {value}", role="context"),
    _f("in_trial", "commercial", "subscriptions.is_trial", "1 when every open row is a trial, else 0.",
       "flag", "mixed", "In trial: {value}", role="context"),
    _f("downgrades_365d", "commercial", "subscriptions",
       "MRR decreases that left the account paying (contractions) in the last 365 days.",
       "count", "up", "{value} downgrades in the last year"),
    _f("price_increases_365d", "commercial", "subscriptions.seats subscriptions.plan",
       "Renewals in the last 365 days of a row by one of the same plan (starting within a day of its end) at a price "
       "per seat (MRR / seats) more than 2% higher; rows without seats (add-ons) never count.",
       "count", "up", "{value} price increases in the last year"),
)

# What customers get out of the product: the amounts on their events (`events.value`: deals won, invoices sent) and
# the outcome events of `features.outcome_events`. Lost outcome events carry an amount that was not realised.
REALISED = (
    _f("value_realised_{window}d", "realised", "events.value",
       "Sum of `events.value` in the last {window} days (events named as lost outcomes excluded).",
       "currency", "down", "Value realised in the last {window} days: {value}", "each"),
    _f("value_realised_trend", "realised", "events.value",
       "Change in value realised: the last trend window against the one before it.", "change", "down",
       "Value realised {change} against the previous {window} days", "trend"),
    _f("value_per_mrr", "realised", "events.value subscriptions",
       "Value realised in the last {window} days per unit of MRR (a return-on-investment proxy); empty without MRR.",
       "number", "down", "Value realised in the last {window} days is {value} times the MRR", "trend"),
    _f("outcome_success_rate_{window}d", "realised", "events features.outcome_events",
       "Won outcome events over won and lost ones in the last {window} days; empty without outcomes.",
       "share", "down", "{value} of outcomes won in the last {window} days", "outcome"),
    _f("outcome_success_change_{window}d", "realised", "events features.outcome_events",
       "Success rate of the last {window} days minus that of the {window} days before, in percentage points.",
       "points", "down", "Outcome success rate moved {value} against the previous {window} days", "outcome"),
    _f("outcomes_{window}d", "realised", "events features.outcome_events",
       "Won and lost outcome events in the last {window} days.",
       "count", "down", "{value} outcomes (won or lost) in the last {window} days", "outcome"),
    _f("days_to_first_outcome", "realised", "events features.outcome_events",
       "Days from creation to the first won outcome event (time to ROI); empty while none is won by the as-of.",
       "days", "up", "Took {value} to win a first outcome with the product"),
)

# Champions: the users whose role is in `features.admin_roles` (admins, owners: those who bought and run the
# product). An admin is lost at t when active in [t - admin_lost_days, t - admin_active_days) and not since.
CHAMPIONS = (
    _f("days_since_admin_active", "champions", "users.role events.user_id",
       "Days since any admin-role user was last active before the as-of; empty when no admin ever was.",
       "days", "up", "No admin active for {value}", clock="since"),
    _f("admin_active_share_{window}d", "champions", "users.role events.user_id",
       "Share of the account's admin-role users (created before the as-of) active in the last {window} days.",
       "share", "down", "{value} of admins active in the last {window} days", "admin"),
    _f("admins_lost_{window}d", "champions", "users.role events.user_id",
       "Admin-role users active in the last {window} days but not in the last features.admin_active_days.",
       "count", "up", "{value} admins gone quiet (active in the last {window} days, not recently)", "admin_lost"),
)

# What customers say in words: the sentiment of survey comments, scored offline (VADER's compound score, -1 to 1).
# VADER's own convention: a compound score at or below -0.05 is negative, at or above 0.05 positive.
NEGATIVE_AT = -0.05
# The feature table's non-feature column with the latest comment's words, which the reason quotes.
LAST_COMMENT = "last_comment"
WORDS = (
    _f("negative_comment_share_{window}d", "words", "surveys.comment",
       "Share of the survey comments of the last {window} days whose sentiment is negative.",
       "share", "up", "{value} of survey comments negative (last {window} days)", "survey"),
    _f("last_comment_sentiment", "words", "surveys.comment",
       "Sentiment of the latest survey comment before the as-of, from -1 (negative) to 1 (positive).",
       "sentiment", "down", "Latest survey comment scored {value} (-1 negative to 1 positive)"),
)

# What the CS team did with the account (cs_actions before the as-of; holdout rows record that nothing was done).
TOUCHES = (
    _f("days_since_cs_touch", "touches", "cs_actions",
       "Days since the CS team's last recorded action on the account; empty when none is on record.",
       "days", "up", "No CS contact for {value}", clock="since"),
    _f("cs_touches_{window}d", "touches", "cs_actions", "CS actions recorded in the last {window} days.",
       "count", "down", "{value} CS touches in the last {window} days", "touch"),
)

CATALOG = ENGAGEMENT + RATES + CHAMPIONS + VALUE + REALISED + SUPPORT + VOICE + WORDS + TOUCHES + COMMERCIAL


# The mix of event types: for each event name of `features.event_mix`, its share of the account's events in the
# trend window and the change of that share against the window before. Feature names carry the event name made a
# safe identifier (`event_slug`); the description and the reason name the event as the warehouse spells it.
MIX_SHARE, MIX_CHANGE = "mix_share_", "mix_change_"
_SLUG_CHARS = 40


def event_slug(event: str) -> str:
    """An event name as a safe identifier: lower case, runs of anything but a-z and 0-9 made one `_`, at most 40
    characters, an `e_` before a leading digit (`Export Report!` → `export_report`, `2fa.enable` → `e_2fa_enable`)."""
    slug = re.sub(r"[^a-z0-9]+", "_", event.lower()).strip("_")[:_SLUG_CHARS].strip("_") or "event"
    return f"e_{slug}" if slug[0].isdigit() else slug


def mix_slugs(events: list[str]) -> list[str]:
    """Each event's slug, made unique in order (`export_report`, `export_report_2`) when two names sanitise alike."""
    out: list[str] = []
    for event in events:
        slug, n = event_slug(event), 1
        while (slug if n == 1 else f"{slug}_{n}") in out:
            n += 1
        out.append(slug if n == 1 else f"{slug}_{n}")
    return out


def _literal(text: str) -> str:
    # An event name inside a reason template: braces doubled, so `str.format` prints them as they are.
    return text.replace("{", "{{").replace("}", "}}")


def spoken_event(event: str) -> str:
    """An event name as a reason says it to a person: separators read as spaces, in quotes ("view dashboard")."""
    words = " ".join(re.split(r"[_\-.:/]+", event)).strip()
    return f"“{words or event}”"


def mix_specs(events: list[str], window: int) -> list[FeatureSpec]:
    """The share and share-change features of each mix event, bound to the trend window."""
    specs = []
    for event, slug in zip(events, mix_slugs(events), strict=True):
        name = _literal(spoken_event(event))
        specs += [
            FeatureSpec(f"{MIX_SHARE}{slug}", "breadth", ("events",),
                        f"Share of the account's product events in the last {window} days that were `{event}` "
                        "(features.event_mix); empty without events.", "share", "mixed",
                        f"{{value}} of product events were {name} in the last {{window}} days", window_kind="trend",
                        window=window, subject=event),
            FeatureSpec(f"{MIX_CHANGE}{slug}", "trend", ("events",),
                        f"Share of `{event}` among the account's events in the last {window} days minus its share in "
                        "the window before, in percentage points; empty when either window has no events.",
                        "points", "mixed",
                        f"Share of {name} events moved {{value}} against the previous {{window}} days",
                        window_kind="trend", window=window, subject=event),
        ]
    return specs


def expand_catalog(specs: tuple[FeatureSpec, ...], windows: dict[str, list[int]]) -> list[FeatureSpec]:
    """Return concrete feature specs, binding each windowed spec to the window(s) of its kind.

    Args:
        windows: window kind → day counts, e.g. {"each": [7, 30, 90], "trend": [30], "support": [90], ...}.
    """
    out: list[FeatureSpec] = []
    for spec in specs:
        if spec.window_kind is None:
            out.append(spec)
        else:
            out.extend(spec.for_window(w) for w in windows[spec.window_kind])
    return out


def missing_needs(spec: FeatureSpec, missing_sources: list[str]) -> list[str]:
    """Return the needs of `spec` the warehouse lacks (a table, or a table.column)."""
    gone = set(missing_sources)
    return [need for need in spec.needs if need in gone or need.split(".")[0] in gone]


def producible(specs: tuple[FeatureSpec, ...], windows: dict[str, list[int]],
               missing_sources: list[str]) -> list[FeatureSpec]:
    """The concrete specs of a group whose sources the warehouse has."""
    return [s for s in expand_catalog(specs, windows) if not missing_needs(s, missing_sources)]


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plural(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}" + ("" if round(value) == 1 else "s")


_FORMATS = {
    "share": lambda v: f"{v:.0%}", "change": lambda v: f"{v:+.0%}", "points": lambda v: f"{v:+,.0f} points",
    "days": lambda v: _plural(v, "day"),
    "months": lambda v: _plural(v, "month"),
    # Two days read better than 48 hours, two hours better than 120 minutes.
    "hours": lambda v: _plural(v, "hour") if v < 48 else f"{v / 24:,.1f} days",
    "minutes": lambda v: f"{v:,.0f} min" if v < 120 else f"{v / 60:,.1f} hours",
    "currency": lambda v: f"{v:,.0f}", "count": lambda v: f"{v:,.0f}",
    "flag": lambda v: "yes" if v else "no", "category": str, "score": lambda v: f"{v:,.1f}",
    "sentiment": lambda v: f"{v:+.2f}",
}


def _default_format(value) -> str:
    return f"{value:,.1f}"


def format_value(spec: FeatureSpec, value) -> str:
    """Format a feature value in its unit for a person to read."""
    if _is_missing(value):
        return "no data"
    return _FORMATS.get(spec.unit, _default_format)(value)


def describe_change(value) -> str:
    """'fell 42%' / 'rose 10%' / 'held steady' for a relative change."""
    if _is_missing(value) or isinstance(value, str):
        return "has no earlier period to compare with"
    if abs(value) < 0.005:
        return "held steady"
    return f"{'fell' if value < 0 else 'rose'} {abs(value):.0%}"


# The counted nouns of the catalog's sentences, singular for a count of one ("1 downgrade in the last year").
_COUNTED = re.compile(
    r"\b(event|user|action|session|ticket|response|seat|downgrade|increase|outcome|admin|touch)(?:s|es)\b")


def render_reason(spec: FeatureSpec, value) -> str:
    """Fill the feature's reason template with an account's value."""
    reason = spec.reason
    if spec.unit == "count" and not _is_missing(value) and round(value) == 1:
        head, _, tail = reason.partition("{value}")
        reason = head + "{value}" + _COUNTED.sub(r"\1", tail, count=1)
    return reason.format(value=format_value(spec, value), change=describe_change(value), window=spec.window)


GROUP_TITLES = {
    "frequency": "Engagement frequency", "breadth": "Engagement breadth", "depth": "Engagement depth",
    "trend": "Engagement trends", "champions": "Champions (admin-role users)", "value": "Time to value",
    "realised": "Value realised (amounts, outcomes, use per MRR)", "support": "Support tickets",
    "voice": "Voice of the customer (surveys)", "words": "Voice in words (survey comments)",
    "touches": "CS touches", "commercial": "Commercial",
}


def catalog_markdown(specs: list[FeatureSpec]) -> str:
    """The catalog as a Markdown document: one table per group, with the reason sentence of each feature."""
    lines = [
        "# Feature catalog", "",
        "Generated from `features/catalog.py` for the windows in `params.yaml` by `churn features --markdown`",
        "(`make docs`); do not edit by hand. Every feature at as-of *t* reads only rows with timestamps before *t*.",
        "A feature whose source (table or `table.column`) is missing from the warehouse, or whose setting",
        "(`features.<key>` in its needs) is not given, is left out of the run.", "",
        "Playbook groups: frequency, breadth, depth, trends, champions and CS touches are *engagement* (CS touches",
        "are contact the CS team restores by reaching out); time to value and value realised are *value*; surveys",
        "and comments are *voice*.", "",
        "Role: a **cause** is behaviour or experience the CS team can change; reasons, protective factors and the",
        "playbook's driver group come from causes only. **Context** (renewal timing, billing period, tenure, plan,",
        "MRR level, seats, trial) says when and for whom risk applies: it stays in the model, its SHAP values are in",
        "`churn_score_drivers` (role `context`, no rank), and renewal timing is written to `churn_scores` as",
        "`renewal_date`, `days_to_renewal` and `billing_period_months`.", "",
        "Event names: `features.core_events` and `features.value_events`, when left empty, are picked at training",
        "from the events before the first held-out as-of: core = the `features.core_events_top` names used by the most",
        "accounts (the login event left out), value = the `features.value_events_top` names used by the most accounts",
        "after the core ones. The mix of event types takes the `features.event_mix.top` names with the most events",
        "(or `features.event_mix.events`). The names are kept in the model (`vocabulary.json`, the training report)",
        "and scoring reads the model's, never picking again; a warehouse lacking one of them cannot provide the",
        "features that read it, and scoring says so.", "",
        "Per mix event *e* (named `mix_share_<e>` and `mix_change_<e>`, where `<e>` is the event name in lower case",
        "with every run of characters other than a-z and 0-9 made one `_`, cut to 40 characters, `e_` before a",
        "leading digit, and `_2`, `_3`... when two names come out alike):", "",
        "| feature | group | role | unit | risk rises when | description | reason |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        "| `mix_share_<e>` | breadth | cause | share | depends | Share of the account's events in the trend window "
        "that were *e*; empty without events. | {value} of product events were *e* in the last {window} days |",
        "| `mix_change_<e>` | trend | cause | points | depends | That share minus the share in the window before, in "
        "percentage points. | Share of *e* events fell from 30% to 5% against the previous {window} days |", "",
    ]
    direction = {"up": "higher", "down": "lower", "mixed": "depends"}
    lines += grouped_tables(
        specs, GROUPS, GROUP_TITLES,
        ["feature", "role", "unit", "risk rises when", "needs", "description", "reason"],
        lambda s: [f"`{s.name}`", s.role, s.unit, direction[s.direction], ", ".join(s.needs), s.description, s.reason])
    return "\n".join(lines)
