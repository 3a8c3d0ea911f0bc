"""Value realised, champion, comment and CS-touch features on a tiny hand-built warehouse, with values computed by
hand; rows at the as-of change nothing, and a warehouse without the new columns builds the features it built before.
"""

from __future__ import annotations

import socket
from datetime import date

import ibis
import numpy as np
import pandas as pd
import pytest

from features.catalog import CHAMPIONS, REALISED, TOUCHES, WORDS, expand_catalog
from features.config import FeatureConfig
from features.feature_table import compute_feature_table
from features.sources import load_sources
from features.words import score_sentiment
from tests.conftest import tiny_accounts, ts

AS_OF = "2024-03-01"  # 2024 is a leap year: February has 29 days
CONFIG = FeatureConfig(windows=[7, 30], trend_window_days=30, outcome_events={"won": ["win"], "lost": ["lose"]},
                       outcome_window_days=30, survey_window_days=180, admin_active_days=30, admin_lost_days=90,
                       touch_window_days=90)
NEW = {s.name for s in expand_catalog(REALISED + CHAMPIONS + WORDS + TOUCHES, CONFIG.windows_by_kind())}

EVENTS = [  # (account, at, name, user, value)
    ("a", "2024-02-28 10:00", "win", "u3", 50.0),      # in every window
    ("a", "2024-02-10 10:00", "win", "u3", 30.0),      # in the 30 days, not the 7
    ("a", "2024-02-15 10:00", "lose", "u3", 1000.0),   # lost: not value realised
    ("a", "2024-01-20 10:00", "win", "u2", 20.0),      # the 30 days before
    ("a", "2024-01-05 10:00", "lose", "u2", None),     # the 30 days before
    ("a", "2024-01-25 10:00", "create_report", "u2", 5.0),   # an amount on another event counts too
    ("a", "2023-12-01 10:00", "win", "u2", 7.0),       # first won outcome: 183 days after 2023-06-01
    ("a", "2024-02-20 09:00", "login", "u1", None),    # u1 (admin) active 10 days before
    ("a", "2024-02-29 09:00", "login", "u3", None),    # u3 is a member
    ("a", "2024-02-25 09:00", "login", "u4", None),    # u4's row says admin, but it is created at the as-of
    ("b", "2024-02-20 09:00", "login", "v1", None),
]
AT_AS_OF = [("a", "2024-03-01 00:00", "win", "u1", 999.0), ("a", "2024-03-01 08:00", "lose", "u2", 5.0),
            ("a", "2024-03-01 00:00", "login", "u2", None)]
USERS = [("u1", "a", "2023-06-01", "admin"), ("u2", "a", "2023-07-01", " Owner"), ("u3", "a", "2023-07-01", "member"),
         ("u4", "a", "2024-03-01", "admin"), ("v1", "b", "2023-07-01", "member")]
SURVEYS = [  # (response, account, at, comment)
    ("r1", "a", "2024-01-10 10:00", "Terrible, the exports keep failing."),
    ("r2", "a", "2024-02-20 10:00", "Great product, love it."),      # the latest comment
    ("r3", "a", "2024-02-21 10:00", None),                          # no comment
    ("r4", "a", "2024-02-22 10:00", "   "),                         # an empty one
    ("r5", "a", "2024-03-01 00:00", "Awful, awful, awful."),        # at the as-of: never read
]
ACTIONS = [  # (account, done, arm)
    ("a", "2024-02-01 10:00", "treatment"),
    ("a", "2024-02-20 10:00", "HOLDOUT"),     # held back: nothing was done
    ("a", "2023-10-01 10:00", None),          # a touch before the 90 days
    ("a", "2024-03-01 00:00", "treatment"),   # at the as-of: never read
]

EXPECTED_A = {
    "value_realised_7d": 50.0, "value_realised_30d": 80.0,
    "value_realised_trend": 80.0 / 25.0 - 1.0,           # 01-20 win 20 + 01-25 amount 5 in the 30 days before
    "value_per_mrr": 0.8,                                # 80 over MRR 100
    "outcome_success_rate_30d": 2 / 3, "outcome_success_change_30d": (2 / 3 - 0.5) * 100, "outcomes_30d": 3.0,
    "days_to_first_outcome": 183.0,
    "days_since_admin_active": 10.0, "admin_active_share_30d": 0.5, "admins_lost_90d": 1.0,   # u1 active, u2 lost
    "negative_comment_share_180d": 0.5,
    "days_since_cs_touch": 29.0, "cs_touches_90d": 1.0,
}
EXPECTED_B = {
    "value_realised_7d": 0.0, "value_realised_30d": 0.0, "value_realised_trend": None, "value_per_mrr": 0.0,
    "outcome_success_rate_30d": None, "outcome_success_change_30d": None, "outcomes_30d": 0.0,
    "days_to_first_outcome": None, "days_since_admin_active": None, "admin_active_share_30d": None,
    "admins_lost_90d": 0.0, "negative_comment_share_180d": None, "last_comment_sentiment": None,
    "days_since_cs_touch": None, "cs_touches_90d": 0.0,
}


