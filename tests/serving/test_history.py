"""Risk over time on a tiny hand-built history: each row's previous scoring, its change and how long the account has
been in its tier, computed by hand for a kept tier, a changed tier, a new account and one back after a gap."""

from __future__ import annotations

import math
from datetime import date

import ibis
import pandas as pd
import pytest

from serving.history import HISTORY_COLUMNS, add_history, chain_history
from serving.writeback import DRIVERS_SCHEMA, SCORES_SCHEMA, read_previous_scorings, write_scores

JAN, FEB, MAR = date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)
DEC, APR = date(2024, 12, 1), date(2025, 4, 1)

# (account, probability, tier) per scoring.
SCORINGS = {
    JAN: [("a", 0.50, "high"), ("b", 0.20, "medium"), ("c", 0.05, "low"), ("d", 0.25, "medium")],
    # a kept high; b medium → high; c not scored (gone); d kept medium; e new.
    FEB: [("a", 0.55, "high"), ("b", 0.40, "high"), ("d", 0.30, "medium"), ("e", 0.10, "low")],
    # a, b, e kept; c back after a gap; d medium → low.
    MAR: [("a", 0.60, "high"), ("b", 0.38, "high"), ("c", 0.07, "low"), ("d", 0.12, "low"), ("e", 0.09, "low")],
}
# Worked out by hand: account → (previous_probability, previous_tier, probability_change, tier_since, days_in_tier).
EXPECTED = {
    JAN: {"a": (None, None, None, JAN, 0), "b": (None, None, None, JAN, 0), "c": (None, None, None, JAN, 0),
          "d": (None, None, None, JAN, 0)},
    FEB: {"a": (0.50, "high", 0.05, JAN, 31), "b": (0.20, "medium", 0.20, FEB, 0),
          "d": (0.25, "medium", 0.05, JAN, 31), "e": (None, None, None, FEB, 0)},
    MAR: {"a": (0.55, "high", 0.05, JAN, 59), "b": (0.40, "high", -0.02, FEB, 28), "c": (None, None, None, MAR, 0),
          "d": (0.30, "medium", -0.18, MAR, 0), "e": (0.10, "low", -0.01, FEB, 28)},
}
PREVIOUS_AS_OF = {JAN: None, FEB: JAN, MAR: FEB}


def scoring(as_of: date, rows: list[tuple] | None = None) -> pd.DataFrame:
    """Score rows of one as-of, in the shape score_accounts returns them (no history columns)."""
    accounts, probabilities, tiers = zip(*(rows or SCORINGS[as_of]), strict=True)
    return pd.DataFrame({
        "account_id": list(accounts), "as_of": as_of, "churn_probability": list(probabilities),
        "risk_tier": list(tiers), "risk_rank": range(1, len(accounts) + 1), "health_score": 50.0, "mrr": 100.0,
        "top_reasons": "", "recommended_action": None, "owner_role": None, "urgency": None, "due_by": None,
        "playbook": None, "arm": None, "renewal_date": None, "days_to_renewal": None, "billing_period_months": None,
        "model_name": "m", "model_version": "1", "scored_at": pd.Timestamp("2025-04-02")})


def _day(value) -> date | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


def assert_history(rows: pd.DataFrame, as_of: date) -> None:
    """The rows of `as_of` hold the hand-computed history."""
    rows = rows[[_day(d) == as_of for d in rows["as_of"]]]
    assert sorted(rows.account_id) == sorted(EXPECTED[as_of])
    for row in rows.itertuples():
        probability, tier, change, since, days = EXPECTED[as_of][row.account_id]
        assert _day(row.previous_as_of) == PREVIOUS_AS_OF[as_of], row
        if probability is None:
            assert math.isnan(row.previous_probability) and math.isnan(row.probability_change), row
            assert row.previous_tier is None or pd.isna(row.previous_tier), row
        else:
            assert (row.previous_probability, row.previous_tier) == (pytest.approx(probability), tier), row
            assert row.probability_change == pytest.approx(change), row
        assert (_day(row.tier_since), row.days_in_tier) == (since, days), row


def test_two_scorings_give_the_hand_computed_history():
    previous = add_history(scoring(JAN), None)
    assert_history(previous, JAN)
    current = add_history(scoring(FEB), previous)
    assert_history(current, FEB)
    assert list(current.columns[-len(HISTORY_COLUMNS):]) == HISTORY_COLUMNS
    assert current.account_id.tolist() == ["a", "b", "d", "e"]          # same rows, same order
    assert_history(add_history(scoring(MAR), current), MAR)


def test_several_as_ofs_in_one_run_chain_in_date_order():
    run = pd.concat([scoring(MAR), scoring(JAN), scoring(FEB)], ignore_index=True)
    chained = chain_history(run, None)
    assert chained.index.equals(run.index)
    for as_of in (JAN, FEB, MAR):
        assert_history(chained, as_of)
    # Rows come back in their own order, also when the index repeats.
    repeated = chain_history(run.set_axis([0] * len(run)), None)
    assert (repeated.account_id.tolist(), repeated.as_of.tolist()) == (run.account_id.tolist(), run.as_of.tolist())
    pd.testing.assert_frame_equal(repeated.reset_index(drop=True), chained.reset_index(drop=True))


def test_a_published_scoring_between_the_runs_as_ofs_is_the_previous_of_the_later_one():
    published = add_history(scoring(FEB), add_history(scoring(JAN), None))
    # The run re-scores January and scores March; February stays as published and precedes March.
    chained = chain_history(pd.concat([scoring(JAN), scoring(MAR)], ignore_index=True), published)
    assert_history(chained, MAR)
    assert_history(chained, JAN)


