"""Evaluation metrics, tables and plots against values counted by hand on tiny arrays."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss as sklearn_log_loss

from training import plots
from training.evaluate import (
    calibration_table,
    evaluate_predictions,
    expected_calibration_error,
    gains_table,
    log_loss,
    segment_metrics,
    top_decile_capture,
    top_decile_lift,
)

# 20 rows ranked in row order (row 0 scores highest); churners at rows 0, 5, 10 and 15.
TWENTY_LABELS = np.array([1 if i % 5 == 0 else 0 for i in range(20)])
TWENTY_SCORES = np.linspace(1, 0, 20)


def test_top_decile_lift_and_capture_by_hand():
    # Top 10% of 20 rows = rows 0 and 1, holding 1 of the 4 churners: capture 1/4;
    # churn rate there 1/2 over the base rate 4/20 = 0.2 gives lift 2.5.
    assert top_decile_capture(TWENTY_LABELS, TWENTY_SCORES) == pytest.approx(0.25)
    assert top_decile_lift(TWENTY_LABELS, TWENTY_SCORES) == pytest.approx(2.5)
    metrics = evaluate_predictions(TWENTY_LABELS, TWENTY_SCORES)
    assert metrics["top_decile_capture"] == pytest.approx(0.25)
    assert metrics["top_decile_lift"] == pytest.approx(2.5)
    # Equal scores keep row order: the top decile is again rows 0 and 1.
    assert top_decile_capture(TWENTY_LABELS, np.full(20, 0.5)) == pytest.approx(0.25)
    # Reversed scores put rows 18 and 19 on top: no churner there.
    assert top_decile_lift(TWENTY_LABELS, TWENTY_SCORES[::-1]) == 0.0


def _capacity_rows() -> pd.DataFrame:
    a, b = pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01")
    return pd.DataFrame({
        "as_of": [a, b, a, a, b, a, a],
        "score": [0.9, 0.2, 0.8, 0.1, 0.05, 0.7, 0.7],
        "label": [1, 1, 0, 1, 0, 1, 0],
        "mrr": [100.0, 50.0, 300.0, 200.0, 80.0, 400.0, 10.0],
    })


def test_recall_precision_and_mrr_at_capacity_per_as_of():
    rows = _capacity_rows()
    metrics = evaluate_predictions(rows.label, rows.score, mrr=rows.mrr, groups=rows.as_of, capacity=3)
    # 2024-01 (5 rows) by score: r0 0.9, r2 0.8, r5 0.7, r6 0.7, r3 0.1 -> take r0, r2, r5 (r5 before r6 on the tie).
    # 2024-02 (2 rows, fewer than capacity 3) -> take both, r1 and r4.
    # Taken: r0 (churn), r2, r5 (churn), r1 (churn), r4 -> 3 churners caught among 5 rows taken.
    # Churners overall: r0, r1, r3, r5 = 4; their MRR 100 + 50 + 200 + 400 = 750, caught 100 + 50 + 400 = 550.
    assert metrics["recall_at_capacity"] == pytest.approx(3 / 4)
    assert metrics["precision_at_capacity"] == pytest.approx(3 / 5)
    assert metrics["mrr_captured_at_capacity"] == pytest.approx(550 / 750)


def test_capacity_without_groups_treats_all_rows_as_one_scoring():
    rows = _capacity_rows()
    metrics = evaluate_predictions(rows.label, rows.score, mrr=rows.mrr, capacity=3)
    # Top 3 overall: r0 (churn), r2, r5 (churn) -> 2 of 3 taken churn, 2 of 4 churners, MRR 500 of 750.
    assert metrics["precision_at_capacity"] == pytest.approx(2 / 3)
    assert metrics["recall_at_capacity"] == pytest.approx(2 / 4)
    assert metrics["mrr_captured_at_capacity"] == pytest.approx(500 / 750)
    assert "mrr_captured_at_capacity" not in evaluate_predictions(rows.label, rows.score, capacity=3)
    with pytest.raises(ValueError, match="capacity"):
        evaluate_predictions(rows.label, rows.score, capacity=0)


def test_metric_keys_grow_only_with_capacity_and_mrr():
    base = {"roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift", "top_decile_capture", "ece", "rows",
            "churn_rate"}
    rows = _capacity_rows()
    assert set(evaluate_predictions(rows.label, rows.score)) == base
    assert set(evaluate_predictions(rows.label, rows.score, mrr=rows.mrr)) == base
    assert set(evaluate_predictions(rows.label, rows.score, mrr=rows.mrr, capacity=2)) == base | {
        "precision_at_capacity", "recall_at_capacity", "mrr_captured_at_capacity"}


def test_calibration_table_and_ece_by_hand():
    labels = np.array([0, 1, 0, 1, 1, 1, 1])
    probabilities = np.array([0.1, 0.2, 0.25, 0.4, 0.45, 0.9, 1.0])
    table = calibration_table(labels, probabilities, bins=4)
    # [0, .25): 0.1, 0.2 -> mean 0.15, observed 1/2.   [.25, .5): 0.25, 0.4, 0.45 -> mean 1.1/3, observed 2/3.
    # [.5, .75): empty, omitted.                          [.75, 1]: 0.9, 1.0 -> mean 0.95, observed 1.
    assert table.bin_lower.tolist() == [0.0, 0.25, 0.75]
    assert table.bin_upper.tolist() == [0.25, 0.5, 1.0]
    assert table.rows.tolist() == [2, 3, 2]
    np.testing.assert_allclose(table.mean_predicted, [0.15, 1.1 / 3, 0.95])
    np.testing.assert_allclose(table.observed_rate, [0.5, 2 / 3, 1.0])
    # ECE = (2 * 0.35 + 3 * 0.3 + 2 * 0.05) / 7 = 1.7 / 7
    assert expected_calibration_error(labels, probabilities, bins=4) == pytest.approx(1.7 / 7)


def test_default_bins_put_an_edge_probability_in_the_upper_bin():
    table = calibration_table(np.array([0, 1]), np.array([0.3, 0.7]))
    assert table.bin_lower.tolist() == [0.3, 0.7] and table.bin_upper.tolist() == [0.4, 0.8]


def test_perfectly_calibrated_probabilities_have_zero_ece():
    # 1 churner in 4 rows at 0.25, 3 in 4 at 0.75.
    labels = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    probabilities = np.array([0.25] * 4 + [0.75] * 4)
    assert expected_calibration_error(labels, probabilities) == 0.0
    assert evaluate_predictions(labels, probabilities)["ece"] == 0.0


def test_log_loss_matches_sklearn_and_clips():
    labels = np.array([0, 1, 1, 0, 1])
    probabilities = np.array([0.1, 0.8, 0.35, 0.6, 0.99])
    expected = sklearn_log_loss(labels, probabilities)
    assert log_loss(labels, probabilities) == pytest.approx(expected)
    assert evaluate_predictions(labels, probabilities)["log_loss"] == pytest.approx(expected)
    # A churner predicted at 0 costs -log(1e-15), not infinity.
    assert log_loss(np.array([1]), np.array([0.0])) == pytest.approx(-math.log(1e-15))


def test_one_class_gives_nan_ranking_metrics_without_raising_or_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = evaluate_predictions(np.array([0, 0, 0]), np.array([0.1, 0.2, 0.3]), capacity=1)
    assert math.isnan(metrics["roc_auc"]) and math.isnan(metrics["pr_auc"])
    assert math.isnan(metrics["top_decile_lift"]) and math.isnan(metrics["recall_at_capacity"])
    assert metrics["brier"] == pytest.approx((0.01 + 0.04 + 0.09) / 3)
    assert metrics["precision_at_capacity"] == 0.0 and metrics["churn_rate"] == 0.0


def test_malformed_input_raises():
    with pytest.raises(ValueError, match="rows"):
        evaluate_predictions(np.array([0, 1]), np.array([0.5]))
    with pytest.raises(ValueError, match="0 or 1"):
        evaluate_predictions(np.array([0, np.nan]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evaluate_predictions(np.array([0, 1]), np.array([0.5, 1.5]))


def test_gains_table_by_hand():
    mrr = np.full(20, 10.0)
    mrr[15] = 70.0                               # churned MRR: 10 + 10 + 10 + 70 = 100
    table = gains_table(TWENTY_LABELS, TWENTY_SCORES, mrr=mrr)
    assert table.accounts.tolist() == list(range(2, 21, 2))   # 30% of 20 rows is 6, not 7
    np.testing.assert_allclose(table.share_of_accounts, np.arange(1, 11) / 10)
    # Churners at rows 0, 5, 10, 15 enter the top 2, 6, 12 and 16 rows.
    captured = [0.25, 0.25, 0.5, 0.5, 0.5, 0.75, 0.75, 1.0, 1.0, 1.0]
    np.testing.assert_allclose(table.share_of_churners_captured, captured)
    np.testing.assert_allclose(table.lift, np.array(captured) / table.share_of_accounts)
    np.testing.assert_allclose(table.share_of_churned_mrr_captured, [0.1, 0.1, 0.2, 0.2, 0.2, 0.3, 0.3, 1, 1, 1])
    last = table.iloc[-1]
    assert last.share_of_churners_captured == 1.0 and last.lift == 1.0
    assert table.lift.iloc[0] == pytest.approx(top_decile_lift(TWENTY_LABELS, TWENTY_SCORES))


def test_gains_capture_is_monotone_and_mrr_column_optional():
    rng = np.random.default_rng(0)
    labels, scores = (rng.random(57) < 0.3).astype(int), rng.random(57)
    table = gains_table(labels, scores, steps=7)
    assert "share_of_churned_mrr_captured" not in table
    assert (np.diff(table.share_of_churners_captured) >= 0).all()
    assert table.accounts.iloc[-1] == 57 and table.share_of_churners_captured.iloc[-1] == 1.0


def test_segment_metrics_by_hand():
    segments = ["Starter", "Scale", "Growth", "Scale", "Starter", "Scale", "Growth", "Scale", "Growth",
                "Starter", "Scale", "Growth", "Scale", "Growth"]
    labels = [0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    probabilities = [0.2, 0.9, 0.1, 0.1, 0.6, 0.7, 0.1, 0.3, 0.1, 0.4, 0.2, 0.1, 0.5, 0.1]
    table = segment_metrics(np.array(labels), np.array(probabilities), segments, min_rows=5).set_index("segment")
    assert table.index.tolist() == ["Growth", "Scale", "Starter"]
    assert table.rows.tolist() == [5, 6, 3]
    np.testing.assert_allclose(table.churn_rate, [0.0, 2 / 6, 1 / 3])
    # Growth: 5 rows but no churner -> NaN; Starter: 3 rows < min_rows -> NaN though both classes are present.
    # Scale: churners at 0.9 and 0.7 outrank every non-churner (0.1, 0.3, 0.2, 0.5) -> AUC 1.
    assert math.isnan(table.roc_auc["Growth"]) and math.isnan(table.roc_auc["Starter"])
    assert table.roc_auc["Scale"] == 1.0
    np.testing.assert_allclose(table.brier, [0.01, (0.01 + 0.01 + 0.09 + 0.09 + 0.04 + 0.25) / 6,
                                             (0.04 + 0.16 + 0.16) / 3])
    np.testing.assert_allclose(table.mean_predicted, [0.1, 2.7 / 6, 0.4])


PLOTS = [plots.plot_roc, plots.plot_precision_recall, plots.plot_calibration, plots.plot_gains]


@pytest.mark.parametrize("plot", PLOTS, ids=lambda f: f.__name__)
def test_plots_return_the_same_png_for_the_same_input(plot):
    rows = _capacity_rows()
    curves = {"model": (rows.label, rows.score), "baseline": (rows.label.to_numpy(), np.full(7, 0.5))}
    png = plot(curves)
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    assert plot(curves) == png


@pytest.mark.parametrize("plot", PLOTS, ids=lambda f: f.__name__)
def test_plots_draw_a_one_class_curve_and_refuse_no_curves(plot):
    assert plot({"no churners": (np.zeros(4, dtype=int), np.array([0.1, 0.2, 0.3, 0.4]))}).startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="empty"):
        plot({})
