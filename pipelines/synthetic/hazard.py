"""The true churn hazard at a renewal: a no-cause baseline (billing period, segment, recent latent health, a hidden
frailty and a per-renewal draw no table shows) plus one term per churn cause, each added to the logit and 0 when
the cause is not at work. The terms are what `sim_truth` records per cause; the largest one, when it exceeds
`CAUSE_MARGIN`, is the renewal's true cause.

An account decides about a renewal a notice period before it (`_NOTICE_DAYS`), on the causes as they stood then,
and each term follows a signal the tables show over the windows a CS team reads them in: the champion-loss term
grows with the usage drop, the support term counts the episode's tickets of the last 90 days, the voice term is
the share of unhappy answers among the last 180 days' NPS answers, the price-shock term lasts the year after the
contraction, the onboarding term fades with tenure. The support and voice terms read the episode tickets and
answers still live at the lifecycle pass (`Candidates`, switched off while an account is dead). To change what
drives churn, start at `churn_hazards`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.synthetic.causes import Episodes
from pipelines.synthetic.clock import DAY, OPEN, time_keys
from pipelines.synthetic.config import CAUSES
from pipelines.synthetic.draws import sigmoid
from pipelines.synthetic.health import mean_health_before

CAUSE_MARGIN = 0.5  # a renewal's true cause is its largest cause term if above this many logits, else "none"

_HAZARD_SEGMENT = np.array([0.15, 0.0, -0.3])
_HEALTH_WEIGHT = 0.3  # logit per unit of mean latent health over the HEALTH_DAYS before the decision (lowers it)
HEALTH_DAYS = 30
_NOISE_SD = 0.15  # the per-renewal part of the hazard no table shows

_NOTICE_DAYS = 45  # a renewal is decided this many days before it, on the causes as they stood then
_TERM = {"onboarding": 1.9, "champion_loss": 2.2, "support_pain": 2.2, "unhappy_voice": 1.7, "price_shock": 1.3}
# ^ each cause's term at full strength, in logits, when at work:
_ONBOARDING_DAYS = 180  # onboarding: stalled, x exp(-tenure / this) (x 0.5 once first value came)
_CHAMPION_RAMP_DAYS = 45  # champion loss: during the episode, fully once it lasted this long (the drop shows)
_SUPPORT_DAYS, _SUPPORT_TICKETS = 90, 4  # support pain: fully with this many episode tickets in these days
_VOICE_DAYS = 180  # unhappy voice: x the share of unhappy answers among the NPS answers of these days
SHOCK_WINDOW_DAYS = {1: 365, 12: 400}  # price shock: on the renewals decided this soon after it (monthly / annual)


# --- the episode tickets and answers a hazard reads ----------------------------------------------------------


@dataclass
class Lookups:
    """Sorted (account, time) keys of the live episode tickets (support pain), NPS answers and unhappy NPS answers
    (voice)."""

    support: np.ndarray
    nps: np.ndarray
    unhappy: np.ndarray


def unhappy_share(look: Lookups, acct: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """The share of unhappy answers among the NPS answers of the `_VOICE_DAYS` before `seconds` (0 when none)."""
    unhappy = count_before(look.unhappy, acct, seconds, _VOICE_DAYS)
    return unhappy / np.maximum(count_before(look.nps, acct, seconds, _VOICE_DAYS), 1)


def count_before(keys: np.ndarray, acct: np.ndarray, seconds: np.ndarray, days: int) -> np.ndarray:
    """Keys of each account in [seconds - days, seconds)."""
    hi = np.searchsorted(keys, time_keys(acct, seconds), "left")
    return hi - np.searchsorted(keys, time_keys(acct, seconds - days * DAY), "left")


@dataclass
class Candidates:
    """Tickets and NPS answers drawn over the whole history (`episode` / `voice` flag those of a cause); those in
    dead time get switched off."""

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
        support = self.tickets[self.live_tickets & self.tickets["episode"].to_numpy()]
        nps = self.nps[self.live_nps]
        keys = time_keys(nps["acct"].to_numpy(), nps["responded"].to_numpy())
        return Lookups(support=np.sort(time_keys(support["acct"].to_numpy(), support["created"].to_numpy())),
                       nps=np.sort(keys), unhappy=np.sort(keys[nps["voice"].to_numpy()]))


# --- the hazard --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Renewals:
    """The renewals a churn hazard is drawn for, one entry each."""

    acct: np.ndarray
    at: np.ndarray  # seconds since the origin
    bp: np.ndarray  # billing period in months: 1 or 12
    shock_at: np.ndarray  # when the lifecycle's price shock came (`OPEN` = none)


def churn_hazards(rng: np.random.Generator, acc: pd.DataFrame, cum: np.ndarray, look: Lookups,
                  champions: Episodes, due: Renewals, base: Mapping[int, float]) -> tuple[np.ndarray, np.ndarray]:
    """True churn probability at each renewal of `due`, and each cause's term in its logit.

    Args:
        rng: the contracts stream; one normal draw per renewal is the part of the hazard no table shows.
        acc: the accounts (segment, frailty, created, stalled, value_at).
        cum: running sums of daily health (`cumulate_health`).
        look: the live episode tickets and NPS answers at this lifecycle pass.
        champions: the champion-loss episodes.
        due: the renewals.
        base: the logit at a monthly (1) and an annual (12) renewal without a cause, all else average (the
            profile's: -4.0 and -2.2 in the demo).

    Returns:
        The hazards, and the cause terms, shape (renewals, causes) in `CAUSES` order.
    """
    terms = cause_terms(acc, look, champions, due)
    logit = (
        np.where(due.bp == 12, base[12], base[1])
        + _HAZARD_SEGMENT[acc["segment"].to_numpy()[due.acct]]
        - _HEALTH_WEIGHT * mean_health_before(cum, due.acct, due.at - _NOTICE_DAYS * DAY, HEALTH_DAYS)
        + acc["frailty"].to_numpy()[due.acct]
        + rng.normal(0.0, _NOISE_SD, len(due.acct))  # irreducible: no table shows it
        + terms.sum(axis=1)
    )
    return sigmoid(logit), terms


def cause_terms(acc: pd.DataFrame, look: Lookups, champions: Episodes, due: Renewals) -> np.ndarray:
    """Each cause's term in the hazard's logit at each renewal, shape (renewals, causes); 0 where it is idle."""
    # The account decides about a renewal a notice period before it: the causes weigh as they stood then.
    acct, at = due.acct, due.at - _NOTICE_DAYS * DAY
    tenure = np.maximum(at - acc["created"].to_numpy()[acct], 0) / DAY
    valued = at >= acc["value_at"].to_numpy()[acct]
    stalled = acc["stalled"].to_numpy()[acct] * np.where(valued, 0.5, 1.0) * np.exp(-tenure / _ONBOARDING_DAYS)
    window = np.where(due.bp == 12, SHOCK_WINDOW_DAYS[12], SHOCK_WINDOW_DAYS[1]) * DAY
    shocked = (due.shock_at != OPEN) & (at > due.shock_at) & (at - due.shock_at <= window)
    exposure = {
        "onboarding": stalled,
        "champion_loss": champions.progress(acct, at, _CHAMPION_RAMP_DAYS),
        "support_pain": np.minimum(1.0, count_before(look.support, acct, at, _SUPPORT_DAYS) / _SUPPORT_TICKETS),
        "unhappy_voice": unhappy_share(look, acct, at),
        "price_shock": shocked,
    }
    return np.column_stack([_TERM[name] * exposure[name] for name in CAUSES])


def true_cause(terms: np.ndarray) -> np.ndarray:
    """The cause whose term is largest at each renewal when it exceeds `CAUSE_MARGIN`, else "none"."""
    names = np.array([*CAUSES, "none"], dtype=object)
    strong = terms.max(axis=1, initial=0.0) > CAUSE_MARGIN
    return names[np.where(strong, terms.argmax(axis=1), len(CAUSES))]
