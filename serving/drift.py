"""Drift guard: the scored population against the model's validation window, and its money against the last scoring.

Training keeps each feature's distribution on the validation window with the model (`reference_distribution`).
Before scores are published, these checks run; each is a row of the `churn_drift` table, with a status `ok`,
`warn` or `stop`, and `stop` only for a reason that stops the run:

1. Each feature's population stability index (PSI) against the reference, in the reference's quantile bins (plus a
   bin for missing values), net of sampling noise: two samples of one population show a PSI of about
   (bins − 1)·(1/n + 1/m) by chance alone (n, m: rows now and in the reference), 0.05 for 300 accounts against 528
   reference rows, which is half the `warn` line. That much is subtracted (not below 0), so the thresholds mean the
   same for a small customer base as for a large one. Above `warn` the feature warns.
2. The summary: the features' PSI weighted by how much the model relies on each (mean |SHAP|). Single features move
   for harmless reasons; a broken load moves the inputs the model leans on. Above `warn` it warns, above `stop` it
   stops.
3. Per feature, an extreme shift stops the run whatever the feature's weight, if the model uses it (importance > 0):
   PSI above `feature_stop`, or the median moved by more than `median_ratio_stop` times either way. A unit error
   (seconds loaded as minutes, cents as dollars) multiplies every value and so the median, while a weighted mean hides
   it on a feature of small weight. The ratio is taken only where it measures a scale: on features whose reference
   values are all ≥ 0 (not changes or differences around zero) and whose two medians are both above zero; a median
   falling to zero is no unit error, and PSI sees it. An unused feature (importance 0) only warns.
4. Money (`compare_mrr`): the total and the median MRR of the accounts present in both this and the previous scoring
   may not differ by more than `mrr_ratio_stop` times, since managers read "MRR at risk" from these numbers. The
   previous scoring is the newest published one at or before this as-of, so a re-run of an as-of is compared with
   the rows it would replace; without one the check is recorded as `unchecked`.

Features that count days from or to the as-of itself (the catalog's `as_of_clock`) change when only the as-of
changes, so their raw PSI measures the calendar, not the data:
- every clock feature is binned in whole calendar units, the reference's quantile edges rounded to multiples of 7
  days (31 for `until`): the weekday of the as-of moves "days since last activity" between 1 and 3 over a weekend,
  and the day of the month moves "days to renewal" of monthly plans anywhere within 0–30 days; a day-level bin counts
  that as drift, a week-level (month-level) one does not;
- an `age` feature (tenure) grows by the as-of gap for every account: a population scored four months after the
  validation window is four months older. Its values are shifted by the difference of the medians before binning,
  so PSI compares the shape of the distribution, not its position. `since` and `until` features restart when their
  event recurs, so they are not shifted (their position does not grow with the as-of);
- clock features have no median-ratio check: they are computed from timestamps by the feature code, so no load can
  scale them, and their median moves with the calendar (tenure grows, days since last activity is 3 on a Monday).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from serving.config import DriftConfig

_EPS = 1e-4  # floor for a bin's share, so an empty bin gives a large but finite PSI
# Clock features are binned in whole calendar units (module docstring): weeks, or months for countdowns to renewals.
_CLOCK_UNIT_DAYS = {"age": 7.0, "since": 7.0, "until": 31.0}
MISSING = "(missing)"
SUMMARY_ROW = "(all features, importance-weighted)"
MRR_TOTAL_ROW = "(mrr total, accounts in both scorings)"
MRR_MEDIAN_ROW = "(mrr median, accounts in both scorings)"
DRIFT_COLUMNS = ["feature", "psi", "ratio", "status", "reason"]


def _numeric_reference(values: pd.Series, bins: int, clock: str | None) -> dict:
    present = values.dropna().to_numpy(dtype=float)
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])) if len(present) else np.array([])
    if clock:
        unit = _CLOCK_UNIT_DAYS[clock]
        whole = np.unique(np.round(edges / unit) * unit)
        edges = whole[whole > 0]
    return {"kind": "numeric", "edges": edges.tolist(), "shares": _numeric_shares(values, edges).tolist(),
            "rows": len(values), "median": float(np.median(present)) if len(present) else None,
            "min": float(present.min()) if len(present) else None, "clock": clock}


def _numeric_shares(values: pd.Series, edges: np.ndarray) -> np.ndarray:
    # One bin per interval between edges, plus one for missing values.
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    missing = np.isnan(numbers)
    counts = np.bincount(np.searchsorted(edges, numbers[~missing], side="right"), minlength=len(edges) + 1)
    counts = np.append(counts, missing.sum()).astype(float)
    return counts / max(len(numbers), 1)


def _categorical_shares(values: pd.Series, categories: list[str]) -> np.ndarray:
    text = values.astype(object).where(values.notna(), MISSING).astype(str)
    counts = text.value_counts()
    known = np.array([counts.get(c, 0) for c in categories], dtype=float)
    other = len(text) - known.sum()
    return np.append(known, other) / max(len(text), 1)


def reference_distribution(frame: pd.DataFrame, features: list[str], bins: int = 10,
                           clocks: dict[str, str] | None = None) -> dict[str, dict]:
    """Each feature's distribution on the reference rows: quantile bins and median for numbers, shares for categories.

    Args:
        clocks: feature → its catalog `as_of_clock` ("age", "since" or "until") for the features that count days
            from or to the as-of; they are binned in whole weeks (months for "until") and scoring aligns the "age"
            ones on their median (module docstring).
    """
    out = {}
    for feature in features:
        values = frame[feature]
        if pd.api.types.is_numeric_dtype(values):
            out[feature] = _numeric_reference(values, bins, (clocks or {}).get(feature))
        else:
            categories = sorted(values.astype(object).where(values.notna(), MISSING).astype(str).unique())
            out[feature] = {"kind": "categorical", "categories": categories, "rows": len(values),
                            "shares": _categorical_shares(values, categories).tolist()}
    return out


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index Σ (actual − expected) · ln(actual / expected) over bins."""
    e, a = np.maximum(expected, _EPS), np.maximum(actual, _EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def sampling_psi(shares: np.ndarray, rows: int, reference_rows: int | None) -> float:
    """The PSI two samples of one population show by chance: (occupied bins − 1) · (1/rows + 1/reference_rows).

    Under no drift, PSI · n·m/(n + m) follows a χ² with (bins − 1) degrees of freedom, so this is its expectation;
    0 when the reference's size is unknown (a reference written before it was kept).
    """
    if not reference_rows or not rows:
        return 0.0
    return float((np.count_nonzero(shares) - 1) * (1 / rows + 1 / reference_rows))


def _median_ratio(ref: dict, numbers: np.ndarray) -> float:
    """This median over the reference's, where that ratio measures a scale (see the module docstring), else NaN."""
    present = numbers[~np.isnan(numbers)]
    reference, lowest = ref.get("median"), ref.get("min")
    if ref.get("clock") or reference is None or lowest is None or lowest < 0 or reference <= 0 or not len(present):
        return float("nan")
    median = float(np.median(present))
    return median / reference if median > 0 else float("nan")


def _compare_numeric(ref: dict, values: pd.Series) -> tuple[float, float]:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    present = numbers[~np.isnan(numbers)]
    if ref.get("clock") == "age" and ref.get("median") is not None and len(present):
        numbers = numbers - (np.median(present) - ref["median"])   # the population's ageing since the reference
    actual = _numeric_shares(pd.Series(numbers), np.asarray(ref["edges"], dtype=float))
    return psi(np.asarray(ref["shares"], dtype=float), actual), _median_ratio(ref, numbers)


def _compare(ref: dict, values: pd.Series) -> tuple[float, float]:
    """PSI beyond sampling noise (not below 0) and the median ratio (NaN where not taken) of one feature."""
    if ref["kind"] == "numeric":
        value, ratio = _compare_numeric(ref, values)
    else:
        value = psi(np.asarray(ref["shares"], dtype=float), _categorical_shares(values, ref["categories"]))
        ratio = float("nan")
    noise = sampling_psi(np.asarray(ref["shares"]), len(values), ref.get("rows"))
    return max(value - noise, 0.0), ratio


def _times(ratio: float) -> str:
    return f"{ratio:.3g}× the reference median" if ratio >= 1 else f"1/{1 / ratio:.3g} of the reference median"


def _judge_feature(feature: str, value: float, ratio: float, used: bool, config: DriftConfig) -> tuple[str, str]:
    """The status of one feature and the reason for it ('' when ok)."""
    extreme = []
    if value > config.feature_stop:
        extreme.append(f"PSI {value:.2f} above scoring.drift.feature_stop {config.feature_stop:g}")
    if not np.isnan(ratio) and max(ratio, 1 / ratio) > config.median_ratio_stop:
        extreme.append(f"median {_times(ratio)} (scoring.drift.median_ratio_stop {config.median_ratio_stop:g}×)")
    if extreme and used:
        return "stop", f"feature {feature}: " + "; ".join(extreme)
    if extreme:
        return "warn", f"feature {feature}: " + "; ".join(extreme) + " (the model does not use it)"
    if value > config.warn:
        return "warn", f"feature {feature}: PSI {value:.2f} above scoring.drift.warn {config.warn:g}"
    return "ok", ""


def compute_drift(reference: dict[str, dict], frame: pd.DataFrame, importance: dict[str, float],
                  config: DriftConfig) -> pd.DataFrame:
    """Each feature of `frame` against its reference: PSI, median ratio (NaN where not taken), status and reason.

    Args:
        importance: feature → the model's mean |SHAP| on the reference rows; a feature the model does not use
            (importance 0 or absent) warns but never stops.
    """
    rows = []
    for feature, ref in reference.items():
        if feature not in frame.columns:
            continue
        value, ratio = _compare(ref, frame[feature])
        status, reason = _judge_feature(feature, value, ratio, importance.get(feature, 0.0) > 0, config)
        rows.append({"feature": feature, "psi": value, "ratio": ratio, "status": status, "reason": reason})
    return pd.DataFrame(rows, columns=DRIFT_COLUMNS).sort_values("psi", ascending=False, ignore_index=True)


def summarise_drift(drift: pd.DataFrame, importance: dict[str, float], config: DriftConfig) -> dict:
    """The importance-weighted mean PSI as a row of the drift table (equal weights when the model has none)."""
    weights = drift["feature"].map(importance).fillna(0.0).to_numpy(dtype=float)
    if weights.sum() <= 0:
        weights = np.ones(len(drift))
    value = float(np.average(drift["psi"], weights=weights)) if len(drift) else 0.0
    status = "stop" if value > config.stop else "warn" if value > config.warn else "ok"
    limit = {"stop": f"scoring.drift.stop {config.stop:g}", "warn": f"scoring.drift.warn {config.warn:g}"}
    reason = f"importance-weighted PSI {value:.3f} above {limit[status]}" if status != "ok" else ""
    return {"feature": SUMMARY_ROW, "psi": value, "ratio": float("nan"), "status": status, "reason": reason}


def _judge_mrr(row: str, what: str, ratio: float, accounts: int, previous: str, config: DriftConfig) -> dict:
    out = {"feature": row, "psi": float("nan"), "ratio": ratio, "status": "ok", "reason": ""}
    if np.isnan(ratio):
        return out | {"status": "unchecked", "reason": f"{what} MRR of the previous scoring is not above zero"}
    if ratio <= 0 or max(ratio, 1 / ratio) > config.mrr_ratio_stop:
        out |= {"status": "stop", "reason": f"MRR of the {accounts:,} accounts in both scorings: {what} "
                f"{ratio:.3g}× that of {previous} (scoring.drift.mrr_ratio_stop {config.mrr_ratio_stop:g}×)"}
    return out


def compare_mrr(previous: pd.DataFrame | None, current: pd.DataFrame, config: DriftConfig,
                previous_label: str = "the previous scoring") -> pd.DataFrame:
    """The total and the median MRR of the accounts in both scorings, this one's over the previous', as drift rows.

    Args:
        previous: account_id and mrr of the previous scoring; None or empty when there is none.
        current: account_id and mrr of this scoring.
        previous_label: how messages name the previous scoring, e.g. "the scoring of 2025-12-01".

    Returns:
        Two rows (total, median) in the drift table's columns; status `unchecked` when there is nothing to compare.
    """
    both = pd.DataFrame(columns=["mrr_previous", "mrr"]) if previous is None else previous[["account_id", "mrr"]].merge(
        current[["account_id", "mrr"]], on="account_id", suffixes=("_previous", "")).dropna()
    if both.empty:
        reason = "no previous scoring" if previous is None or previous.empty else "no account in both scorings"
        return pd.DataFrame([{"feature": row, "psi": float("nan"), "ratio": float("nan"), "status": "unchecked",
                              "reason": reason} for row in (MRR_TOTAL_ROW, MRR_MEDIAN_ROW)], columns=DRIFT_COLUMNS)
    rows = []
    for row, what, measure in ((MRR_TOTAL_ROW, "total", np.sum), (MRR_MEDIAN_ROW, "median", np.median)):
        before, now = float(measure(both.mrr_previous)), float(measure(both.mrr))
        ratio = now / before if before > 0 else float("nan")
        rows.append(_judge_mrr(row, what, ratio, len(both), previous_label, config))
    return pd.DataFrame(rows, columns=DRIFT_COLUMNS)


def stop_reasons(table: pd.DataFrame) -> list[str]:
    """The reason of every row of a drift table whose status is `stop`: each one stops the run."""
    return table.loc[table.status == "stop", "reason"].tolist()
