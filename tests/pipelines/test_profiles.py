"""Company profiles (`simulate.profile`): each profile's tables meet the contract and pass validation, are
deterministic, and differ from the demo's in every promised way: scale, billing, which tables exist, overlapping
add-ons, future term ends, event names. The params files in docs/profiles/ name what each generator profile draws."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import date

import duckdb
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.config import ParamsError, load_params, merge_params
from pipelines.synthetic.config import SimulationConfig
from pipelines.synthetic.generate import generate_warehouse
from pipelines.synthetic.profiles import DEMO, OPTIONAL_TABLES, PROFILES, get_profile
from serving.tables import OUTPUT_TABLES, OUTPUT_VIEWS
from tests.e2e import REPO, query, write_params

SIZES = {  # small warehouses; the enterprise one needs its longer history for annual renewals
    "demo": SimulationConfig(accounts=150, months=12, seed=5, start=date(2024, 1, 1)),
    "self_serve": SimulationConfig(accounts=200, months=12, seed=5, start=date(2024, 1, 1), profile="self_serve"),
    "enterprise": SimulationConfig(accounts=60, months=30, seed=5, start=date(2023, 1, 1), profile="enterprise"),
}
OVERLAYS = REPO / "docs" / "profiles"


@pytest.fixture(scope="module")
def frames() -> dict[str, dict[str, pd.DataFrame]]:
    return {name: generate_warehouse(config) for name, config in SIZES.items()}


def _history_end(name: str) -> pd.Timestamp:
    config = SIZES[name]
    return pd.Timestamp(config.start) + pd.DateOffset(months=config.months)


def _events_per_active_user_day(events: pd.DataFrame) -> float:
    count = events["event_count"] if "event_count" in events else pd.Series(1, index=events.index)
    per_day = events.assign(day=events["event_at"].dt.floor("D"), n=count).groupby(["user_id", "day"])["n"].sum()
    return float(per_day.mean())


def _paid_base_rows(subscriptions: pd.DataFrame) -> pd.DataFrame:
    return subscriptions[~subscriptions["is_trial"] & (subscriptions["plan"] != "Add-on")]


# --- contract and determinism ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["self_serve", "enterprise"])
def test_same_config_gives_identical_frames_and_another_seed_others(frames, name):
    again = generate_warehouse(SIZES[name])
    assert list(again) == list(frames[name])
    for table, frame in frames[name].items():
        pd.testing.assert_frame_equal(again[table], frame, obj=f"{name}.{table}")
    other = generate_warehouse(replace(SIZES[name], seed=6))
    assert not other["events"].equals(frames[name]["events"])


def test_each_profile_has_the_tables_it_promises(frames):
    truth = {"sim_truth", "sim_causes", "sim_playbooks", "sim_nowcast"}
    common = {"accounts", "subscriptions", "events", "users", "cs_actions"} | truth
    assert set(frames["demo"]) == common | set(OPTIONAL_TABLES)
    assert set(frames["enterprise"]) == common | set(OPTIONAL_TABLES)
    assert set(frames["self_serve"]) == common   # no tickets, surveys or milestones: simply not produced
    assert list(frames["self_serve"]["events"].columns) == [
        "account_id", "event_at", "event_name", "user_id", "session_id", "duration_s", "event_count", "value"]
    assert "event_count" not in frames["enterprise"]["events"]


@pytest.mark.parametrize("name", ["self_serve", "enterprise"])
def test_every_profile_keeps_its_own_truth(frames, name):
    truth = frames[name]["sim_truth"]
    assert len(truth) and truth["hazard"].between(0, 1).all()
    assert set(truth["account_id"]) <= set(frames[name]["accounts"]["account_id"])
    assert set(frames[name]["cs_actions"]["account_id"]) <= set(frames[name]["accounts"]["account_id"])


# --- the promised differences ------------------------------------------------------------------------------


def test_events_per_active_user_day_span_two_to_two_hundred(frames):
    rates = {name: _events_per_active_user_day(f["events"]) for name, f in frames.items()}
    assert 1.5 < rates["enterprise"] < 3.0
    assert 4.0 < rates["demo"] < 7.0
    assert 150 < rates["self_serve"] < 260
    counts = frames["self_serve"]["events"]["event_count"]
    assert counts.min() >= 1 and counts.dtype == "int64"


def test_billing_is_monthly_self_serve_and_annual_enterprise(frames):
    periods = {name: _paid_base_rows(f["subscriptions"])["billing_period_months"] for name, f in frames.items()}
    assert (periods["self_serve"] == 1).mean() > 0.9
    assert (periods["enterprise"] == 12).all()
    assert 0.2 < (periods["demo"] == 12).mean() < 0.6


def test_enterprise_accounts_are_few_large_and_old(frames):
    accounts = {name: f["accounts"] for name, f in frames.items()}
    users = {name: len(f["users"]) / len(accounts[name]) for name, f in frames.items()}
    assert users["enterprise"] > 3 * users["demo"] > 3 * users["self_serve"]
    tenure_years = (pd.Timestamp(SIZES["enterprise"].start) - accounts["enterprise"]["created_at"]).dt.days / 365
    assert (tenure_years > 3).sum() >= 5   # multi-year tenure before the history starts
    assert (tenure_years.max() > 2.1) and not (pd.Timestamp(SIZES["demo"].start)
                                               - accounts["demo"]["created_at"]).dt.days.gt(731).any()


def test_enterprise_has_richer_tickets_and_surveys_than_the_demo(frames):
    def per_account_month(name, table):
        return len(frames[name][table]) / len(frames[name]["accounts"]) / SIZES[name].months

    for table in ("tickets", "surveys"):
        assert per_account_month("enterprise", table) > 3 * per_account_month("demo", table)


def test_self_serve_add_ons_overlap_the_base_plan(frames):
    subs = frames["self_serve"]["subscriptions"]
    addons, base = subs[subs["plan"] == "Add-on"], _paid_base_rows(subs)
    paying = base["account_id"].nunique()
    assert addons["account_id"].nunique() > 0.25 * paying
    pairs = addons.merge(base, on="account_id", suffixes=("", "_base"))
    overlaps = (pairs["start_at"] >= pairs["start_at_base"]) & (
        pairs["end_at_base"].isna() | (pairs["start_at"] < pairs["end_at_base"]))
    assert pairs.loc[overlaps, "account_id"].nunique() == addons["account_id"].nunique()


@pytest.mark.parametrize("name", ["self_serve", "enterprise"])
def test_active_accounts_hold_term_ends_in_the_future(frames, name):
    subs, end = frames[name]["subscriptions"], _history_end(name)
    paid = subs[~subs["is_trial"]]
    assert paid["end_at"].notna().all()   # no open row: a billing system's term end instead
    active = paid[paid["end_at"] > end]
    assert active["account_id"].nunique() > 0.3 * paid["account_id"].nunique()
    months = paid["billing_period_months"].to_numpy()
    assert (active["end_at"] <= end + pd.DateOffset(months=int(months.max()))).all()


def test_demo_rows_stay_open_ended(frames):
    paid = frames["demo"]["subscriptions"]
    assert paid.loc[~paid["is_trial"], "end_at"].isna().any()
    assert (paid["end_at"].dropna() < _history_end("demo")).all()


def test_profiles_use_their_own_event_and_milestone_names(frames):
    names = {name: set(f["events"]["event_name"]) for name, f in frames.items()}
    assert names["demo"] <= set(DEMO.event_names)
    for name in ("self_serve", "enterprise"):
        assert names[name] <= set(get_profile(name).event_names)
        assert not names[name] & set(DEMO.event_names), name   # nothing can rely on `login` or the demo's core names
        assert get_profile(name).login_event in names[name]
    milestones = set(frames["enterprise"]["milestones"]["milestone"])
    assert milestones and not milestones & set(DEMO.milestones)


# --- params ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PROFILES))
def test_each_profiles_params_file_names_what_its_company_draws(name):
    params = load_params(REPO / "params.yaml", OVERLAYS / f"{name}.yaml")
    profile, features = get_profile(name), params.features
    assert params.simulate.profile == name
    assert features.login_event == profile.login_event
    assert features.core_events == list(profile.core_events)
    assert features.value_events == list(profile.value_events)
    assert set(features.onboarding_milestones) <= set(profile.milestones if "milestones" in profile.tables else ())
    assert features.ttv_targets.keys() <= set(profile.segments)   # the overlay's targets replace the demo's whole
    switched_off = {table for table in OPTIONAL_TABLES if params.sources.get(table, "absent") is None}
    assert switched_off == set(OPTIONAL_TABLES) - profile.tables


def test_an_unknown_profile_is_an_error_naming_the_key(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("simulate:\n  profile: marketplace\n")
    with pytest.raises(ParamsError, match=r"simulate\.profile: .*unknown profile 'marketplace' \(known: demo, "
                                          r"self_serve, enterprise\)"):
        load_params(path)


def test_overlays_merge_each_section_key_by_key_and_replace_values_whole():
    base = {"features": {"login_event": "login", "ttv_targets": {"SMB": 14}}, "model": {"seed": 1}}
    overlay = {"features": {"ttv_targets": {"Solo": 7}}, "sources": {"tickets": None}}
    assert merge_params(base, overlay) == {"features": {"login_event": "login", "ttv_targets": {"Solo": 7}},
                                           "model": {"seed": 1}, "sources": {"tickets": None}}


# --- through the command line: simulate, then validate -----------------------------------------------------


@pytest.mark.parametrize(("name", "size"), [("self_serve", ("150", "12")), ("enterprise", ("50", "30"))])
def test_each_profiles_warehouse_passes_validation(tmp_path, name, size):
    params = write_params(tmp_path)
    options = ["--params", str(params), "--params", str(OVERLAYS / f"{name}.yaml")]
    with contextlib.chdir(tmp_path):
        simulated = CliRunner().invoke(app, [*options, "simulate", "--accounts", size[0], "--months", size[1]])
        assert simulated.exit_code == 0, simulated.output
        validated = CliRunner().invoke(app, [*options, "validate"])
    assert validated.exit_code == 0, validated.output
    assert "contract satisfied" in validated.output
    tables = set(query(tmp_path / "warehouse.duckdb", "SELECT table_name FROM information_schema.tables")["table_name"])
    assert (set(OPTIONAL_TABLES) - get_profile(name).tables).isdisjoint(tables)


def test_simulating_another_company_drops_the_earlier_ones_tickets_and_every_output(tmp_path):
    """A profile without tickets leaves no earlier company's tickets behind; and no table or view a stage wrote
    about the earlier company (scores, drift, arms, outcomes, effects) is left to mix with the new one."""
    params = write_params(tmp_path, {"simulate": {"accounts": 60, "months": 8}})
    with contextlib.chdir(tmp_path):
        assert CliRunner().invoke(app, ["--params", str(params), "simulate"]).exit_code == 0
        with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
            for name in OUTPUT_TABLES:
                con.execute(f"CREATE TABLE {name} AS SELECT 1 AS earlier")
            for name in OUTPUT_VIEWS:
                con.execute(f"CREATE VIEW {name} AS SELECT 1 AS earlier")
        result = CliRunner().invoke(app, ["--params", str(params), "--params", str(OVERLAYS / "self_serve.yaml"),
                                          "simulate", "--accounts", "60", "--months", "8"])
    assert result.exit_code == 0, result.output
    tables = set(query(tmp_path / "warehouse.duckdb", "SELECT table_name FROM information_schema.tables")["table_name"])
    assert "tickets" not in tables and "surveys" not in tables and "milestones" not in tables
    assert "events" in tables and not tables & {*OUTPUT_TABLES, *OUTPUT_VIEWS}


def test_profile_params_files_never_move_the_warehouse_or_the_mlflow_store():
    # The overlays hold no path: laid over any params.yaml, its warehouse and MLflow store stay the user's.
    overlays = sorted(OVERLAYS.glob("*.yaml"))
    assert [path.stem for path in overlays] == sorted(PROFILES)
    for overlay in overlays:
        sections = yaml.safe_load(overlay.read_text())
        assert not {"warehouse", "mlflow", "report", "validation"} & set(sections), overlay


def test_simulating_a_profile_under_the_demos_event_names_says_which_params_file_to_lay_over(tmp_path):
    params = write_params(tmp_path, {"simulate": {"accounts": 40, "months": 6, "profile": "enterprise"}})
    with contextlib.chdir(tmp_path):
        alone = CliRunner().invoke(app, ["--params", str(params), "simulate"])
        laid = CliRunner().invoke(app, ["--params", str(params), "--params", str(OVERLAYS / "enterprise.yaml"),
                                        "simulate", "--accounts", "40", "--months", "30"])
    assert alone.exit_code == 0 and laid.exit_code == 0, alone.output + laid.output
    assert "lay docs/profiles/enterprise.yaml over your params" in alone.output
    assert "login 'sso_login'" in alone.output
    assert "docs/profiles" not in laid.output