def test_a_published_row_of_an_as_of_the_run_replaces_is_not_its_own_previous():
    stale = add_history(scoring(FEB), None).assign(churn_probability=0.99, risk_tier="high")
    chained = chain_history(scoring(FEB), pd.concat([add_history(scoring(JAN), None), stale]))
    assert_history(chained, FEB)


def test_rows_written_before_tier_since_existed_count_the_run_from_their_own_as_of():
    previous = scoring(FEB).drop(columns=["health_score"])             # no tier_since column at all
    current = add_history(scoring(MAR), previous)
    since = dict(zip(current.account_id, current.tier_since, strict=True))
    assert since == {"a": FEB, "b": FEB, "c": MAR, "d": MAR, "e": FEB}


def test_a_previous_scoring_that_is_not_earlier_or_holds_an_account_twice_is_refused():
    with pytest.raises(ValueError, match="previous scoring \\(2025-02-01\\) is not before this one"):
        add_history(scoring(FEB), scoring(FEB))
    twice = pd.concat([scoring(JAN), scoring(JAN).head(1)])
    with pytest.raises(ValueError, match="as of 2025-01-01 holds account a twice"):
        add_history(scoring(FEB), twice)


def _publish(con, as_of: date, rows: list[tuple] | None = None) -> None:
    """Score `as_of` the way `churn score` does: history from the published scorings, then one atomic write."""
    scores = chain_history(scoring(as_of, rows), read_previous_scorings(con, [as_of]))
    write_scores(con, scores, pd.DataFrame(columns=list(DRIVERS_SCHEMA.names)), [as_of])


def _published(con) -> pd.DataFrame:
    return con.table("churn_scores").execute().sort_values(["as_of", "account_id"]).reset_index(drop=True)


def test_publishing_scoring_after_scoring_writes_the_history_and_a_rerun_changes_nothing(duckdb_con):
    assert read_previous_scorings(duckdb_con, [JAN]).empty
    for as_of in (JAN, FEB, MAR):
        _publish(duckdb_con, as_of)
    rows = _published(duckdb_con)
    for as_of in (JAN, FEB, MAR):
        assert_history(rows, as_of)
    before = read_previous_scorings(duckdb_con, [MAR])
    assert set(before.as_of) == {FEB} and sorted(before.account_id) == ["a", "b", "d", "e"]
    _publish(duckdb_con, MAR)                                            # the same as-of again: the same rows
    pd.testing.assert_frame_equal(_published(duckdb_con), rows)


def test_rescoring_an_older_as_of_does_not_rewrite_the_later_rows(duckdb_con):
    for as_of in (JAN, FEB, MAR):
        _publish(duckdb_con, as_of)
    before = _published(duckdb_con)
    # January re-scored with b already high: February's rows keep what they were written with.
    changed = [(a, 0.45, "high") if a == "b" else (a, p, t) for a, p, t in SCORINGS[JAN]]
    scores = chain_history(scoring(JAN, changed), read_previous_scorings(duckdb_con, [JAN]))
    write_scores(duckdb_con, scores, pd.DataFrame(columns=list(DRIVERS_SCHEMA.names)), [JAN])
    after = _published(duckdb_con)
    later = [_day(d) != JAN for d in after.as_of]
    pd.testing.assert_frame_equal(after[later].reset_index(drop=True),
                                  before[[_day(d) != JAN for d in before.as_of]].reset_index(drop=True))


# An older version's table: no history columns. Accounts f and g show what breaks a run: a gap, a change of tier.
UPGRADE = {
    DEC: [("a", 0.50, "high"), ("f", 0.60, "high"), ("g", 0.60, "high")],
    JAN: [("a", 0.52, "high"), ("g", 0.30, "medium"), ("h", 0.10, "low")],
    FEB: [("a", 0.55, "high"), ("f", 0.50, "high"), ("g", 0.50, "high"), ("h", 0.11, "low")],
}


def test_after_an_upgrade_the_tier_run_is_rebuilt_from_the_older_rows(duckdb_con):
    old = [c for c in SCORES_SCHEMA.names if c not in HISTORY_COLUMNS]
    frame = pd.concat([scoring(d, rows) for d, rows in UPGRADE.items()], ignore_index=True)[old]
    duckdb_con.create_table("churn_scores", ibis.memtable(frame, schema=ibis.schema(
        {c: SCORES_SCHEMA[c] for c in old})))
    previous = read_previous_scorings(duckdb_con, [MAR]).set_index("account_id")
    assert previous.as_of.tolist() == [FEB] * 4
    # a: high since December; f: high in December, not scored in January, high again since February;
    # g: high, medium, high again since February; h: low since January.
    assert previous.tier_since.to_dict() == {"a": DEC, "f": FEB, "g": FEB, "h": JAN}
    _publish(duckdb_con, MAR)
    march = _published(duckdb_con)
    march = march[[_day(d) == MAR for d in march.as_of]].set_index("account_id")
    assert {a: (_day(r.tier_since), r.days_in_tier) for a, r in march.iterrows() if a in ("a", "d", "e")} == {
        "a": (DEC, 90), "d": (MAR, 0), "e": (MAR, 0)}
    _publish(duckdb_con, APR, [("a", 0.70, "high")])                      # the next one chains on the stored rows
    april = _published(duckdb_con)
    april = april[[_day(d) == APR for d in april.as_of]].set_index("account_id")
    assert (_day(april.at["a", "tier_since"]), april.at["a", "days_in_tier"]) == (DEC, 121)
