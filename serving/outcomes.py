"""What really happened after each scoring: outcomes, the model's performance in the wild, and the churns missed.

Pure functions over frames; `pipelines/outcomes_run.py` reads the warehouse (scores, assignments, cs_actions, and the
labels of features/snapshots.py, the same code training learns from) and writes what these return. A scoring's
outcome is known once its horizon plus grace has passed by the data's end (`features.snapshots.is_matured`); until
then it is pending.

- `join_outcomes` → churn_outcomes: one row per account and matured as-of: the score, the arm and playbook it was
  assigned, whether an action was done (from cs_actions), whether it churned in the horizon, when, and the MRR lost.
- `compute_model_performance` → churn_model_performance: per matured scoring, the champion's ROC-AUC, PR-AUC,
  Brier, calibration by tier, lift and recall at capacity on what happened, beside its validation figures.
- `find_missed` → churn_missed: every known churn the scorings saw coming, or did not (`missed`: never in the top
  tier in the horizon before it), with the last tier, probability and reasons, and the lead time from the first flag.
- `estimate_effects` (serving/effects.py) → churn_playbook_effects, from churn_outcomes.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from features.config import LabelConfig
from serving.experiments import ARMS, HOLDOUT
from training.evaluate import evaluate_predictions

OUTCOME_COLUMNS = ["account_id", "as_of", "churn_probability", "risk_tier", "playbook", "arm", "arm_source",
                   "action_done", "churned", "churned_mrr", "churn_date", "mrr", "top_reasons", "model_name",
                   "model_version"]
PERFORMANCE_METRICS = ["roc_auc", "pr_auc", "brier", "ece", "top_decile_lift", "recall_at_capacity",
                       "precision_at_capacity", "mrr_captured_at_capacity"]
# The champion's figures on its validation window (logged by `churn train` as valid_<metric>) shown beside these.
VALIDATION_METRICS = ["roc_auc", "pr_auc", "brier", "top_decile_lift", "recall_at_capacity"]
PERFORMANCE_COLUMNS = ["as_of", "model_name", "model_version", "accounts", "churned", "churn_rate", "mean_probability",
                       *PERFORMANCE_METRICS, "capacity", "calibration_by_tier",
                       *[f"validation_{m}" for m in VALIDATION_METRICS], "roc_auc_change"]
MISSED_COLUMNS = ["account_id", "churn_date", "churned_mrr", "missed", "scorings", "last_as_of", "last_tier",
                  "last_probability", "top_reasons", "first_flagged_as_of", "lead_days"]
SCORING, CS_ACTIONS = "scoring", "cs_actions"   # where an arm came from (churn_outcomes.arm_source)


def known_from(as_of: date, label: LabelConfig) -> date:
    """The first data end at which the outcome of a scoring at `as_of` is known: horizon plus grace after it."""
    return as_of + timedelta(days=label.horizon_days + label.grace_days)


def split_matured(as_ofs, label: LabelConfig, data_end: datetime) -> tuple[list[date], list[tuple[date, date]]]:
    """(the as-ofs whose outcome is known at `data_end`, [(as-of, known from) for the pending ones]), by date."""
    from features.snapshots import is_matured

    days = sorted({_day(d) for d in as_ofs})
    matured = [d for d in days if is_matured(d, label, data_end)]
    return matured, [(d, known_from(d, label)) for d in days if d not in matured]


def place_on_grid(times, grid: list[date]) -> list[date | None]:
    """Each time's as-of on the grid: the newest grid date at or before its day (None before the first)."""
    ordered = np.array(sorted(grid), dtype="datetime64[D]")
    days = np.array([np.datetime64(_day(t), "D") for t in times], dtype="datetime64[D]")
    index = np.searchsorted(ordered, days, side="right") - 1
    return [None if i < 0 else ordered[i].astype(date) for i in index]


def arms_from_actions(actions: pd.DataFrame | None, grid: list[date]) -> pd.DataFrame:
    """The arms a CS tool recorded itself (cs_actions rows with an arm and a playbook, or an action standing for
    it), each at the grid as-of at or before its done_at; an account's first row per as-of and playbook.

    Returns:
        account_id, as_of, playbook, arm (lower case), done_at; empty without such rows.
    """
    columns = ["account_id", "as_of", "playbook", "arm", "done_at"]
    if actions is None or "arm" not in actions or actions.empty:
        return pd.DataFrame(columns=columns)
    rows = actions[actions["arm"].notna() & actions["done_at"].notna()].copy()
    rows["arm"] = rows["arm"].astype(str).str.lower()
    rows["playbook"] = _playbook_of(rows)
    rows = rows[rows["arm"].isin(ARMS) & rows["playbook"].notna()]
    rows["as_of"] = place_on_grid(rows["done_at"], grid)
    rows = rows[rows["as_of"].notna()].sort_values(["done_at", "account_id"], kind="stable")
    rows = rows.drop_duplicates(["account_id", "as_of", "playbook"])
    return rows.assign(account_id=rows["account_id"].astype(str))[columns].reset_index(drop=True)


