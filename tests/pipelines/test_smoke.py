"""The whole pipeline on a small simulated warehouse: simulate → train → score (twice) → features.

The module trains once (`trained`); each test starts from that trained project, whatever ran before it. The tests
that add to it leave what the others check as it was: a retraining on the same data keeps version 1 champion, and
scoring and the feature table each replace their own rows.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.e2e import MEDIUM, Project, churn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(make_project) -> tuple[Project, str]:
    """A small simulated warehouse with its first model trained (the champion, version 1), and what train printed."""
    project = make_project(simulation=MEDIUM, name="smoke")
    return project, project.churn("train")


def test_simulate_train_score_end_to_end(trained):
    project, first_training = trained
    assert "no champion yet" in first_training

    def roc_auc(name: str) -> float:
        return float(next(line for line in first_training.splitlines() if line.strip().startswith(name))
                     .split(name)[1].split()[0])

    # The fair ceiling sits between the model and the oracle that knows the future (a fixed seed: no flakiness).
    hindsight, nowcast, model = roc_auc("hindsight oracle"), roc_auc("nowcast oracle"), roc_auc("lightgbm (calibrated)")
    assert model < nowcast < hindsight and nowcast > 0.6

    project.churn("score")
    scores = project.query("SELECT * FROM churn_scores")
    active = project.query(f"""
        SELECT COUNT(DISTINCT account_id) AS n FROM subscriptions
        WHERE start_at <= DATE '{scores.as_of[0]:%Y-%m-%d}' AND NOT COALESCE(is_trial, false)
          AND (end_at IS NULL OR end_at > DATE '{scores.as_of[0]:%Y-%m-%d}')""").n[0]
    assert len(scores) == active and scores.account_id.is_unique
    assert scores.churn_probability.between(0, 1).all()
    assert (scores.model_version == "1").all() and scores.top_reasons.str.len().gt(0).any()

    project.churn("score")
    again = project.query("SELECT * FROM churn_scores")
    pd.testing.assert_frame_equal(again.drop(columns="scored_at"), scores.drop(columns="scored_at"))
    assert len(project.query("SELECT * FROM churn_scores_latest")) == len(scores)
    # A re-run replaces the drivers: one row per account and feature, each cause rank once.
    drivers = project.query("SELECT account_id, as_of, feature, rank, role FROM churn_score_drivers")
    assert not drivers.duplicated(["account_id", "as_of", "feature"]).any()
    assert not drivers.dropna(subset=["rank"]).duplicated(["account_id", "as_of", "rank"]).any()
    assert set(drivers.role) == {"cause", "context"} and drivers[drivers.role == "context"]["rank"].isna().all()


def test_features_writes_the_feature_table(trained):
    project, _ = trained
    project.churn("features")
    table = project.query("SELECT * FROM churn_features")
    assert not table.duplicated(["account_id", "as_of"]).any()
    assert {"label", "mrr", "active_users_30d", "events_trend", "open_tickets", "plan", "last_nps_category",
            "onboarding_share"} <= set(table.columns)
    assert set(table.plan.dropna()) <= {"Starter", "Growth", "Scale", "Enterprise", "Add-on"}
    assert table.label.notna().any() and table.label.isna().any()


def test_features_after_a_params_change_rebuild_the_grid_and_refuse_one_as_of(trained):
    """The feature table's columns follow the params: a grid run with another window rebuilds it whole (no column
    or as-of left from the old set), and one as-of with the old params is then refused rather than mixed in."""
    project, _ = trained
    project.churn("features")
    before = project.query("SELECT * FROM churn_features")
    wider = project.variant("wider.yaml", {"features": {"windows": [7, 30, 90, 180]}})

    assert "(rebuilt: its columns were another feature set's)" in churn(wider, "features")
    rebuilt = project.query("SELECT * FROM churn_features")
    assert {"active_days_180d", "events_180d"} <= set(rebuilt.columns) and set(before.columns) < set(rebuilt.columns)
    # A 180-day window needs more history, so its grid starts later: no row of an older as-of is left behind.
    assert set(rebuilt.as_of) < set(before.as_of) and not rebuilt.duplicated(["account_id", "as_of"]).any()

    refused = project.churn("features", "--as-of", f"{before.as_of.max():%Y-%m-%d}", expect=1)
    assert "error: churn_features: holds column(s) these params do not compute: active_days_180d" in refused
    assert "without --as-of to rebuild it" in refused
    pd.testing.assert_frame_equal(project.query("SELECT * FROM churn_features"), rebuilt)
