"""The optional cs_actions table: mapped like the other sources, validated like them (every bad row named by table,
column and rule in one run); features read only when and in which arm an action was done (CS touches), labels
nothing, and its absence switches off only the touch features."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from features.contract import CONTRACT, NOT_FOR_LABELS
from features.sources import ContractError, load_sources
from pipelines.config import Params
from pipelines.validation.report import ValidationFailed
from pipelines.validation.validate import ValidationConfig, validate_sources
from tests.conftest import ts
from tests.pipelines.test_validation import CONFIG, NOW, failure, good_tables


def good_actions() -> pd.DataFrame:
    """What a CS tool logs: a playbook run on a1, a2 held back, an action on a3; arms in any case."""
    return pd.DataFrame({"account_id": ["a1", "a2", "a3"],
                         "done_at": ts("2024-03-02 09:00", "2024-03-02 09:00", "2024-03-20"),
                         "playbook": ["adoption_workshop", "adoption_workshop", None],
                         "action": ["Workshop held", None, "Called the sponsor"], "owner": ["Ann", None, "Bo"],
                         "arm": ["Treatment", "HOLDOUT", None]})


def test_cs_actions_is_an_optional_table_features_read_only_as_touches():
    spec = CONTRACT["cs_actions"]
    assert not spec.required and NOT_FOR_LABELS == ("cs_actions",)
    assert [c.name for c in spec.columns if spec.read_by_features(c.name)] == ["account_id", "done_at", "arm"]
    assert [c.name for c in spec.columns if c.required] == ["account_id", "done_at"]
    assert spec.one_of == ("playbook", "action")


def test_good_actions_pass_and_an_absent_table_switches_off_only_the_touches(load_tables):
    con = load_tables(**good_tables(), cs_actions=good_actions())
    sources = load_sources(con, {})
    assert sources.has("cs_actions") and not [m for m in sources.missing if m.startswith("cs_actions")]
    report = validate_sources(sources, CONFIG, NOW)
    assert report.ok and report.rows == [] and "cs_actions" in report.tables
    con.drop_table("cs_actions")
    without = load_sources(con, {})
    assert not without.has("cs_actions") and "cs_actions" in without.missing
    assert set(without.missing) == set(sources.missing) | {"cs_actions"}


def broken_actions() -> pd.DataFrame:
    """The good actions, then one defect per row."""
    bad = pd.DataFrame({
        "account_id": ["ghost", "a1", "a1", "a2", "a3", "a3"],
        "done_at": ["2024-03-01", "2024-04-03 09:00", "2023-01-01", "2024-03-05", None, "next week"],
        "playbook": ["adoption_workshop"] * 6, "action": [None] * 6, "owner": [None] * 6,
        "arm": [None, None, None, "control", None, None]})
    return pd.concat([good_actions().astype({"done_at": str}), bad], ignore_index=True)


# table, column, rule → failing count and examples. The data end is the newest event, 2024-04-01 08:00.
BROKEN = {
    ("cs_actions", "account_id", "foreign_key"): (1, ("'ghost'",)),
    ("cs_actions", "done_at", "not_after_data_end"): (1, ("2024-04-03 09:00:00",)),
    ("cs_actions", "done_at", "after_account_created"): (1, ("'a1 at 2023-01-01 00:00:00'",)),
    ("cs_actions", "arm", "allowed_values"): (1, ("'control'",)),
    ("cs_actions", "done_at", "missing_values"): (1, ("null",)),
    ("cs_actions", "done_at", "castable"): (1, ("'next week'",)),
}


def test_every_bad_action_row_is_named_by_table_column_and_rule_in_one_run(load_tables):
    con = load_tables(**good_tables(), cs_actions=broken_actions())
    report = validate_sources(load_sources(con, {}), CONFIG, NOW)
    assert {(f.table, f.column, f.rule) for f in report.rows} == set(BROKEN)
    for key, (count, examples) in BROKEN.items():
        found = failure(report, *key)
        assert (found.severity, found.failing_count, found.examples) == ("error", count, examples), key
    with pytest.raises(ValidationFailed) as error:
        report.raise_for_errors()
    message = str(error.value)
    assert message.startswith("validation: 6 error-level failure(s): ") and message.endswith("and 1 more")
    assert "cs_actions.done_at not_after_data_end (≤ the data's end 2024-04-01 08:00 + 1 day(s))" in message
    # The table the CLI prints: one line per failure, naming table, column and rule.
    lines = [line.split()[1:4] for line in report.summary().splitlines() if line.strip().startswith("error")]
    assert sorted(map(tuple, lines)) == sorted(BROKEN)


def test_the_data_end_of_the_params_bounds_the_actions_and_severities_apply(load_tables):
    actions = good_actions().assign(done_at=ts("2024-03-02", "2024-03-10", "2024-03-20"))
    sources = load_sources(load_tables(**good_tables(), cs_actions=actions), {})
    report = validate_sources(sources, CONFIG, NOW, data_end=datetime(2024, 3, 1))
    assert failure(report, "cs_actions", "done_at", "not_after_data_end").failing_count == 2
    lenient = ValidationConfig(data_docs_dir=None, severities={"cs_actions.not_after_data_end": "warn"})
    assert validate_sources(sources, lenient, NOW, data_end=datetime(2024, 3, 1)).ok


def test_an_action_table_without_playbook_or_action_is_refused_naming_both(load_tables):
    con = load_tables(**good_tables(), cs_actions=good_actions().drop(columns=["playbook", "action"]))
    with pytest.raises(ContractError, match=r"table cs_actions: needs a column playbook or action \(map one under "
                                            r"sources\.cs_actions\.columns\.playbook or "
                                            r"sources\.cs_actions\.columns\.action\)"):
        load_sources(con, {})


def test_a_crm_table_is_mapped_onto_cs_actions(load_tables):
    crm = good_actions().rename(columns={"done_at": "completed_at", "playbook": "play"}).drop(columns="action")
    con = load_tables(**good_tables(), crm_tasks=crm)
    mapping = Params.model_validate({"sources": {"cs_actions": {"table": "crm_tasks", "columns": {
        "done_at": "completed_at", "playbook": "play"}}}}).sources
    sources = load_sources(con, mapping)
    assert list(sources["cs_actions"].columns) == ["account_id", "done_at", "playbook", "owner", "arm"]
    assert "cs_actions" not in sources.missing and validate_sources(sources, CONFIG, NOW).ok
    with pytest.raises(ContractError, match=r"sources\.cs_actions\.table: table 'crm_taskz' does not exist"):
        load_sources(con, {"cs_actions": mapping["cs_actions"].model_copy(update={"table": "crm_taskz"})})
