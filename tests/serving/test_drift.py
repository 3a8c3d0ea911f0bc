"""Drift guard: reference distributions, PSI by hand, the as-of clocks, per-feature stops, the money check, messages."""

from __future__ import annotations

import math

import ibis
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from features.catalog import AS_OF_CLOCKS, CATALOG
from serving.config import DriftConfig
from serving.drift import (
    MRR_MEDIAN_ROW,
    MRR_TOTAL_ROW,
    SUMMARY_ROW,
    compare_mrr,
    compute_drift,
    psi,
    reference_distribution,
    sampling_psi,
    stop_reasons,
    summarise_drift,
)
from serving.writeback import add_missing_columns, read_previous_scores

CONFIG = DriftConfig()   # warn 0.1, stop 0.25, feature_stop 2, median_ratio_stop 5, mrr_ratio_stop 3


def test_psi_by_hand():
    # (0.5-0.25)·ln(0.5/0.25) + (0.5-0.75)·ln(0.5/0.75)
    assert psi(np.array([0.25, 0.75]), np.array([0.5, 0.5])) == pytest.approx(
        0.25 * math.log(2) - 0.25 * math.log(2 / 3))
    assert psi(np.array([0.2, 0.8]), np.array([0.2, 0.8])) == 0.0


def test_sampling_noise_by_hand():
    # Three occupied bins of four, 100 rows now against 400 in the reference: (3 - 1) · (1/100 + 1/400)
    assert sampling_psi(np.array([0.5, 0.3, 0.2, 0.0]), 100, 400) == pytest.approx(0.025)
    assert sampling_psi(np.array([0.5, 0.5]), 100, None) == 0.0      # a reference that did not keep its size


def test_same_distribution_is_ok_and_a_shift_stops():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"events_30d": rng.poisson(40, 5000).astype(float), "plan": rng.choice(["A", "B"], 5000)})
    reference = reference_distribution(train, ["events_30d", "plan"])
    used = {"events_30d": 1.0, "plan": 1.0}
    same = pd.DataFrame({"events_30d": rng.poisson(40, 3000).astype(float), "plan": rng.choice(["A", "B"], 3000)})
    assert set(compute_drift(reference, same, used, CONFIG).status) == {"ok"}
    shifted = same.assign(events_30d=same.events_30d * 3, plan="C")
    drift = compute_drift(reference, shifted, used, CONFIG).set_index("feature")
    assert drift.loc["events_30d", "status"] == "stop" and drift.loc["plan", "status"] == "stop"
    assert drift.loc["events_30d", "ratio"] == pytest.approx(3.0)


def test_missing_values_have_their_own_bin():
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 50})
    reference = reference_distribution(train, ["x"], bins=4)
    gone = compute_drift(reference, pd.DataFrame({"x": [np.nan] * 100}), {"x": 1.0}, CONFIG)
    assert gone.status.iloc[0] == "stop"


def test_thresholds_must_be_ordered_and_ratios_above_one():
    with pytest.raises(ValueError, match="stop must be at least"):
        DriftConfig(warn=0.3, stop=0.2)
    for key in ("median_ratio_stop", "mrr_ratio_stop"):
        with pytest.raises(ValidationError, match=key):
            DriftConfig(**{key: 1.0})


def test_the_summary_weighs_each_feature_by_the_models_reliance_on_it():
    drift = pd.DataFrame({"feature": ["a", "b"], "psi": [1.0, 0.0], "status": ["warn", "ok"]})
    config = DriftConfig(warn=0.1, stop=0.25)
    summary = summarise_drift(drift, {"a": 1.0, "b": 9.0}, config)
    assert summary["feature"] == SUMMARY_ROW and summary["psi"] == pytest.approx(0.1) and summary["status"] == "ok"
    assert summarise_drift(drift, {"a": 3.0, "b": 1.0}, config)["status"] == "stop"      # 0.75
    assert summarise_drift(drift, {}, config)["psi"] == pytest.approx(0.5)                # no importances: equal


# A tiny population: tenure grows with the as-of, session length is in minutes, MRR is money.
def _accounts(n: int = 400, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"account_id": [f"a{i}" for i in range(n)],
                         "tenure_days": rng.integers(30, 900, n).astype(float),
                         "days_since_last_activity": rng.choice([1.0, 1.0, 1.0, 2.0, 4.0, 12.0, 40.0], n),
                         "session_minutes_30d": rng.gamma(4.0, 1.5, n),
                         "mrr": rng.gamma(2.0, 150.0, n)})


