"""Do the playbooks work? The effect of each playbook on churn, estimated against its random holdout.

`estimate_effects` reads outcome rows (churn_outcomes, or any frame of the same columns: the simulated CS team of
the synthetic warehouse, a test's draws) and compares, per playbook, tier and window, the accounts assigned to
`treatment` with those assigned to `holdout`:

- **intent to treat** (`analysis = intent_to_treat`): by the arm assigned, whatever was then done. The arm is drawn
  at random (serving/experiments.py), so the two groups differ only by chance and by the playbook: this is the
  estimate to trust. It measures the effect of *recommending* the playbook, diluted by accounts that never got it.
- **per protocol** (`analysis = per_protocol`, only with `action_done` known from cs_actions): treated accounts
  whose action was done against held-back accounts that got none. Labelled biased (`caveat`): who gets an action
  done is not random (a CSM reaches the responsive accounts first), so this view flatters or blames the playbook.

Each account counts once per playbook and window, at its first as-of there: an account held in a playbook for three
monthly scorings is one experiment, not three (its horizons overlap, so its outcomes would be counted thrice).
Window `all` pools every as-of given; a window named by an as-of holds that scoring alone. Tier `all` pools tiers
(a tier is the account's tier at that first as-of).

Intervals come from statsmodels, not hand-written formulas: the difference of churn rates (treated − holdout) by
Newcombe's hybrid score interval, their ratio by the log-adjusted interval (`relative_* = ratio − 1`), the p-value of
the score test of equal rates, and the MRR kept per treated account by Welch's t interval. The verdict reads the
interval of the difference: `works` when all of it is below 0 (treated accounts churn less), `harms` when all of it
is above 0, `no evidence` otherwise, and also when either arm holds fewer than `min_arm_accounts` accounts (a
verdict on four held-back accounts is chance more often than the interval admits, above all across many playbooks).
"""

from __future__ import annotations

import warnings
from datetime import date

import numpy as np
import pandas as pd

INTENT_TO_TREAT, PER_PROTOCOL = "intent_to_treat", "per_protocol"
WORKS, NO_EVIDENCE, HARMS = "works", "no evidence", "harms"
ALL = "all"
TREATMENT, HOLDOUT = "treatment", "holdout"
PER_PROTOCOL_CAVEAT = ("biased: treated accounts whose action was done against held-back accounts that got none; "
                       "who gets an action done is not random, so read the intent-to-treat row")
EFFECT_COLUMNS = [
    "analysis", "playbook", "tier", "window", "window_start", "window_end",
    "treated", "holdout", "treated_churned", "holdout_churned", "treated_churn_rate", "holdout_churn_rate",
    "absolute_difference", "absolute_low", "absolute_high", "relative_difference", "relative_low", "relative_high",
    "p_value", "mrr_retained_per_treated", "mrr_retained_low", "mrr_retained_high", "mrr_retained_total",
    "verdict", "caveat",
]


def verdict(low: float, high: float) -> str:
    """`works` when the interval of (treated − holdout) churn rates lies below 0, `harms` above 0, else
    `no evidence` (also for an interval that is not known)."""
    if np.isnan(low) or np.isnan(high):
        return NO_EVIDENCE
    return WORKS if high < 0 else HARMS if low > 0 else NO_EVIDENCE


MIN_ARM_ACCOUNTS = 20


def compare_arms(treated_churned, holdout_churned, treated_mrr=None, holdout_mrr=None,
                 alpha: float = 0.05, min_arm_accounts: int = MIN_ARM_ACCOUNTS) -> dict[str, float | int | str]:
    """Compare the churn of treated and held-back accounts (one 0/1 per account); return the EFFECT_COLUMNS from
    `treated` to `verdict`.

    Args:
        treated_churned, holdout_churned: 1 where the account churned in its horizon, else 0.
        treated_mrr, holdout_mrr: each account's churned MRR (its MRR when it churned, else 0); without them the
            MRR columns are NaN.
        alpha: 1 − the intervals' coverage.
        min_arm_accounts: fewer accounts than this in an arm: verdict `no evidence` (the intervals are still given).
    """
    from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

    y1, y0 = np.asarray(treated_churned, dtype=float), np.asarray(holdout_churned, dtype=float)
    n1, n0, c1, c0 = len(y1), len(y0), int(y1.sum()), int(y0.sum())
    row: dict[str, float | int | str] = {"treated": n1, "holdout": n0, "treated_churned": c1, "holdout_churned": c0,
                                         "treated_churn_rate": c1 / n1 if n1 else np.nan,
                                         "holdout_churn_rate": c0 / n0 if n0 else np.nan}
    nan = dict.fromkeys(("absolute_difference", "absolute_low", "absolute_high", "relative_difference",
                         "relative_low", "relative_high", "p_value"), np.nan)
    if n1 and n0:
        with warnings.catch_warnings():   # 0 churners in an arm: the ratio's point estimate divides by 0
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = confint_proportions_2indep(c1, n1, c0, n0, compare="diff", alpha=alpha)
            ratio_low, ratio_high = confint_proportions_2indep(c1, n1, c0, n0, compare="ratio", alpha=alpha)
            p_value = test_proportions_2indep(c1, n1, c0, n0).pvalue
        p1, p0 = c1 / n1, c0 / n0
        nan = {"absolute_difference": p1 - p0, "absolute_low": float(low), "absolute_high": float(high),
               "relative_difference": p1 / p0 - 1 if p0 else np.nan, "relative_low": float(ratio_low) - 1,
               "relative_high": float(ratio_high) - 1, "p_value": float(p_value)}
    row |= nan | _mrr_retained(treated_mrr, holdout_mrr, alpha)
    enough = min(n1, n0) >= min_arm_accounts
    row["verdict"] = verdict(row["absolute_low"], row["absolute_high"]) if enough else NO_EVIDENCE
    return row


