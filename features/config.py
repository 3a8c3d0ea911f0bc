"""Typed settings of the feature stages: the `sources:`, `snapshots:`, `label:` and `features:` sections of params.yaml.

Import-light on purpose (pydantic only): loading params.yaml must not import an engine or ML library.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

# The longest day count a time-to-value target or curve day may be: ten years (a longer one is a typo, and no
# sign-up is observed that long).
MAX_DAYS = 3650


class OutcomeEvents(BaseModel):
    """Which event names are outcomes a customer reached with the product (a deal won) or missed (a deal lost)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    won: list[str] = Field(default_factory=list)
    lost: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _disjoint(self) -> OutcomeEvents:
        both = sorted(set(self.won) & set(self.lost))
        if both:
            raise ValueError(f"an event cannot be both won and lost: {', '.join(both)}")
        if bool(self.won) != bool(self.lost):
            raise ValueError("name both won and lost events (a success rate needs both), or neither")
        return self

    @property
    def configured(self) -> bool:
        return bool(self.won)


class EventMixConfig(BaseModel):
    """Which event names get a share-of-activity feature and a share trend (the account's mix of event types)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # How many of the warehouse's event names, the most frequent by volume on the training data (0: no mix features).
    top: int = Field(default=8, ge=0, le=50)
    # The names themselves; null = picked automatically at training (the `top` by volume) and kept in the model.
    events: list[str] | None = None

    @field_validator("events")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (len(set(value)) != len(value) or any(not name.strip() for name in value)):
            raise ValueError("events must be distinct, non-empty event names")
        return value


class FeatureConfig(BaseModel):
    """Windows and event vocabulary the feature groups use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    windows: list[int] = Field(default=[7, 30, 90], min_length=1)
    trend_window_days: int = Field(default=30, gt=0)
    login_event: str = "login"
    # Empty or null: picked at training (the `core_events_top` event names used by the most accounts, login excluded).
    core_events: list[str] = Field(default_factory=list)
    core_events_top: int = Field(default=5, ge=1, le=50)
    session_gap_minutes: int = Field(default=30, gt=0)
    # Empty or null: picked at training (the `value_events_top` names used by the most accounts after the core ones).
    value_events: list[str] = Field(default_factory=list)
    value_events_top: int = Field(default=3, ge=1, le=50)
    event_mix: EventMixConfig = Field(default_factory=EventMixConfig)
    onboarding_milestones: list[str] = Field(default_factory=list)
    high_priorities: list[str] = Field(default_factory=lambda: ["high", "urgent"])
    support_window_days: int = Field(default=90, gt=0)
    survey_window_days: int = Field(default=180, gt=0)
    # Days from sign-up by which an account of each segment should reach first value; "*" for any other segment.
    # Strict: YAML reads yes/no/true as booleans, which a lax int would take as 1 and 0.
    ttv_targets: dict[str, StrictInt] = Field(default_factory=dict)
    # Null or empty: no outcome events, and the features that need them are left out.
    outcome_events: OutcomeEvents = Field(default_factory=OutcomeEvents)
    outcome_window_days: int = Field(default=90, gt=0)
    admin_roles: list[str] = Field(default_factory=lambda: ["admin", "owner"], min_length=1)
    admin_active_days: int = Field(default=30, gt=0)
    admin_lost_days: int = Field(default=90, gt=0)
    touch_window_days: int = Field(default=90, gt=0)

    @field_validator("outcome_events", "event_mix", mode="before")
    @classmethod
    def _null_is_none(cls, value):
        return {} if value is None else value

    @field_validator("core_events", "value_events", mode="before")
    @classmethod
    def _null_is_empty(cls, value):
        return [] if value is None else value

    @field_validator("admin_roles")
    @classmethod
    def _named_roles(cls, value: list[str]) -> list[str]:
        if any(not role.strip() for role in value):
            raise ValueError("roles must be non-empty names")
        return value

    @model_validator(mode="after")
    def _admin_windows(self) -> FeatureConfig:
        if self.admin_lost_days <= self.admin_active_days:
            raise ValueError(f"admin_lost_days ({self.admin_lost_days}) must be longer than admin_active_days "
                             f"({self.admin_active_days}): an admin is lost when active in the first and not the "
                             "second")
        return self

    @field_validator("ttv_targets")
    @classmethod
    def _positive_targets(cls, value: dict[str, int]) -> dict[str, int]:
        wrong = [segment for segment, days in value.items() if not 1 <= days <= MAX_DAYS]
        if wrong:
            raise ValueError(f"targets must be day counts from 1 to {MAX_DAYS} (not for {', '.join(wrong)})")
        return value

    @field_validator("windows")
    @classmethod
    def _positive_sorted(cls, value: list[int]) -> list[int]:
        if any(w <= 0 for w in value) or len(set(value)) != len(value):
            raise ValueError("windows must be distinct positive day counts")
        return sorted(value)

    @property
    def lookback_days(self) -> int:
        """How far back any windowed engagement feature reads events."""
        return max(max(self.windows), 2 * self.trend_window_days)

    def windows_by_kind(self) -> dict[str, list[int]]:
        """The day counts that fill `{window}` for each catalog window kind."""
        return {"each": self.windows, "trend": [self.trend_window_days], "support": [self.support_window_days],
                "survey": [self.survey_window_days], "outcome": [self.outcome_window_days],
                "admin": [self.admin_active_days], "admin_lost": [self.admin_lost_days],
                "touch": [self.touch_window_days]}

    def unset_needs(self) -> list[str]:
        """The settings a catalog feature may need (in its `needs`, as `features.<key>`) that are not given: such a
        feature is left out like one whose source table is missing."""
        return [] if self.outcome_events.configured else ["features.outcome_events"]


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$")


