"""The KPIs on a tiny hand-built warehouse (tests/features/kpi_warehouse.py): every value, numerator and
denominator of the table equals the one worked out by hand, exactly."""

from __future__ import annotations

import math
from datetime import date, datetime

import ibis
import pandas as pd
import pytest

from features.config import SnapshotConfig, SourceTable
from features.kpis.definitions import KPIS
from features.kpis.months import build_kpi_months, count_reserved_segments
from features.kpis.revenue import MOVEMENTS
from features.kpis.table import build_kpi_inputs, compute_kpi_table, select_kpis
from features.snapshots import find_data_bounds
from features.sources import load_sources
from tests.conftest import ts
from tests.features.kpi_warehouse import (
    FEATURES,
    KPI_CONFIG,
    LABEL,
    expected_all,
    expected_smb,
    kpi_tables,
)

SETTLING = {s.name for s in KPIS if s.settles} | {f"churn_rate_ttv_{q}" for q in ("q1", "q2", "q3", "q4", "none")}


def compute_kpis(con: ibis.BaseBackend, sources_config: dict | None = None, config=KPI_CONFIG, features=FEATURES):
    """The KPI table of the warehouse behind `con` (month as YYYY-MM-DD), sorted, and the KPI set."""
    sources = load_sources(con, sources_config or {})
    start, end = find_data_bounds(sources, SnapshotConfig())
    months = build_kpi_months(start, end, LABEL.grace_days)
    table, kpi_set = compute_kpi_table(sources, build_kpi_inputs(sources, months, LABEL), months, config, features)
    frame = table.execute()
    frame["month"] = pd.to_datetime(frame["month"]).dt.strftime("%Y-%m-%d")
    return frame.sort_values(["month", "segment", "kpi"], ignore_index=True), kpi_set


def load(con: ibis.BaseBackend, frames: dict[str, pd.DataFrame], database: str | None = None) -> ibis.BaseBackend:
    for name, frame in frames.items():
        con.create_table(name, frame, database=database, overwrite=True)
    return con


@pytest.fixture(scope="module")
def computed(tmp_path_factory):
    con = ibis.duckdb.connect(str(tmp_path_factory.mktemp("kpis") / "warehouse.duckdb"), threads=2)
    try:
        yield compute_kpis(load(con, kpi_tables()))
    finally:
        con.disconnect()


def rows_of(frame: pd.DataFrame, segment: str) -> dict[tuple[str, str], tuple]:
    part = frame[frame.segment == segment]
    def clean(x):
        return None if pd.isna(x) else x
    return {(r.month, r.kpi): (clean(r.value), clean(r.numerator), clean(r.denominator)) for r in part.itertuples()}


def assert_exact(got: dict, expected: dict) -> None:
    wrong = {}
    for key, want in expected.items():
        have = got.get(key)
        # Exactly equal: the same float operations in the same order give the same bits.
        same = have is not None and all((a is None and b is None) or (a is not None and b is not None and a == b)
                                        for a, b in zip(have, want, strict=True))
        if not same:
            wrong[key] = (have, want)
    assert not wrong, "\n".join(f"{k}: got {h}, expected {w}" for k, (h, w) in sorted(wrong.items()))


def test_every_row_for_all_accounts_is_the_hand_computed_value(computed):
    frame, _ = computed
    got, expected = rows_of(frame, "all"), expected_all()
    assert sorted(set(got) - set(expected)) == [], "rows the hand computation does not have"
    assert sorted(set(expected) - set(got)) == [], "rows missing from the table"
    assert_exact(got, expected)


def test_segment_values_are_the_hand_computed_ones(computed):
    frame, _ = computed
    assert set(frame.segment) == {"all", "SMB", "ENT", "unknown"}   # annual has no segment
    assert_exact(rows_of(frame, "SMB"), expected_smb())


@pytest.mark.parametrize("kpi", ["mrr", "active_accounts", *MOVEMENTS])
def test_totals_of_the_segments_add_up_to_all_accounts(computed, kpi):
    frame, _ = computed
    part = frame[frame.kpi == kpi]
    by_segment = part[part.segment != "all"].groupby("month").value.sum()
    everyone = part[part.segment == "all"].set_index("month").value
    pd.testing.assert_series_equal(by_segment, everyone, check_names=False)


def test_the_mrr_bridge_closes_for_every_segment_and_settled_month(computed):
    frame, _ = computed
    wide = frame.pivot_table(index=["segment", "month"], columns="kpi", values="value")
    settled = wide.dropna(subset=["new_mrr"])
    previous = wide["mrr"].groupby(level="segment").shift(1)
    opening = (settled["churned_mrr"] / settled["revenue_churn_rate"]).where(settled["churned_mrr"] > 0,
                                                                             previous.reindex(settled.index))
    moved = (settled.new_mrr + settled.reactivation_mrr + settled.expansion_mrr - settled.contraction_mrr
             - settled.churned_mrr)
    checked = (settled["mrr"] - opening - moved).dropna()
    assert len(checked) > 20 and (checked.abs() < 1e-9).all()


