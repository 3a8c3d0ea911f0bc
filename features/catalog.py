"""The feature catalog: every feature declared once, with what it needs, what it means and how to say it in words."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

GROUPS = ("frequency", "breadth", "depth", "trend", "value", "support", "voice", "commercial")


@dataclass(frozen=True)
class FeatureSpec:
    """One feature. `name`, `description` and `reason` may hold `{window}` for windowed features.

    `needs` lists the source tables or `table.column`s the feature reads; `direction` says which way risk goes
    (`up`: higher value, higher risk; `down`: lower value, higher risk; `mixed`).
    `reason` is a sentence with `{value}` (formatted in the feature's unit), `{window}` and, for changes, `{change}`.
    """

    name: str
    group: str
    needs: tuple[str, ...]
    description: str
    unit: str
    direction: str
    reason: str
    window: int | None = None
    windowed: bool = False

    def for_window(self, window: int) -> FeatureSpec:
        return replace(self, name=self.name.format(window=window),
                       description=self.description.format(window=window),
                       reason=self.reason.replace("{window}", str(window)), window=window, windowed=False)


def _f(name, group, needs, description, unit, direction, reason, windowed=False) -> FeatureSpec:
    return FeatureSpec(name, group, tuple(needs.split()), description, unit, direction, reason, windowed=windowed)


ENGAGEMENT = (
    _f("active_days_{window}d", "frequency", "events", "Days with any product event in the last {window} days.",
       "days", "down", "Active on {value} of the last {window} days", windowed=True),
    _f("events_{window}d", "frequency", "events", "Product events in the last {window} days.",
       "count", "down", "{value} product events in the last {window} days", windowed=True),
    _f("logins_per_active_user_{window}d", "frequency", "events.user_id",
       "Logins per active user in the last {window} days.", "number", "down",
       "{value} logins per active user in the last {window} days", windowed=True),
    _f("days_since_last_activity", "frequency", "events", "Days since the last product event before the as-of.",
       "days", "up", "No product activity for {value}"),
    _f("active_users_{window}d", "breadth", "events.user_id", "Distinct users active in the last {window} days.",
       "count", "down", "{value} active users in the last {window} days", windowed=True),
    _f("seat_utilisation_{window}d", "breadth", "events.user_id subscriptions.seats",
       "Active users in the last {window} days over the seats paid for.", "share", "down",
       "{value} of paid seats used in the last {window} days", windowed=True),
    _f("distinct_events_{window}d", "breadth", "events", "Distinct event types used in the last {window} days.",
       "count", "down", "{value} different product actions used in the last {window} days", windowed=True),
    _f("core_feature_share_{window}d", "breadth", "events",
       "Share of the core features used at least once in the last {window} days.", "share", "down",
       "{value} of core features used in the last {window} days", windowed=True),
    _f("sessions_{window}d", "depth", "events", "Sessions in the last {window} days (per user and day).",
       "count", "down", "{value} sessions in the last {window} days", windowed=True),
    _f("session_minutes_{window}d", "depth", "events", "Average session length in minutes, last {window} days.",
       "minutes", "down", "Sessions lasted {value} on average over the last {window} days", windowed=True),
    _f("events_per_session_{window}d", "depth", "events", "Average events per session, last {window} days.",
       "number", "down", "{value} actions per session over the last {window} days", windowed=True),
    _f("active_users_trend", "trend", "events.user_id",
       "Change in active users: the last trend window against the one before it.", "change", "down",
       "Active users {change} against the previous {window} days"),
    _f("events_trend", "trend", "events",
       "Change in product events: the last trend window against the one before it.", "change", "down",
       "Product events {change} against the previous {window} days"),
    _f("sessions_trend", "trend", "events",
       "Change in sessions: the last trend window against the one before it.", "change", "down",
       "Sessions {change} against the previous {window} days"),
)


def expand_catalog(specs: tuple[FeatureSpec, ...], windows: list[int], trend_window: int) -> list[FeatureSpec]:
    """Return concrete feature specs: windowed ones once per window, trends bound to the trend window."""
    out: list[FeatureSpec] = []
    for spec in specs:
        if spec.windowed:
            out.extend(spec.for_window(w) for w in windows)
        elif spec.group == "trend":
            out.append(spec.for_window(trend_window))
        else:
            out.append(spec)
    return out


def missing_needs(spec: FeatureSpec, missing_sources: list[str]) -> list[str]:
    """Return the needs of `spec` the warehouse lacks (a table, or a table.column)."""
    gone = set(missing_sources)
    return [need for need in spec.needs if need in gone or need.split(".")[0] in gone]


def format_value(spec: FeatureSpec, value: float) -> str:
    """Format a feature value in its unit for a person to read."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no data"
    if spec.unit == "share":
        return f"{value:.0%}"
    if spec.unit == "change":
        return f"{value:+.0%}"
    if spec.unit == "days":
        return f"{value:,.0f} day" + ("" if round(value) == 1 else "s")
    if spec.unit == "minutes":
        return f"{value:,.0f} min"
    if spec.unit == "currency":
        return f"{value:,.0f}"
    if spec.unit == "count":
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def describe_change(value: float) -> str:
    """'fell 42%' / 'rose 10%' / 'held steady' for a relative change."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "has no earlier period to compare with"
    if abs(value) < 0.005:
        return "held steady"
    return f"{'fell' if value < 0 else 'rose'} {abs(value):.0%}"


def render_reason(spec: FeatureSpec, value: float) -> str:
    """Fill the feature's reason template with an account's value."""
    return spec.reason.format(value=format_value(spec, value), change=describe_change(value), window=spec.window)
