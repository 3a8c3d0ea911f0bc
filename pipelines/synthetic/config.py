"""The one knob set of the synthetic company: how many accounts sign up, over how many months from which start
day, the seed, and how often each churn cause strikes. `generate_warehouse` takes a `SimulationConfig`; the same
config always gives the same frames.

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


@dataclass(frozen=True)
class SimulationConfig:
    """Size, length, seed and start of the simulated history, and a rate multiplier per churn cause."""

    accounts: int = 2000  # accounts signing up over the period
    months: int = 24  # length of the simulated history in months
    seed: int = 7
    start: date = date(2024, 1, 1)  # first day of the history
    causes: Mapping[str, float] = field(default_factory=dict)  # cause -> rate multiplier (1.0 default, 0 = off)

    def __post_init__(self) -> None:
        try:
            rates = check_cause_rates(self.causes)
        except ValueError as exc:
            raise ValueError(f"causes: {exc}") from None
        object.__setattr__(self, "causes", rates)
