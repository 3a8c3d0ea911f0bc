"""Training datasets: labelled rows of the feature table split out of time."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Split:
    """An out-of-time split: the oldest as-of dates train, the next ones calibrate (and stop the boosting early),
    the newest labelled ones validate. Without calibration dates, `calib` is empty and validation stops early."""

    train: pd.DataFrame
    valid: pd.DataFrame
    calib: pd.DataFrame | None = None

    @property
    def tuning(self) -> pd.DataFrame:
        """The held-out rows for early stopping and calibration: `calib`, or `valid` when there is none."""
        return self.calib if self.calib is not None and len(self.calib) else self.valid

    @property
    def window(self) -> dict[str, str]:
        """The as-of dates each part spans, for the run's provenance."""
        def span(frame: pd.DataFrame) -> str:
            return f"{frame.as_of.min():%Y-%m-%d}..{frame.as_of.max():%Y-%m-%d}" if len(frame) else "none"
        parts = {"train_as_of": self.train, "calib_as_of": self.calib, "valid_as_of": self.valid}
        return {name: span(part) for name, part in parts.items() if part is not None}


def labelled_dates(table: pd.DataFrame) -> list[pd.Timestamp]:
    """The as-of dates that have labels, oldest first."""
    return sorted(table.loc[table["label"].notna(), "as_of"].unique())


def split_out_of_time(table: pd.DataFrame, validation_snapshots: int, calibration_snapshots: int = 0,
                      skip_newest: int = 0) -> Split:
    """Split labelled rows by as-of date: [... train ...][calibration][validation][skipped newest].

    Args:
        validation_snapshots, calibration_snapshots: how many labelled as-of dates each held-out part takes.
        skip_newest: labelled dates to leave out at the newest end (a backtest fold further back in time).

    Raises:
        ValueError: too few labelled as-of dates, or a part holds a single class.
    """
    labelled = table[table["label"].notna()].copy()
    labelled["label"] = labelled["label"].astype(int)
    dates = labelled_dates(labelled)
    held = validation_snapshots + calibration_snapshots + skip_newest
    if len(dates) < held + 2:
        raise ValueError(f"label: only {len(dates)} labelled as-of dates; need at least {held + 2} for "
                         f"{validation_snapshots} validation + {calibration_snapshots} calibration dates"
                         + (f" + {skip_newest} skipped by the backtest" if skip_newest else "")
                         + " + 2 training dates (widen snapshots, shorten label.horizon_days, or give more history)")
    end = len(dates) - skip_newest
    valid_from = dates[end - validation_snapshots]
    calib_from = dates[end - validation_snapshots - calibration_snapshots]
    valid_to = dates[end - 1]
    part = {
        "train": labelled[labelled["as_of"] < calib_from],
        "calibration": labelled[(labelled["as_of"] >= calib_from) & (labelled["as_of"] < valid_from)],
        "validation": labelled[(labelled["as_of"] >= valid_from) & (labelled["as_of"] <= valid_to)],
    }
    for name, rows in part.items():
        if (name != "calibration" or calibration_snapshots) and rows["label"].nunique() < 2:
            raise ValueError(f"label: the {name} part ({len(rows)} rows) holds only one class; "
                             "no churn (or no retention) to learn from")
    calib = part["calibration"].reset_index(drop=True) if calibration_snapshots else None
    return Split(train=part["train"].reset_index(drop=True), valid=part["validation"].reset_index(drop=True),
                 calib=calib)