def test_a_pending_month_has_only_the_kpis_that_do_not_count_churn(computed):
    frame, kpi_set = computed
    march = frame[frame.month == "2024-03-01"]
    assert set(march.kpi) & SETTLING == set()
    assert {"mrr", "active_accounts", "arpu", "stickiness", "seats_in_use"} <= set(march.kpi)
    assert set(frame[frame.month == "2024-02-01"].kpi) >= {"logo_churn_rate", "net_revenue_retention_12m"}


def test_every_kpi_the_warehouse_allows_is_computed(computed):
    frame, kpi_set = computed
    # Too few accounts reach first value for a fourth quarter, and none is active without it.
    assert set(frame.kpi) == set(kpi_set.names) - {"churn_rate_ttv_q4", "churn_rate_ttv_none"}
    assert kpi_set.left_out == {}


@pytest.mark.parametrize(("drop", "gone"), [
    ("surveys", {"nps": ["surveys"], "csat": ["surveys"], "ces": ["surveys"]}),
    ("tickets", {"first_contact_resolution": ["tickets.resolved_at", "tickets.first_contact_resolved"],
                 "median_resolution_hours": ["tickets.resolved_at"]}),
    ("milestones", {f"onboarded_by_day_{d}": ["milestones"] for d in (7, 30, 60)}
     | {"median_days_to_onboard": ["milestones"]}),
])
def test_a_missing_table_leaves_out_exactly_its_kpis(load_tables, computed, drop, gone):
    frame, _ = computed
    frames = kpi_tables()
    del frames[drop]
    out, kpi_set = compute_kpis(load_tables(**frames))
    assert kpi_set.left_out == gone
    pd.testing.assert_frame_equal(out, frame[~frame.kpi.isin(gone)].reset_index(drop=True))


def test_a_missing_column_or_setting_leaves_out_its_kpis(load_tables, computed):
    frame, _ = computed
    frames = kpi_tables()
    frames["tickets"] = frames["tickets"].drop(columns="first_contact_resolved")
    frames["events"] = frames["events"].drop(columns="user_id")
    out, kpi_set = compute_kpis(load_tables(**frames), features=FEATURES.model_copy(update={"core_events": []}))
    assert kpi_set.left_out == {"first_contact_resolution": ["tickets.first_contact_resolved"],
                                "stickiness": ["events.user_id"], "seats_in_use": ["events.user_id"],
                                "core_feature_share": ["features.core_events"]}
    pd.testing.assert_frame_equal(out, frame[~frame.kpi.isin(kpi_set.left_out)].reset_index(drop=True))


def test_without_the_segment_column_only_all_accounts_are_reported(load_tables, computed):
    frame, _ = computed
    frames = kpi_tables()
    frames["accounts"] = frames["accounts"].drop(columns="segment")
    out, _ = compute_kpis(load_tables(**frames))
    assert set(out.segment) == {"all"}
    pd.testing.assert_frame_equal(out, frame[frame.segment == "all"].reset_index(drop=True))


def test_a_blank_segment_is_unknown_and_the_reserved_one_is_counted(load_tables, computed):
    """Blank and empty segments join the accounts without one (`unknown`) instead of a segment that reads as
    nothing; an account segment named `all` is counted, so the stage can refuse it."""
    frame, _ = computed
    frames = kpi_tables()
    blank = {"annual": None, "steady": "", "upgrade": "  "}
    frames["accounts"]["segment"] = [blank.get(a, s) for a, s in zip(frames["accounts"].account_id,
                                                                      frames["accounts"].segment, strict=True)]
    out, _ = compute_kpis(load_tables(**frames))
    assert set(out.segment) == {"all", "ENT", "SMB", "unknown"}
    mrr = out[(out.kpi == "mrr") & (out.month == "2024-03-01")].set_index("segment").value
    # unknown at the end of March: annual 250 + steady 150 + upgrade 300
    assert mrr["unknown"] == 700.0 and mrr["all"] == frame[(frame.kpi == "mrr") & (frame.month == "2024-03-01")
                                                           & (frame.segment == "all")].value.iloc[0]
    sources = load_sources(load_tables(**frames), {})
    assert count_reserved_segments(sources, "segment") == 0
    frames["accounts"].loc[frames["accounts"].account_id.isin(["quick", "newbie"]), "segment"] = "all"
    assert count_reserved_segments(load_sources(load_tables(**frames), {}), "segment") == 2
    assert count_reserved_segments(sources, None) == 0


def test_a_month_with_no_account_active_on_its_first_has_zero_denominators_not_empty_ones(load_tables):
    """The first paying account starts mid-March: no account is active on 1 March. Every ratio of that month has
    an empty value over a denominator of 0 (the rule of docs/KPIS.md), not an empty denominator, and no NaN."""
    frames = {
        "accounts": pd.DataFrame({"account_id": ["a"], "created_at": ts("2023-01-01")}),
        "subscriptions": pd.DataFrame({"account_id": ["a"], "start_at": ts("2023-03-15"), "end_at": ts(None),
                                       "mrr": [100.0]}),
        "events": pd.DataFrame({"account_id": ["a", "a"], "event_at": ts("2023-02-01", "2023-06-30"),
                                "event_name": ["login", "login"]}),
    }
    out, _ = compute_kpis(load_tables(**frames))
    march = rows_of(out[out.month == "2023-03-01"], "all")
    for kpi in ("logo_churn_rate", "revenue_churn_rate", "gross_revenue_retention", "net_revenue_retention"):
        assert march[("2023-03-01", kpi)] == (None, 0.0, 0.0), kpi
    assert march[("2023-03-01", "new_mrr")] == (100.0, 100.0, None)
    assert not out[["value", "numerator", "denominator"]].isin([math.inf, -math.inf]).any().any()


