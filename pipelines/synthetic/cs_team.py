"""The simulated CS team: at every month start it flags the accounts whose trouble shows, holds a random share of
them back, runs a playbook on the rest and logs both in `cs_actions`; each playbook has a true effect on the churn
hazard, so `churn outcomes`' estimates can be checked against known effects.

The rule is the simple one a CS team without a model runs, one playbook per kind of trouble, checked in this order:

| playbook | flagged when, at the month start | owner |
| --- | --- | --- |
| onboarding_review | a stalled onboarding: first value not reached 30-180 days after sign-up | Onboarding specialist |
| adoption_workshop | use falling: a champion loss two weeks under way, or very low health over 30 days | CSM |
| ticket_escalation | two or more tickets of a support-pain episode in the last 30 days | Support lead |
| recovery_plan_call | half or more of the last 180 days' NPS answers unhappy, one in the last 60 days | CSM |
| commercial_review | health of the last 30 days low (a discount call) | Account executive |

(Health is the latent daily health the activity, tickets and answers all follow: mean below `_LOW_HEALTH[0]` is
very low, below `_LOW_HEALTH[1]` low.)

An account is flagged at most once per playbook (its arm is the one experiment it is in for that playbook), and not
while the effect window of an earlier flag is still open, so no two playbooks weigh on the same renewal. A flagged
account is held back with probability `holdout_share`; the others get the playbook done within two weeks. A treated
account's churn probability at each renewal in the `effect_days` after its flag, in the lifecycle it was in then,
is multiplied by 1 + the playbook's effect (`hazard_factors`); `sim_truth.playbook_factor` records it.

The flags are drawn before the contracts, on the cause processes and latent health (which exist whether or not the
account is alive); `cs_actions` keeps the flags of accounts alive at the month start, like every other table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.synthetic.causes import Episodes
from pipelines.synthetic.clock import DAY, Clock, add_months, time_keys
from pipelines.synthetic.company import Company
from pipelines.synthetic.config import CsTeamConfig
from pipelines.synthetic.draws import working_seconds
from pipelines.synthetic.frames import take
from pipelines.synthetic.hazard import Lookups, count_before, unhappy_share
from pipelines.synthetic.health import mean_health_before

PLAYBOOKS = ("onboarding_review", "adoption_workshop", "ticket_escalation", "recovery_plan_call", "commercial_review")
_ACTIONS = {
    "onboarding_review": ("Onboarding review: walk the team to first value", "Onboarding specialist"),
    "adoption_workshop": ("Adoption workshop with the remaining users", "CSM"),
    "ticket_escalation": ("Escalated the open tickets to engineering", "Support lead"),
    "recovery_plan_call": ("Recovery plan call on the survey feedback", "CSM"),
    "commercial_review": ("Commercial review: discount offered at renewal", "Account executive"),
}
_ONBOARDING_DAYS = (30, 180)  # a stalled onboarding is flagged this many days after sign-up
_CHAMPION_SHOWS = 0.3  # a champion loss is flagged this far into its 45-day ramp (two weeks)
_SUPPORT_DAYS, _SUPPORT_TICKETS = 30, 2
_VOICE_SHARE, _VOICE_RECENT_DAYS = 0.5, 60
_LOW_HEALTH = (-0.8, -0.4)  # mean latent health of the last 30 days below these: very low, low
FLAG_HEALTH_DAYS = 30  # health is read as its mean over this many days before the month start
_DONE_WITHIN_DAYS = 14  # a treated account's playbook is done within this many days of the flag


@dataclass(frozen=True)
class Flags:
    """The CS team's flags, sorted by account and time: when, which playbook (index into `PLAYBOOKS`), whether held
    back, and when the playbook was done (the flag's time for a held-back account)."""

    acct: np.ndarray
    at: np.ndarray
    playbook: np.ndarray
    holdout: np.ndarray
    done_at: np.ndarray
    effect_days: int
    factor: np.ndarray  # per playbook: 1 + its effect on the churn probability

    def hazard_factors(self, acct: np.ndarray, at: np.ndarray, life_start: np.ndarray) -> np.ndarray:
        """Per renewal (account, time, start of its lifecycle): the factor on its churn probability, 1 + the effect
        of the account's latest treated flag before it when the renewal falls in that flag's effect window and the
        flag came in the same lifecycle; 1 elsewhere."""
        treated = ~self.holdout
        keys = time_keys(self.acct[treated], self.at[treated])
        pos = np.searchsorted(keys, time_keys(acct, at), side="left") - 1
        safe = np.clip(pos, 0, max(len(keys) - 1, 0))
        if not len(keys):
            return np.ones(len(acct))
        flag_acct, flag_at = self.acct[treated][safe], self.at[treated][safe]
        inside = ((pos >= 0) & (flag_acct == acct) & (at <= flag_at + self.effect_days * DAY)
                  & (life_start <= flag_at))
        return np.where(inside, self.factor[self.playbook[treated][safe]], 1.0)


def draw_flags(rng: np.random.Generator, acc: pd.DataFrame, cum: np.ndarray, look: Lookups, champions: Episodes,
               clock: Clock, config: CsTeamConfig) -> Flags:
    """The CS team's flags at every month start of the history (see the module's docstring for the rule).

    Args:
        rng: the cs_team stream.
        acc: the accounts (created, stalled, value_at).
        cum: running sums of daily health (`health.cumulate_health`).
        look: the episode tickets and NPS answers as drawn (before any is switched off in dead time).
        champions: the champion-loss episodes.
        config: holdout share, effect window and each playbook's effect.
    """
    n = len(acc)
    acct_all = np.arange(n)
    created = acc["created"].to_numpy()
    months = month_starts(clock)
    used = np.zeros((n, len(PLAYBOOKS)), dtype=bool)   # an account is flagged once per playbook
    free_from = np.full(n, np.iinfo(np.int64).min)     # and not inside an earlier flag's effect window
    parts = []
    for t in months:   # a loop over month starts of vector operations over accounts
        now = np.full(n, t)
        tenure = (now - created) / DAY
        health = mean_health_before(cum, acct_all, now, FLAG_HEALTH_DAYS)
        signals = flag_signals(acc, look, champions, health, acct_all, now)
        signals &= ~used & (tenure >= 0)[:, None] & (free_from <= t)[:, None]
        flagged = np.flatnonzero(signals.any(axis=1))
        playbook = signals[flagged].argmax(axis=1)   # the first matching playbook in `PLAYBOOKS` order
        used[flagged, playbook] = True
        free_from[flagged] = t + config.effect_days * DAY
        parts.append((flagged, np.full(len(flagged), t), playbook))
    acct, at, playbook = (np.concatenate([p[i] for p in parts]) if parts else np.array([], dtype=np.int64)
                          for i in range(3))
    holdout = rng.random(len(acct)) < config.holdout_share
    delay = np.floor(rng.uniform(0, _DONE_WITHIN_DAYS, len(acct))).astype(np.int64) * DAY
    done_at = np.where(holdout, at, at + delay + working_seconds(rng, len(acct)))
    order = np.lexsort((at, acct))
    factor = np.array([1.0 + config.effects[name] for name in PLAYBOOKS])
    return Flags(acct=acct[order], at=at[order], playbook=playbook[order].astype(np.int64), holdout=holdout[order],
                 done_at=done_at[order], effect_days=config.effect_days, factor=factor)


def month_starts(clock: Clock) -> np.ndarray:
    """The month starts inside the history after its first day: when the CS team looks (seconds)."""
    months = add_months(clock, np.zeros(1, dtype=np.int64), np.arange(1, clock.end // (28 * DAY) + 1))
    return months[months < clock.end]


def flag_signals(acc: pd.DataFrame, look: Lookups, champions: Episodes, health: np.ndarray, acct: np.ndarray,
                 now: np.ndarray) -> np.ndarray:
    """Which playbooks' trouble shows for each (account, time), shape (rows, playbooks) in `PLAYBOOKS` order, before
    the once-per-playbook and open-window rules; `health` is each row's mean health of the `FLAG_HEALTH_DAYS`
    before."""
    created, value_at, stalled = (acc[c].to_numpy()[acct] for c in ("created", "value_at", "stalled"))
    tenure = (now - created) / DAY
    return np.column_stack([
        stalled & (value_at > now) & (tenure >= _ONBOARDING_DAYS[0]) & (tenure <= _ONBOARDING_DAYS[1]),
        (champions.progress(acct, now, 45) >= _CHAMPION_SHOWS) | (health < _LOW_HEALTH[0]),
        count_before(look.support, acct, now, _SUPPORT_DAYS) >= _SUPPORT_TICKETS,
        (unhappy_share(look, acct, now) >= _VOICE_SHARE)
        & (count_before(look.unhappy, acct, now, _VOICE_RECENT_DAYS) >= 1),
        health < _LOW_HEALTH[1],
    ])


def actions_frame(flags: Flags, company: Company) -> pd.DataFrame:
    """The `cs_actions` table: one row per flag of an account alive at the flag: the playbook done (arm
    `treatment`, with its action and owner) or the record of holding it back (arm `holdout`, no action), by time."""
    alive = company.alive(flags.acct, flags.at)
    acct, playbook, holdout = flags.acct[alive], flags.playbook[alive], flags.holdout[alive]
    done_at = flags.done_at[alive]
    order = np.lexsort((acct, done_at))
    acct, playbook, holdout, done_at = acct[order], playbook[order], holdout[order], done_at[order]
    action = take(tuple(_ACTIONS[name][0] for name in PLAYBOOKS), playbook)
    owner = take(tuple(_ACTIONS[name][1] for name in PLAYBOOKS), playbook)
    return pd.DataFrame({
        "account_id": take(company.ids, acct),
        "done_at": company.clock.timestamps(done_at),
        "playbook": take(PLAYBOOKS, playbook),
        "action": action.where(~holdout, None),
        "owner": owner.where(~holdout, None),
        "arm": pd.Series(np.where(holdout, "holdout", "treatment"), dtype="str"),
    })


def playbooks_frame(config: CsTeamConfig) -> pd.DataFrame:
    """The `sim_playbooks` table: each playbook's true relative effect on the churn probability at the renewals of
    its effect window, the window, and the holdout share."""
    return pd.DataFrame({
        "playbook": list(PLAYBOOKS),
        "hazard_effect": [float(config.effects[name]) for name in PLAYBOOKS],
        "effect_days": config.effect_days,
        "holdout_share": config.holdout_share,
    })
