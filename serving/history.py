"""Risk over time: what each score row says about the scoring before it.

Every churn_scores row carries the newest published scoring strictly before its as-of (`previous_as_of`), the
account's probability and tier there (`previous_probability`, `previous_tier`, null when the account was not in
it), the change of probability since then (`probability_change`, in probability units) and how long the account
has been in its tier: `tier_since`, the as-of at which it entered its current tier in its current unbroken run of
scorings (the previous row's `tier_since` when the tier is the same, else this as-of; this as-of for an account
the previous scoring did not hold, new or back after a gap), and `days_in_tier` = as_of − tier_since in days.

The values are computed once, when a row is written, from the rows published before it (a chain: each scoring
reads only the one before it). Several as-ofs scored in one run are chained in date order. Re-scoring an older
as-of after newer ones does not rewrite the newer rows: they keep the values computed when they were written.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

HISTORY_COLUMNS = ["previous_as_of", "previous_probability", "previous_tier", "probability_change", "tier_since",
                   "days_in_tier"]
# What a previous scoring must give: its rows' probability, tier and (when written by a version that kept it) the
# start of their tier run.
PREVIOUS_COLUMNS = ["account_id", "as_of", "churn_probability", "risk_tier", "tier_since"]


def _dates(values) -> pd.Series:
    return pd.Series(pd.to_datetime(pd.Series(values)).dt.date, dtype=object)


def _previous_date(previous: pd.DataFrame | None) -> date | None:
    if previous is None or previous.empty:
        return None
    found = set(_dates(previous["as_of"].to_numpy()))
    if len(found) != 1:
        raise ValueError(f"the previous scoring must be one as-of, got {len(found)}: {sorted(map(str, found))}")
    return found.pop()


def add_history(current: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """The rows of one scoring with HISTORY_COLUMNS computed against the scoring before it.

    Args:
        current: score rows of one as-of (account_id, as_of, churn_probability, risk_tier, ...).
        previous: the rows of the newest scoring before it (PREVIOUS_COLUMNS; tier_since may be missing or null for
            rows written before it existed: the run then counts from that scoring's as-of), or None for none.

    Returns:
        `current` (same rows, same order) with HISTORY_COLUMNS replaced or added; dates as datetime.date.
    """
    current = current.drop(columns=[c for c in HISTORY_COLUMNS if c in current.columns])
    as_of = _dates(current["as_of"].to_numpy())
    if as_of.nunique() > 1:
        raise ValueError("add_history takes the rows of one as-of; chain_history takes several")
    before = _previous_date(previous)
    if before is not None and not as_of.empty and before >= as_of.iloc[0]:
        raise ValueError(f"the previous scoring ({before}) is not before this one ({as_of.iloc[0]})")
    matched = _match(current["account_id"].astype(str), previous, before)
    same_tier = matched["risk_tier"].to_numpy() == current["risk_tier"].to_numpy()
    tier_since = as_of.where(~same_tier, matched["tier_since"].to_numpy())
    history = pd.DataFrame({
        "previous_as_of": [before] * len(current),
        "previous_probability": matched["churn_probability"].to_numpy(dtype=float),
        "previous_tier": matched["risk_tier"].to_numpy(dtype=object),
        "probability_change": current["churn_probability"].to_numpy(dtype=float)
        - matched["churn_probability"].to_numpy(dtype=float),
        "tier_since": tier_since.to_numpy(),
        "days_in_tier": [(now - since).days for now, since in zip(as_of, tier_since, strict=True)],
    }, index=current.index).astype({"days_in_tier": "int64"})
    return pd.concat([current, history], axis=1)


def _match(accounts: pd.Series, previous: pd.DataFrame | None, before: date | None) -> pd.DataFrame:
    """Each account's row of the previous scoring (churn_probability, risk_tier, tier_since), NaN/None when absent."""
    if before is None:
        return pd.DataFrame({"churn_probability": float("nan"), "risk_tier": None, "tier_since": None},
                            index=accounts.index)
    rows = previous.assign(account_id=previous["account_id"].astype(str))
    twice = rows.loc[rows["account_id"].duplicated(), "account_id"]
    if len(twice):
        raise ValueError(f"churn_scores as of {before} holds account {twice.iloc[0]} twice")
    since = _dates(rows["tier_since"].to_numpy()) if "tier_since" in rows.columns else pd.Series([None] * len(rows))
    # A row written before tier_since existed: its run is known to start no later than its own as-of.
    since = since.where(since.notna(), before)
    rows = pd.DataFrame({"churn_probability": rows["churn_probability"].to_numpy(dtype=float),
                         "risk_tier": rows["risk_tier"].to_numpy(dtype=object), "tier_since": since.to_numpy()},
                        index=rows["account_id"].to_numpy())
    matched = rows.reindex(accounts.to_numpy())
    matched.index = accounts.index
    return matched


def chain_history(scores: pd.DataFrame, published: pd.DataFrame | None) -> pd.DataFrame:
    """The rows of every as-of in `scores` with HISTORY_COLUMNS, each as-of computed in date order against the
    newest scoring before it: an earlier as-of of the same run, or a published one the run does not replace.

    Args:
        scores: score rows of one or more as-ofs.
        published: rows of published scorings (PREVIOUS_COLUMNS) that may precede them, e.g. from
            `read_previous_scorings`; rows of an as-of that `scores` also holds are ignored (the run replaces them).

    Returns:
        `scores` (same rows, same order) with HISTORY_COLUMNS.
    """
    as_of = _dates(scores["as_of"].to_numpy())
    runs = sorted(set(as_of))
    published = pd.DataFrame(columns=PREVIOUS_COLUMNS) if published is None else published
    published_as_of = _dates(published["as_of"].to_numpy())
    kept = ~published_as_of.isin(runs).to_numpy()
    scorings = {day: rows for day, rows in published[kept].groupby(published_as_of[kept].to_numpy())}
    done: dict[date, pd.DataFrame] = {}
    for day in runs:
        before = max([d for d in scorings if d < day] + [d for d in done if d < day], default=None)
        done[day] = add_history(scores[(as_of == day).to_numpy()], done.get(before, scorings.get(before)))
    if not done:
        return add_history(scores, None)
    # Back to the rows' own order, by position (the index need not be unique).
    order = pd.Series(range(len(scores)))
    positions = pd.concat([order[(as_of == day).to_numpy()] for day in done])
    return pd.concat(done.values()).iloc[positions.argsort().to_numpy()]
