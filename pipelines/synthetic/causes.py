"""Churn causes: the latent processes that each move their own signals and raise the churn hazard, so a churn has a
true reason that a model's explanation can be checked against (`CAUSE_GROUPS` in `config` names them).

- `onboarding` (per account): a share of accounts stall; their first value comes late or never (`value_at`),
  their milestones come later or not at all, they record no deal outcome before first value and win fewer after it
  (`activity`); the hazard is raised while they are young.
- `champion_loss` (episodes of 3-7 months): the account's most active admin (its most active user when no admin is
  left) leaves at the onset, the others' use falls steadily (`activity_offsets`, read by `activity`); the hazard is
  raised during the episode.
- `support_pain` (episodes of 3-8 weeks): many urgent, slow, badly rated tickets (`support.draw_episode_tickets`);
  the hazard reads the recent ones.
- `unhappy_voice` (episodes of 2-5 months): detractor NPS answers, low CSAT and CES, negative comments (`support`);
  the hazard reads the recent answers.
- `price_shock` (at a renewal): a price increase answered with fewer seats, the only contractions there are
  (`contracts`); the hazard is raised at the renewals of the year after.

How each raises the hazard is in `hazard`.

Each cause draws from its own random stream, and its rate multiplier (`SimulationConfig.causes`) scales how often
it strikes (0 switches it off without touching any other stream). Episodes are drawn over each account's whole
timeline, dead time included, like the candidate tickets; the tables keep only what happened while it was alive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.synthetic.clock import DAY, OPEN, Clock
from pipelines.synthetic.company import Company
from pipelines.synthetic.config import CAUSE_GROUPS, CAUSES
from pipelines.synthetic.draws import working_seconds
from pipelines.synthetic.frames import take


@dataclass(frozen=True)
class EpisodeSpec:
    """How often an episodic cause strikes and how long an episode lasts."""

    per_year: float  # episodes per account and year at rate multiplier 1
    days: tuple[float, float]  # episode length in days, uniform in this range


CHAMPION_LOSS = EpisodeSpec(per_year=0.3, days=(90.0, 200.0))
SUPPORT_PAIN = EpisodeSpec(per_year=0.3, days=(21.0, 56.0))
UNHAPPY_VOICE = EpisodeSpec(per_year=0.22, days=(60.0, 150.0))

_STALL_SHARE = 0.2  # share of accounts whose onboarding stalls, at rate multiplier 1
_STALL_NEVER = 0.35  # share of the stalled accounts that never reach first value
_STALL_DAYS = 45.0  # median days to first value of the others
STALL_SPREAD = 0.5  # sd of the log days to first value of the others
SEVERITY = (0.75, 1.25)  # an episode's severity is uniform in this range
_CHAMPION_FALL_DAYS = 25.0  # during a champion loss the others' daily activity logit falls by 1 every this many days


@dataclass(frozen=True)
class Episodes:
    """The episodes of one cause, sorted by account and start: [start, end) in seconds and a severity."""

    acct: np.ndarray
    start: np.ndarray
    end: np.ndarray
    severity: np.ndarray  # scales how strongly the episode shows in the tables, around 1

    def covering(self, acct: np.ndarray, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per (account, time): the pairs (query row, episode) of the episodes covering the time."""
        first = np.searchsorted(self.acct, acct, "left")
        count = np.searchsorted(self.acct, acct, "right") - first
        query = np.repeat(np.arange(len(acct)), count)
        episode = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count) + np.repeat(first, count)
        inside = (self.start[episode] <= seconds[query]) & (seconds[query] < self.end[episode])
        return query[inside], episode[inside]

    def strongest(self, acct: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """Per (account, time): the largest severity of the episodes covering it (0 where none does)."""
        query, episode = self.covering(acct, seconds)
        return _largest(query, self.severity[episode], len(acct))

    def progress(self, acct: np.ndarray, seconds: np.ndarray, ramp_days: float) -> np.ndarray:
        """Per (account, time): how far the most advanced episode covering it is into its first `ramp_days`, from
        0 at the onset to 1 (0 where none covers it)."""
        query, episode = self.covering(acct, seconds)
        return _largest(query, np.minimum(1.0, (seconds[query] - self.start[episode]) / (ramp_days * DAY)), len(acct))


def _largest(query: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n)
    np.maximum.at(out, query, values)
    return out


def draw_episodes(rng: np.random.Generator, acc: pd.DataFrame, clock: Clock, spec: EpisodeSpec,
                  rate: float) -> Episodes:
    """Episodes starting at random (a Poisson process per account) from the account's creation, or from one
    longest episode before the history when it is older, so that some are under way when the history starts."""
    lo = np.maximum(acc["created"].to_numpy(), -int(spec.days[1] * DAY))
    span = np.maximum(clock.end - lo, 0)
    count = rng.poisson(rate * spec.per_year * span / (365 * DAY))
    acct = np.repeat(np.arange(len(acc)), count)
    start = lo[acct] + np.floor(rng.random(len(acct)) * span[acct]).astype(np.int64)
    start = start // DAY * DAY + working_seconds(rng, len(acct))
    end = start + np.round(rng.uniform(*spec.days, len(acct)) * DAY).astype(np.int64)
    severity = rng.uniform(*SEVERITY, len(acct))
    order = np.lexsort((start, acct))
    return Episodes(acct=acct[order], start=start[order], end=end[order], severity=severity[order])


def draw_onboarding(rng: np.random.Generator, acc: pd.DataFrame, rate: float) -> dict[str, np.ndarray]:
    """Per account: whether its onboarding stalls and when its first value becomes possible (`value_at`: the
    sign-up for the others, `OPEN` for the stalled accounts that never get there)."""
    n, created = len(acc), acc["created"].to_numpy()
    stalled = rng.random(n) < min(1.0, _STALL_SHARE * rate)
    never = rng.random(n) < _STALL_NEVER
    delay = np.round(rng.lognormal(np.log(_STALL_DAYS), STALL_SPREAD, n) * DAY).astype(np.int64)
    value_at = np.where(stalled, np.where(never, OPEN, created + delay), created)
    return {"stalled": stalled, "value_at": value_at}


def activity_offsets(champions: Episodes, n_accounts: int, clock: Clock) -> np.ndarray:
    """What champion losses add to the users' daily activity logit, shape (days, accounts): falling steadily
    through an episode (by severity every `_CHAMPION_FALL_DAYS`), back to 0 when it ends."""
    first = np.clip(champions.start // DAY, 0, clock.days)
    last = np.clip((champions.end - 1) // DAY + 1, 0, clock.days)
    length = np.maximum(last - first, 0)
    episode = np.repeat(np.arange(len(first)), length)
    day = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length) + first[episode]
    since = np.maximum(day * DAY - champions.start[episode], 0) / DAY
    drop = champions.severity[episode] * since / _CHAMPION_FALL_DAYS
    offsets = np.zeros(clock.days * n_accounts, dtype=np.float32)
    np.subtract.at(offsets, day * n_accounts + champions.acct[episode], drop.astype(np.float32))
    return offsets.reshape(clock.days, n_accounts)


@dataclass(frozen=True)
class Shocks:
    """The price shocks that happened: account, renewal time and the end of the window they weigh on."""

    acct: np.ndarray
    at: np.ndarray
    until: np.ndarray


def causes_frame(company: Company, episodes: dict[str, Episodes], shocks: Shocks) -> pd.DataFrame:
    """The `sim_causes` table: every episode that overlaps a time inside the history when the account was alive,
    one row each (account_id, cause, group, started_at, ended_at; ended_at is empty when the episode was still
    under way at the history's end, or for a stalled onboarding that never reached first value)."""
    acc, clock = company.acc, company.clock
    stalled = np.flatnonzero(acc["stalled"].to_numpy())
    parts = [("onboarding", stalled, acc["created"].to_numpy()[stalled], acc["value_at"].to_numpy()[stalled])]
    parts += [(name, e.acct, e.start, e.end) for name, e in episodes.items()]
    parts.append(("price_shock", shocks.acct, shocks.at, shocks.until))
    code = np.concatenate([np.full(len(p[1]), CAUSES.index(p[0])) for p in parts])
    acct, start, end = (np.concatenate([p[i] for p in parts]).astype(np.int64) for i in (1, 2, 3))
    keep = company.overlaps(acct, np.maximum(start, 0), np.minimum(end, clock.end))
    order = np.lexsort((code[keep], start[keep], acct[keep]))
    acct, code, start, end = acct[keep][order], code[keep][order], start[keep][order], end[keep][order]
    return pd.DataFrame({
        "account_id": take(company.ids, acct),
        "cause": take(CAUSES, code),
        "group": take(tuple(CAUSE_GROUPS[name] for name in CAUSES), code),
        "started_at": clock.timestamps(start),
        "ended_at": clock.timestamps(np.where(end < clock.end, end, OPEN)),
    })
