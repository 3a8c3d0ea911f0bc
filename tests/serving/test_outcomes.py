"""The pure pieces of `churn outcomes` on tiny frames: when a scoring matures, where a recorded arm lands, which
arm wins, and the horizon's edges for missed churns."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd

from features.config import LabelConfig
from serving.outcomes import (
    arms_from_actions,
    find_missed,
    known_from,
    merge_assignments,
    place_on_grid,
    split_matured,
)

LABEL = LabelConfig(horizon_days=60, grace_days=14)
GRID = [date(2024, 7, 1), date(2024, 8, 1), date(2024, 9, 1)]


def test_a_scoring_matures_when_horizon_plus_grace_have_passed_by_the_data_end():
    assert known_from(date(2024, 8, 1), LABEL) == date(2024, 10, 14)
    matured, pending = split_matured([date(2024, 8, 1), pd.Timestamp("2024-08-02"), date(2024, 8, 1)], LABEL,
                                     datetime(2024, 10, 14))
    assert matured == [date(2024, 8, 1)] and pending == [(date(2024, 8, 2), date(2024, 10, 15))]
    aware = datetime(2024, 10, 14, tzinfo=pd.Timestamp("2024-01-01", tz="UTC").tzinfo)
    assert split_matured([date(2024, 8, 1)], LABEL, aware)[0] == [date(2024, 8, 1)]


def test_a_time_lands_on_the_newest_grid_as_of_at_or_before_its_day():
    times = [pd.Timestamp("2024-06-30 23:00"), pd.Timestamp("2024-07-01"), pd.Timestamp("2024-08-31 23:59"),
             pd.Timestamp("2024-12-01")]
    assert place_on_grid(times, GRID) == [None, date(2024, 7, 1), date(2024, 8, 1), date(2024, 9, 1)]


def test_recorded_arms_take_the_first_row_per_account_as_of_and_playbook():
    actions = pd.DataFrame({
        "account_id": ["a", "a", "b", "c", "d", "e"],
        "done_at": pd.to_datetime(["2024-07-09", "2024-07-03", "2024-07-05", "2024-08-02", "2024-06-01",
                                   "2024-07-02"]),
        "playbook": [None, None, None, None, None, None],
        "action": ["call", "call", "call", None, "call", "call"],
        "arm": ["holdout", "Treatment", "control", "holdout", "treatment", None]})
    recorded = arms_from_actions(actions, GRID)
    # a: its first row in July (treatment); b: an unknown arm; c: no playbook or action; d: before the grid;
    # e: no arm (an action, not an experiment record).
    assert recorded[["account_id", "as_of", "playbook", "arm"]].values.tolist() == [
        ["a", date(2024, 7, 1), "call", "treatment"]]
    assert arms_from_actions(actions.drop(columns="arm"), GRID).empty and arms_from_actions(None, GRID).empty


def test_the_scorers_arm_wins_over_a_recorded_one_for_the_same_account_and_as_of():
    scoring = pd.DataFrame({"account_id": ["a"], "as_of": [pd.Timestamp("2024-07-01")], "playbook": ["p"],
                            "arm": ["holdout"]})
    recorded = pd.DataFrame({"account_id": ["a", "b"], "as_of": [date(2024, 7, 1)] * 2, "playbook": ["q", "q"],
                             "arm": ["treatment", "treatment"], "done_at": pd.to_datetime(["2024-07-02"] * 2)})
    merged = merge_assignments(scoring, recorded)
    assert merged.values.tolist() == [["a", date(2024, 7, 1), "p", "holdout", "scoring"],
                                      ["b", date(2024, 7, 1), "q", "treatment", "cs_actions"]]


def test_a_churn_belongs_to_the_scorings_whose_horizon_holds_it():
    scores = pd.DataFrame({"account_id": ["a", "a", "a"], "as_of": [date(2024, 7, 1), date(2024, 8, 1),
                                                                     date(2024, 8, 30)],
                           "churn_probability": [0.5, 0.1, 0.2], "risk_tier": ["high", "low", "medium"],
                           "mrr": [10.0, 10.0, 10.0], "top_reasons": ["r1", "r2", "r3"]})
    # 2024-08-30 is exactly 60 days after 07-01: inside its horizon (as_of, as_of + 60 days]; and at 08-30 itself
    # it is no churn "after" that scoring.
    churns = pd.DataFrame({"account_id": ["a"], "churn_at": [pd.Timestamp("2024-08-30")]})
    missed = find_missed(scores, churns, "high", 60)
    assert missed[["scorings", "missed", "last_tier", "lead_days"]].values.tolist() == [[2, False, "low", 60]]
    assert find_missed(scores.assign(risk_tier="low"), churns, "high", 60).missed.tolist() == [True]
    assert find_missed(scores, churns.iloc[:0], "high", 60).empty