class SourceTable(BaseModel):
    """Where one canonical table lives: a warehouse table (or a SQL SELECT) and its column names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str | None = None
    sql: str | None = None
    columns: dict[str, str] = {}

    @model_validator(mode="after")
    def _one_source(self) -> SourceTable:
        if (self.table is None) == (self.sql is None):
            raise ValueError("give exactly one of `table` or `sql`")
        if self.sql is not None and not self.sql.strip():
            raise ValueError("sql is empty: give a SELECT that returns the canonical columns")
        if self.table is not None and not _IDENTIFIER.match(self.table):
            raise ValueError(f"table name {self.table!r} is not a plain identifier (letters, digits, _, dots)")
        for canonical, column in self.columns.items():
            if not _IDENTIFIER.match(column) or "." in column:
                raise ValueError(f"column {canonical!r} maps to {column!r}, which is not a plain identifier")
        return self


SourcesConfig = dict[str, SourceTable | None]


_EVERY = re.compile(r"^\s*(\d+)\s*(d|w|mo)\s*$")


class SnapshotConfig(BaseModel):
    """Where the as-of grid lies and how often it ticks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: date | None = None
    end: date | None = None
    every: str = "1mo"
    data_end: datetime | None = None
    include_trials: bool = False

    @field_validator("every")
    @classmethod
    def _valid_every(cls, value: str) -> str:
        match = _EVERY.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a step like '1mo', '2w' or '7d'")
        if not 1 <= int(match.group(1)) <= 120:  # 0 would never advance; past 120 (10 years of months) is a typo
            raise ValueError(f"{value!r}: the step must be between 1 and 120 units")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> SnapshotConfig:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    @property
    def step(self) -> tuple[int, str]:
        """The grid step as (count, unit), unit one of d, w, mo."""
        number, unit = _EVERY.match(self.every).groups()
        return int(number), unit


class LabelConfig(BaseModel):
    """How churn is defined: the prediction horizon and the grace period for a late renewal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon_days: int = Field(default=90, gt=0)
    grace_days: int = Field(default=30, ge=0)
