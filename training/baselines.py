"""Baselines every model is reported beside: the rule-based health score (fitted in training/health.py) as a risk,
and a logistic regression."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits


def health_risk(score: pd.Series) -> np.ndarray:
    """The health score as a risk in [0, 1] (100 − score) / 100, for ranking metrics."""
    return ((100.0 - np.asarray(score, dtype=float)) / 100.0).clip(0, 1)


def fit_logistic_baseline(train: pd.DataFrame, features: list[str], seed: int) -> Pipeline:
    """A logistic regression on the same features: median-imputed with missing flags and scaled numbers,
    one-hot categories."""
    numeric = [f for f in features if pd.api.types.is_numeric_dtype(train[f])]
    categorical = [f for f in features if f not in numeric]
    prepare = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                                  StandardScaler()), numeric),
        ("categorical", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                      OneHotEncoder(handle_unknown="ignore")), categorical),
    ])
    model = Pipeline([("prepare", prepare),
                      ("model", LogisticRegression(C=0.5, max_iter=2000, random_state=seed))])
    # One BLAS thread: multi-threaded reductions change the last bits between identical runs.
    with threadpool_limits(limits=1):
        return model.fit(_as_text(train[features], categorical), train["label"].astype(int))


def predict_logistic(model: Pipeline, frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Churn probabilities of the logistic baseline."""
    categorical = [f for f in features if not pd.api.types.is_numeric_dtype(frame[f])]
    with threadpool_limits(limits=1):
        return model.predict_proba(_as_text(frame[features], categorical))[:, 1]


def _as_text(frame: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    # Categories go to the one-hot encoder as plain objects with NaN for missing, whatever their pandas dtype.
    out = frame.copy()
    for column in categorical:
        out[column] = out[column].astype(object).where(out[column].notna(), np.nan)
    return out
