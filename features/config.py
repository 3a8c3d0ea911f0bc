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

    @field_validator("windows")
    @classmethod
    def _positive_sorted(cls, value: list[int]) -> list[int]:
        if any(w <= 0 for w in value) or len(set(value)) != len(value):
            raise ValueError("windows must be distinct positive day counts")
        return sorted(value)

    @property
    def lookback_days(self) -> int:
        """How far back any windowed feature reads."""
        return max(max(self.windows), 2 * self.trend_window_days)