FEATURES = ["tenure_days", "days_since_last_activity", "session_minutes_30d", "mrr"]
CLOCKS = {"tenure_days": "age", "days_since_last_activity": "since"}
IMPORTANCE = {"tenure_days": 0.4, "days_since_last_activity": 0.3, "session_minutes_30d": 0.01, "mrr": 0.2}


def _reference() -> dict:
    return reference_distribution(_accounts(), FEATURES, clocks=CLOCKS)


def _check(frame: pd.DataFrame, previous: pd.DataFrame | None = None) -> pd.DataFrame:
    drift = compute_drift(_reference(), frame, IMPORTANCE, CONFIG)
    summary = pd.DataFrame([summarise_drift(drift, IMPORTANCE, CONFIG)])
    money = compare_mrr(_accounts() if previous is None else previous, frame, CONFIG, "the scoring of 2025-12-01")
    return pd.concat([drift, summary, money], ignore_index=True).set_index("feature")


def test_unchanged_data_is_ok_everywhere():
    table = _check(_accounts())
    assert set(table.status) == {"ok"}, table
    assert stop_reasons(table.reset_index()) == []
    assert table.loc[MRR_TOTAL_ROW, "ratio"] == pytest.approx(1.0)


def test_a_tenure_like_feature_shifted_by_the_as_of_gap_is_not_drift():
    # Scored 120 days after the reference window: every account is 120 days older, and nothing else changed.
    later = _accounts().assign(tenure_days=lambda f: f.tenure_days + 120)
    table = _check(later)
    assert table.loc["tenure_days", "status"] == "ok" and table.loc["tenure_days", "psi"] == 0.0
    assert np.isnan(table.loc["tenure_days", "ratio"])            # clocks have no median-ratio check
    # Without the clock, the same shift would be measured as drift.
    plain = compute_drift(reference_distribution(_accounts(), ["tenure_days"]), later, IMPORTANCE, CONFIG)
    assert plain.psi.iloc[0] > 0.1


def test_a_weekday_shift_of_days_since_is_not_drift():
    # Scored on a Monday: the accounts active on Friday show 3 days instead of 1.
    monday = _accounts().assign(days_since_last_activity=lambda f: f.days_since_last_activity.replace(1.0, 3.0))
    assert _check(monday).loc["days_since_last_activity", "status"] == "ok"
    plain = compute_drift(reference_distribution(_accounts(), ["days_since_last_activity"]), monday, IMPORTANCE,
                          CONFIG)
    assert plain.psi.iloc[0] > 2.0                                 # day-level bins called this a stop


def test_a_unit_error_on_a_feature_of_small_weight_stops():
    # Durations loaded in seconds where minutes were expected: × 60 on a feature with 1% of the model's reliance.
    table = _check(_accounts().assign(session_minutes_30d=lambda f: f.session_minutes_30d * 60))
    row = table.loc["session_minutes_30d"]
    assert row.status == "stop" and row.ratio == pytest.approx(60, rel=0.05) and row.psi > CONFIG.feature_stop
    assert table.loc[SUMMARY_ROW, "psi"] < CONFIG.stop             # the weighted summary alone would publish
    assert set(table.drop(index="session_minutes_30d").status) == {"ok"}


def test_an_unused_feature_only_warns():
    frame = _accounts().assign(session_minutes_30d=lambda f: f.session_minutes_30d * 60)
    drift = compute_drift(_reference(), frame, IMPORTANCE | {"session_minutes_30d": 0.0}, CONFIG).set_index("feature")
    assert drift.loc["session_minutes_30d", "status"] == "warn"
    assert "does not use it" in drift.loc["session_minutes_30d", "reason"]


def test_a_median_ratio_alone_stops_either_way():
    # A tenth of the values (cents read as dollars the other way) moves the median 10× down; PSI would say so too,
    # so the ratio is checked alone against a wide PSI line.
    config = DriftConfig(feature_stop=1e6)
    frame = _accounts().assign(mrr=lambda f: f.mrr / 10)
    drift = compute_drift(_reference(), frame, IMPORTANCE, config).set_index("feature")
    assert drift.loc["mrr", "status"] == "stop" and "1/10 of the reference median" in drift.loc["mrr", "reason"]


def test_no_median_ratio_on_changes_or_a_median_falling_to_zero():
    train = pd.DataFrame({"events_trend": np.linspace(-0.5, 0.6, 200), "tickets_7d": [0.0] * 90 + [1.0] * 110})
    reference = reference_distribution(train, ["events_trend", "tickets_7d"])
    now = pd.DataFrame({"events_trend": np.linspace(-0.5, 0.6, 200) * 0.1 + 0.2,    # median 0.025 → 0.2
                        "tickets_7d": [0.0] * 110 + [1.0] * 90})                      # median 1 → 0
    drift = compute_drift(reference, now, {"events_trend": 1.0, "tickets_7d": 1.0}, CONFIG)
    assert drift.ratio.isna().all()


