"""Synthetic warehouse generator: determinism, the source contract, lifecycle variety, the oracle."""

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pipelines.synthetic.config import SimulationConfig
from pipelines.synthetic.generate import generate_warehouse
from pipelines.synthetic.oracle import compute_oracle_probabilities

SMALL = SimulationConfig(accounts=150, months=12, seed=7, start=date(2024, 1, 1))
SMALL_END = pd.Timestamp("2025-01-01")

EXPECTED_COLUMNS = {
    "accounts": ["account_id", "created_at", "name", "segment", "industry", "region", "csm_owner"],
    "subscriptions": ["account_id", "start_at", "end_at", "mrr", "plan", "seats", "is_trial",
                      "billing_period_months"],
    "events": ["account_id", "event_at", "event_name", "user_id", "session_id", "duration_s", "value"],
    "users": ["user_id", "account_id", "created_at", "role"],
    "tickets": ["ticket_id", "account_id", "created_at", "resolved_at", "priority", "first_contact_resolved",
                "reopened", "csat"],
    "surveys": ["response_id", "account_id", "responded_at", "survey_type", "score", "user_id", "comment"],
    "milestones": ["account_id", "milestone", "achieved_at"],
    "cs_actions": ["account_id", "done_at", "playbook", "action", "owner", "arm"],
    "sim_truth": ["account_id", "month", "renewal_at", "hazard", "drawn", "lifecycle_start", "playbook_factor",
                  "onboarding", "champion_loss", "support_pain", "unhappy_voice", "price_shock", "cause"],
    "sim_causes": ["account_id", "cause", "group", "started_at", "ended_at"],
    "sim_playbooks": ["playbook", "hazard_effect", "effect_days", "holdout_share"],
    "sim_nowcast": ["account_id", "as_of", "horizon_days", "probability"],
}
TIME_COLUMNS = {
    "accounts": ["created_at"], "subscriptions": ["start_at", "end_at"], "events": ["event_at"],
    "users": ["created_at"], "tickets": ["created_at", "resolved_at"], "surveys": ["responded_at"],
    "milestones": ["achieved_at"], "cs_actions": ["done_at"], "sim_truth": ["month", "renewal_at", "lifecycle_start"],
    "sim_causes": ["started_at", "ended_at"], "sim_nowcast": ["as_of"],
}


@pytest.fixture(scope="module")
def small() -> dict[str, pd.DataFrame]:
    return generate_warehouse(SMALL)


@pytest.fixture(scope="module")
def two_years() -> dict[str, pd.DataFrame]:
    return generate_warehouse(SimulationConfig(accounts=400, months=24, seed=7))


# --- determinism -------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_frames(small):
    again = generate_warehouse(SMALL)
    assert list(again) == list(small)
    for name, frame in small.items():
        pd.testing.assert_frame_equal(again[name], frame, obj=name)


def test_different_seed_gives_different_frames(small):
    other = generate_warehouse(replace(SMALL, seed=SMALL.seed + 1))
    for name in ("accounts", "subscriptions", "events", "sim_truth", "sim_causes"):
        assert not other[name].equals(small[name]), name


# --- contract shape ----------------------------------------------------------------------------------------


def test_tables_have_exactly_the_contract_columns(small):
    assert {name: list(frame.columns) for name, frame in small.items()} == EXPECTED_COLUMNS


@pytest.mark.parametrize(("table", "column"), [(t, c) for t, cols in TIME_COLUMNS.items() for c in cols])
def test_timestamps_are_naive_and_inside_the_history(small, table, column):
    values = small[table][column]
    assert values.dtype == np.dtype("datetime64[us]")  # naive, the unit pandas 3 and DuckDB use
    assert (values.dropna() < SMALL_END).all()


