"""The holdout experiment: arms are deterministic, sticky, at the configured share, independent of risk, written
with the scores in one transaction; held-back accounts get no action; bad settings are one line naming the key."""

from __future__ import annotations

import hashlib
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import chi2_contingency

from pipelines.config import ParamsError, load_params
from serving.config import ExperimentConfig, ScoringConfig
from serving.experiments import (
    ACTION_COLUMNS,
    HOLDOUT,
    TREATMENT,
    assign_arms,
    assignment_draws,
    assignment_rows,
    hold_out_actions,
)
from serving.score import ScoredModel, ScoringContext, score_accounts
from serving.tables import ASSIGNMENTS_TABLE
from serving.writeback import write_scores
from tests.serving.test_scoring import FEATURES, SPECS, model_and_table  # noqa: F401 - the model fixture
from tests.serving.test_writeback import _drivers, _scores

START = date(2024, 1, 1)
CONFIG = ExperimentConfig(enabled=True, holdout_share=0.1, salt="churn-playbooks", start=START)
MAY, JUNE = date(2024, 5, 1), date(2024, 6, 1)


def _accounts(n: int) -> np.ndarray:
    return np.array([f"acct-{i:05d}" for i in range(n)], dtype=object)


def test_the_draw_is_sha256_of_salt_start_playbook_and_account():
    # Pinned: a change to the hash would redraw every arm of a running experiment.
    text = "churn-playbooks\x1f2024-01-01\x1fadoption_workshop\x1facct-00001"
    expected = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64
    draws = assignment_draws(["acct-00001"], ["adoption_workshop"], START, "churn-playbooks")
    assert draws.tolist() == [expected]
    assert round(expected, 6) == 0.555117


def test_assignment_is_deterministic_and_depends_on_salt_start_and_playbook():
    accounts = _accounts(2000)
    playbooks = np.array(["adoption_workshop"] * 2000, dtype=object)
    arms = assign_arms(accounts, playbooks, [MAY] * 2000, CONFIG)
    np.testing.assert_array_equal(arms, assign_arms(accounts, playbooks, [MAY] * 2000, CONFIG))
    for other in (CONFIG.model_copy(update={"salt": "other"}), CONFIG.model_copy(update={"start": date(2024, 2, 1)})):
        assert (assign_arms(accounts, playbooks, [MAY] * 2000, other) != arms).any()
    elsewhere = assign_arms(accounts, np.array(["ticket_escalation"] * 2000, dtype=object), [MAY] * 2000, CONFIG)
    assert (elsewhere != arms).any()


def test_an_account_keeps_its_arm_while_it_keeps_its_playbook_and_gets_it_back_on_return():
    accounts = _accounts(500)
    may = assign_arms(accounts, ["adoption_workshop"] * 500, [MAY] * 500, CONFIG)
    june = assign_arms(accounts, ["adoption_workshop"] * 500, [JUNE] * 500, CONFIG)
    np.testing.assert_array_equal(may, june)
    moved = assign_arms(accounts, ["ticket_escalation"] * 500, [JUNE] * 500, CONFIG)
    back = assign_arms(accounts, ["adoption_workshop"] * 500, [date(2024, 7, 1)] * 500, CONFIG)
    np.testing.assert_array_equal(back, may)
    assert (moved != may).sum() > 0   # another playbook is another draw


@pytest.mark.parametrize("share", [0.05, 0.1, 0.3, 0.5])
def test_the_holdout_share_holds_within_a_binomial_tolerance_over_10000_accounts(share):
    n = 10_000
    config = CONFIG.model_copy(update={"holdout_share": share})
    for playbook in ("adoption_workshop", "high/support"):
        arms = assign_arms(_accounts(n), [playbook] * n, [MAY] * n, config)
        held = float(np.mean(arms == HOLDOUT))
        assert abs(held - share) <= 3 * np.sqrt(share * (1 - share) / n), (playbook, held)
        assert set(arms) == {HOLDOUT, TREATMENT}