def _playbook_of(actions: pd.DataFrame) -> pd.Series:
    playbook = actions["playbook"] if "playbook" in actions else pd.Series(None, index=actions.index, dtype=object)
    if "action" in actions:
        playbook = playbook.where(playbook.notna(), actions["action"])
    return playbook


def merge_assignments(scoring: pd.DataFrame, recorded: pd.DataFrame) -> pd.DataFrame:
    """One arm per account and as-of: the scorer's (churn_playbook_assignments); where it assigned none, the one a
    CS tool recorded in cs_actions (`arms_from_actions`; an account's first there).

    Returns:
        account_id, as_of, playbook, arm, arm_source (`scoring` or `cs_actions`).
    """
    columns = ["account_id", "as_of", "playbook", "arm"]
    mine = scoring[columns].assign(arm_source=SCORING)
    theirs = recorded.sort_values("done_at", kind="stable")[columns].assign(arm_source=CS_ACTIONS)
    parts = [frame for frame in (mine, theirs) if not frame.empty]
    if not parts:
        return pd.DataFrame(columns=[*columns, "arm_source"])
    both = pd.concat(parts, ignore_index=True)
    both["as_of"] = [_day(d) for d in both["as_of"]]
    both["account_id"] = both["account_id"].astype(str)
    return both.drop_duplicates(["account_id", "as_of"]).reset_index(drop=True)


def actions_done(keys: pd.DataFrame, actions: pd.DataFrame | None, horizon_days: int) -> pd.Series:
    """Whether the CS team acted on each (account_id, as_of, playbook) row in its horizon: a cs_actions row for the
    account with as_of ≤ done_at < as_of + horizon that is not a holdout record, for the row's playbook (an action
    naming no playbook counts for any; a row without a playbook counts any action). None without cs_actions.
    """
    if actions is None:
        return pd.Series(None, index=keys.index, dtype="boolean")
    done = actions[actions["done_at"].notna()].copy()
    if "arm" in done:
        done = done[done["arm"].fillna("").astype(str).str.lower() != HOLDOUT]
    done = pd.DataFrame({"account_id": done["account_id"].astype(str).to_numpy(),
                         "done_at": pd.to_datetime(done["done_at"]).to_numpy(),
                         "done_playbook": (done["playbook"] if "playbook" in done
                                           else pd.Series(None, index=done.index, dtype=object)).to_numpy()})
    rows = keys[["account_id", "as_of", "playbook"]].assign(_row=np.arange(len(keys)),
                                                            account_id=keys["account_id"].astype(str))
    pairs = rows.merge(done, on="account_id")
    start = pd.to_datetime(pairs["as_of"])
    inside = (pairs["done_at"] >= start) & (pairs["done_at"] < start + pd.Timedelta(days=horizon_days))
    matches = pairs["done_playbook"].isna() | pairs["playbook"].isna() | (pairs["done_playbook"] == pairs["playbook"])
    acted = set(pairs.loc[inside & matches, "_row"])
    return pd.Series([i in acted for i in range(len(keys))], index=keys.index, dtype="boolean")


def join_outcomes(scores: pd.DataFrame, assignments: pd.DataFrame, labels: pd.DataFrame,
                  actions: pd.DataFrame | None, horizon_days: int) -> tuple[pd.DataFrame, int]:
    """The churn_outcomes rows of matured as-ofs, and how many rows were dropped (their account was not active at
    the as-of by the subscriptions, so the label says nothing about it).

    Args:
        scores: churn_scores rows of matured as-ofs (account_id, as_of, churn_probability, risk_tier, mrr,
            top_reasons, model_name, model_version; playbook when the table has it).
        assignments: `merge_assignments` rows of those as-ofs.
        labels: the labelled population at the as-ofs: account_id, as_of, label, churn_at, mrr (MRR just before the
            as-of, for accounts an arm names that were not scored).
        actions: cs_actions rows (account_id, done_at, [playbook], [action], [arm]), or None without the table.
    """
    scored = _keyed(scores).rename(columns={"playbook": "scored_playbook"})
    if "scored_playbook" not in scored:   # a table written before churn_scores had the column
        scored["scored_playbook"] = None
    rows = scored.merge(_keyed(assignments), on=["account_id", "as_of"], how="outer")
    rows["playbook"] = rows["playbook"].where(rows["playbook"].notna(), rows["scored_playbook"])
    known = _keyed(labels).rename(columns={"mrr": "label_mrr"})
    joined = rows.merge(known, on=["account_id", "as_of"], how="inner")
    dropped = len(rows) - len(joined)
    joined["mrr"] = joined["mrr"].where(joined["mrr"].notna(), joined["label_mrr"])
    joined["churned"] = joined["label"].astype("int64")
    joined["churned_mrr"] = joined["churned"] * joined["mrr"].astype(float)
    churn_at = pd.to_datetime(joined["churn_at"])
    joined["churn_date"] = pd.Series([d.date() if pd.notna(d) else None for d in churn_at], index=joined.index,
                                     dtype=object)
    joined["action_done"] = actions_done(joined, actions, horizon_days)
    out = joined.reindex(columns=OUTCOME_COLUMNS)
    return out.sort_values(["as_of", "account_id"], ignore_index=True), dropped


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(account_id=frame["account_id"].astype(str), as_of=[_day(d) for d in frame["as_of"]])