def test_a_change_after_a_months_end_changes_none_of_its_non_churn_kpis(load_tables, computed):
    """Guard against reading the future: data after 2024-01 (but before the data end) leaves January's
    MRR, NPS, tickets and usage alone, while a change inside January does change them."""
    frame, _ = computed
    frames = kpi_tables()
    later = pd.DataFrame({"response_id": ["x"], "account_id": ["steady"], "responded_at": [pd.Timestamp("2024-02-01")],
                          "survey_type": ["nps"], "score": [0.0]})
    frames["surveys"] = pd.concat([frames["surveys"], later.astype(frames["surveys"].dtypes)], ignore_index=True)
    out, _ = compute_kpis(load_tables(**frames))

    def january(f: pd.DataFrame) -> pd.DataFrame:
        keep = ~f.kpi.isin(SETTLING) & (f.month == "2024-01-01") & ~f.kpi.str.contains("by_day|median_days")
        return f[keep].reset_index(drop=True)

    assert len(january(frame)) > 30
    pd.testing.assert_frame_equal(january(out), january(frame))
    february = out[(out.month == "2024-02-01") & (out.kpi == "nps")].set_index("segment").value
    assert february.to_dict() == {"all": -100.0, "ENT": -100.0, "SMB": -100.0}   # the 0 counts in February


def test_months_start_with_the_first_complete_month_and_settle_after_the_grace_period():
    months = build_kpi_months(datetime(2024, 1, 15, 9), datetime(2024, 4, 10, 12), grace_days=10)
    assert months.months == (date(2024, 2, 1), date(2024, 3, 1))     # January starts before the data; April is open
    assert months.settled == (date(2024, 2, 1),)                     # March: 2024-04-01 + 10 days > data end
    assert months.pending() == [(date(2024, 3, 1), date(2024, 4, 11))]
    edge = build_kpi_months(datetime(2024, 1, 1), datetime(2024, 3, 11), grace_days=10)
    assert edge.settled == (date(2024, 1, 1), date(2024, 2, 1))      # 2024-03-01 + 10 days is the data end itself
    with pytest.raises(ValueError, match="no complete calendar month"):
        build_kpi_months(datetime(2024, 1, 15), datetime(2024, 2, 10), grace_days=10)


def test_the_settings_that_are_empty_count_as_missing():
    kpi_set = select_kpis(KPI_CONFIG, FEATURES.model_copy(update={"value_events": []}), ["tickets"])
    assert kpi_set.left_out["first_value_by_day_7"] == ["features.value_events"]
    assert kpi_set.left_out["churn_rate_ttv_q1"] == ["features.value_events"]
    assert kpi_set.left_out["median_resolution_hours"] == ["tickets.resolved_at"]
    assert "trial_converted_by_day_7" in kpi_set.names and "mrr" in kpi_set.names


@pytest.mark.postgres
def test_postgres_gives_the_same_kpis(computed, postgres_schema):
    frame, _ = computed
    frames = kpi_tables()
    con, schema = ibis.connect(postgres_schema.url), postgres_schema.name
    try:
        load(con, frames, database=schema)
        mapping = {name: SourceTable(table=f"{schema}.{name}") for name in frames}
        out, _ = compute_kpis(con, mapping)
    finally:
        con.disconnect()
    pd.testing.assert_frame_equal(out, frame, check_exact=True)
    assert math.isclose(out[(out.kpi == "nps") & (out.segment == "all")].value.iloc[0], 25.0)


@pytest.mark.parametrize("dialect", ["snowflake", "databricks", "postgres"])
def test_every_kpi_compiles_to_the_engines_sql(tmp_path, dialect):
    """Engines CI cannot reach (Snowflake, Databricks): Ibis can put every KPI into their SQL."""
    con = load(ibis.duckdb.connect(str(tmp_path / "warehouse.duckdb"), threads=1), kpi_tables())
    try:
        sources = load_sources(con, {})
        start, end = find_data_bounds(sources, SnapshotConfig())
        months = build_kpi_months(start, end, LABEL.grace_days)
        table, kpi_set = compute_kpi_table(sources, build_kpi_inputs(sources, months, LABEL), months, KPI_CONFIG,
                                           FEATURES)
        sql = str(ibis.to_sql(table, dialect=dialect))
    finally:
        con.disconnect()
    assert len(kpi_set.names) == 45                  # 53 less 2 days (14, 90) of the 4 curves
    for name in kpi_set.names:
        assert f"'{name}'" in sql, name
