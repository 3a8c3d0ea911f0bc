"""The holdout experiment on playbooks: which accounts a playbook acts on (treatment) and which it holds back.

At every scoring, each account whose tier a playbook rule matches gets an arm for that playbook (its rule's id,
`PlaybookRule.playbook`): a hash of the salt, the experiment's start date, the playbook and the account id is read as
a number in [0, 1), and the account is held back when that number is below `holdout_share`. So the assignment is:

- deterministic: the same account, playbook, start and salt always give the same arm, in any process or engine;
- sticky: while an account keeps its playbook from one scoring to the next, its arm stays the same, with no state
  to keep (the hash does not see the as-of). An account that moves to another playbook gets that playbook's draw,
  and one that comes back to a playbook gets its old arm again;
- random with respect to risk: the hash reads nothing about the account but its id, so within a playbook the
  holdout is a random sample of its accounts, whatever their probability, tier or MRR.

A held-back account keeps its score, tier and reasons, but its recommended_action, owner_role, urgency and due_by
are empty: `arm = holdout` says why. Changing the salt or the start date starts a new experiment (every arm drawn
afresh); scorings of as-ofs before the start assign no arms.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime

import numpy as np
import pandas as pd

from serving.config import ExperimentConfig

TREATMENT, HOLDOUT = "treatment", "holdout"
ARMS = (TREATMENT, HOLDOUT)
ASSIGNMENT_COLUMNS = ["account_id", "as_of", "playbook", "arm", "assigned_at"]
# What a held-back account does not get.
ACTION_COLUMNS = ("recommended_action", "owner_role", "urgency", "due_by")
# Between the parts of the hashed text: a character no id, salt or date holds in practice, so "a|b" + "c" and
# "a" + "b|c" cannot give the same text.
_SEPARATOR = "\x1f"


def assignment_draws(account_ids, playbooks, start: date, salt: str) -> np.ndarray:
    """Return each (account, playbook)'s uniform draw in [0, 1); NaN where the playbook is missing.

    The draw is the first 8 bytes of SHA-256 over salt, start (ISO date), playbook and account id, joined by the
    unit separator U+001F and encoded as UTF-8, read as a big-endian unsigned integer and divided by 2**64.
    """
    draws = np.full(len(account_ids), np.nan)
    for i, (account, playbook) in enumerate(zip(account_ids, playbooks, strict=True)):
        if playbook is None or (isinstance(playbook, float) and np.isnan(playbook)):
            continue
        text = _SEPARATOR.join((salt, start.isoformat(), str(playbook), str(account)))
        digest = hashlib.sha256(text.encode("utf-8")).digest()
        draws[i] = int.from_bytes(digest[:8], "big") / 2.0**64
    return draws


def assign_arms(account_ids, playbooks, as_ofs, config: ExperimentConfig) -> np.ndarray:
    """Return each account's arm, `treatment` or `holdout`, or None (no playbook, experiments off, or an as-of
    before the experiment's start).

    Args:
        account_ids: the accounts, as text.
        playbooks: each account's playbook id (None where no rule matched its tier).
        as_ofs: each account's as-of date.
    """
    arms = np.full(len(account_ids), None, dtype=object)
    if not config.enabled:
        return arms
    started = np.array([_day(d) >= config.start for d in as_ofs], dtype=bool)
    chosen = np.array([p is not None for p in playbooks], dtype=bool) & started
    draws = assignment_draws(np.asarray(account_ids, dtype=object)[chosen],
                             np.asarray(playbooks, dtype=object)[chosen], config.start, config.salt)
    arms[chosen] = np.where(draws < config.holdout_share, HOLDOUT, TREATMENT)
    return arms


def hold_out_actions(actions: pd.DataFrame, arms: np.ndarray) -> pd.DataFrame:
    """The actions (recommend_actions' frame) with ACTION_COLUMNS emptied on held-back rows; the playbook stays."""
    held = np.asarray(arms, dtype=object) == HOLDOUT
    actions = actions.copy()
    for column in ACTION_COLUMNS:
        actions[column] = actions[column].astype(object).where(~held, None)
    return actions


def assignment_rows(scores: pd.DataFrame, assigned_at: datetime) -> pd.DataFrame:
    """The churn_playbook_assignments rows of scored accounts: one per account with an arm (ASSIGNMENT_COLUMNS)."""
    assigned = scores[scores["arm"].notna()]
    return pd.DataFrame({"account_id": assigned["account_id"].astype(str).to_numpy(),
                         "as_of": assigned["as_of"].to_numpy(), "playbook": assigned["playbook"].to_numpy(),
                         "arm": assigned["arm"].to_numpy(), "assigned_at": pd.Timestamp(assigned_at)},
                        columns=ASSIGNMENT_COLUMNS)


def _day(value) -> date:
    return pd.Timestamp(value).date()
