"""The oracle: the true probability that an account churns within a horizon, read from `sim_truth` (the exact
hazard of every renewal the simulation drew, or would have drawn after a churn). Training compares a model's
ROC-AUC with the oracle's on a simulated warehouse, so its score is the ceiling no model can beat.

Beside it, the truth about why: `true_causes` reads the true cause of the renewal an account most likely churns
at within the horizon, and `CAUSE_GROUPS` maps each cause to the playbook group whose reasons should name it, so
the reasons a model gives can be checked against the simulation's causes.

And the truth about what the CS team's playbooks did: `true_playbook_effects` reads, for the accounts an experiment
judged, the churn probability each would have had in the horizon with its playbook and without it, so the effect
`churn outcomes` estimates against the holdout can be checked against the one the simulation used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.synthetic.config import CAUSE_GROUPS

__all__ = ["CAUSE_GROUPS", "compute_oracle_probabilities", "nowcast_probabilities", "true_causes",
           "true_playbook_effects"]
TRUE_EFFECT_COLUMNS = ["hazard_effect", "true_effect", "true_difference", "true_treated_rate", "true_untreated_rate"]


def compute_oracle_probabilities(
    truth: pd.DataFrame, snapshots: pd.DataFrame, horizon_days: int
) -> np.ndarray:
    """Oracle P(churn within (as_of, as_of + horizon]) for each snapshots row (columns account_id, as_of).

    Args:
        truth: `sim_truth` (account_id, renewal_at, hazard[, lifecycle_start]).
        snapshots: rows of (account_id, as_of); each account is assumed alive at its as_of.
        horizon_days: label horizon in days.

    Returns:
        One probability per snapshots row, in row order: 1 - prod(1 - hazard) over the account's renewals
        with as_of < renewal_at <= as_of + horizon (0 when there are none).
    """
    pairs = _renewals_in_horizon(truth, snapshots, horizon_days, ["hazard"])
    with np.errstate(divide="ignore"):
        log_survival = np.log1p(-pairs["hazard"].to_numpy(dtype=float).clip(0.0, 1.0))
    per_row = pd.Series(log_survival).groupby(pairs["row"].to_numpy()).sum()
    out = np.zeros(len(snapshots))
    out[per_row.index.to_numpy()] = 1.0 - np.exp(per_row.to_numpy())
    return out


def nowcast_probabilities(nowcast: pd.DataFrame, snapshots: pd.DataFrame, horizon_days: int) -> np.ndarray:
    """The nowcast oracle (`sim_nowcast`, built by `nowcast.simulate_nowcast`) for each snapshots row: P(churn within
    (as_of, as_of + horizon] | the true latent state at the as-of), the fair ceiling a model is read against.

    Args:
        nowcast: `sim_nowcast` (account_id, as_of, horizon_days, probability).
        snapshots: rows of (account_id, as_of).
        horizon_days: label horizon in days; only the table's rows for this horizon are read.

    Returns:
        One probability per snapshots row, in row order; NaN where the table has none: an as-of off its grid
        (the month starts of the history after its first day), another horizon, or an account not paying then
        (a trial).
    """
    table = nowcast[nowcast["horizon_days"] == horizon_days]
    keys = pd.DataFrame({"account_id": table["account_id"].astype(str).to_numpy(),
                         "as_of": pd.to_datetime(table["as_of"]).to_numpy(),
                         "probability": table["probability"].to_numpy(dtype=float)})
    rows = pd.DataFrame({"account_id": snapshots["account_id"].astype(str).to_numpy(),
                         "as_of": pd.to_datetime(snapshots["as_of"]).to_numpy()})
    return rows.merge(keys, on=["account_id", "as_of"], how="left")["probability"].to_numpy(dtype=float)


def true_causes(truth: pd.DataFrame, snapshots: pd.DataFrame, horizon_days: int) -> np.ndarray:
    """The true cause behind each snapshots row's churn risk within (as_of, as_of + horizon].

    Args:
        truth: `sim_truth` (account_id, renewal_at, hazard, cause[, lifecycle_start]).
        snapshots: rows of (account_id, as_of).
        horizon_days: label horizon in days.

    Returns:
        An object array, one entry per snapshots row in row order: the `cause` ("none" when no cause was at work)
        of the renewal inside the horizon, in the lifecycle current at the as-of, with the largest hazard; None
        when no renewal falls there.
    """
    pairs = _renewals_in_horizon(truth, snapshots, horizon_days, ["hazard", "cause"])
    # The first of the largest: a stable sort on the hazard, descending, keeps the renewals' order among ties.
    pairs = pairs.sort_values(["row", "hazard"], ascending=[True, False], kind="stable")
    riskiest = pairs.drop_duplicates("row")
    out = np.full(len(snapshots), None, dtype=object)
    out[riskiest["row"].to_numpy()] = riskiest["cause"].to_numpy(dtype=object)
    return out


def true_playbook_effects(truth: pd.DataFrame, playbooks: pd.DataFrame, exposures: pd.DataFrame,
                          horizon_days: int) -> pd.DataFrame:
    """The true effect of each playbook on churn within the horizon, over the accounts an experiment judged.

    For each exposure (an account at its first as-of in a playbook, either arm), the churn probability within
    (as_of, as_of + horizon] without the playbook, 1 − Π(1 − h), and with it, 1 − Π(1 − h·(1 + effect)) over the
    renewals inside its effect window, where h is the renewal's hazard net of any playbook (`hazard` /
    `playbook_factor`). The true effect is the ratio of their sums − 1: what the intent-to-treat estimate (treated
    churn rate / holdout churn rate − 1) estimates when the arms are drawn at random among these accounts. With a
    horizon longer than the effect window, a later flag's playbook on the renewals beyond it is left out.

    Args:
        truth: `sim_truth` (account_id, renewal_at, hazard, playbook_factor[, lifecycle_start]).
        playbooks: `sim_playbooks` (playbook, hazard_effect, effect_days).
        exposures: account_id, as_of, playbook (serving.effects.first_exposures of the outcome rows).
        horizon_days: label horizon in days.

    Returns:
        Indexed by playbook: hazard_effect (the simulation's relative effect on each renewal's churn probability),
        true_effect (relative), true_difference (treated − untreated, in rate units), true_treated_rate and
        true_untreated_rate (mean probabilities over the exposures). NaN where it is not known: a playbook without
        exposures, with no renewal in any exposure's horizon, missing from `playbooks`, or whose truth rows are
        damaged (a factor that is not a positive number, an effect that is not finite).
    """
    keys = pd.DataFrame({"account_id": exposures["account_id"].astype(str).to_numpy(),
                         "as_of": pd.to_datetime(exposures["as_of"]).to_numpy(),
                         "playbook": exposures["playbook"].to_numpy(), "exposure": np.arange(len(exposures))})
    known = playbooks.set_index("playbook")
    pairs = _renewals_in_horizon(truth.assign(account_id=truth["account_id"].astype(str)), keys, horizon_days,
                                 ["hazard", "playbook_factor"])
    pairs = pairs.assign(playbook=keys["playbook"].to_numpy()[pairs["row"].to_numpy()])
    # An unknown or damaged truth (a playbook missing from sim_playbooks, a factor that is not a positive number)
    # makes that playbook's truth NaN, never a made-up 0.
    effect = pairs["playbook"].map(known["hazard_effect"]).to_numpy(dtype=float)
    days = pairs["playbook"].map(known["effect_days"]).to_numpy(dtype=float)
    seconds = (pairs["renewal_at"] - pairs["as_of"]).dt.total_seconds().to_numpy()
    inside = seconds <= np.nan_to_num(days, nan=0.0) * 86_400
    factor, hazard = pairs["playbook_factor"].to_numpy(dtype=float), pairs["hazard"].to_numpy(dtype=float)
    broken = ~np.isfinite(effect) | ~np.isfinite(days) | ~(factor > 0) | ~np.isfinite(factor) | ~np.isfinite(hazard)
    untreated = np.nan_to_num(hazard / np.where(factor > 0, factor, 1.0)).clip(0.0, 1.0)
    treated = (untreated * np.where(inside, 1.0 + np.nan_to_num(effect), 1.0)).clip(0.0, 1.0)
    rows = pairs["row"].to_numpy()
    probability = {}
    for name, hazard in (("treated", treated), ("untreated", untreated)):
        with np.errstate(divide="ignore"):
            survival = pd.Series(np.log1p(-hazard)).groupby(rows).sum()
        out = np.zeros(len(keys))
        out[survival.index.to_numpy()] = 1.0 - np.exp(survival.to_numpy())
        probability[name] = out
    damaged = np.zeros(len(keys), dtype=bool)
    damaged[rows[broken]] = True
    per = pd.DataFrame({"playbook": keys["playbook"], "true_treated_rate": probability["treated"],
                        "true_untreated_rate": probability["untreated"], "damaged": damaged}).groupby("playbook").agg(
        true_treated_rate=("true_treated_rate", "mean"), true_untreated_rate=("true_untreated_rate", "mean"),
        damaged=("damaged", "any"))
    per.loc[per["damaged"], ["true_treated_rate", "true_untreated_rate"]] = np.nan
    per = per.drop(columns="damaged")
    out = known[["hazard_effect"]].join(per, how="outer")
    with np.errstate(divide="ignore", invalid="ignore"):   # no renewal in any horizon: the effect is unknown
        out["true_effect"] = (out["true_treated_rate"] / out["true_untreated_rate"]).where(
            out["true_untreated_rate"] > 0) - 1
    out["true_difference"] = out["true_treated_rate"] - out["true_untreated_rate"]
    return out[TRUE_EFFECT_COLUMNS]


def _renewals_in_horizon(truth: pd.DataFrame, snapshots: pd.DataFrame, horizon_days: int,
                         columns: list[str]) -> pd.DataFrame:
    """Pairs (row, `columns`) of each snapshots row with its account's renewals in (as_of, as_of + horizon] of the
    lifecycle current at the as-of."""
    snap = pd.DataFrame({
        "account_id": snapshots["account_id"].to_numpy(),
        "as_of": pd.to_datetime(snapshots["as_of"]).to_numpy(),
        "row": np.arange(len(snapshots)),
    })
    wanted = ["account_id", "renewal_at", *columns] + (["lifecycle_start"] if "lifecycle_start" in truth else [])
    pairs = snap.merge(truth[wanted], on="account_id", how="inner")
    if "lifecycle_start" in pairs:
        # Only the lifecycle the account is in at the as-of: its latest one started by then.
        pairs = pairs[pairs["lifecycle_start"] <= pairs["as_of"]]
        current = pairs.groupby("row")["lifecycle_start"].transform("max")
        pairs = pairs[pairs["lifecycle_start"] == current]
    horizon = pd.Timedelta(days=horizon_days)
    return pairs[(pairs["renewal_at"] > pairs["as_of"]) & (pairs["renewal_at"] <= pairs["as_of"] + horizon)]