def compute_model_performance(outcomes: pd.DataFrame, tiers: list[str], capacity: int,
                              validation: dict[str, dict[str, float]] | None = None) -> pd.DataFrame:
    """One row per matured scoring (as-of and model): how the model did on what happened (PERFORMANCE_COLUMNS).

    Calibration by tier is JSON text: for each tier, highest risk first, its accounts, mean predicted probability
    and observed churn rate. Accounts whose playbook was acted on churn less when it works, so the top tier's
    observed rate is the model's risk net of the team's actions; the holdout keeps the untouched comparison.

    Args:
        outcomes: churn_outcomes rows; rows without a probability (arms recorded on unscored dates) are left out.
        tiers: tier names, highest risk first.
        capacity: accounts the CS team acts on per scoring (`evaluation.capacity`).
        validation: the validation metrics (VALIDATION_METRICS) of each (model name, version), when known.
    """
    scored = outcomes[outcomes["churn_probability"].notna()]
    rows = []
    for (as_of, name, version), part in scored.groupby(["as_of", "model_name", "model_version"], sort=True,
                                                        dropna=False):
        y, p = part["churned"].to_numpy(int), part["churn_probability"].to_numpy(float)
        metrics = evaluate_predictions(y, p, mrr=part["mrr"].fillna(0.0).to_numpy(float), capacity=capacity)
        before = (validation or {}).get((str(name), str(version)), {})
        row = {"as_of": as_of, "model_name": name, "model_version": version, "accounts": len(part),
               "churned": int(y.sum()), "churn_rate": float(y.mean()), "mean_probability": float(p.mean()),
               **{m: metrics[m] for m in PERFORMANCE_METRICS}, "capacity": capacity,
               "calibration_by_tier": _calibration_by_tier(part, tiers),
               **{f"validation_{m}": before.get(m, np.nan) for m in VALIDATION_METRICS}}
        row["roc_auc_change"] = row["roc_auc"] - row["validation_roc_auc"]
        rows.append(row)
    return pd.DataFrame(rows, columns=PERFORMANCE_COLUMNS)


def _calibration_by_tier(part: pd.DataFrame, tiers: list[str]) -> str:
    found = {}
    for tier in [t for t in tiers if (part["risk_tier"] == t).any()]:
        rows = part[part["risk_tier"] == tier]
        found[tier] = {"accounts": len(rows), "predicted": round(float(rows["churn_probability"].mean()), 6),
                       "observed": round(float(rows["churned"].mean()), 6)}
    return json.dumps(found)


def find_missed(scores: pd.DataFrame, churns: pd.DataFrame, top_tier: str, horizon_days: int) -> pd.DataFrame:
    """Every known churn with a scoring in the horizon before it, and whether the scorings saw it coming
    (MISSED_COLUMNS, one row per account and churn date).

    `missed` is True when the account was never in `top_tier` in those scorings; then its last tier, probability
    and reasons say what the model thought instead. For the others, `lead_days` runs from the first scoring that
    put it in the top tier to the churn: the time the team had.

    Args:
        scores: churn_scores rows of every scored as-of (account_id, as_of, churn_probability, risk_tier, mrr,
            top_reasons).
        churns: known churn dates (account_id, churn_at), as `features.snapshots.compute_churn_dates` gives them.
    """
    if scores.empty or churns.empty:
        return pd.DataFrame(columns=MISSED_COLUMNS)
    rows = _keyed(scores).merge(churns.assign(account_id=churns["account_id"].astype(str)), on="account_id")
    as_of = pd.to_datetime(rows["as_of"])
    churn_at = pd.to_datetime(rows["churn_at"])
    rows = rows[(churn_at > as_of) & (churn_at <= as_of + pd.Timedelta(days=horizon_days))]
    missed = []
    for (account, at), part in rows.sort_values("as_of").groupby(["account_id", "churn_at"], sort=True):
        last = part.iloc[-1]
        flagged = part[part["risk_tier"] == top_tier]
        first = flagged["as_of"].iloc[0] if len(flagged) else None
        missed.append({"account_id": account, "churn_date": pd.Timestamp(at).date(),
                       "churned_mrr": float(last["mrr"]), "missed": first is None, "scorings": len(part),
                       "last_as_of": last["as_of"], "last_tier": last["risk_tier"],
                       "last_probability": float(last["churn_probability"]), "top_reasons": last["top_reasons"],
                       "first_flagged_as_of": first,
                       "lead_days": None if first is None else (pd.Timestamp(at) - pd.Timestamp(first)).days})
    frame = pd.DataFrame(missed, columns=MISSED_COLUMNS)
    return frame.astype({"lead_days": "Int64", "scorings": "int64", "missed": bool})


def _day(value) -> date:
    return pd.Timestamp(value).date()
