"""Survey (voice-of-customer) features on a tiny hand-built warehouse, with values computed by hand."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest

from features.config import FeatureConfig
from features.sources import load_sources
from features.voice import compute_voice_features
from tests.conftest import tiny_accounts, ts

AS_OF = "2024-03-01"  # 2024 is a leap year: the 30-day window starts 01-31
CONFIG = FeatureConfig(survey_window_days=30)
DEFAULT_COLUMNS = ["account_id", "as_of", "last_nps", "last_nps_category", "nps_change", "detractor_share_180d",
                   "csat_avg_180d", "ces_avg_180d", "survey_responses_180d", "days_since_last_response"]
BOUNDARIES = {"p0": 0.0, "p6": 6.0, "p7": 7.0, "p8": 8.0, "p9": 9.0, "p10": 10.0}
ACCOUNTS = ["a", "c", "d", "e", *BOUNDARIES]

SURVEYS = [  # (response id, account, responded, type, score, user)
    ("r01", "a", "2023-12-01 10:00", "nps", 9.0, "u1"),    # before the window
    ("r14", "a", "2024-01-15 10:00", "nps", 0.0, "u6"),    # before the window: u6 is not a responding user
    ("r02", "a", "2024-02-05 09:00", "nps", 3.0, "u1"),    # u1's latest: detractor
    ("r03", "a", "2024-02-10 12:00", "nps", 2.0, "u2"),
    ("r04", "a", "2024-02-20 08:00", "nps", 10.0, "u2"),   # u2's latest: promoter
    ("r05", "a", "2024-02-25 15:00", "nps", 6.0, "u3"),    # u3: detractor (boundary)
    ("r06", "a", "2024-02-25 15:00", "nps", 8.0, "u4"),    # same time as r05, higher id: the last NPS
    ("r07", "a", "2024-03-01 00:00", "nps", 10.0, "u1"),   # at the as-of: never read
    ("r08", "a", "2024-03-01 15:00", "nps", 0.0, "u5"),    # later on the as-of day: never read
    ("r09", "a", "2024-02-14 11:00", "csat", 4.0, "u1"),
    ("r10", "a", "2024-02-28 16:00", "csat", 5.0, "u2"),
    ("r11", "a", "2024-01-10 10:00", "csat", 1.0, "u1"),   # before the window
    ("r12", "a", "2024-02-29 23:59", "ces", 3.0, "u3"),    # the last response
    ("r13", "a", "2024-03-01 00:00", "csat", 1.0, "u1"),   # at the as-of: never read
    ("r20", "d", "2023-06-01 10:00", "nps", 7.0, "u9"),    # only an old response
    ("r21", "e", "2024-03-01 00:00", "nps", 2.0, "u1"),    # only responses on the as-of day
    ("r22", "e", "2024-03-01 09:30", "csat", 1.0, "u1"),
    *[(f"r{account}", account, "2024-02-01 12:00", "nps", score, "u1") for account, score in BOUNDARIES.items()],
]

EXPECTED_A = {
    "last_nps": 8.0, "last_nps_category": "passive", "nps_change": 2.0,  # r06 − r05
    "detractor_share_30d": 0.5,                                         # u1, u3 of u1–u4
    "csat_avg_30d": 4.5, "ces_avg_30d": 3.0,
    "survey_responses_30d": 8.0,                                        # r02–r06, r09, r10, r12
    "days_since_last_response": 1.0,                                    # 02-29 23:59
}
NOTHING = {"last_nps": None, "last_nps_category": None, "nps_change": None, "detractor_share_30d": None,
           "csat_avg_30d": None, "ces_avg_30d": None, "survey_responses_30d": 0.0, "days_since_last_response": None}


def _surveys(rows=SURVEYS) -> pd.DataFrame:
    response, account, at, kind, score, user = zip(*rows, strict=True)
    return pd.DataFrame({"response_id": list(response), "account_id": list(account), "responded_at": ts(*at),
                         "survey_type": list(kind), "score": list(score), "user_id": list(user)})


def _warehouse(load_tables, surveys: pd.DataFrame):
    subs = pd.DataFrame({"account_id": ACCOUNTS, "start_at": ts(*["2023-01-01"] * len(ACCOUNTS)),
                         "end_at": ts(*[None] * len(ACCOUNTS)), "mrr": [1.0] * len(ACCOUNTS)})
    events = pd.DataFrame({"account_id": ["a"], "event_at": ts("2024-01-01"), "event_name": ["login"]})
    return load_tables(accounts=tiny_accounts(*ACCOUNTS), subscriptions=subs, events=events, surveys=surveys)


def _features(con, rows=None, config=CONFIG) -> pd.DataFrame:
    accounts, as_ofs = zip(*(rows or [(a, AS_OF) for a in ACCOUNTS]), strict=True)
    grid = ibis.memtable(pd.DataFrame({"account_id": list(accounts), "as_of": ts(*as_ofs)}))
    out = compute_voice_features(load_sources(con, {}), grid, config).execute()
    return out.sort_values(["account_id", "as_of"]).reset_index(drop=True)


def _assert_values(row: pd.Series, expected: dict) -> None:
    for name, value in expected.items():
        if value is None:
            assert pd.isna(row[name]), name
        elif isinstance(value, str):
            assert row[name] == value, name
        else:
            assert row[name] == pytest.approx(value), name


def test_columns_types_and_one_row_per_grid_row(load_tables):
    out = _features(_warehouse(load_tables, _surveys()), config=FeatureConfig())
    assert list(out.columns) == DEFAULT_COLUMNS
    assert sorted(out.account_id) == sorted(ACCOUNTS)
    assert all(str(out[c].dtype) == "float64" for c in DEFAULT_COLUMNS if c not in ("account_id", "as_of",
                                                                                   "last_nps_category"))


def test_exact_values_with_ties_and_responses_on_the_as_of_day(load_tables):
    out = _features(_warehouse(load_tables, _surveys())).set_index("account_id")
    _assert_values(out.loc["a"], EXPECTED_A)


def test_accounts_without_responses_before_the_as_of_or_in_the_window(load_tables):
    out = _features(_warehouse(load_tables, _surveys())).set_index("account_id")
    _assert_values(out.loc["c"], NOTHING)  # no surveys at all
    _assert_values(out.loc["e"], NOTHING)  # answered at 00:00 and later on the as-of day only
    # 2023-06-01 → 2024-03-01 is 274 days; the old answer still gives the last NPS, but no windowed value.
    _assert_values(out.loc["d"], {**NOTHING, "last_nps": 7.0, "last_nps_category": "passive",
                                  "days_since_last_response": 274.0})


def test_nps_category_boundaries(load_tables):
    out = _features(_warehouse(load_tables, _surveys())).set_index("account_id")
    categories = {"p0": "detractor", "p6": "detractor", "p7": "passive", "p8": "passive", "p9": "promoter",
                  "p10": "promoter"}
    for account, category in categories.items():
        _assert_values(out.loc[account], {
            "last_nps": BOUNDARIES[account], "last_nps_category": category, "nps_change": None,
            "detractor_share_30d": 1.0 if category == "detractor" else 0.0, "survey_responses_30d": 1.0,
            "days_since_last_response": 29.0})


def test_each_as_of_sees_only_its_own_past(load_tables):
    out = _features(_warehouse(load_tables, _surveys()), rows=[("a", "2024-02-25"), ("a", AS_OF)]).set_index("as_of")
    # The tied r05/r06 came at 15:00 on 02-25: the last NPS then is r04, and the window starts 01-26.
    _assert_values(out.loc[pd.Timestamp("2024-02-25")], {
        "last_nps": 10.0, "last_nps_category": "promoter", "nps_change": 8.0, "detractor_share_30d": 0.5,
        "csat_avg_30d": 4.0, "ces_avg_30d": None, "survey_responses_30d": 4.0, "days_since_last_response": 5.0})
    _assert_values(out.loc[pd.Timestamp(AS_OF)], EXPECTED_A)


def test_a_warehouse_without_user_id_leaves_out_only_the_detractor_share(load_tables):
    out = _features(_warehouse(load_tables, _surveys().drop(columns="user_id"))).set_index("account_id")
    assert "detractor_share_30d" not in out.columns
    assert len(out.columns) == len(DEFAULT_COLUMNS) - 2  # without account_id (the index) and the share
    _assert_values(out.loc["a"], {k: v for k, v in EXPECTED_A.items() if k != "detractor_share_30d"})


def _change_the_future(surveys: pd.DataFrame) -> pd.DataFrame:
    """Drop, rewrite and add responses at or after the as-of, including ties with the as-of itself."""
    future = surveys.responded_at >= pd.Timestamp(AS_OF)
    out = surveys.copy()
    out.loc[future, "score"] = 9.0 - out.loc[future, "score"]
    out.loc[future, "survey_type"] = "nps"
    out.loc[future, "user_id"] = "u3"
    out = out.drop(index=out.index[future][:1])
    extra = _surveys([("r00", "a", "2024-03-01 00:00", "nps", 1.0, "u2"),
                      ("r99", "a", "2024-03-01 00:00", "ces", 7.0, "u4"),
                      ("r98", "c", "2024-03-01 00:00", "nps", 0.0, "u1"),
                      ("r97", "d", "2024-03-02 08:00", "nps", 10.0, "u9"),
                      ("r96", "p6", "2024-04-01 08:00", "csat", 2.0, "u1")])
    return pd.concat([out, extra], ignore_index=True)


def test_future_rows_never_change_the_features(load_tables):
    base = _surveys()
    before = _features(_warehouse(load_tables, base))
    pd.testing.assert_frame_equal(before, _features(_warehouse(load_tables, _change_the_future(base))))
    past = base.assign(score=base.score.where(base.response_id != "r06", 2.0))
    assert not before.equals(_features(_warehouse(load_tables, past)))  # the check can fail