def _mrr_retained(treated_mrr, holdout_mrr, alpha: float) -> dict[str, float]:
    """Churned MRR per held-back account minus per treated account (the MRR a treated account keeps), with
    Welch's interval, and that times the treated accounts."""
    out = dict.fromkeys(("mrr_retained_per_treated", "mrr_retained_low", "mrr_retained_high",
                         "mrr_retained_total"), np.nan)
    if treated_mrr is None or holdout_mrr is None:
        return out
    m1, m0 = np.asarray(treated_mrr, dtype=float), np.asarray(holdout_mrr, dtype=float)
    if not len(m1) or not len(m0):
        return out
    kept = float(m0.mean() - m1.mean())
    out |= {"mrr_retained_per_treated": kept, "mrr_retained_total": kept * len(m1)}
    if len(m1) > 1 and len(m0) > 1 and (m1.var() > 0 or m0.var() > 0):
        from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

        with warnings.catch_warnings():   # one arm without spread: Welch's degrees of freedom divide by 0 there
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = CompareMeans(DescrStatsW(m0), DescrStatsW(m1)).tconfint_diff(alpha=alpha, usevar="unequal")
        out |= {"mrr_retained_low": float(low), "mrr_retained_high": float(high)}
    return out


def first_exposures(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Each account's first row in each playbook (the rows with a playbook and an arm), in as-of order."""
    rows = outcomes[outcomes["playbook"].notna() & outcomes["arm"].isin((TREATMENT, HOLDOUT))]
    rows = rows.assign(_day=[_day(d) for d in rows["as_of"]])
    return rows.sort_values(["_day", "account_id"], kind="stable").drop_duplicates(["playbook", "account_id"])


def _windows(outcomes: pd.DataFrame) -> list[tuple[str, date, date, pd.DataFrame]]:
    """(window, start, end, first-exposure rows): every as-of pooled, then each as-of alone."""
    days = pd.Series([_day(d) for d in outcomes["as_of"]], index=outcomes.index, dtype=object)
    if days.empty:
        return []
    windows = [(ALL, min(days), max(days), first_exposures(outcomes))]
    for day in sorted(set(days)):
        windows.append((day.isoformat(), day, day, first_exposures(outcomes[days == day])))
    return windows


def _groups(rows: pd.DataFrame, analysis: str):
    """(playbook, tier, treated rows, held-back rows) for every playbook and tier (and tier `all`)."""
    if analysis == PER_PROTOCOL:
        done = rows["action_done"].astype("boolean")
        rows = rows[((rows["arm"] == TREATMENT) & done.eq(True)) | ((rows["arm"] == HOLDOUT) & done.eq(False))]
    tiers = rows["risk_tier"] if "risk_tier" in rows else pd.Series(None, index=rows.index, dtype=object)
    for playbook, part in rows.groupby("playbook", sort=True):
        part_tiers = tiers.loc[part.index]
        for tier in [ALL, *sorted(part_tiers.dropna().unique())]:
            chosen = part if tier == ALL else part[part_tiers == tier]
            yield playbook, tier, chosen[chosen["arm"] == TREATMENT], chosen[chosen["arm"] == HOLDOUT]


def estimate_effects(outcomes: pd.DataFrame, alpha: float = 0.05,
                     min_arm_accounts: int = MIN_ARM_ACCOUNTS) -> pd.DataFrame:
    """The effect of each playbook on churn, against its holdout: one row per analysis, playbook, tier and window
    (EFFECT_COLUMNS; see the module's docstring for what each analysis and window is).

    Args:
        outcomes: one row per account and as-of: account_id, as_of, playbook, arm (`treatment` / `holdout`; rows
            without a playbook or arm are left out), churned (0/1, churn within the horizon); optionally risk_tier,
            churned_mrr (the MRR lost when it churned, else 0) and action_done (True/False/None: from cs_actions;
            the per-protocol rows need it).
        alpha: 1 − the intervals' coverage (0.05: 95% intervals).
        min_arm_accounts: fewer treated or held-back accounts than this in a comparison: verdict `no evidence`.
    """
    required = {"account_id", "as_of", "playbook", "arm", "churned"}
    lacking = sorted(required - set(outcomes.columns))
    if lacking:
        raise ValueError(f"estimate_effects: outcomes lack column(s) {', '.join(lacking)}")
    analyses = [INTENT_TO_TREAT]
    if "action_done" in outcomes and outcomes["action_done"].notna().any():
        analyses.append(PER_PROTOCOL)
    rows = []
    for window, start, end, exposed in _windows(outcomes):
        for analysis in analyses:
            for playbook, tier, treated, held in _groups(exposed, analysis):
                mrr = "churned_mrr" in exposed
                found = compare_arms(treated["churned"], held["churned"], treated["churned_mrr"] if mrr else None,
                                     held["churned_mrr"] if mrr else None, alpha, min_arm_accounts)
                rows.append({"analysis": analysis, "playbook": playbook, "tier": tier, "window": window,
                             "window_start": start, "window_end": end, **found,
                             "caveat": PER_PROTOCOL_CAVEAT if analysis == PER_PROTOCOL else None})
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


def _day(value) -> date:
    return pd.Timestamp(value).date()
