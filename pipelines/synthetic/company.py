"""The simulated company as the later tables read it, once its contracts are drawn: the accounts' traits, their
latent daily health and what champion losses do to their activity, the spans in which each account is alive
(trial or paying), the clock and the account ids. Users, events, milestones, finished tickets and survey answers
are drawn against it; `Company.alive` is the check that keeps only what happened while an account was alive, and
`Company.overlaps` the one that keeps the cause episodes an account lived through.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.synthetic.clock import Clock, time_keys
from pipelines.synthetic.profiles import Profile


@dataclass(frozen=True)
class Company:
    """Accounts, health, activity offsets, alive spans, clock, ids and profile: what every table drawn after the
    contracts reads."""

    acc: pd.DataFrame  # one row per account, in sign-up order: traits, commercial terms and latents
    health: np.ndarray  # latent daily health, shape (days, accounts)
    activity: np.ndarray  # what champion losses add to the users' daily activity logit, shape (days, accounts)
    spans: pd.DataFrame  # alive spans [lo, hi) (acct, lo, hi, life), sorted by account and start
    clock: Clock
    ids: pa.Array  # account ids by account index
    profile: Profile  # the company's scale, vocabulary and which tables it has

    def alive(self, acct: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """Whether each (account, time) falls in one of the account's alive spans [lo, hi)."""
        spans = self.spans
        starts = time_keys(spans["acct"].to_numpy(), spans["lo"].to_numpy())
        pos = np.searchsorted(starts, time_keys(acct, seconds), side="right") - 1
        safe = np.clip(pos, 0, len(spans) - 1)
        same = spans["acct"].to_numpy()[safe] == acct
        return (pos >= 0) & same & (seconds < spans["hi"].to_numpy()[safe])

    def overlaps(self, acct: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Whether each (account, [lo, hi)) shares time with one of the account's alive spans."""
        spans = self.spans
        starts = time_keys(spans["acct"].to_numpy(), spans["lo"].to_numpy())
        # the account's last span starting before hi; its spans are disjoint, so an earlier one ends earlier
        pos = np.searchsorted(starts, time_keys(acct, hi), side="left") - 1
        safe = np.clip(pos, 0, len(spans) - 1)
        same = spans["acct"].to_numpy()[safe] == acct
        return (pos >= 0) & same & (spans["hi"].to_numpy()[safe] > lo) & (hi > lo)