def test_within_a_playbook_the_arm_is_independent_of_risk():
    """A chi-square test of arm × risk decile over 10,000 accounts: no dependence at the 1% level."""
    rng = np.random.default_rng(3)
    n = 10_000
    accounts = np.array([f"{rng.integers(1e9)}-{i}" for i in range(n)], dtype=object)
    probability = rng.beta(2, 5, n)
    arms = assign_arms(accounts, ["adoption_workshop"] * n, [MAY] * n, CONFIG)
    deciles = pd.qcut(probability, 10, labels=False)
    table = pd.crosstab(deciles, arms).to_numpy()
    assert table.shape == (10, 2)
    assert chi2_contingency(table).pvalue > 0.01
    # The test has power: arms drawn from risk itself are caught.
    biased = np.where(probability > np.quantile(probability, 0.9), HOLDOUT, TREATMENT)
    assert chi2_contingency(pd.crosstab(deciles, biased).to_numpy()).pvalue < 1e-10


def test_no_arm_without_a_playbook_before_the_start_or_when_switched_off():
    accounts, playbooks = _accounts(4), ["adoption_workshop", None, "adoption_workshop", "health_check"]
    as_ofs = [MAY, MAY, date(2023, 12, 1), MAY]
    arms = assign_arms(accounts, playbooks, as_ofs, CONFIG)
    assert arms[1] is None and arms[2] is None and arms[0] in (TREATMENT, HOLDOUT) and arms[3] in (TREATMENT, HOLDOUT)
    assert assign_arms(accounts, playbooks, as_ofs, ExperimentConfig()).tolist() == [None] * 4


def test_held_back_accounts_lose_their_action_owner_urgency_and_due_date_but_keep_their_playbook():
    actions = pd.DataFrame({"recommended_action": ["Call", "Call", None], "owner_role": ["CSM", "CSM", None],
                            "urgency": ["urgent", "routine", None], "due_by": [MAY, MAY, None],
                            "playbook": ["p", "p", None]})
    held = hold_out_actions(actions, np.array([HOLDOUT, TREATMENT, None], dtype=object))
    assert held.iloc[0][list(ACTION_COLUMNS)].tolist() == [None] * 4 and held.playbook[0] == "p"
    pd.testing.assert_series_equal(held.iloc[1], actions.iloc[1])


def test_scored_accounts_in_a_playbook_carry_its_id_and_arm_and_holdouts_have_no_action(model_and_table):  # noqa: F811
    model, table = model_and_table
    enabled = ScoringConfig(experiments={"enabled": True, "holdout_share": 0.3, "start": "2024-01-01"})
    scored_at = datetime(2024, 3, 2, 6)
    scores, _ = score_accounts(ScoredModel(model, "m", "1"), table, ScoringContext(SPECS, enabled), scored_at)
    plain, _ = score_accounts(ScoredModel(model, "m", "1"), table, ScoringContext(SPECS, ScoringConfig()), scored_at)
    matched = scores.playbook.notna()
    assert matched.any() and (scores.arm.notna() == matched).all()
    assert set(scores.loc[matched, "playbook"]) <= {r.playbook for r in enabled.playbooks.rules}
    held = scores.arm == HOLDOUT
    assert held.sum() > 0 and scores.loc[held, list(ACTION_COLUMNS)].isna().all().all()
    treated = scores.arm == TREATMENT
    pd.testing.assert_frame_equal(scores.loc[treated, list(ACTION_COLUMNS)], plain.loc[treated, list(ACTION_COLUMNS)])
    # Switched off: no arm, the same playbooks, every matched account gets its action.
    assert plain.arm.isna().all() and plain.playbook.equals(scores.playbook)
    assert plain.loc[matched, "recommended_action"].notna().all()
    pd.testing.assert_frame_equal(scores.drop(columns=[*ACTION_COLUMNS, "arm"]),
                                  plain.drop(columns=[*ACTION_COLUMNS, "arm"]))
    rows = assignment_rows(scores, scored_at)
    assert len(rows) == matched.sum() and (rows.assigned_at == pd.Timestamp(scored_at)).all()


def _with_arms(as_of: str, accounts: list[str], arms: list[str | None]) -> pd.DataFrame:
    return _scores(as_of, accounts, 0.5).assign(playbook=["p" if a else None for a in arms], arm=arms)


def _assignments(con) -> pd.DataFrame:
    return con.table(ASSIGNMENTS_TABLE).execute().sort_values(["as_of", "account_id"]).reset_index(drop=True)


