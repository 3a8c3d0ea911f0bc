"""The `validation:` section of params.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.contract import CONTRACT
from serving.tables import FEATURES_TABLE, SCORES_TABLE

Severity = Literal["error", "warn"]


class ValidationConfig(BaseModel):
    """How strict validation is: the future tolerance, each rule's severity, examples shown, where the page goes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    future_tolerance_days: float = Field(default=1.0, ge=0)
    severities: dict[str, Severity] = Field(default_factory=lambda: dict(DEFAULT_SEVERITIES))
    data_docs_dir: Path | None = Path("reports/validation")
    max_examples: int = Field(default=5, ge=1, le=50)
    max_failing_rows: int = Field(default=10_000, ge=100)

    @field_validator("severities")
    @classmethod
    def _known_keys(cls, value: dict[str, Severity]) -> dict[str, Severity]:
        for key in value:
            parts = key.split(".")
            if parts[-1] not in RULES:
                raise ValueError(f"{key}: unknown rule {parts[-1]!r}; rules are {', '.join(RULES)}")
            if len(parts) > 3 or (len(parts) > 1 and parts[0] not in TABLES):
                raise ValueError(f"{key}: expected RULE, TABLE.RULE or TABLE.COLUMN.RULE with TABLE one of "
                                 f"{', '.join(TABLES)}")
        return value

    def severity(self, table: str, column: str | None, rule: str) -> Severity:
        """The severity of a rule on a column: params before the defaults, and within each the most specific key."""
        keys = [f"{table}.{column}.{rule}"] if column else []
        keys += [f"{table}.{rule}", rule]
        for severities in (self.severities, DEFAULT_SEVERITIES):
            for key in keys:
                if key in severities:
                    return severities[key]
        return "error"


# Rule name → what it means. Severities in params are keyed by these names.
RULES = {
    "column_present": "a required column exists",
    "castable": "every value casts to the contract's type (no text in a numeric or timestamp column)",
    "not_null": "keys and account ids are never null",
    "missing_values": "other required columns have no nulls",
    "unique": "the key identifies one row",
    "foreign_key": "every account_id exists in accounts (no orphan rows)",
    "not_empty": "the table has rows",
    "not_all_null": "a column holds at least one value",
    "end_after_start": "subscriptions end at or after they start",
    "resolved_after_created": "tickets are resolved at or after they are created",
    "non_negative": "amounts, durations and counts are ≥ 0",
    "in_range": "scores, shares and probabilities lie in their range",
    "allowed_values": "categorical values come from the allowed set",
    "not_in_future": "timestamps are not after the reference time plus the tolerance",
    "not_after_data_end": "actions are not dated after the data's end plus the tolerance",
    "finite": "numbers are finite (no NaN or infinity)",
    "after_account_created": "activity is not dated before its account was created",
}


# Structural and key rules stop a run; softer ones warn. A key is `rule`, `table.rule` or `table.column.rule`;
# the most specific key present wins, and params override these defaults key by key.
DEFAULT_SEVERITIES: dict[str, str] = {
    **dict.fromkeys(RULES, "error"),
    "missing_values": "warn",
    "resolved_after_created": "warn",
    f"{FEATURES_TABLE}.not_all_null": "warn",
    "cs_actions.done_at.missing_values": "error",   # an action without a date cannot be placed in any horizon
}


TABLES = (*CONTRACT, FEATURES_TABLE, SCORES_TABLE)
