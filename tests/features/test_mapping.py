"""The `sources:` mapping: a warehouse with its own names gives the same features as the canonical one."""

from __future__ import annotations

from datetime import date

import ibis
import pandas as pd
import pytest

from features.config import FeatureConfig, SourceTable
from features.feature_table import compute_feature_table
from features.sources import ContractError, load_sources
from tests.conftest import tiny_accounts, ts
from tests.features.test_engagement import EVENTS, _events

CONFIG = FeatureConfig(windows=[7, 30], trend_window_days=7, core_events=["report"])
SUBS = pd.DataFrame({"account_id": ["a", "b"], "start_at": ts("2023-12-01", "2023-12-01"),
                     "end_at": ts(None, "2024-06-01"), "mrr": [400.0, 50.0], "seats": [4.0, 2.0]})


def _features(con, sources) -> pd.DataFrame:
    grid = ibis.memtable(pd.DataFrame({"account_id": ["a", "b"], "as_of": ts("2024-03-01", "2024-03-01")}))
    table, _ = compute_feature_table(load_sources(con, sources), grid, [date(2024, 3, 1)], CONFIG)
    return table.execute().sort_values("account_id").reset_index(drop=True)


def test_renamed_tables_and_columns_give_identical_features(load_tables, tmp_path):
    canonical = load_tables(accounts=tiny_accounts("a", "b"), subscriptions=SUBS, events=_events(EVENTS))
    expected = _features(canonical, {})

    other = ibis.duckdb.connect(str(tmp_path / "theirs.duckdb"), threads=1)
    other.create_table("crm_customers", tiny_accounts("a", "b").rename(
        columns={"account_id": "customer_id", "created_at": "signed_up"}))
    other.create_table("billing_lines", SUBS.rename(columns={
        "account_id": "cust", "start_at": "period_start", "end_at": "cancelled_on", "mrr": "amount",
        "seats": "licences"}))
    other.create_table("raw_tracking", _events(EVENTS).rename(columns={
        "account_id": "cust", "user_id": "member", "event_at": "ts", "event_name": "action"}))
    mapping = {
        "accounts": SourceTable(table="crm_customers", columns={"account_id": "customer_id",
                                                                "created_at": "signed_up"}),
        "subscriptions": SourceTable(table="billing_lines", columns={
            "account_id": "cust", "start_at": "period_start", "end_at": "cancelled_on", "mrr": "amount",
            "seats": "licences"}),
        "events": SourceTable(sql="SELECT cust AS account_id, member AS user_id, ts AS event_at, "
                                  "action AS event_name FROM raw_tracking"),
        "users": None, "tickets": None,
    }
    pd.testing.assert_frame_equal(_features(other, mapping), expected)


def test_missing_required_column_and_bad_mapping_are_named(load_tables):
    con = load_tables(accounts=tiny_accounts("a"), subscriptions=SUBS.drop(columns="mrr"), events=_events(EVENTS))
    with pytest.raises(ContractError, match="table subscriptions: required column mrr"):
        load_sources(con, {})
    with pytest.raises(ContractError, match=r"column start_at is mapped to 'begins'"):
        load_sources(con, {"subscriptions": SourceTable(table="subscriptions", columns={"start_at": "begins"})})
    with pytest.raises(ContractError, match="sources.invoices: unknown table"):
        load_sources(con, {"invoices": SourceTable(table="x")})
    con.create_table("subscriptions", SUBS, overwrite=True)
    con.drop_table("events")
    with pytest.raises(ContractError, match="table events: required by the contract"):
        load_sources(con, {})


def test_plain_identifiers_only():
    with pytest.raises(ValueError, match="not a plain identifier"):
        SourceTable(table="x; drop table accounts")


def test_every_mapping_problem_is_named_in_one_message_with_the_line_to_switch_optional_tables_off(load_tables):
    con = load_tables(accounts=tiny_accounts("a"), subscriptions=SUBS.drop(columns="mrr"))
    with pytest.raises(ContractError) as error:
        load_sources(con, {"tickets": SourceTable(table="tickets"), "surveys": SourceTable(table="nps_answers"),
                           "accounts": SourceTable(table="accounts", columns={"created_at": "signup"})})
    assert str(error.value).splitlines() == [
        "table accounts: column created_at is mapped to 'signup', which does not exist (columns: account_id, "
        "created_at)",
        "table subscriptions: required column mrr not found (map it under sources.subscriptions.columns.mrr)",
        "table events: required by the contract but not found in the warehouse (map it under sources.events)",
        "sources.tickets.table: table 'tickets' does not exist in the warehouse",
        "sources.surveys.table: table 'nps_answers' does not exist in the warehouse",
        "to run without them, put these lines under `sources:` in params.yaml (in place of their entries):",
        "  tickets: null",
        "  surveys: null",
    ]



@pytest.mark.postgres
def test_a_name_is_matched_exactly_before_case_and_never_among_several_case_variants(postgres_con):
    """On PostgreSQL `Accounts` and `accounts` may both exist (quoted names; DuckDB allows only one): the mapped
    one is read, not whichever the warehouse lists last; when neither is exactly the name asked for, which one is
    meant is not guessed."""
    for name, frame in {"accounts": tiny_accounts("a"), "subscriptions": SUBS, "events": _events(EVENTS),
                        "Accounts": tiny_accounts("b").rename(columns={"created_at": "CreatedAt"})}.items():
        postgres_con.create_table(name, frame)
    chosen = load_sources(postgres_con, {"accounts": SourceTable(table="Accounts",
                                                                 columns={"created_at": "CreatedAt"})})
    assert chosen["accounts"].account_id.execute().tolist() == ["b"]
    assert load_sources(postgres_con, {})["accounts"].account_id.execute().tolist() == ["a"]
    with pytest.raises(ContractError, match=r"^sources\.accounts\.table: table 'ACCOUNTS' matches 'Accounts' and "
                                            r"'accounts', which differ only in case: give the one you mean exactly$"):
        load_sources(postgres_con, {"accounts": SourceTable(table="ACCOUNTS")})
    # The same for columns: `Created_At` and `created_at` both in one table.
    postgres_con.create_table("accounts", tiny_accounts("a").assign(Created_At=ts("2023-01-01")), overwrite=True)
    created = load_sources(postgres_con, {})["accounts"].created_at.execute()
    assert created.tolist() == tiny_accounts("a").created_at.tolist()
    with pytest.raises(ContractError, match=r"^sources\.accounts\.columns\.created_at: column 'CREATED_AT' matches "
                                            r"'Created_At' and 'created_at', which differ only in case"):
        load_sources(postgres_con, {"accounts": SourceTable(table="accounts", columns={"created_at": "CREATED_AT"})})


def test_columns_differing_only_in_case_are_an_error_where_the_engine_ignores_case(load_tables):
    """DuckDB resolves even a quoted column name without regard to case: mapping `CREATED_AT` beside a
    `Created_At` read the other one, whichever DuckDB took."""
    con = load_tables(accounts=tiny_accounts("a"), subscriptions=SUBS, events=_events(EVENTS))
    shifted = ('SELECT account_id, created_at AS "Created_At", created_at - INTERVAL 1 DAY AS "CREATED_AT" '
               'FROM accounts')
    with pytest.raises(ContractError, match=r"^sources\.accounts\.columns\.created_at: column 'CREATED_AT' matches "
                                            r"'CREATED_AT' and 'Created_At', which differ only in case"):
        load_sources(con, {"accounts": SourceTable(sql=shifted, columns={"created_at": "CREATED_AT"})})