def test_account_ids_are_unique_and_every_reference_exists(small):
    accounts = small["accounts"]["account_id"]
    assert accounts.is_unique and accounts.str.fullmatch(r"A\d{5}").all()
    for name, frame in small.items():
        if name == "sim_playbooks":   # one row per playbook, no account
            continue
        assert frame["account_id"].notna().all(), name
        assert frame["account_id"].isin(accounts).all(), name
    users = small["users"]["user_id"]
    assert users.is_unique
    assert small["events"]["user_id"].isin(users).all()
    assert small["surveys"]["user_id"].isin(users).all()


def test_subscription_rows_are_well_formed(small):
    subs = small["subscriptions"]
    assert (subs["end_at"].isna() | (subs["end_at"] >= subs["start_at"])).all()
    assert (subs["mrr"] >= 0).all()
    assert (subs.loc[subs["is_trial"], "mrr"] == 0).all()
    assert set(subs["billing_period_months"]) <= {1, 12}
    assert set(small["accounts"]["segment"]) == {"SMB", "Mid-Market", "Enterprise"}


def test_survey_and_ticket_values_are_in_range(small):
    surveys = small["surveys"]
    assert set(surveys["survey_type"]) == {"nps", "csat", "ces"}
    for kind, low, high in (("nps", 0, 10), ("csat", 1, 5), ("ces", 1, 7)):
        assert surveys.loc[surveys["survey_type"] == kind, "score"].between(low, high).all(), kind
    tickets = small["tickets"]
    assert set(tickets["priority"]) <= {"low", "normal", "high", "urgent"}
    assert tickets["csat"].dropna().between(1, 5).all()
    assert (tickets["resolved_at"].isna() | (tickets["resolved_at"] >= tickets["created_at"])).all()


def test_truth_hazards_are_probabilities_at_month_starts(small):
    truth = small["sim_truth"]
    assert truth["hazard"].between(0, 1).all()
    assert (truth["month"] == truth["renewal_at"].dt.to_period("M").dt.to_timestamp()).all()


def test_no_event_before_its_account_was_created(small):
    created = small["accounts"].set_index("account_id")["created_at"]
    events = small["events"]
    assert (events["event_at"].to_numpy() >= created.reindex(events["account_id"]).to_numpy()).all()


def test_events_happen_only_while_a_subscription_covers_them(small):
    events = small["events"][["account_id", "event_at"]].reset_index()
    pairs = events.merge(small["subscriptions"][["account_id", "start_at", "end_at"]], on="account_id")
    started = pairs["start_at"] <= pairs["event_at"]
    covers = started & (pairs["end_at"].isna() | (pairs["event_at"] < pairs["end_at"]))
    assert covers.groupby(pairs["index"]).any().reindex(events["index"], fill_value=False).all()


def test_events_have_one_login_name_and_are_not_at_midnight(small):
    events = small["events"]
    names = set(events["event_name"])
    assert "login" in names and len(names) >= 12
    assert {"create_report", "run_automation"} <= names
    assert (events["event_at"].dt.hour >= 6).all()


# --- lifecycle variety -------------------------------------------------------------------------------------


def test_some_accounts_hold_overlapping_rows(two_years):
    subs = two_years["subscriptions"]
    pairs = subs.merge(subs, on="account_id")
    later = pairs["start_at_y"] > pairs["start_at_x"]
    overlap = later & (pairs["end_at_x"].isna() | (pairs["end_at_x"] > pairs["start_at_y"]))
    assert pairs.loc[overlap, "account_id"].nunique() > 0


def test_some_trials_never_convert(two_years):
    subs = two_years["subscriptions"]
    paying = set(subs.loc[~subs["is_trial"], "account_id"])
    ended_trials = subs[subs["is_trial"] & subs["end_at"].notna()]
    assert (~ended_trials["account_id"].isin(paying)).sum() > 0
    assert ended_trials["account_id"].isin(paying).sum() > 0


