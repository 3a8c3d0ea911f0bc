"""The experiment never reaches the model: what the CS team did at or after an as-of (cs_actions) and the arms the
scorer assigned (churn_playbook_assignments, churn_scores.arm) change no feature and no label at it. Features read
cs_actions only as touches before the as-of (when, and whether a holdout), never its playbook, action or owner;
labels never read it, and no query names the scorer's tables."""

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
SCORER_TABLES = ("churn_playbook_assignments", "churn_scores")
TOUCHES = ("days_since_cs_touch", "cs_touches_90d")


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


def _experiment(con, rng: np.random.Generator, labels: pd.DataFrame,
                done_from: datetime = datetime(2024, 6, 1)) -> None:
    """An adversarial experiment: arms and actions that follow the label itself, done from `done_from` on (by
    default the newest as-of: at or after every as-of), written where a careless feature could find them."""
    rows = labels.sample(frac=0.7, random_state=int(rng.integers(1 << 30)))
    churned = rows["label"].fillna(0).to_numpy() == 1
    arms = np.where(churned, "holdout", "treatment")
    done = pd.Series(pd.Timestamp(done_from) + pd.to_timedelta(rng.integers(0, 40, len(rows)), unit="D"))
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
        # With the table the touch features exist; every action lies at or after every as-of, so none is a touch.
        assert after_features["days_since_cs_touch"].isna().all() and (after_features["cs_touches_90d"] == 0).all()
        pd.testing.assert_frame_equal(after_features.drop(columns=list(TOUCHES)), features)
        pd.testing.assert_frame_equal(after_labels, labels)


def test_actions_before_an_as_of_are_touches_unless_held_back(warehouse):
    """Guard against a check that cannot fail: the same experiment done before the newest as-of reaches its touch
    features, and only through the treated (not held-back) rows."""
    labels = _model_inputs(warehouse)[1]
    _experiment(warehouse, np.random.default_rng(4), labels, done_from=datetime(2024, 5, 1))
    features = _model_inputs(warehouse)[0]
    newest = features[features["as_of"] == pd.Timestamp(AS_OFS[-1])]
    actions = warehouse.table("cs_actions").execute()
    treated = actions[(actions["arm"] == "treatment") & (actions["done_at"] < pd.Timestamp(AS_OFS[-1]))]
    counted = newest.set_index("account_id")["cs_touches_90d"]
    expected = treated.groupby("account_id").size().reindex(counted.index, fill_value=0)
    assert counted.sum() > 0 and (counted.to_numpy() == expected.to_numpy()).all()


def test_no_label_query_names_an_experiment_table_and_features_read_only_touches(warehouse):
    _experiment(warehouse, np.random.default_rng(3), _model_inputs(warehouse)[1])
    sources = load_sources(warehouse, {})
    grid = build_snapshots(sources, AS_OFS, LABEL, DATA_END)
    table, feature_set = compute_feature_table(sources, grid, AS_OFS, CONFIG)
    features = str(ibis.to_sql(table, dialect="duckdb")).lower()
    labels = str(ibis.to_sql(build_labelled_population(sources, AS_OFS, LABEL, DATA_END), dialect="duckdb")).lower()
    assert "subscriptions" in labels and "events" in features and "cs_actions" in features   # the right text
    for name in EXPERIMENT_TABLES:
        assert name not in labels, name
    for name in SCORER_TABLES:
        assert name not in features, name
    for column in ("playbook", "action", "owner"):   # what was done and by whom: never read
        assert f'"{column}"' not in features, column
    assert not [n for n in feature_set.names if "arm" in n.split("_")]   # the arm is no feature
