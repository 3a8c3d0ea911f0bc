"""The nowcast oracle (pipelines/synthetic/nowcast.py): reproducible, leaves the other tables as they were,
calibrated against realised churn, exact (up to the unseen draw) for renewals decided before the as-of, and read
back for any (account, as_of) rows."""

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines.synthetic.config import NowcastConfig, SimulationConfig
from pipelines.synthetic.generate import generate_warehouse
from pipelines.synthetic.oracle import compute_oracle_probabilities, nowcast_probabilities

SMALL = SimulationConfig(accounts=150, months=12, seed=7, start=date(2024, 1, 1), nowcast=NowcastConfig(paths=20))
BIG = SimulationConfig(accounts=1200, months=24, seed=5, start=date(2024, 1, 1))
HORIZON = pd.Timedelta(days=90)


@pytest.fixture(scope="module")
def big() -> dict[str, pd.DataFrame]:
    return generate_warehouse(BIG)


def _realised(warehouse: dict[str, pd.DataFrame], rows: pd.DataFrame) -> np.ndarray:
    """Whether each (account, as_of) row's paid lifecycle ended in (as_of, as_of + 90 days] with no paid row
    following it (a churn)."""
    subs = warehouse["subscriptions"]
    paid = subs[~subs["is_trial"] & (subs["plan"] != "Add-on")]
    follows = set(zip(paid["account_id"], paid["start_at"], strict=True))
    ended = paid.dropna(subset=["end_at"])
    churns = ended[[(a, e) not in follows for a, e in zip(ended["account_id"], ended["end_at"], strict=True)]]
    pairs = rows[["account_id", "as_of"]].reset_index().merge(churns[["account_id", "end_at"]], on="account_id")
    hit = pairs[(pairs["end_at"] > pairs["as_of"]) & (pairs["end_at"] <= pairs["as_of"] + HORIZON)]["index"]
    return np.isin(np.arange(len(rows)), hit.to_numpy())


def _labelled(warehouse: dict[str, pd.DataFrame], months: int) -> pd.DataFrame:
    end = pd.Timestamp("2024-01-01") + pd.DateOffset(months=months)
    table = warehouse["sim_nowcast"]
    return table[table["as_of"] + HORIZON <= end].reset_index(drop=True)


def test_same_seed_same_nowcast_and_the_other_tables_untouched():
    first, again = generate_warehouse(SMALL), generate_warehouse(SMALL)
    pd.testing.assert_frame_equal(first["sim_nowcast"], again["sim_nowcast"])
    without = generate_warehouse(replace(SMALL, nowcast=NowcastConfig(paths=0)))
    assert "sim_nowcast" not in without
    for name, frame in without.items():   # the nowcast draws from its own stream
        pd.testing.assert_frame_equal(first[name], frame, obj=name)
    other = generate_warehouse(replace(SMALL, nowcast=NowcastConfig(paths=20, horizon_days=30)))
    assert (other["sim_nowcast"]["horizon_days"] == 30).all()
    assert other["sim_nowcast"]["probability"].mean() < first["sim_nowcast"]["probability"].mean()


def test_the_nowcast_covers_each_paying_account_at_each_month_start(big):
    table = big["sim_nowcast"]
    assert table["probability"].between(0, 1).all()
    assert (table["as_of"].dt.day == 1).all() and not table.duplicated(["account_id", "as_of"]).any()
    subs = big["subscriptions"]
    paid = subs[~subs["is_trial"]]
    as_of = pd.Timestamp("2025-03-01")
    paying = paid[(paid["start_at"] <= as_of) & (paid["end_at"].isna() | (paid["end_at"] > as_of))]
    assert set(table[table["as_of"] == as_of]["account_id"]) == set(paying["account_id"])


def test_the_nowcast_is_calibrated_against_realised_churn(big):
    rows = _labelled(big, BIG.months)
    realised = _realised(big, rows)
    probability = rows["probability"].to_numpy()
    # rows of one account are correlated: a wide binomial interval (4 standard errors over the accounts' count)
    n_accounts = rows["account_id"].nunique()
    assert abs(probability.mean() - realised.mean()) < 4 * np.sqrt(realised.mean() * (1 - realised.mean()) / n_accounts)
    deciles = pd.qcut(pd.Series(probability).rank(method="first"), 10, labels=False)
    per = pd.DataFrame({"p": probability, "y": realised}).groupby(deciles).mean()
    counts = pd.Series(deciles).value_counts().sort_index()
    interval = 4 * np.sqrt(per["p"] * (1 - per["p"]) / (counts / 4) + 1e-6)   # ~4 rows per account in a decile
    assert ((per["y"] - per["p"]).abs() <= interval + 0.01).all(), per


def test_the_nowcast_ranks_below_the_hindsight_oracle_and_far_above_chance(big):
    from sklearn.metrics import roc_auc_score

    rows = _labelled(big, BIG.months)
    realised = _realised(big, rows)
    hindsight = compute_oracle_probabilities(big["sim_truth"], rows, horizon_days=90)
    nowcast = roc_auc_score(realised, rows["probability"])
    assert 0.75 < nowcast < roc_auc_score(realised, hindsight)


def test_a_renewal_decided_before_the_as_of_is_exact_up_to_the_unseen_draw(big):
    """One renewal in the horizon, decided (45 days before it) before the as-of, no playbook on it: the nowcast
    knows every input of its hazard; only the per-renewal draw (sd 0.15 logits) and later CS flags can differ."""
    truth = big["sim_truth"]   # every renewal of each lifecycle inside the history, also those after a churn
    rows = _labelled(big, BIG.months)
    pairs = rows.merge(truth[["account_id", "renewal_at", "hazard", "playbook_factor", "lifecycle_start"]],
                       on="account_id")
    pairs = pairs[(pairs["renewal_at"] > pairs["as_of"]) & (pairs["renewal_at"] <= pairs["as_of"] + HORIZON)
                  & (pairs["lifecycle_start"] <= pairs["as_of"])]
    current = pairs.groupby(["account_id", "as_of"])["lifecycle_start"].transform("max")
    pairs = pairs[pairs["lifecycle_start"] == current]
    single = pairs.groupby(["account_id", "as_of"]).filter(lambda g: len(g) == 1)
    decided = single[(single["renewal_at"] - pd.Timedelta(days=45) < single["as_of"])
                     & (single["playbook_factor"] == 1.0)]
    assert len(decided) > 100

    def logit(p):
        return np.log(p / (1 - p))

    gap = np.abs(logit(decided["probability"].to_numpy()) - logit(decided["hazard"].to_numpy()))
    assert np.median(gap) < 0.15 and np.quantile(gap, 0.9) < 0.4


def test_nowcast_probabilities_reads_rows_in_order_and_leaves_other_grids_unknown():
    table = pd.DataFrame({"account_id": ["A1", "A1", "A2", "A2"],
                          "as_of": pd.to_datetime(["2024-02-01", "2024-03-01", "2024-02-01", "2024-02-01"]),
                          "horizon_days": [90, 90, 90, 30], "probability": [0.1, 0.2, 0.3, 0.9]})
    snapshots = pd.DataFrame({"account_id": ["A2", "A1", "A1", "A3"],
                              "as_of": pd.to_datetime(["2024-02-01", "2024-03-01", "2024-02-15", "2024-02-01"])})
    np.testing.assert_allclose(nowcast_probabilities(table, snapshots, horizon_days=90), [0.3, 0.2, np.nan, np.nan])
    assert np.isnan(nowcast_probabilities(table, snapshots, horizon_days=60)).all()
