"""Typed settings of the feature stage (the `features:` section of params.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class FeatureConfig(BaseModel):
    """Windows and event vocabulary the feature groups use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    windows: list[int] = Field(default=[7, 30, 90], min_length=1)
    trend_window_days: int = Field(default=30, gt=0)
    login_event: str = "login"
    core_events: list[str] = Field(default_factory=list)
    session_gap_minutes: int = Field(default=30, gt=0)
    value_events: list[str] = Field(default_factory=list)
    onboarding_milestones: list[str] = Field(default_factory=list)
    high_priorities: list[str] = Field(default_factory=lambda: ["high", "urgent"])
    support_window_days: int = Field(default=90, gt=0)
    survey_window_days: int = Field(default=180, gt=0)

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
                "survey": [self.survey_window_days]}
