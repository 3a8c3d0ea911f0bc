"""Typed settings of the serving stages: the `scoring:` (tiers, playbooks, drift guard) and `report:` sections.

Import-light on purpose (pydantic only): loading params.yaml must not import an engine or ML library.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

# The catalog's groups as a CS team talks about them: the four engagement groups are one.
DRIVER_GROUPS = ("engagement", "value", "support", "voice", "commercial")


ANY_GROUP = "*"


_RULE_KEYS = ("tier", "group", "action", "owner_role")
_URGENT_KEYS = ("urgent_action", "urgent_owner_role")  # optional: the variant for a renewal within urgent_days
_NAME_KEY = "name"  # optional: the playbook's id in the experiment tables (default: tier/group)
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Rule texts are one line each in churn_scores, the report and the exports: a line break or another control
# character there is a paste error, and a text past these lengths no one reads in a table cell.
_MAX_TEXT = {"action": 500, "urgent_action": 500, "owner_role": 100, "urgent_owner_role": 100}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PlaybookRule(BaseModel):
    """One rule: accounts in `tier` whose risk is driven most by `group` get `action`, owned by `owner_role`; when
    the renewal is within `urgent_days`, `urgent_action` and `urgent_owner_role` instead (each defaults to the
    routine one). The rule is a playbook; `name` is its id (see `playbook`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tier: str
    group: str
    action: str
    owner_role: str
    urgent_action: str | None = None
    urgent_owner_role: str | None = None
    name: str | None = None

    @property
    def playbook(self) -> str:
        """The playbook's stable id: `name` when given, else `tier/group` (e.g. `high/support`, `high/*`).

        It keys the holdout assignment (serving/experiments.py) and the effects read back later, so renaming a rule,
        or changing the tier or group of an unnamed one, starts a new playbook with fresh arms. Routine and urgent
        variants are one playbook.
        """
        return self.name or f"{self.tier}/{self.group}"

    def pick(self, urgent: bool) -> tuple[str, str]:
        """(action, owner role) for a routine or an urgent account."""
        if urgent:
            return self.urgent_action or self.action, self.urgent_owner_role or self.owner_role
        return self.action, self.owner_role


def _describe(index: int, raw) -> str:
    if isinstance(raw, dict):
        return f"rule {index} (tier {raw.get('tier')!r}, group {raw.get('group')!r})"
    return f"rule {index}"


def _check_raw_rule(index: int, raw) -> None:
    name = _describe(index, raw)
    if not isinstance(raw, dict):
        raise ValueError(f"{name}: expected a mapping with keys {', '.join(_RULE_KEYS)}, got {raw!r}")
    unknown = sorted(set(raw) - set(_RULE_KEYS) - set(_URGENT_KEYS) - {_NAME_KEY})
    if unknown:
        raise ValueError(f"{name}: unknown key(s) {', '.join(unknown)} "
                         f"(allowed: {', '.join(_RULE_KEYS + _URGENT_KEYS + (_NAME_KEY,))})")
    if _NAME_KEY in raw and not (isinstance(raw[_NAME_KEY], str) and _NAME.match(raw[_NAME_KEY])):
        raise ValueError(f"{name}: `name:` {raw[_NAME_KEY]!r} must be 1-64 letters, digits, _ or - (it is the "
                         "playbook's id in churn_playbook_assignments)")
    for key in _RULE_KEYS:
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            what = {"action": "no action", "owner_role": "no owner_role"}.get(key, f"no {key}")
            raise ValueError(f"{name}: {what} (give `{key}:` as text)")
    for key in _URGENT_KEYS:
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise ValueError(f"{name}: `{key}:` must be text (or left out to use the routine one)")
    for key, limit in _MAX_TEXT.items():
        text = raw.get(key)
        if isinstance(text, str) and len(text) > limit:
            raise ValueError(f"{name}: `{key}:` is {len(text):,} characters long (at most {limit})")
        if isinstance(text, str) and _CONTROL.search(text):
            raise ValueError(f"{name}: `{key}:` holds a line break or another control character (one line of text)")
    if raw["group"] not in (*DRIVER_GROUPS, ANY_GROUP):
        raise ValueError(f"{name}: unknown group {raw['group']!r} (choose from {', '.join(DRIVER_GROUPS)}, "
                         f"or '{ANY_GROUP}' for any)")


class PlaybookConfig(BaseModel):
    """The `scoring.playbooks:` section: rules from tier × driver group to a recommended action and owner.

    Attributes:
        urgent_days: a renewal within this many days of the as-of makes the action urgent (its urgent variant).
        due_days: an action is due this many days after the as-of, or halfway to the renewal if that is sooner.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[PlaybookRule] = Field(default_factory=lambda: [PlaybookRule(**r) for r in DEFAULT_RULES])
    # Strict: YAML reads yes/no/true as booleans, which a lax int would take as 1 and 0.
    urgent_days: StrictInt = Field(default=30, ge=0, le=3660)
    due_days: StrictInt = Field(default=14, ge=0, le=3660)

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
        names: dict[str, int] = {}
        for index, rule in enumerate(self.rules, start=1):
            key = (rule.tier, rule.group)
            if key in seen:
                raise ValueError(f"rule {index} (tier {rule.tier!r}, group {rule.group!r}) repeats rule {seen[key]}")
            seen[key] = index
            if rule.name in names:
                raise ValueError(f"rule {index} (tier {rule.tier!r}, group {rule.group!r}): name {rule.name!r} is "
                                 f"also rule {names[rule.name]}'s (each playbook needs its own name)")
            if rule.name:
                names[rule.name] = index
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
    {"tier": "high", "group": "engagement", "name": "adoption_workshop", "owner_role": "CSM",
     "action": "Adoption workshop with the account's users; agree usage goals for the next 30 days",
     "urgent_owner_role": "CSM and account executive",
     "urgent_action": "Before the renewal: adoption review with the decision maker; agree usage goals in the renewal"},
    {"tier": "high", "group": "value", "name": "onboarding_review", "owner_role": "Onboarding specialist",
     "action": "Onboarding review: finish the missing milestones and book a first-value session",
     "urgent_owner_role": "Onboarding specialist and account executive",
     "urgent_action": "Before the renewal: first-value session with the decision maker; finish onboarding"},
    {"tier": "high", "group": "support", "name": "ticket_escalation", "owner_role": "Support lead",
     "action": "Escalate the open tickets and call the account about their resolution",
     "urgent_owner_role": "Support lead and account executive",
     "urgent_action": "Before the renewal: escalate the open tickets and call the decision maker about them"},
    {"tier": "high", "group": "voice", "name": "recovery_plan_call", "owner_role": "CS manager",
     "action": "Executive sponsor call: hear the feedback and agree a recovery plan",
     "urgent_owner_role": "CS manager and account executive",
     "urgent_action": "Before the renewal: executive sponsor call on the feedback and a recovery plan"},
    {"tier": "high", "group": "commercial", "name": "commercial_review", "owner_role": "Account executive",
     "action": ("Commercial review: understand the contraction or price increase and agree the right plan, seats and "
                "price"),
     "urgent_action": "Renewal negotiation: review plan, seats and price with the decision maker"},
    {"tier": "high", "group": ANY_GROUP, "name": "sponsor_call", "owner_role": "CS manager",
     "action": "Executive sponsor call to understand the risk and agree next steps",
     "urgent_owner_role": "CS manager and account executive",
     "urgent_action": "Before the renewal: executive sponsor call to understand the risk"},
    {"tier": "medium", "group": "engagement", "name": "adoption_nudge", "owner_role": "CSM",
     "action": "Adoption nudge: usage tips and an invitation to office hours"},
    {"tier": "medium", "group": "value", "name": "setup_session", "owner_role": "CSM",
     "action": "Check onboarding progress and offer a setup session"},
    {"tier": "medium", "group": "support", "name": "ticket_follow_up", "owner_role": "Support",
     "action": "Follow up on recent tickets and confirm they are solved"},
    {"tier": "medium", "group": "voice", "name": "feedback_follow_up", "owner_role": "CSM",
     "action": "Follow up on the latest survey feedback"},
    {"tier": "medium", "group": "commercial", "name": "plan_fit_check", "owner_role": "Account executive",
     "action": "Check in on the recent contraction or price increase and the plan's fit"},
    {"tier": "medium", "group": ANY_GROUP, "name": "health_check", "owner_role": "CSM",
     "action": "Health check at the next touchpoint",
     "urgent_action": "Health check before the renewal"},
]


class ExperimentConfig(BaseModel):
    """The `scoring.experiments:` section: the random holdout each playbook keeps, so that `churn outcomes` can
    later compare the accounts that got its action with those held back (serving/experiments.py).

    Attributes:
        enabled: assign an arm (treatment or holdout) to every account a playbook rule matches, from `start` on;
            False: no assignments, `arm` stays empty and every matched account gets its action.
        holdout_share: the share of each playbook's accounts held back (no action), strictly between 0 and 1.
        salt: text mixed into the hash, so that another deployment (or a restart under a new salt) draws other
            holdouts; it is not a secret.
        start: the experiment's start date: part of the hash (a new start draws every arm afresh), and scorings of
            as-ofs before it assign no arms.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    holdout_share: float = Field(default=0.1, gt=0, lt=1)
    salt: str = Field(default="churn", min_length=1, max_length=200)
    start: date | None = None

    @model_validator(mode="after")
    def _start_when_enabled(self) -> ExperimentConfig:
        if self.enabled and self.start is None:
            raise ValueError("start: give the experiment's start date (YYYY-MM-DD) when enabled (it is part of "
                             "the holdout hash)")
        return self


class ScoringConfig(BaseModel):
    """The `scoring:` section: reasons per account, risk tiers (by lift over the training churn rate, by probability
    or by capacity), playbooks and the holdout experiment on them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Strict: YAML reads yes/no/true as booleans, which a lax int would take as 1 and 0.
    top_reasons: StrictInt = Field(default=3, ge=1, le=10)
    protective_factors: StrictInt = Field(default=1, ge=0, le=5)
    # lift travels: a fixed probability leaves a warehouse churning 5% a quarter without a high-risk account.
    tiers_by: Literal["lift", "probability", "capacity"] = "lift"
    lift: dict[str, float] = Field(default_factory=lambda: {"high": 2.0, "medium": 1.2})
    tiers: dict[str, float] = Field(default_factory=lambda: {"high": 0.35, "medium": 0.15})
    capacity: dict[str, int] = Field(default_factory=lambda: {"high": 50, "medium": 200})
    lowest_tier: str = "low"
    playbooks: PlaybookConfig = PlaybookConfig()
    experiments: ExperimentConfig = ExperimentConfig()

    @field_validator("tiers")
    @classmethod
    def _thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not 0 < t < 1 for t in value.values()):
            raise ValueError("tier thresholds are probabilities strictly between 0 and 1")
        return value

    @field_validator("lift")
    @classmethod
    def _lifts(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not t > 0 for t in value.values()) or len(set(value.values())) != len(value):
            raise ValueError("lift: distinct multiples of the training churn rate above 0 (e.g. high: 2.0)")
        return value

    @field_validator("capacity")
    @classmethod
    def _counts(cls, value: dict[str, int]) -> dict[str, int]:
        if any(n < 1 for n in value.values()) or len(set(value.values())) != len(value):
            raise ValueError("capacity: distinct account counts of at least 1 (the top N of each as-of, cumulative)")
        return value

    @model_validator(mode="after")
    def _tiers_and_playbooks(self) -> ScoringConfig:
        key = self.tier_key
        cutoffs = getattr(self, key)
        if not cutoffs:
            raise ValueError(f"{key}: name at least one tier (tiers_by is {self.tiers_by})")
        if self.lowest_tier in cutoffs:
            raise ValueError(f"lowest_tier {self.lowest_tier!r} is also a tier in {key}")
        self.playbooks.check_tiers(self.tier_names)
        return self

    @property
    def tier_key(self) -> str:
        """The key holding the cutoffs of `tiers_by`: tiers (probability), lift or capacity."""
        return {"probability": "tiers", "lift": "lift", "capacity": "capacity"}[self.tiers_by]

    @property
    def tier_names(self) -> list[str]:
        """The tier names, highest risk first, ending with the lowest tier."""
        cutoffs = getattr(self, self.tier_key)
        # A higher probability or lift is a higher tier; a smaller capacity is.
        sign = 1 if self.tiers_by == "capacity" else -1
        return [*sorted(cutoffs, key=lambda name: sign * cutoffs[name]), self.lowest_tier]


class OutcomesConfig(BaseModel):
    """The `outcomes:` section: how `churn outcomes` judges the playbooks against their holdout (serving/effects.py).

    Attributes:
        confidence: coverage of the effect intervals (0.95: 95% intervals); the verdict reads them.
        min_arm_accounts: a comparison with fewer treated or held-back accounts than this says `no evidence`,
            whatever its interval.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    confidence: float = Field(default=0.95, ge=0.5, lt=1)
    min_arm_accounts: int = Field(default=20, ge=1)


class DriftConfig(BaseModel):
    """The `scoring.drift:` section: thresholds of the drift guard (see serving/drift.py for what each check measures).

    The importance-weighted PSI summary warns above `warn` and stops above `stop`; a feature the model uses stops
    the run on its own above `feature_stop` (PSI) or when its median moved more than `median_ratio_stop` times;
    the MRR of the accounts in both this and the previous scoring stops it beyond `mrr_ratio_stop` times.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    warn: float = Field(default=0.1, gt=0)
    stop: float = Field(default=0.25, gt=0)
    bins: int = Field(default=10, ge=2, le=50)
    feature_stop: float = Field(default=2.0, gt=0)
    median_ratio_stop: float = Field(default=5.0, gt=1)
    mrr_ratio_stop: float = Field(default=3.0, gt=1)

    @model_validator(mode="after")
    def _ordered(self) -> DriftConfig:
        if self.stop < self.warn:
            raise ValueError("scoring.drift.stop must be at least scoring.drift.warn")
        return self


class ReportConfig(BaseModel):
    """The `report:` section: what the managers' report lists and draws."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dir: str = "reports"
    at_risk_tiers: list[str] = Field(default_factory=list)
    max_accounts: int = Field(default=200, ge=1)
    waterfall_steps: int = Field(default=8, ge=1, le=30)
    top_features: int = Field(default=12, ge=3, le=40)
    breakdowns: list[str] = Field(default_factory=lambda: ["segment", "plan", "csm_owner"])
    # "Rising fast": the accounts whose churn probability rose most since the previous scoring.
    rising_fast: int = Field(default=10, ge=1, le=200)
