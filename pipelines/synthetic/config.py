"""The one knob set of the synthetic company: how many accounts sign up, over how many months from which start
day, the seed, and how often each churn cause strikes. `generate_warehouse` takes a `SimulationConfig`; the same
config always gives the same frames.

The CS team's playbooks and their true effects (`CsTeamConfig`, `simulate.cs_team` in params.yaml) are here too.

The causes are named here, with the playbook group whose reasons should explain a churn each one drives
(`CAUSE_GROUPS`), because both the knob (`simulate.causes` in params.yaml) and the truth tables use the names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType

# cause -> the playbook group of the signals it moves (the group a true reason for its churns belongs to)
CAUSE_GROUPS = MappingProxyType({
    "onboarding": "value",            # slow time to value: first value, milestones and deal outcomes late or never
    "champion_loss": "engagement",    # the most active admin leaves, the others' use decays
    "support_pain": "support",        # weeks of urgent, slow, badly rated tickets
    "unhappy_voice": "voice",         # detractor NPS, low CSAT, hard CES answers, negative comments
    "price_shock": "commercial",      # a price increase answered with fewer seats
})
CAUSES = tuple(CAUSE_GROUPS)


def check_cause_rates(rates: Mapping[str, float] | None) -> dict[str, float]:
    """Every cause's rate multiplier: the given ones, 1.0 for the others.

    Raises:
        ValueError: one line naming the unknown cause or the negative multiplier.
    """
    rates = dict(rates or {})
    unknown = [name for name in rates if name not in CAUSE_GROUPS]
    if unknown:
        raise ValueError(f"unknown cause {', '.join(map(repr, unknown))} (known: {', '.join(CAUSES)})")
    for name, rate in rates.items():
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate >= 0 or rate == float("inf"):
            raise ValueError(f"{name}: the rate multiplier must be a finite number ≥ 0 (0 switches the cause off), "
                             f"not {rate!r}")
    return {name: float(rates.get(name, 1.0)) for name in CAUSES}


# playbook -> its true relative effect on the churn probability at the renewals of its effect window (cs_team.py)
DEFAULT_PLAYBOOK_EFFECTS = MappingProxyType({
    "onboarding_review": -0.2,
    "adoption_workshop": -0.3,
    "ticket_escalation": -0.25,
    "recovery_plan_call": -0.15,
    "commercial_review": 0.0,   # a discount call that changes nothing
})


@dataclass(frozen=True)
class CsTeamConfig:
    """The simulated CS team (cs_team.py): the share of flagged accounts it holds back, how long a playbook weighs
    on the churn probability after the flag, and each playbook's true relative effect on it (-0.3 = 30% lower)."""

    holdout_share: float = 0.5
    effect_days: int = 90
    effects: Mapping[str, float] = field(default_factory=dict)   # playbook -> effect; missing ones: the default

    def __post_init__(self) -> None:
        unknown = [name for name in self.effects if name not in DEFAULT_PLAYBOOK_EFFECTS]
        if unknown:
            raise ValueError(f"effects: unknown playbook {', '.join(map(repr, unknown))} "
                             f"(known: {', '.join(DEFAULT_PLAYBOOK_EFFECTS)})")
        for name, effect in self.effects.items():
            if isinstance(effect, bool) or not isinstance(effect, int | float) or not -1 < effect <= 1:
                raise ValueError(f"effects: {name}: the relative effect on the churn probability must be a number "
                                 f"above -1 and at most 1 (-0.3 = 30% lower, 0 = none), not {effect!r}")
        if (isinstance(self.holdout_share, bool) or not isinstance(self.holdout_share, int | float)
                or not 0 <= self.holdout_share < 1):
            raise ValueError(f"holdout_share: must be at least 0 and below 1, not {self.holdout_share!r}")
        if (isinstance(self.effect_days, bool) or not isinstance(self.effect_days, int)
                or not 1 <= self.effect_days <= 3650):
            raise ValueError(f"effect_days: must be a whole number of days from 1 to 3650, not {self.effect_days!r}")
        object.__setattr__(self, "effects", {name: float(self.effects.get(name, default))
                                             for name, default in DEFAULT_PLAYBOOK_EFFECTS.items()})


@dataclass(frozen=True)
class NowcastConfig:
    """The nowcast oracle (nowcast.py): the horizon of its churn probability and the forward paths per account and
    as-of (0 = no `sim_nowcast` table)."""

    horizon_days: int = 90
    paths: int = 100

    def __post_init__(self) -> None:
        for name in ("horizon_days", "paths"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "horizon_days" else 0):
                raise ValueError(f"nowcast.{name}: must be a whole number ≥ {1 if name == 'horizon_days' else 0}, "
                                 f"not {value!r}")


@dataclass(frozen=True)
class SimulationConfig:
    """Size, length, seed and start of the simulated history, the company profile (`profiles.PROFILES`: demo,
    self_serve, enterprise), a rate multiplier per churn cause, and the CS team."""

    accounts: int = 2000  # accounts signing up over the period
    months: int = 24  # length of the simulated history in months
    seed: int = 7
    start: date = date(2024, 1, 1)  # first day of the history
    causes: Mapping[str, float] = field(default_factory=dict)  # cause -> rate multiplier (1.0 default, 0 = off)
    cs_team: CsTeamConfig = field(default_factory=CsTeamConfig)
    nowcast: NowcastConfig = field(default_factory=NowcastConfig)
    profile: str = "demo"  # the company's scale, billing, tables and event names (profiles.py)

    def __post_init__(self) -> None:
        from pipelines.synthetic.profiles import get_profile

        get_profile(self.profile)
        try:
            rates = check_cause_rates(self.causes)
        except ValueError as exc:
            raise ValueError(f"causes: {exc}") from None
        object.__setattr__(self, "causes", rates)