def test_some_accounts_churn_and_some_come_back(two_years):
    subs = two_years["subscriptions"].sort_values(["account_id", "start_at"])
    closed = subs.groupby("account_id")["end_at"].apply(lambda ends: ends.notna().all())
    assert closed.sum() > 0
    ends = subs["end_at"].fillna(pd.Timestamp("2200-01-01"))  # an open row covers everything after it
    covered_until = ends.groupby(subs["account_id"]).transform(lambda e: e.shift().cummax())
    comeback = ~subs["is_trial"] & (subs["start_at"] >= covered_until + pd.Timedelta(days=60))
    assert subs.loc[comeback, "account_id"].nunique() >= 1


# --- oracle ------------------------------------------------------------------------------------------------


def _truth(*rows: tuple[str, str, float]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["account_id", "renewal_at", "hazard"])
    frame["renewal_at"] = pd.to_datetime(frame["renewal_at"])
    return frame


def test_oracle_combines_the_renewals_inside_the_horizon():
    truth = _truth(
        ("A1", "2024-02-01", 0.1), ("A1", "2024-03-01", 0.2), ("A1", "2024-06-01", 0.9),
        ("A2", "2024-01-01", 0.5), ("A2", "2024-03-31", 0.3),
        ("A4", "2023-12-01", 0.7),
    )
    snapshots = pd.DataFrame({
        "account_id": ["A1", "A2", "A3", "A4"],
        "as_of": pd.to_datetime(["2024-01-01"] * 4),
    })
    oracle = compute_oracle_probabilities(truth, snapshots, horizon_days=90)
    # A1: 1 - 0.9 * 0.8; A2: the renewal at as_of is out, the one at as_of + 90 days is in; A3, A4: none
    np.testing.assert_allclose(oracle, [0.28, 0.3, 0.0, 0.0])


def test_oracle_keeps_row_order_and_handles_repeated_accounts():
    truth = _truth(("A1", "2024-02-01", 0.5), ("A1", "2024-05-01", 0.5))
    snapshots = pd.DataFrame({
        "account_id": ["A1", "A9", "A1"],
        "as_of": pd.to_datetime(["2024-04-01", "2024-01-01", "2024-01-01"]),
    })
    oracle = compute_oracle_probabilities(truth, snapshots, horizon_days=31)  # Jan 1 + 31 days = Feb 1
    np.testing.assert_allclose(oracle, [0.5, 0.0, 0.5])


def test_oracle_uses_the_lifecycle_the_account_is_in():
    truth = _truth(("A1", "2024-02-01", 0.5), ("A1", "2024-03-01", 0.5), ("A1", "2024-09-01", 0.2))
    truth["lifecycle_start"] = pd.to_datetime(["2023-06-01", "2023-06-01", "2024-07-15"])
    snapshots = pd.DataFrame({"account_id": ["A1", "A1"], "as_of": pd.to_datetime(["2024-01-15", "2024-08-01"])})
    # Jan 15: the first lifecycle's two renewals (1 - 0.5 * 0.5); Aug 1: only the re-activated lifecycle's one.
    np.testing.assert_allclose(compute_oracle_probabilities(truth, snapshots, horizon_days=90), [0.75, 0.2])


def _churn_dates(subs: pd.DataFrame, grace_days: int) -> pd.DataFrame:
    """End of each covered period not followed by a new subscription within the grace days."""
    subs = subs.sort_values(["account_id", "start_at"], kind="stable").reset_index(drop=True)
    ends = subs["end_at"].fillna(pd.Timestamp("2200-01-01"))
    reach = ends.groupby(subs["account_id"]).cummax().groupby(subs["account_id"]).shift()
    period = (reach.isna() | (subs["start_at"] > reach)).cumsum()
    periods = pd.DataFrame({"account_id": subs["account_id"], "start": subs["start_at"], "end": ends})
    periods = periods.groupby(period).agg(account_id=("account_id", "first"), start=("start", "min"),
                                          end=("end", "max"))
    following = periods.groupby("account_id")["start"].shift(-1)
    grace = pd.Timedelta(days=grace_days)
    churned = (periods["end"] < pd.Timestamp("2200-01-01")) & ~(following <= periods["end"] + grace)
    return periods.loc[churned, ["account_id", "end"]].rename(columns={"end": "churn_at"})


