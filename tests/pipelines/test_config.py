"""params.yaml parsing: the shipped file is valid, typos and bad values name their key, the env overrides the URL."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.config import ParamsError, load_params
from pipelines.warehouse import WarehouseError, connect_warehouse, open_writer, redact_url

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, params: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_shipped_params_parse_and_every_key_is_commented():
    params = load_params(ROOT / "params.yaml")
    assert params.label.horizon_days == 90 and params.features.windows == [7, 30, 90]
    for number, line in enumerate((ROOT / "params.yaml").read_text().splitlines(), 1):
        stripped = line.strip()
        is_key = stripped and not stripped.startswith("#") and ":" in stripped and not stripped.startswith("-")
        if is_key and not stripped.endswith(":"):
            assert "#" in line, f"params.yaml line {number} has no comment: {line}"


def test_a_typo_names_the_key(tmp_path):
    with pytest.raises(ParamsError, match=r"model\.lightgbm_params: Extra inputs are not permitted"):
        load_params(_write(tmp_path, {"model": {"lightgbm_params": {}}}))
    with pytest.raises(ParamsError, match=r"label\.horizon_days: Input should be a valid integer"):
        load_params(_write(tmp_path, {"label": {"horizon_days": "ninety"}}))
    with pytest.raises(ParamsError, match=r"snapshots\.every"):
        load_params(_write(tmp_path, {"snapshots": {"every": "monthly"}}))


def test_missing_file_and_unknown_source_table(tmp_path):
    with pytest.raises(ParamsError, match="no such params file"):
        load_params(tmp_path / "nope.yaml")
    with pytest.raises(ParamsError, match=r"sources\.accounts: .*not a plain identifier"):
        load_params(_write(tmp_path, {"sources": {"accounts": {"table": "x; drop table y"}}}))


def test_a_key_given_twice_is_an_error_naming_it_and_both_lines(tmp_path):
    # Following a hint literally (`tickets: null` pasted just under `sources:`) left the shipped `tickets:` entry
    # below it, which YAML kept silently.
    path = tmp_path / "params.yaml"
    path.write_text("sources:\n  tickets: null\n  accounts:\n    table: accounts\n  tickets:\n    table: tickets\n")
    with pytest.raises(ParamsError, match=r"not valid YAML: key 'tickets' appears twice in one mapping \(lines 2 and "
                                          r"5\); YAML would keep the second silently: keep one"):
        load_params(path)
    assert load_params(ROOT / "params.yaml")   # the shipped file has no such key
    path.write_text("features: {windows: [7], windows: [30]}\n")
    with pytest.raises(ParamsError, match=r"key 'windows' appears twice in one mapping \(line 1, columns 12 and 26\)"):
        load_params(path)
    # Not duplicates: a merge key and the keys it is overridden by, and the number 1 beside the text "1".
    path.write_text("x: &base {horizon_days: 60}\nlabel:\n  <<: *base\n  horizon_days: 30\n")
    with pytest.raises(ParamsError, match="x"):   # the anchor's holder is an unknown section, not a duplicate
        load_params(path)
    path.write_text("features:\n  ttv_targets: {1: 5, '1': 6}\n")
    with pytest.raises(ParamsError, match="ttv_targets") as error:
        load_params(path)
    assert "appears twice" not in str(error.value)


def test_environment_overrides_the_warehouse_url(tmp_path, monkeypatch):
    monkeypatch.setenv("CHURN_WAREHOUSE_URL", "duckdb://elsewhere.duckdb")
    assert load_params(_write(tmp_path, {})).warehouse.url == "duckdb://elsewhere.duckdb"


@pytest.mark.parametrize("command, tables", [
    ("score", "churn_scores, churn_score_drivers, churn_drift and (with experiments on) churn_playbook_assignments"),
    ("features", "churn_features"), ("kpis", "churn_kpis"),
    ("outcomes", "churn_outcomes, churn_model_performance, churn_playbook_effects and churn_missed"),
    ("demo", "the simulated source tables, churn_scores, churn_kpis and the outcome tables")])
def test_a_command_that_writes_to_spark_is_refused_before_any_work(tmp_path, monkeypatch, command, tables):
    # Ibis's PySpark backend has no temporary tables or transactions for the write-back: these computed everything
    # (demo: simulated into Spark and trained) and then stopped on a NotImplementedError traceback. The refusal
    # comes before any connection, so no Spark session is needed here; any casing of the scheme, from params or
    # from the environment, is Spark.
    monkeypatch.setenv("CHURN_WAREHOUSE_URL", "PySpark://")
    monkeypatch.chdir(tmp_path)   # where reports would go
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["mlflow"] |= {"tracking_uri": f"sqlite:///{tmp_path}/mlruns.db", "artifact_root": str(tmp_path / "mlruns")}
    result = CliRunner().invoke(app, ["--params", str(_write(tmp_path, params)), command])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"error: warehouse.url pyspark://: this command writes {tables} to the warehouse, and writing to Spark is "
        "not supported yet (no temporary tables or transactions to replace rows in); validate and train run on "
        "Spark"]
    assert not (tmp_path / "mlruns.db").exists() and not (tmp_path / "reports").exists()


def test_the_writer_itself_refuses_an_engine_it_cannot_write(tmp_path, monkeypatch):
    """Each writing stage refuses Spark before its work; the writer refuses too, before connecting, so a stage that
    forgot the first refusal still writes nothing."""
    monkeypatch.setenv("CHURN_WAREHOUSE_URL", "pyspark://")
    params = load_params(_write(tmp_path, {}))
    refused = pytest.raises(WarehouseError, match=r"^warehouse\.url pyspark://: this command writes churn_x to the ")
    with refused, open_writer(params, "churn_x"):
        pytest.fail("the writer opened a connection to Spark")


def test_credentials_never_appear_in_warehouse_errors():
    url = "postgres://analyst:s3cret@127.0.0.1:1/warehouse"
    assert redact_url(url) == "postgres://analyst:***@127.0.0.1:1/warehouse"
    with pytest.raises(WarehouseError) as error:
        connect_warehouse(url, threads=1)
    assert "s3cret" not in str(error.value) and "warehouse.url: cannot open" in str(error.value)


@pytest.mark.parametrize(("params", "message"), [
    ({"label": {"horizon_days": 0}}, r"label\.horizon_days: Input should be greater than 0"),
    ({"label": {"horizon_days": -30}}, r"label\.horizon_days: Input should be greater than 0"),
    ({"label": {"grace_days": -1}}, r"label\.grace_days: Input should be greater than or equal to 0"),
    ({"snapshots": {"every": "0mo"}}, r"snapshots\.every: Value error, '0mo': the step must be between 1 and 120"),
    ({"snapshots": {"every": "99999999999d"}}, r"snapshots\.every: Value error, '99999999999d': the step must be"),
    ({"snapshots": {"start": "2025-06-01", "end": "2025-01-01"}}, r"snapshots: Value error, end 2025-01-01 is before "
                                                                  r"start 2025-06-01"),
    ({"model": {"lightgbm": {"num_leaves": -1}}}, r"model\.lightgbm\.num_leaves: Input should be greater than or "
                                                  r"equal to 2"),
    ({"model": {"lightgbm": {"learning_rate": 0}}}, r"model\.lightgbm\.learning_rate: Input should be greater than 0"),
    ({"model": {"lightgbm": {"subsample": 1.5}}}, r"model\.lightgbm\.subsample: Input should be less than or equal"),
    ({"evaluation": {"health_score": [{"feature": "logins_per_moon", "weight": 1, "good": 1, "bad": 0}]}},
     r"evaluation\.health_score: unknown feature\(s\) logins_per_moon"),
    ({"kpis": {"gross_margin": 1.5}}, r"kpis\.gross_margin: Input should be less than or equal to 1"),
    ({"kpis": {"ttv_days": [30, 0]}}, r"kpis\.ttv_days: Value error, ttv_days must be distinct day counts from 1 to "
                                      r"3650 \(not 0\)"),
    ({"kpis": {"ttv_days": [30, 7, 30]}}, r"kpis\.ttv_days: Value error, ttv_days must be distinct day counts .*"
                                          r"\(30 repeated\)"),
    ({"kpis": {"segment_by": "name"}}, r"kpis\.segment_by: Value error, 'name' is not an accounts column to break "
                                       r"KPIs down by \(choose from segment, industry, region, csm_owner"),
    ({"features": {"ttv_targets": {"SMB": 0}}}, r"features\.ttv_targets: Value error, targets must be day counts "
                                                r"from 1 to 3650 \(not for SMB\)"),
    # YAML reads yes/no/true as booleans, which pydantic would otherwise take as 1 and 0.
    ({"kpis": {"gross_margin": True}}, r"kpis\.gross_margin: Input should be a valid number"),
    ({"kpis": {"ttv_days": [7, True]}}, r"kpis\.ttv_days\.1: Input should be a valid integer"),
    ({"features": {"ttv_targets": {"SMB": True}}}, r"features\.ttv_targets\.SMB: Input should be a valid integer"),
    # A day count past ten years is a typo: no cohort is observed that long (and 10**20 overflows the engines).
    ({"kpis": {"ttv_days": [7, 100000]}}, r"kpis\.ttv_days: Value error, ttv_days must be distinct day counts from 1 "
                                          r"to 3650 \(not 100000\)"),
    ({"kpis": {"ttv_days": [7, 10**20]}}, r"kpis\.ttv_days: Value error, .*\(not 100000000000000000000\)"),
    ({"features": {"ttv_targets": {"SMB": 100000}}}, r"features\.ttv_targets: Value error, targets must be day "
                                                     r"counts from 1 to 3650 \(not for SMB\)"),
    # Playbook timing: a boolean or a quoted number is a slip, not 1 or 30 days.
    ({"scoring": {"playbooks": {"urgent_days": True}}}, r"scoring\.playbooks\.urgent_days: Input should be a valid "
                                                        r"integer"),
    ({"scoring": {"playbooks": {"urgent_days": "30"}}}, r"scoring\.playbooks\.urgent_days: Input should be a valid "
                                                        r"integer"),
    ({"scoring": {"playbooks": {"urgent_days": -1}}}, r"scoring\.playbooks\.urgent_days: Input should be greater "
                                                      r"than or equal to 0"),
    ({"scoring": {"playbooks": {"urgent_days": 99999}}}, r"scoring\.playbooks\.urgent_days: Input should be less "
                                                         r"than or equal to 3660"),
    ({"scoring": {"playbooks": {"due_days": False}}}, r"scoring\.playbooks\.due_days: Input should be a valid "
                                                      r"integer"),
    ({"scoring": {"top_reasons": True}}, r"scoring\.top_reasons: Input should be a valid integer"),
    ({"scoring": {"protective_factors": True}}, r"scoring\.protective_factors: Input should be a valid integer"),
    ({"simulate": {"causes": {"churn_storm": 1}}}, r"simulate\.causes: Value error, unknown cause 'churn_storm' "
                                                   r"\(known: onboarding, champion_loss, support_pain"),
    ({"simulate": {"causes": {"price_shock": -0.5}}}, r"simulate\.causes: Value error, price_shock: the rate "
                                                      r"multiplier must be a finite number ≥ 0 \(0 switches the "
                                                      r"cause off\), not -0\.5"),
    ({"simulate": {"causes": {"support_pain": "often"}}}, r"simulate\.causes: Value error, support_pain: the rate "
                                                          r"multiplier must be a finite number ≥ 0"),
    ({"simulate": {"causes": [0, 1]}}, r"simulate\.causes: Value error, a mapping of cause name to rate multiplier"),
    # The value, champion, comment and touch signals' settings.
    ({"features": {"outcome_events": {"won": ["win"], "lost": ["win"]}}},
     r"features\.outcome_events: Value error, an event cannot be both won and lost: win"),
    ({"features": {"outcome_events": {"won": ["win"]}}},
     r"features\.outcome_events: Value error, name both won and lost events"),
    ({"features": {"outcome_events": {"won": ["win"], "lost": ["lose"], "maybe": ["x"]}}},
     r"features\.outcome_events\.maybe: Extra inputs are not permitted"),
    ({"features": {"outcome_events": ["win"]}}, r"features\.outcome_events: Input should be a valid dictionary"),
    ({"features": {"admin_roles": []}}, r"features\.admin_roles: List should have at least 1 item"),
    ({"features": {"admin_roles": ["admin", " "]}}, r"features\.admin_roles: Value error, roles must be non-empty"),
    ({"features": {"touch_window_days": 0}}, r"features\.touch_window_days: Input should be greater than 0"),
    ({"features": {"admin_active_days": 90, "admin_lost_days": 30}},
     r"features: Value error, admin_lost_days \(30\) must be longer than admin_active_days \(90\)"),
])
def test_a_bad_value_is_one_line_naming_its_key(tmp_path, params, message):
    with pytest.raises(ParamsError, match=message) as error:
        load_params(_write(tmp_path, params))
    assert len(str(error.value).splitlines()) == 1


def test_a_folder_given_as_params_file_is_named(tmp_path):
    with pytest.raises(ParamsError, match="is a folder, not a params file"):
        load_params(tmp_path)


def test_simulate_causes_default_to_one_and_a_partial_mapping_keeps_the_others(tmp_path):
    assert dict(load_params(_write(tmp_path, {})).simulate.causes) == {
        "onboarding": 1.0, "champion_loss": 1.0, "support_pain": 1.0, "unhappy_voice": 1.0, "price_shock": 1.0}
    causes = load_params(_write(tmp_path, {"simulate": {"causes": {"support_pain": 0, "price_shock": 2}}})).simulate
    assert causes.causes["support_pain"] == 0.0 and causes.causes["price_shock"] == 2.0
    assert causes.causes["onboarding"] == 1.0


def test_other_lightgbm_parameters_pass_through(tmp_path):
    params = load_params(_write(tmp_path, {"model": {"lightgbm": {"num_leaves": 7, "min_split_gain": 0.1}}}))
    assert dict(params.model.lightgbm.items()) == {"num_leaves": 7, "min_split_gain": 0.1}


def test_null_outcome_events_name_none_and_leave_their_features_out(tmp_path):
    features = load_params(_write(tmp_path, {"features": {"outcome_events": None}})).features
    assert not features.outcome_events.configured and features.unset_needs() == ["features.outcome_events"]
    shipped = load_params(ROOT / "params.yaml").features
    assert shipped.outcome_events.won == ["win_deal"] and shipped.unset_needs() == []
