"""Health: each account's latent traits (mean health, time to value, a hidden frailty, its number of users) and its
latent daily health (an AR(1) drift with occasional decaying negative shocks, plus an onboarding dip that is
deeper when time to value is slow). Health is the background every signal shares (activity, tickets, survey
scores, trial conversion, plan changes) and the no-cause part of the churn hazard (`hazard`); the churn causes,
each moving only its own signals, live in `causes`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.synthetic.clock import DAY, Clock

_HEALTH_PHI, _HEALTH_SD = 0.985, 0.25  # daily AR(1) coefficient and stationary spread
_SHOCK_PHI, _SHOCK_RATE = 0.97, 1 / 730  # shock decay per day, shocks per account-day
_HEALTH_SHIFT = np.array([-0.1, 0.05, 0.2])  # mean health by segment
SHOCK_SIZE = (0.3, 0.8)  # a shock takes a uniform amount in this range off health
_DIP_DEPTH, _DIP_DAYS = 0.4, 120  # onboarding dip: depth per unit of standardised time to value, decay in days


# --- latent traits and daily health ------------------------------------------------------------------------


def draw_latents(rng: np.random.Generator, seg: np.ndarray, seats: np.ndarray) -> dict[str, np.ndarray]:
    """Per account: mean health, time to value (standardised and as a factor), frailty and number of users."""
    n = len(seg)
    z_ttv = rng.normal(0.0, 1.0, n)  # standardised log time to value: > 0 is slow onboarding
    return {
        "mu": rng.normal(_HEALTH_SHIFT[seg], 0.4),
        "z_ttv": z_ttv,
        "ttv": np.exp(0.5 * z_ttv),
        "frailty": rng.normal(0.0, 0.1, n),  # churn propensity that no table shows
        "n_users": np.maximum(1, np.round(seats * rng.uniform(0.4, 0.9, n))).astype(np.int64),
    }


def simulate_health(rng: np.random.Generator, acc: pd.DataFrame, clock: Clock,
                    state_days: np.ndarray | None = None) -> tuple[np.ndarray, dict[int, tuple]]:
    """Latent daily health, shape (days, accounts): AR(1) drift, decaying negative shocks, onboarding dip; and the
    latent state (drift, dent) at the start of each day of `state_days`, before that day's innovation and shock,
    keyed by day: all a forward simulation from there needs besides the traits (`nowcast`)."""
    n, days = len(acc), clock.days
    innovations = rng.normal(0.0, _HEALTH_SD * np.sqrt(1 - _HEALTH_PHI**2), (days, n))
    shocks = np.zeros((days, n))
    hit = rng.random((days, n)) < _SHOCK_RATE
    shocks[hit] = -rng.uniform(*SHOCK_SIZE, int(hit.sum()))
    drift, dent = rng.normal(0.0, _HEALTH_SD, n), np.zeros(n)
    health = np.empty((days, n), dtype=np.float32)
    wanted, states = set(() if state_days is None else np.asarray(state_days).tolist()), {}
    for day in range(days):  # a loop over days of vector operations over accounts
        if day in wanted:
            states[day] = (drift.copy(), dent.copy())
        drift = _HEALTH_PHI * drift + innovations[day]
        dent = _SHOCK_PHI * dent + shocks[day]
        health[day] = drift + dent
    age = np.arange(days)[:, None] - acc["created"].to_numpy()[None, :] / DAY
    dip = onboarding_dip(acc["z_ttv"].to_numpy(), age)
    return health + (acc["mu"].to_numpy() + dip).astype(np.float32), states


def onboarding_dip(z_ttv: np.ndarray, age_days: np.ndarray) -> np.ndarray:
    """What a slow onboarding takes off health at each age in days (deeper when time to value is slow)."""
    return -_DIP_DEPTH * z_ttv * np.exp(-np.clip(age_days, 0, None) / _DIP_DAYS)


def cumulate_health(health: np.ndarray) -> np.ndarray:
    """Running sums of daily health, shape (days + 1, accounts), starting at zero: `mean_health_before` reads them."""
    return np.vstack([np.zeros((1, health.shape[1])), np.cumsum(health, axis=0, dtype=np.float64)])


def health_at(health: np.ndarray, acct: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    return health[np.clip(seconds // DAY, 0, len(health) - 1), acct]


def mean_health_before(cum: np.ndarray, acct: np.ndarray, seconds: np.ndarray, window: int) -> np.ndarray:
    """Mean health over the `window` days before the day holding `seconds` (day 0 when there are none)."""
    upper = np.clip(np.asarray(seconds) // DAY, 1, len(cum) - 1)
    lower = np.clip(upper - window, 0, upper - 1)
    return (cum[upper, acct] - cum[lower, acct]) / (upper - lower)
