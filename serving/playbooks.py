"""Playbooks: what to do about an account, from its risk tier and the group of signals driving its risk.

Rules are data (`scoring.playbooks.rules` in params.yaml): each maps a tier and a driver group to a recommended
action and the role that owns it. An account's driver group is the one whose risk-raising contributions weigh most;
a rule for group "*" is the tier's fallback. The top tier must have a fallback, so every account in it gets an action.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from features.catalog import FeatureSpec

# The catalog's groups as a CS team talks about them: the four engagement groups are one.
DRIVER_GROUPS = ("engagement", "value", "support", "voice", "commercial")
ANY_GROUP = "*"
_FROM_CATALOG = {"frequency": "engagement", "breadth": "engagement", "depth": "engagement", "trend": "engagement",
                 "value": "value", "support": "support", "voice": "voice", "commercial": "commercial"}
_RULE_KEYS = ("tier", "group", "action", "owner_role")


def driver_group(catalog_group: str) -> str:
    """The playbook group of a catalog group (frequency, breadth, depth and trend are all engagement)."""
    return _FROM_CATALOG[catalog_group]


class PlaybookRule(BaseModel):
    """One rule: accounts in `tier` whose risk is driven most by `group` get `action`, owned by `owner_role`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tier: str
    group: str
    action: str
    owner_role: str


def _describe(index: int, raw) -> str:
    if isinstance(raw, dict):
        return f"rule {index} (tier {raw.get('tier')!r}, group {raw.get('group')!r})"
    return f"rule {index}"


def _check_raw_rule(index: int, raw) -> None:
    name = _describe(index, raw)
    if not isinstance(raw, dict):
        raise ValueError(f"{name}: expected a mapping with keys {', '.join(_RULE_KEYS)}, got {raw!r}")
    unknown = sorted(set(raw) - set(_RULE_KEYS))
    if unknown:
        raise ValueError(f"{name}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(_RULE_KEYS)})")
    for key in _RULE_KEYS:
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            what = {"action": "no action", "owner_role": "no owner_role"}.get(key, f"no {key}")
            raise ValueError(f"{name}: {what} (give `{key}:` as text)")
    if raw["group"] not in (*DRIVER_GROUPS, ANY_GROUP):
        raise ValueError(f"{name}: unknown group {raw['group']!r} (choose from {', '.join(DRIVER_GROUPS)}, "
                         f"or '{ANY_GROUP}' for any)")


class PlaybookConfig(BaseModel):
    """The `scoring.playbooks:` section: rules from tier × driver group to a recommended action and owner."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[PlaybookRule] = Field(default_factory=lambda: [PlaybookRule(**r) for r in DEFAULT_RULES])

    @field_validator("rules", mode="before")
    @classmethod
    def _named_errors(cls, value):
        # Checked before pydantic's own parsing, so each error names the rule (number, tier and group).
        if not isinstance(value, list):
            raise ValueError("rules: expected a list of {tier, group, action, owner_role}")
        for index, raw in enumerate(value, start=1):
            if not isinstance(raw, PlaybookRule):
                _check_raw_rule(index, raw)
        return value

    @model_validator(mode="after")
    def _no_duplicates(self) -> PlaybookConfig:
        seen: dict[tuple[str, str], int] = {}
        for index, rule in enumerate(self.rules, start=1):
            key = (rule.tier, rule.group)
            if key in seen:
                raise ValueError(f"rule {index} (tier {rule.tier!r}, group {rule.group!r}) repeats rule {seen[key]}")
            seen[key] = index
        return self

    def check_tiers(self, tiers: list[str]) -> None:
        """Raise ValueError naming a rule whose tier does not exist, or when the top tier has no fallback.

        Args:
            tiers: the tier names, highest risk first.
        """
        for index, rule in enumerate(self.rules, start=1):
            if rule.tier not in tiers:
                raise ValueError(f"playbooks: rule {index} (tier {rule.tier!r}, group {rule.group!r}): unknown "
                                 f"tier {rule.tier!r} (tiers: {', '.join(tiers)})")
        top = tiers[0]
        if not any(r.tier == top and r.group == ANY_GROUP for r in self.rules):
            raise ValueError(f"playbooks: no fallback rule for the top tier {top!r}; add "
                             f"{{tier: {top}, group: '{ANY_GROUP}', action: ..., owner_role: ...}} so every "
                             f"{top}-risk account gets an action")

    def find(self, tier: str, group: str | None) -> PlaybookRule | None:
        """The rule for a tier and driver group: the exact one, else the tier's fallback, else None."""
        for wanted in (group, ANY_GROUP):
            for rule in self.rules:
                if rule.tier == tier and rule.group == wanted:
                    return rule
        return None


DEFAULT_RULES = [
    {"tier": "high", "group": "engagement", "owner_role": "CSM",
     "action": "Adoption workshop with the account's users; agree usage goals for the next 30 days"},
    {"tier": "high", "group": "value", "owner_role": "Onboarding specialist",
     "action": "Onboarding review: finish the missing milestones and book a first-value session"},
    {"tier": "high", "group": "support", "owner_role": "Support lead",
     "action": "Escalate the open tickets and call the account about their resolution"},
    {"tier": "high", "group": "voice", "owner_role": "CS manager",
     "action": "Executive sponsor call: hear the feedback and agree a recovery plan"},
    {"tier": "high", "group": "commercial", "owner_role": "Account executive",
     "action": "Renewal preparation: review plan, seats and price with the decision maker"},
    {"tier": "high", "group": ANY_GROUP, "owner_role": "CS manager",
     "action": "Executive sponsor call to understand the risk and agree next steps"},
    {"tier": "medium", "group": "engagement", "owner_role": "CSM",
     "action": "Adoption nudge: usage tips and an invitation to office hours"},
    {"tier": "medium", "group": "value", "owner_role": "CSM",
     "action": "Check onboarding progress and offer a setup session"},
    {"tier": "medium", "group": "support", "owner_role": "Support",
     "action": "Follow up on recent tickets and confirm they are solved"},
    {"tier": "medium", "group": "voice", "owner_role": "CSM",
     "action": "Follow up on the latest survey feedback"},
    {"tier": "medium", "group": "commercial", "owner_role": "Account executive",
     "action": "Start renewal preparation early"},
    {"tier": "medium", "group": ANY_GROUP, "owner_role": "CSM",
     "action": "Health check at the next touchpoint"},
]


def dominant_groups(contributions: pd.DataFrame, specs: dict[str, FeatureSpec]) -> np.ndarray:
    """Each row's driver group with the largest sum of risk-raising contributions (None when nothing raises it)."""
    features = [c for c in contributions.columns if c != "bias" and c in specs]
    if not features:
        return np.full(len(contributions), None, dtype=object)
    positive = contributions[features].clip(lower=0)
    by_group = positive.T.groupby([driver_group(specs[f].group) for f in features]).sum().T
    best = by_group.to_numpy().argmax(axis=1)
    groups = np.asarray(by_group.columns, dtype=object)[best]
    return np.where(by_group.to_numpy().max(axis=1) > 0, groups, None)


def recommend_actions(tiers: np.ndarray, groups: np.ndarray, config: PlaybookConfig) -> pd.DataFrame:
    """Return recommended_action and owner_role for each account (None where no rule covers its tier)."""
    found = [config.find(t, g) for t, g in zip(tiers, groups, strict=True)]
    return pd.DataFrame({"recommended_action": pd.Series([r.action if r else None for r in found], dtype=object),
                         "owner_role": pd.Series([r.owner_role if r else None for r in found], dtype=object)})
