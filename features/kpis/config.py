"""Typed settings of `churn kpis`: the `kpis:` section of params.yaml.

Import-light on purpose (pydantic and the contract only): loading params.yaml must not import an engine.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator

from features.config import MAX_DAYS
from features.contract import CONTRACT

# The account columns KPIs may be broken down by: descriptive attributes, not keys, names or dates.
BREAKDOWN_COLUMNS = tuple(c.name for c in CONTRACT["accounts"].columns
                          if c.name not in ("account_id", "created_at", "name"))


class KpiConfig(BaseModel):
    """What the KPIs need beyond the sources: the gross margin, the days the time-to-value curves are read at,
    and the account column they are broken down by."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Strict: YAML reads yes/no/true as booleans, which a lax float or int would take as 1 and 0.
    gross_margin: StrictFloat = Field(default=0.8, gt=0, le=1)
    ttv_days: list[StrictInt] = Field(default=[7, 14, 30, 60, 90], min_length=1)
    segment_by: str | None = "segment"

    @field_validator("ttv_days")
    @classmethod
    def _positive_sorted(cls, value: list[int]) -> list[int]:
        wrong = [f"not {d}" for d in value if not 1 <= d <= MAX_DAYS]
        wrong += [f"{d} repeated" for d in sorted(set(value)) if value.count(d) > 1]
        if wrong:
            raise ValueError(f"ttv_days must be distinct day counts from 1 to {MAX_DAYS} ({', '.join(wrong)})")
        return sorted(value)

    @field_validator("segment_by")
    @classmethod
    def _known_column(cls, value: str | None) -> str | None:
        if value is not None and value not in BREAKDOWN_COLUMNS:
            raise ValueError(f"{value!r} is not an accounts column to break KPIs down by "
                             f"(choose from {', '.join(BREAKDOWN_COLUMNS)}, or null for all accounts only)")
        return value
