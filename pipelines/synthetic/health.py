"""Health and causes: each account's latent traits (mean health, time to value, a hidden frailty, its number of
users), its latent daily health (an AR(1) drift with occasional decaying negative shocks, plus an onboarding dip
that is deeper when time to value is slow), and the true churn hazard at a renewal. The hazard reads recent
health, time to value, open tickets, recent NPS answers and a recent price increase, so this module also keeps
the candidate tickets and NPS answers (switched off while an account is dead) and their lookups. To change what
drives churn, start at `churn_hazards`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.synthetic.clock import DAY, OPEN, Clock, account_start_keys, time_keys
from pipelines.synthetic.draws import sigmoid

_HEALTH_PHI, _HEALTH_SD = 0.985, 0.5  # daily AR(1) coefficient and stationary spread
_SHOCK_PHI, _SHOCK_RATE = 0.97, 1 / 365  # shock decay per day, shocks per account-day
_HEALTH_SHIFT = np.array([-0.1, 0.05, 0.2])  # mean health by segment

_HAZARD_BASE = {1: -3.7, 12: -1.7}  # logit at a monthly / annual renewal, all else average
_HAZARD_SEGMENT = np.array([0.15, 0.0, -0.3])
_HIKE_WINDOW_DAYS = {1: 100, 12: 400}  # a price increase weighs on the renewals this soon after it


# --- latent traits and daily health ------------------------------------------------------------------------


def draw_latents(rng: np.random.Generator, seg: np.ndarray, seats: np.ndarray) -> dict[str, np.ndarray]:
    """Per account: mean health, time to value (standardised and as a factor), frailty and number of users."""
    n = len(seg)
    z_ttv = rng.normal(0.0, 1.0, n)  # standardised log time to value: > 0 is slow onboarding
    return {
        "mu": rng.normal(_HEALTH_SHIFT[seg], 0.55),
        "z_ttv": z_ttv,
        "ttv": np.exp(0.5 * z_ttv),
        "frailty": rng.normal(0.0, 0.4, n),  # churn propensity that no table shows
        "n_users": np.maximum(1, np.round(seats * rng.uniform(0.4, 0.9, n))).astype(np.int64),
    }


def simulate_health(rng: np.random.Generator, acc: pd.DataFrame, clock: Clock) -> np.ndarray:
    """Latent daily health, shape (days, accounts): AR(1) drift, decaying negative shocks, onboarding dip."""
    n, days = len(acc), clock.days
    innovations = rng.normal(0.0, _HEALTH_SD * np.sqrt(1 - _HEALTH_PHI**2), (days, n))
    shocks = np.zeros((days, n))
    hit = rng.random((days, n)) < _SHOCK_RATE
    shocks[hit] = -rng.uniform(0.8, 2.0, int(hit.sum()))
    drift, dent = rng.normal(0.0, _HEALTH_SD, n), np.zeros(n)
    health = np.empty((days, n), dtype=np.float32)
    for day in range(days):  # a loop over days of vector operations over accounts
        drift = _HEALTH_PHI * drift + innovations[day]
        dent = _SHOCK_PHI * dent + shocks[day]
        health[day] = drift + dent
    age = np.arange(days)[:, None] - acc["created"].to_numpy()[None, :] / DAY
    dip = -0.4 * acc["z_ttv"].to_numpy() * np.exp(-np.clip(age, 0, None) / 120)
    return health + (acc["mu"].to_numpy() + dip).astype(np.float32)


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


# --- the tickets and NPS answers a hazard reads ------------------------------------------------------------


@dataclass
class Lookups:
    """Sorted (account, time) keys of the tickets and NPS answers a renewal's hazard reads."""

    opened: np.ndarray
    resolved: np.ndarray
    nps_keys: np.ndarray
    nps_cumsum: np.ndarray


def _build_lookups(tickets: pd.DataFrame, nps: pd.DataFrame) -> Lookups:
    opened = np.sort(time_keys(tickets["acct"].to_numpy(), tickets["created"].to_numpy()))
    done = tickets[tickets["resolved"] != OPEN]
    resolved = np.sort(time_keys(done["acct"].to_numpy(), done["resolved"].to_numpy()))
    nps_keys = time_keys(nps["acct"].to_numpy(), nps["responded"].to_numpy())
    order = np.argsort(nps_keys, kind="stable")
    nps_cumsum = np.concatenate([[0.0], np.cumsum(nps["score"].to_numpy()[order])])
    return Lookups(opened=opened, resolved=resolved, nps_keys=nps_keys[order], nps_cumsum=nps_cumsum)


