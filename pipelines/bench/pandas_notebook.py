"""The engagement features the way a team would write them in a notebook, and the check that they agree with ours.

The notebook version loads the events table into pandas and, for each as-of and window, filters the rows and
groups them by account. The benchmark runs it beside the warehouse build on the same data and compares the
features both compute, exactly: per window the active days, events, active users, distinct events and sessions
(session pieces per user and day, as in features/engagement.py), and the days since the last activity.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

KEYS = ["account_id", "as_of"]
WINDOWED = ("active_days", "events", "active_users", "distinct_events", "sessions")


class EngagementMismatch(RuntimeError):
    """The pandas and warehouse engagement features disagree; the message names the features and an example."""


def compared_features(windows: list[int]) -> list[str]:
    """The engagement features both implementations compute, compared exactly."""
    return [f"{name}_{w}d" for w in windows for name in WINDOWED] + ["days_since_last_activity"]


def active_accounts(subscriptions: pd.DataFrame, as_of: pd.Timestamp, include_trials: bool) -> np.ndarray:
    """Accounts with a (paid, unless `include_trials`) subscription covering the as-of."""
    subs = subscriptions
    if not include_trials and "is_trial" in subs:
        subs = subs[~subs["is_trial"].fillna(False).astype(bool)]
    covering = (subs["start_at"] <= as_of) & (subs["end_at"].isna() | (subs["end_at"] > as_of))
    return subs.loc[covering, "account_id"].unique()


def _window_stats(window: pd.DataFrame) -> pd.DataFrame:
    stats = window.groupby("account_id").agg(active_days=("day", "nunique"), events=("event_name", "size"),
                                             active_users=("user_id", "nunique"),
                                             distinct_events=("event_name", "nunique"))
    pieces = window.drop_duplicates(["account_id", "user_id", "day", "session_id"])
    stats["sessions"] = pieces.groupby("account_id").size()
    return stats


def compute_engagement_pandas(events: pd.DataFrame, subscriptions: pd.DataFrame, as_of_dates: list[date],
                              windows: list[int], include_trials: bool = False) -> pd.DataFrame:
    """Return one row per (account active at as-of, as-of) with `compared_features(windows)`, in pandas.

    Args:
        events: the events table (account_id, event_at, event_name, user_id, session_id, ...).
        subscriptions: the subscriptions table (account_id, start_at, end_at[, is_trial]).
    """
    events = events.assign(day=events["event_at"].dt.floor("D"))
    frames = []
    for as_of in as_of_dates:
        t = pd.Timestamp(as_of)
        out = pd.DataFrame({"account_id": active_accounts(subscriptions, t, include_trials)})
        out["as_of"] = t
        before = events["event_at"] < t
        last_day = events.loc[before, ["account_id", "day"]].groupby("account_id")["day"].max()
        recent = events[before & (events["event_at"] >= t - pd.Timedelta(days=max(windows)))]
        for w in windows:
            stats = _window_stats(recent[recent["event_at"] >= t - pd.Timedelta(days=w)])
            for name in WINDOWED:
                out[f"{name}_{w}d"] = out["account_id"].map(stats[name]).fillna(0).astype("float64")
        out["days_since_last_activity"] = (t - out["account_id"].map(last_day)).dt.days.astype("float64")
        frames.append(out)
    return pd.concat(frames, ignore_index=True)


def run_pandas_features(warehouse: Path, as_of_dates: list[date], windows: list[int], include_trials: bool,
                        threads: int) -> dict:
    """Load events and subscriptions from the DuckDB file into pandas and compute the features (a bench step).

    Returns:
        load and compute seconds, the event count, and the feature frame.
    """
    import duckdb

    start = time.perf_counter()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute(f"SET threads = {threads}")
        events = con.sql("SELECT account_id, event_at, event_name, user_id, session_id FROM events").df()
        subscriptions = con.sql("SELECT * FROM subscriptions").df()
    loaded = time.perf_counter()
    frame = compute_engagement_pandas(events, subscriptions, as_of_dates, windows, include_trials)
    done = time.perf_counter()
    return {"load_seconds": loaded - start, "compute_seconds": done - loaded, "seconds": done - start,
            "events": len(events), "frame": frame}


def _aligned(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    out = frame[KEYS + features].copy()
    out["account_id"] = out["account_id"].astype(str)
    out["as_of"] = pd.to_datetime(out["as_of"]).astype("datetime64[us]")
    return out


def check_agreement(warehouse: pd.DataFrame, notebook: pd.DataFrame, features: list[str]) -> dict:
    """Compare the warehouse and pandas frames on the (account_id, as_of) keys and every feature, exactly.

    Returns:
        rows and features compared.

    Raises:
        EngagementMismatch: the key sets differ, or any feature differs on any row (NaN equals NaN only).
    """
    merged = _aligned(warehouse, features).merge(_aligned(notebook, features), on=KEYS, how="outer",
                                                 suffixes=("_warehouse", "_pandas"), indicator=True)
    unmatched = merged[merged["_merge"] != "both"]
    if len(unmatched):
        first = unmatched.iloc[0]
        raise EngagementMismatch(f"{len(unmatched):,} (account_id, as_of) rows are in only one implementation, "
                                 f"e.g. {first.account_id} {first.as_of:%Y-%m-%d} ({first._merge})")
    problems = []
    for feature in features:
        a, b = merged[f"{feature}_warehouse"], merged[f"{feature}_pandas"]
        differ = ~((a == b) | (a.isna() & b.isna()))
        if differ.any():
            row = merged[differ].iloc[0]
            problems.append(f"{feature}: {int(differ.sum()):,} rows differ, e.g. {row.account_id} "
                            f"{row.as_of:%Y-%m-%d}: warehouse {a[differ].iloc[0]!r}, pandas {b[differ].iloc[0]!r}")
    if problems:
        raise EngagementMismatch("pandas and warehouse engagement features disagree:\n  " + "\n  ".join(problems))
    return {"rows": len(merged), "features": features}
