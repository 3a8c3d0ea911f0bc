"""Training datasets: labelled rows of the feature table split out of time."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Split:
    """An out-of-time split: older as-of dates train, the newest labelled ones validate."""

    train: pd.DataFrame
    valid: pd.DataFrame

    @property
    def window(self) -> dict[str, str]:
        """The as-of dates each part spans, for the run's provenance."""
        def span(frame: pd.DataFrame) -> str:
            return f"{frame.as_of.min():%Y-%m-%d}..{frame.as_of.max():%Y-%m-%d}"
        return {"train_as_of": span(self.train), "valid_as_of": span(self.valid)}


def split_out_of_time(table: pd.DataFrame, validation_snapshots: int) -> Split:
    """Split labelled rows so the newest `validation_snapshots` labelled as-of dates validate and the rest train.

    Raises:
        ValueError: too few labelled as-of dates, or a part holds a single class.
    """
    labelled = table[table["label"].notna()].copy()
    labelled["label"] = labelled["label"].astype(int)
    dates = sorted(labelled["as_of"].unique())
    if len(dates) <= validation_snapshots:
        raise ValueError(f"label: only {len(dates)} labelled as-of dates; need more than "
                         f"model.validation_snapshots={validation_snapshots} to train out of time "
                         "(widen snapshots, shorten label.horizon_days, or give more history)")
    cut = dates[-validation_snapshots]
    train, valid = labelled[labelled["as_of"] < cut], labelled[labelled["as_of"] >= cut]
    for name, part in (("train", train), ("validation", valid)):
        if part["label"].nunique() < 2:
            raise ValueError(f"label: the {name} part ({len(part)} rows) holds only one class; "
                             "no churn (or no retention) to learn from")
    return Split(train=train.reset_index(drop=True), valid=valid.reset_index(drop=True))
