"""Time inside the simulation, shared by every part. A timestamp is an int64 count of seconds since the history
start (`OPEN` means "no end" or "never"); `Clock` knows where the history starts and ends and turns such counts
into the frames' naive datetime64[us] values. `add_months` moves along billing anniversaries, and `time_keys`
packs (account, time) into one sortable int64, the key of every "this account's rows before t" lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.synthetic.config import SimulationConfig

DAY = 86_400  # seconds
OPEN = np.iinfo(np.int64).max  # no end (NaT in the frames)


@dataclass(frozen=True)
class Clock:
    origin: np.datetime64  # history start, second resolution
    end: int  # seconds from origin to the end of the history

    @property
    def days(self) -> int:
        return self.end // DAY

    def timestamps(self, seconds: np.ndarray) -> np.ndarray:
        seconds = np.asarray(seconds, dtype=np.int64)
        is_open = seconds == OPEN
        offset = np.where(is_open, 0, seconds).astype("timedelta64[s]")
        out = (self.origin + offset).astype("datetime64[us]")
        out[is_open] = np.datetime64("NaT")
        return out

    def weekday_factor(self, weekend: float) -> np.ndarray:
        first = (self.origin.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        return np.where((first + np.arange(self.days)) % 7 >= 5, weekend, 1.0)


def make_clock(config: SimulationConfig) -> Clock:
    """The clock of `config`'s history: from its start day to `months` later."""
    origin = np.datetime64(config.start, "s")
    end_date = (pd.Timestamp(config.start) + pd.DateOffset(months=config.months)).date()
    return Clock(origin=origin, end=int((np.datetime64(end_date, "s") - origin) // np.timedelta64(1, "s")))


def add_months(clock: Clock, seconds: np.ndarray, months: np.ndarray) -> np.ndarray:
    """The same day of month and time `months` later (clamped to the month's end), in seconds since origin."""
    moment = clock.origin + np.asarray(seconds, dtype=np.int64).astype("timedelta64[s]")
    day_start = moment.astype("datetime64[D]")
    month = moment.astype("datetime64[M]")
    day_of_month = (day_start - month.astype("datetime64[D]")).astype(np.int64)
    target = month + np.asarray(months, dtype=np.int64)
    month_len = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    new_day = target.astype("datetime64[D]") + np.minimum(day_of_month, month_len - 1)
    shifted = new_day.astype("datetime64[s]") + (moment - day_start.astype("datetime64[s]"))
    return ((shifted - clock.origin) // np.timedelta64(1, "s")).astype(np.int64)


def time_keys(acct: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Sortable (account, time) keys; times fit in 32 bits around the origin (about +-68 years)."""
    return (np.asarray(acct, dtype=np.int64) << 32) + (np.asarray(seconds, dtype=np.int64) + (1 << 31))


def account_start_keys(acct: np.ndarray) -> np.ndarray:
    """The smallest key of each account: searching for it finds the account's first row."""
    return time_keys(acct, np.full(len(acct), -(1 << 31)))
