"""The one knob set of the synthetic company: how many accounts sign up, over how many months from which start
day, and the seed. `generate_warehouse` takes a `SimulationConfig`; the same config always gives the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class SimulationConfig:
    """Size, length, seed and start of the simulated history."""

    accounts: int = 2000  # accounts signing up over the period
    months: int = 24  # length of the simulated history in months
    seed: int = 7
    start: date = date(2024, 1, 1)  # first day of the history