def _tables(events=EVENTS, surveys=SURVEYS, actions=ACTIONS, users=USERS) -> dict[str, pd.DataFrame]:
    account, at, name, user, value = zip(*events, strict=True)
    response, s_account, responded, comment = zip(*surveys, strict=True)
    a_account, done, arm = zip(*actions, strict=True)
    user_id, u_account, created, role = zip(*users, strict=True)
    return {
        "accounts": tiny_accounts("a", "b"),
        "subscriptions": pd.DataFrame({"account_id": ["a", "b"], "start_at": ts("2023-06-01", "2023-06-01"),
                                       "end_at": ts(None, None), "mrr": [100.0, 50.0]}),
        "events": pd.DataFrame({"account_id": list(account), "event_at": ts(*at), "event_name": list(name),
                                "user_id": list(user), "value": pd.Series(value, dtype="float64")}),
        "users": pd.DataFrame({"user_id": list(user_id), "account_id": list(u_account), "created_at": ts(*created),
                               "role": list(role)}),
        "surveys": pd.DataFrame({"response_id": list(response), "account_id": list(s_account),
                                 "responded_at": ts(*responded), "survey_type": "nps", "score": 8.0,
                                 "comment": pd.Series(comment, dtype=object)}),
        "cs_actions": pd.DataFrame({"account_id": list(a_account), "done_at": ts(*done), "action": "call",
                                    "arm": pd.Series(arm, dtype=object)}),
    }


def _features(load_tables, tables: dict[str, pd.DataFrame], config: FeatureConfig = CONFIG):
    con = load_tables(**tables)
    for name in {"users", "surveys", "cs_actions"} - set(tables):
        if name in con.list_tables():
            con.drop_table(name)
    grid = ibis.memtable(pd.DataFrame({"account_id": ["a", "b"], "as_of": ts(AS_OF, AS_OF)}))
    table, feature_set = compute_feature_table(load_sources(con, {}), grid, [date(2024, 3, 1)], config)
    return table.execute().sort_values("account_id").set_index("account_id"), feature_set


def _check(row: pd.Series, expected: dict) -> None:
    for name, value in expected.items():
        if value is None:
            assert pd.isna(row[name]), name
        else:
            assert row[name] == pytest.approx(value), name


def test_every_new_feature_by_hand(load_tables):
    out, feature_set = _features(load_tables, _tables())
    assert set(feature_set.names) >= NEW
    _check(out.loc["a"], EXPECTED_A)
    _check(out.loc["b"], EXPECTED_B)
    assert out.loc["a", "last_comment_sentiment"] == pytest.approx(score_sentiment(["Great product, love it."])[0])
    assert out.loc["a", "last_comment"] == "Great product, love it."   # the words the reason quotes
    assert "last_comment" not in feature_set.names                      # context for the reason, not a feature


def test_rows_at_the_as_of_change_nothing_and_rows_before_it_do(load_tables):
    base, _ = _features(load_tables, _tables())
    later = _tables(events=EVENTS + AT_AS_OF, surveys=[*SURVEYS[:-1], ("r5", "a", "2024-03-01 00:00", "Love it!")],
                    actions=[*ACTIONS[:-1], ("a", "2024-03-01 00:00", None), ("a", "2024-03-02", "treatment")],
                    users=[*USERS[:3], ("u4", "a", "2024-03-01", "member"), ("u5", "a", "2024-03-05", "owner"),
                           USERS[4]])
    pd.testing.assert_frame_equal(_features(load_tables, later)[0], base)
    # Control: the same changes a day earlier do reach the features.
    earlier = _tables(events=[*EVENTS, ("a", "2024-02-29 23:00", "lose", "u1", 5.0)],
                      surveys=[*SURVEYS, ("r6", "a", "2024-02-29 23:00", "Awful, awful, awful.")],
                      actions=[*ACTIONS, ("a", "2024-02-29 23:00", "treatment")])
    changed = _features(load_tables, earlier)[0].loc["a"]
    assert changed["outcomes_30d"] == 4.0 and changed["cs_touches_90d"] == 2.0
    assert changed["days_since_cs_touch"] == 1.0 and changed["last_comment_sentiment"] < -0.5


