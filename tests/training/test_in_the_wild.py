"""The training report's "In the wild": churn_model_performance rows beside the validation figures, oldest first,
with a sentence on the newest; nothing read means a sentence, not a table."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from serving.outcomes import PERFORMANCE_COLUMNS
from training.report import build_in_the_wild


def _performance() -> pd.DataFrame:
    rows = [{"as_of": date(2024, 12, 1), "model_name": "churn-lightgbm", "model_version": "2", "accounts": 1200,
             "roc_auc": 0.79, "validation_roc_auc": 0.84},
            {"as_of": date(2024, 11, 1), "model_name": "churn-lightgbm", "model_version": "2", "accounts": 1180,
             "roc_auc": 0.83, "validation_roc_auc": 0.84}]
    return pd.DataFrame(rows).reindex(columns=PERFORMANCE_COLUMNS)


def test_rows_run_oldest_first_and_the_sentence_reads_the_newest_against_its_validation():
    wild = build_in_the_wild(_performance())
    assert [r["as_of"] for r in wild["rows"]] == ["2024-11-01", "2024-12-01"]
    assert wild["sentence"] == ("On its newest judged scoring (2024-12-01, 1,200 accounts), churn-lightgbm v2 reached "
                                "ROC-AUC 0.790 against 0.840 on the validation it was promoted on (-0.050).")


def test_without_validation_figures_the_sentence_says_only_what_happened():
    frame = _performance().assign(validation_roc_auc=np.nan)
    assert build_in_the_wild(frame)["sentence"].endswith("reached ROC-AUC 0.790.")


def test_no_table_and_an_empty_table_are_told_apart():
    assert build_in_the_wild(None)["rows"] is None
    empty = build_in_the_wild(pd.DataFrame(columns=PERFORMANCE_COLUMNS))
    assert empty["rows"] == [] and empty["sentence"] is None