def _snapshots(subs: pd.DataFrame, as_ofs: pd.DatetimeIndex) -> pd.DataFrame:
    paid = subs[~subs["is_trial"]]
    frames = []
    for as_of in as_ofs:
        covering = paid[(paid["start_at"] <= as_of) & (paid["end_at"].isna() | (paid["end_at"] > as_of))]
        frames.append(pd.DataFrame({"account_id": covering["account_id"].unique(), "as_of": as_of}))
    return pd.concat(frames, ignore_index=True)


def _labels(snapshots: pd.DataFrame, churn: pd.DataFrame, horizon_days: int) -> np.ndarray:
    pairs = snapshots.reset_index().merge(churn, on="account_id")
    horizon_end = pairs["as_of"] + pd.Timedelta(days=horizon_days)
    inside = (pairs["churn_at"] > pairs["as_of"]) & (pairs["churn_at"] <= horizon_end)
    labels = np.zeros(len(snapshots), dtype=int)
    labels[pairs.loc[inside, "index"].unique()] = 1
    return labels


def test_oracle_separates_churners_on_a_generated_warehouse():
    warehouse = generate_warehouse(SimulationConfig(accounts=600, months=18, seed=7))
    subs = warehouse["subscriptions"]
    start, end = pd.Timestamp("2024-01-01"), pd.Timestamp("2025-07-01")
    as_ofs = pd.date_range(start + pd.DateOffset(months=6), end - pd.Timedelta(days=120), freq="MS")
    snapshots = _snapshots(subs, as_ofs)
    labels = _labels(snapshots, _churn_dates(subs, grace_days=30), horizon_days=90)
    oracle = compute_oracle_probabilities(warehouse["sim_truth"], snapshots, horizon_days=90)
    assert 0.05 < labels.mean() < 0.16  # a realistic base rate: roughly 2-4% of paying accounts a month
    assert abs(oracle.mean() - labels.mean()) < 0.03
    assert roc_auc_score(labels, oracle) > 0.65


def test_truth_keeps_the_renewals_after_a_churn_as_not_drawn(two_years):
    truth, subs = two_years["sim_truth"], two_years["subscriptions"]
    assert truth["drawn"].any() and (~truth["drawn"]).any()
    paid = subs[~subs["is_trial"]]
    last_end = paid.groupby("account_id")["end_at"].max()
    churned = last_end[paid.groupby("account_id")["end_at"].apply(lambda e: e.notna().all())].index
    after = truth[truth["account_id"].isin(churned) & ~truth["drawn"]]
    assert len(after) > 0
    # within one lifecycle, every renewal after the last drawn one is not drawn
    lifecycle = truth.sort_values("renewal_at").groupby(["account_id", "lifecycle_start"])["drawn"]
    assert lifecycle.apply(lambda d: d.is_monotonic_decreasing).all()


def test_the_oracle_reads_a_truth_table_whose_ids_are_integers():
    from pipelines.training_run import oracle_roc_auc

    truth = pd.DataFrame({"account_id": [1, 2, 3, 4], "renewal_at": pd.to_datetime(["2024-02-01"] * 4),
                          "hazard": [0.9, 0.1, 0.8, 0.2]})
    valid = pd.DataFrame({"account_id": ["1", "2", "3", "4"], "as_of": pd.to_datetime(["2024-01-01"] * 4),
                          "label": [1, 0, 1, 0]})
    assert oracle_roc_auc(truth, valid, horizon_days=90) == 1.0
    assert oracle_roc_auc(truth.drop(columns="hazard"), valid, horizon_days=90) is None  # not a simulation's truth