def test_without_the_settings_and_columns_the_new_features_are_left_out(load_tables):
    no_outcomes = CONFIG.model_copy(update={"outcome_events": FeatureConfig().outcome_events})
    out, feature_set = _features(load_tables, _tables(), no_outcomes)
    outcome_names = {n for n in NEW if "outcome" in n}
    assert not outcome_names & set(feature_set.names)
    assert feature_set.left_out["days_to_first_outcome"] == ["features.outcome_events"]
    # Amounts still count without outcome events; with no event named lost, the lost deal's amount counts too.
    assert out.loc["a", "value_realised_30d"] == 1080.0
    plain = _tables()
    plain["events"] = plain["events"].drop(columns="value")
    plain["users"] = plain["users"].drop(columns="role")
    plain["surveys"] = plain["surveys"].drop(columns="comment")
    del plain["cs_actions"]
    out, feature_set = _features(load_tables, plain, no_outcomes)
    assert not NEW & set(feature_set.names) and "last_comment" not in out.columns
    assert set(feature_set.left_out) >= NEW


def test_a_warehouse_without_the_new_columns_builds_the_same_features_and_values(load_tables):
    """The features it had before the new columns were read are computed from the same rows, with the same values,
    whether or not the warehouse also holds amounts, comments, roles and touches."""
    no_outcomes = CONFIG.model_copy(update={"outcome_events": FeatureConfig().outcome_events})
    rich, rich_set = _features(load_tables, _tables(), no_outcomes)
    plain = _tables()
    plain["events"], plain["users"] = plain["events"].drop(columns="value"), plain["users"].drop(columns="role")
    plain["surveys"] = plain["surveys"].drop(columns="comment")
    del plain["cs_actions"]
    before, before_set = _features(load_tables, plain, no_outcomes)
    old = [n for n in rich_set.names if n not in NEW]
    assert before_set.names == old
    pd.testing.assert_frame_equal(before, rich[[c for c in rich.columns if c in before.columns]])


@pytest.mark.parametrize(("text", "sign"), [
    ("Great product, it saves us hours every week.", 1), ("Support was quick and helpful, thanks!", 1),
    ("We are frustrated: exports are broken again.", -1), ("Terrible onboarding, we still cannot get value.", -1),
    ("It does the job.", 0),
])
def test_fixed_sentences_get_the_expected_sign(text, sign):
    score = score_sentiment([text])[0]
    assert (score >= 0.05) if sign > 0 else (score <= -0.05) if sign < 0 else abs(score) < 0.05


def test_empty_and_non_text_comments_have_no_sentiment():
    scores = score_sentiment(["", "   ", None, float("nan"), 42, "Love it"])
    assert np.isnan(scores[:5]).all() and scores[5] > 0


def test_sentiment_needs_no_network(monkeypatch):
    import importlib

    import features.words as words

    def refuse(*args, **kwargs):
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    words._analyzer.cache_clear()
    importlib.reload(importlib.import_module("vaderSentiment.vaderSentiment"))
    assert score_sentiment(["Bad experience, the integration broke our workflow."])[0] < -0.5


def test_a_simulated_warehouse_without_the_new_columns_builds_the_same_features_and_values(tmp_path):
    from datetime import datetime

    from features.config import LabelConfig
    from features.snapshots import build_snapshots
    from pipelines.synthetic.config import SimulationConfig
    from pipelines.synthetic.generate import generate_warehouse

    tables = generate_warehouse(SimulationConfig(accounts=60, months=9, seed=5, start=date(2024, 1, 1)))
    plain = {**{name: frame for name, frame in tables.items() if name != "cs_actions"},
             "events": tables["events"].drop(columns="value"), "users": tables["users"].drop(columns="role"),
             "surveys": tables["surveys"].drop(columns="comment")}
    config = FeatureConfig(core_events=["create_report", "run_automation"], value_events=["create_report"],
                           onboarding_milestones=["workspace_created", "first_report"])
    as_ofs = [date(2024, 4, 1), date(2024, 6, 1)]
    built = {}
    for name, frames in (("rich", tables), ("plain", plain)):
        con = ibis.duckdb.connect(str(tmp_path / f"{name}.duckdb"), threads=1)
        for table, frame in frames.items():
            con.create_table(table, frame)
        sources = load_sources(con, {})
        grid = build_snapshots(sources, as_ofs, LabelConfig(), datetime(2024, 9, 30))
        table, feature_set = compute_feature_table(sources, grid, as_ofs, config)
        built[name] = table.execute().sort_values(["as_of", "account_id"], ignore_index=True), feature_set
        con.disconnect()
    (rich, rich_set), (plain_table, plain_set) = built["rich"], built["plain"]
    # Without the new columns and cs_actions: every other feature, none of the new ones
    new_here = {s.name for s in expand_catalog(REALISED + CHAMPIONS + WORDS + TOUCHES, config.windows_by_kind())}
    assert set(plain_set.names) == set(rich_set.names) - new_here and not new_here & set(plain_set.names)
    assert {"value_realised_30d", "days_since_admin_active", "last_comment_sentiment"} <= set(rich_set.names)
    pd.testing.assert_frame_equal(plain_table, rich[list(plain_table.columns)])