def _open_tickets(look: Lookups, acct: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Tickets opened before `seconds` and not resolved by then (a ticket never closes before it opens)."""
    base, at = account_start_keys(acct), time_keys(acct, seconds)
    opened = np.searchsorted(look.opened, at, "left") - np.searchsorted(look.opened, base, "left")
    closed = np.searchsorted(look.resolved, at, "right") - np.searchsorted(look.resolved, base, "left")
    return opened - closed


def _recent_nps(look: Lookups, acct: np.ndarray, seconds: np.ndarray, days: int) -> tuple[np.ndarray, ...]:
    """Mean NPS answered in the `days` before `seconds` (0 where none), and whether there was any."""
    hi = np.searchsorted(look.nps_keys, time_keys(acct, seconds), "left")
    lo = np.searchsorted(look.nps_keys, time_keys(acct, seconds - days * DAY), "right")
    count = hi - lo
    mean = (look.nps_cumsum[hi] - look.nps_cumsum[lo]) / np.maximum(count, 1)
    return np.where(count > 0, mean, 0.0), count > 0


@dataclass
class Candidates:
    """Tickets and NPS answers drawn over the whole history; those in dead time get switched off."""

    tickets: pd.DataFrame
    nps: pd.DataFrame
    live_tickets: np.ndarray = field(init=False)
    live_nps: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.live_tickets = np.ones(len(self.tickets), dtype=bool)
        self.live_nps = np.ones(len(self.nps), dtype=bool)

    def kill(self, dead_lo: np.ndarray, dead_hi: np.ndarray) -> None:
        """Switch off what each account produced in [dead_lo, dead_hi) (per-account arrays)."""
        for frame, live, column in ((self.tickets, self.live_tickets, "created"),
                                    (self.nps, self.live_nps, "responded")):
            acct, seconds = frame["acct"].to_numpy(), frame[column].to_numpy()
            live &= ~((seconds >= dead_lo[acct]) & (seconds < dead_hi[acct]))

    def lookups(self) -> Lookups:
        return _build_lookups(self.tickets[self.live_tickets], self.nps[self.live_nps])


# --- the hazard --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Renewals:
    """The renewals a churn hazard is drawn for, one entry each."""

    acct: np.ndarray
    at: np.ndarray  # seconds since the origin
    bp: np.ndarray  # billing period in months: 1 or 12
    hike_at: np.ndarray  # when the lifecycle's price increase came (`OPEN` = none)


def churn_hazards(
    rng: np.random.Generator, acc: pd.DataFrame, cum: np.ndarray, look: Lookups, due: Renewals
) -> np.ndarray:
    """True churn probability at each renewal of `due`.

    Args:
        rng: the contracts stream; one normal draw per renewal is the part of the hazard no table shows.
        acc: the accounts (segment, z_ttv, frailty).
        cum: running sums of daily health (`cumulate_health`).
        look: the live tickets and NPS answers at this lifecycle pass.
        due: the renewals.
    """
    window = np.where(due.bp == 12, _HIKE_WINDOW_DAYS[12], _HIKE_WINDOW_DAYS[1]) * DAY
    hiked = (due.hike_at != OPEN) & (due.at > due.hike_at) & (due.at - due.hike_at <= window)
    nps, answered = _recent_nps(look, due.acct, due.at, 120)
    logit = (
        np.where(due.bp == 12, _HAZARD_BASE[12], _HAZARD_BASE[1])
        + _HAZARD_SEGMENT[acc["segment"].to_numpy()[due.acct]]
        - 1.1 * mean_health_before(cum, due.acct, due.at, 30)
        + 0.35 * acc["z_ttv"].to_numpy()[due.acct]
        + 0.3 * np.minimum(_open_tickets(look, due.acct, due.at), 4)
        - 0.2 * (nps - 7.0) * answered
        + 1.0 * hiked
        + acc["frailty"].to_numpy()[due.acct]
        + rng.normal(0.0, 0.5, len(due.acct))  # irreducible: no table shows it
    )
    return sigmoid(logit)
