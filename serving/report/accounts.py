"""One section per account of the at-risk list: its drivers in words and the waterfall from the model's average
account to its probability."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from serving.config import ReportConfig
from serving.explain import calibrated_probability, describe_driver
from serving.report.inputs import ReportInputs


def build_waterfall(inputs: ReportInputs, account_id: str, steps: int, segment=None) -> dict | None:
    """Steps from the model's average account to this account's probability, largest signals first.

    Each step adds one signal's log-odds contribution and shows the calibrated probability before and after it;
    the signals past `steps` are one step. The endpoints are exact; with calibration the size of a step depends
    on the order the signals are added in.
    """
    if inputs.portfolio is None or account_id not in inputs.portfolio.contributions.index:
        return None
    row = inputs.portfolio.contributions.loc[account_id]
    contributions = row.drop("bias")
    order = contributions.abs().sort_values(ascending=False, kind="stable").index
    shown, rest = list(order[:steps]), contributions[order[steps:]]
    deltas = [contributions[f] for f in shown] + ([rest.sum()] if len(rest) else [])
    path = calibrated_probability(row["bias"] + np.concatenate([[0.0], np.cumsum(deltas)]),
                                  inputs.portfolio.calibrator)
    values = inputs.portfolio.values.loc[account_id]
    # Context (renewal timing, tenure, plan) is a step of the probability too, but like the scorer's drivers it
    # carries no "retained accounts" median: a typical days-to-renewal says nothing about this account's risk.
    labels = [describe_driver(inputs.specs[f], _value(values, f),
                              inputs.benchmarks if inputs.specs[f].role == "cause" else None, segment)
              if f in inputs.specs else "Other signal" for f in shown] + (
        [f"{len(rest)} other signals together"] if len(rest) else [])
    scale = max(float(path.max()) * 1.15, 0.05)
    bars = [{"label": label, "start": path[i], "end": path[i + 1], "points": 100 * (path[i + 1] - path[i]),
             "left": 100 * min(path[i], path[i + 1]) / scale, "width": max(0.4, 100 * abs(path[i + 1] - path[i])
                                                                             / scale)}
            for i, label in enumerate(labels)]
    return {"base": path[0], "final": path[-1], "bars": bars, "base_width": 100 * path[0] / scale,
            "final_width": 100 * path[-1] / scale}


def _value(values: pd.Series, feature: str):
    value = values.get(feature)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def build_account_pages(inputs: ReportInputs, at_risk: pd.DataFrame, config: ReportConfig) -> list[dict]:
    """One expandable section per account of the at-risk list: its drivers in words and its waterfall."""
    drivers = inputs.drivers[inputs.drivers["account_id"].isin(at_risk["account_id"])].sort_values(
        ["account_id", "rank"])
    by_account = dict(iter(drivers.groupby("account_id")))
    attributes = inputs.attributes.astype({"account_id": str}).set_index("account_id")
    pages = []
    for row in at_risk.itertuples():
        segment = attributes[inputs.benchmarks.by].get(row.account_id) if (
            inputs.benchmarks and inputs.benchmarks.by in attributes.columns) else None
        listed = by_account.get(row.account_id, pd.DataFrame(columns=drivers.columns))
        pages.append({"row": row, "drivers": listed.to_dict(orient="records"),
                      "waterfall": build_waterfall(inputs, row.account_id, config.waterfall_steps, segment)})
    return pages
