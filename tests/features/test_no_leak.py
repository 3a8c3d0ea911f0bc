"""The experiment never reaches the model: what the CS team did (cs_actions) and the arms the scorer assigned
(churn_playbook_assignments, churn_scores.arm) change no feature and no label, and no feature or label query names
those tables."""

from __future__ import annotations

from datetime import date, datetime

import ibis
import numpy as np
import pandas as pd
import pytest

from features.config import FeatureConfig, LabelConfig
from features.feature_table import compute_feature_table
from features.snapshots import build_labelled_population, build_snapshots
from features.sources import load_sources
from pipelines.synthetic.config import SimulationConfig
from pipelines.synthetic.generate import generate_warehouse

AS_OFS = [date(2024, 4, 1), date(2024, 5, 1), date(2024, 6, 1)]
DATA_END = datetime(2024, 9, 15)
CONFIG = FeatureConfig(core_events=["create_report", "run_automation"], value_events=["create_report"],
                       onboarding_milestones=["workspace_created", "first_report"])
LABEL = LabelConfig(horizon_days=60, grace_days=14)
EXPERIMENT_TABLES = ("cs_actions", "churn_playbook_assignments", "churn_scores")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    con = ibis.duckdb.connect(str(tmp_path_factory.mktemp("no_leak") / "warehouse.duckdb"), threads=1)
    for name, frame in generate_warehouse(SimulationConfig(accounts=60, months=9, seed=5,
                                                           start=date(2024, 1, 1))).items():
        con.create_table(name, frame)
    yield con
    con.disconnect()


def _model_inputs(con) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The feature table with its labels, and the labels with their churn dates, as training and outcomes read them."""
    sources = load_sources(con, {})
    grid = build_snapshots(sources, AS_OFS, LABEL, DATA_END)
    table, _ = compute_feature_table(sources, grid, AS_OFS, CONFIG)
    features = table.execute().sort_values(["as_of", "account_id"], ignore_index=True)
    labels = build_labelled_population(sources, AS_OFS, LABEL, DATA_END).execute()
    return features, labels.sort_values(["as_of", "account_id"], ignore_index=True)


def _experiment(con, rng: np.random.Generator, labels: pd.DataFrame) -> None:
    """An adversarial experiment: arms and actions that follow the label itself, written where a careless feature
    could find them."""
    rows = labels.sample(frac=0.7, random_state=int(rng.integers(1 << 30)))
    churned = rows["label"].fillna(0).to_numpy() == 1
    arms = np.where(churned, "holdout", "treatment")
    done = pd.to_datetime(rows["as_of"]) + pd.to_timedelta(rng.integers(0, 40, len(rows)), unit="D")
    actions = pd.DataFrame({"account_id": rows["account_id"].to_numpy(), "done_at": done.to_numpy(),
                            "playbook": rng.choice(["adoption_workshop", "onboarding_review"], len(rows)),
                            "action": "done", "owner": "CSM", "arm": arms})
    assignments = actions[["account_id", "playbook", "arm"]].assign(as_of=rows["as_of"].to_numpy(),
                                                                    assigned_at=pd.Timestamp("2024-06-02"))
    scores = rows[["account_id", "as_of"]].assign(churn_probability=churned * 0.9, arm=arms)
    for name, frame in (("cs_actions", actions), ("churn_playbook_assignments", assignments),
                        ("churn_scores", scores)):
        con.create_table(name, frame, overwrite=True)


def test_actions_and_arms_change_no_feature_and_no_label(warehouse):
    for name in EXPERIMENT_TABLES:
        if name in warehouse.list_tables():
            warehouse.drop_table(name)
    features, labels = _model_inputs(warehouse)
    assert labels["label"].notna().all() and (labels["label"] == 1).any()
    assert (features["label"].to_numpy() == labels["label"].to_numpy()).all()
    for seed in (1, 2):
        _experiment(warehouse, np.random.default_rng(seed), labels)
        assert load_sources(warehouse, {}).has("cs_actions")
        after_features, after_labels = _model_inputs(warehouse)
        pd.testing.assert_frame_equal(after_features, features)
        pd.testing.assert_frame_equal(after_labels, labels)


def test_no_feature_or_label_query_names_an_experiment_table(warehouse):
    _experiment(warehouse, np.random.default_rng(3), _model_inputs(warehouse)[1])
    sources = load_sources(warehouse, {})
    grid = build_snapshots(sources, AS_OFS, LABEL, DATA_END)
    table, _ = compute_feature_table(sources, grid, AS_OFS, CONFIG)
    sql = " ".join(str(ibis.to_sql(expr, dialect="duckdb")).lower() for expr in (
        table, build_labelled_population(sources, AS_OFS, LABEL, DATA_END)))
    assert "subscriptions" in sql and "events" in sql   # the check reads the right text
    for name in EXPERIMENT_TABLES:
        assert name not in sql, name