def test_assignments_are_written_with_the_scores_atomically_and_idempotently(duckdb_con):
    may = _with_arms("2024-05-01", ["a", "b", "c"], [TREATMENT, HOLDOUT, None])
    write_scores(duckdb_con, may, _drivers("2024-05-01", ["a"]), [MAY],
                 assignments=assignment_rows(may, datetime(2024, 5, 1, 6)))
    first = _assignments(duckdb_con)
    assert first[["account_id", "arm"]].values.tolist() == [["a", TREATMENT], ["b", HOLDOUT]]
    write_scores(duckdb_con, may, _drivers("2024-05-01", ["a"]), [MAY],
                 assignments=assignment_rows(may, datetime(2024, 5, 1, 6)))
    pd.testing.assert_frame_equal(_assignments(duckdb_con), first)
    other = _with_arms("2024-05-01", ["x"], [HOLDOUT])
    broken = _drivers("2024-05-01", ["x"]).assign(rank="not a number")   # fails inside the transaction
    with pytest.raises(Exception):  # noqa: B017 - any engine error must roll back
        write_scores(duckdb_con, other, broken, [MAY], assignments=assignment_rows(other, datetime(2024, 5, 2)))
    pd.testing.assert_frame_equal(_assignments(duckdb_con), first)


def test_rescoring_with_experiments_off_leaves_no_assignments_for_that_as_of(duckdb_con):
    write_scores(duckdb_con, _scores("2024-04-01", ["a"], 0.5), _drivers("2024-04-01", ["a"]), [date(2024, 4, 1)])
    assert ASSIGNMENTS_TABLE not in duckdb_con.list_tables()   # never switched on: never created
    for as_of, day in (("2024-04-01", date(2024, 4, 1)), ("2024-05-01", MAY)):
        scores = _with_arms(as_of, ["a", "b"], [TREATMENT, HOLDOUT])
        write_scores(duckdb_con, scores, _drivers(as_of, ["a"]), [day],
                     assignments=assignment_rows(scores, datetime(2024, 5, 1)))
    write_scores(duckdb_con, _scores("2024-05-01", ["a", "b"], 0.5), _drivers("2024-05-01", ["a"]), [MAY])
    assert _assignments(duckdb_con).as_of.tolist() == [pd.Timestamp("2024-04-01")] * 2


def _params_file(tmp_path, experiments) -> object:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"scoring": {"experiments": experiments}}))
    return path


@pytest.mark.parametrize(("experiments", "message"), [
    ({"holdout_share": 0}, "scoring.experiments.holdout_share: Input should be greater than 0"),
    ({"holdout_share": 1.5}, "scoring.experiments.holdout_share: Input should be less than 1"),
    ({"enabled": True}, "scoring.experiments: Value error, start: give the experiment's start date"),
    ({"start": "2024-02-30"}, "scoring.experiments.start: Input should be a valid date"),
    ({"salt": ""}, "scoring.experiments.salt: String should have at least 1 character"),
    ({"share": 0.1}, "scoring.experiments.share: Extra inputs are not permitted"),
])
def test_a_bad_experiment_setting_is_one_line_naming_its_key(tmp_path, experiments, message):
    with pytest.raises(ParamsError) as error:
        load_params(_params_file(tmp_path, experiments))
    assert message in str(error.value) and len(str(error.value).splitlines()) == 1


def test_every_bad_key_gets_its_own_line(tmp_path):
    with pytest.raises(ParamsError) as error:
        load_params(_params_file(tmp_path, {"holdout_share": 2, "salt": "", "enabled": "maybe"}))
    lines = str(error.value).splitlines()
    assert len(lines) == 3
    assert [line.split(": ")[1] for line in lines] == ["scoring.experiments.enabled",
                                                       "scoring.experiments.holdout_share",
                                                       "scoring.experiments.salt"]


def test_a_playbook_name_is_its_id_and_names_are_unique():
    from pydantic import ValidationError

    rules = [{"tier": "high", "group": "*", "action": "Call", "owner_role": "CSM"},
             {"tier": "high", "group": "support", "action": "Escalate", "owner_role": "Support", "name": "escalate"}]
    config = ScoringConfig.model_validate({"playbooks": {"rules": rules}})
    assert [r.playbook for r in config.playbooks.rules] == ["high/*", "escalate"]
    with pytest.raises(ValidationError, match="rule 3 .*name 'escalate' is also rule 2's"):
        ScoringConfig.model_validate({"playbooks": {"rules": [*rules, {**rules[1], "group": "voice"}]}})
    with pytest.raises(ValidationError, match="`name:` 'a b' must be 1-64 letters"):
        ScoringConfig.model_validate({"playbooks": {"rules": [rules[0], {**rules[1], "name": "a b"}]}})