def test_mrr_ten_times_the_previous_scoring_stops():
    table = _check(_accounts().assign(mrr=lambda f: f.mrr * 10))
    for row in (MRR_TOTAL_ROW, MRR_MEDIAN_ROW):
        assert table.loc[row, "status"] == "stop" and table.loc[row, "ratio"] == pytest.approx(10)
    assert "10× that of the scoring of 2025-12-01" in table.loc[MRR_TOTAL_ROW, "reason"]


def test_mrr_compares_only_the_accounts_in_both_scorings():
    previous = pd.DataFrame({"account_id": ["a", "b", "gone"], "mrr": [100.0, 200.0, 9000.0]})
    now = pd.DataFrame({"account_id": ["a", "b", "new"], "mrr": [110.0, 220.0, 5.0]})
    money = compare_mrr(previous, now, CONFIG).set_index("feature")
    assert money.ratio.tolist() == pytest.approx([1.1, 1.1]) and set(money.status) == {"ok"}


def test_mrr_without_a_previous_scoring_is_unchecked():
    now = _accounts()
    assert set(compare_mrr(None, now, CONFIG).status) == {"unchecked"}
    other = pd.DataFrame({"account_id": ["x"], "mrr": [1.0]})
    assert compare_mrr(other, now, CONFIG).reason.iloc[0] == "no account in both scorings"


def test_the_message_names_every_reason_and_stop_only_where_the_run_stops():
    broken = _accounts().assign(session_minutes_30d=lambda f: f.session_minutes_30d * 60, mrr=lambda f: f.mrr * 10)
    table = _check(broken)
    reasons = stop_reasons(table.reset_index())
    assert len(reasons) == 5, reasons    # session length, the mrr feature, the summary, total MRR, median MRR
    assert any(r.startswith("feature session_minutes_30d: ") and "median 60" in r for r in reasons)
    assert any(r.startswith("feature mrr: ") for r in reasons)
    assert any(r.startswith("importance-weighted PSI") and "scoring.drift.stop" in r for r in reasons)
    assert sum(r.startswith("MRR of the 400 accounts in both scorings") for r in reasons) == 2
    # Every row that is not a stop says why it is not ok without the word "stop" as its verdict.
    assert set(table.status) <= {"ok", "warn", "stop"}
    assert table[table.status == "ok"].reason.eq("").all()


def test_the_catalog_marks_the_as_of_clocks():
    clocks = {spec.name: spec.as_of_clock for spec in CATALOG if spec.as_of_clock}
    assert clocks == {"tenure_days": "age", "days_since_last_activity": "since", "days_since_last_ticket": "since",
                      "days_since_last_response": "since", "days_to_renewal": "until",
                      "days_since_admin_active": "since", "days_since_cs_touch": "since"}
    assert all(c in AS_OF_CLOCKS for c in clocks.values())
    assert all(spec.unit == "days" for spec in CATALOG if spec.as_of_clock)


def test_the_previous_scoring_is_the_newest_at_or_before_the_as_of_and_old_drift_tables_gain_columns():
    con = ibis.duckdb.connect()
    assert read_previous_scores(con, pd.Timestamp("2025-03-01").date()) == (None, None)
    con.create_table("churn_scores", pd.DataFrame({
        "account_id": ["a", "b", "a"], "mrr": [10.0, 20.0, 11.0],
        "as_of": pd.to_datetime(["2025-01-01", "2025-01-01", "2025-02-01"]).date}))
    as_of, rows = read_previous_scores(con, pd.Timestamp("2025-02-01").date())   # a re-run: what it replaces
    assert str(as_of) == "2025-02-01" and rows.mrr.tolist() == [11.0]
    as_of, rows = read_previous_scores(con, pd.Timestamp("2025-01-20").date())
    assert str(as_of) == "2025-01-01" and sorted(rows.account_id) == ["a", "b"]
    assert read_previous_scores(con, pd.Timestamp("2024-12-01").date()) == (None, None)

    con.create_table("churn_drift", pd.DataFrame({"feature": ["x"], "psi": [0.1]}))
    schema = ibis.schema({"feature": "string", "psi": "float64", "ratio": "float64", "reason": "string"})
    assert add_missing_columns(con, "churn_drift", schema) == ["ratio", "reason"]
    assert add_missing_columns(con, "churn_drift", schema) == []
    assert con.table("churn_drift").execute().ratio.isna().all()
