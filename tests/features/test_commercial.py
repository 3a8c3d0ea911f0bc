"""Commercial features on a tiny hand-built warehouse, with values computed by hand."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pytest

from features.commercial import compute_commercial_features
from features.config import FeatureConfig, SourceTable
from features.sources import load_sources
from tests.conftest import tiny_accounts, ts

AS_OF, EARLIER, MID_MONTH = "2024-03-01", "2023-11-01", "2024-03-20"  # 2024 is a leap year: 2024-02 has 29 days
ALL = ["mrr", "mrr_change_90d", "seats", "plan", "days_to_renewal", "billing_period_months", "in_trial",
       "downgrades_365d", "price_increases_365d"]

SUBSCRIPTIONS = [  # (account, start, end, mrr, plan, seats, is_trial, billing_period_months)
    # base: an annual base plan upgraded on 2023-10-01, a monthly add-on ending 2024-01-15 (a downgrade),
    # and a seatless add-on whose end lies in the future.
    ("base", "2023-04-15", "2023-10-01", 100.0, "starter", 5.0, False, 12),
    ("base", "2023-10-01", None, 300.0, "growth", 10.0, False, 12),
    ("base", "2023-06-01", "2024-01-15", 50.0, "addon", 2.0, False, 1),
    ("base", "2024-02-01", "2024-06-30", 20.0, None, 0.0, False, 1),
    # monthly: started on a month's last day, zero seats, nothing 90 days ago.
    ("monthly", "2024-01-31", None, 80.0, "starter", 0.0, False, 1),
    # trial: only a trial row, no billing period, ends in the future.
    ("trial", "2024-02-15", "2024-03-15", 0.0, "trial", 3.0, True, None),
    # tie: two rows of equal MRR (the later one wins, its period is 0) and an open trial add-on.
    ("tie", "2023-05-10", None, 60.0, "alpha", 1.0, False, 1),
    ("tie", "2023-12-10", None, 60.0, "beta", 1.0, False, 0),
    ("tie", "2024-02-20", None, 0.0, None, None, True, 1),
    # gone: ended before the as-of (a churn, not a downgrade).
    ("gone", "2023-01-01", "2023-12-20", 40.0, "starter", 2.0, False, 1),
    # old: two contractions, one older than 365 days, one exactly 365 days before the as-of.
    ("old", "2022-01-01", None, 100.0, "legacy", 4.0, False, 12),
    ("old", "2022-01-01", "2022-12-01", 30.0, "legacy", 1.0, False, 12),
    ("old", "2022-01-01", "2023-03-02", 20.0, "legacy", 1.0, False, 12),
    # due: a monthly renewal falling exactly on the as-of.
    ("due", "2023-03-01", None, 10.0, "starter", 1.0, False, 1),
    # unnamed: the base row names no plan, and a seatless add-on does not name it either (the plan is unknown).
    ("unnamed", "2024-01-10", None, 200.0, None, 1.0, False, 1),
    ("unnamed", "2024-01-10", None, 50.0, "addon", None, False, 12),
    # addon: a monthly seatless add-on larger than the one-seat annual plan it was bought with: the plan, renewal and
    # billing period are the base plan's.
    ("addon", "2023-09-05", None, 30.0, "solo", 1.0, False, 12),
    ("addon", "2024-01-20", None, 45.0, "Add-on", 0.0, False, 1),
    # upgrade: a paid plan without seats and a trial of three seats overlapping it: the plan is the paid one.
    ("upgrade", "2023-06-01", None, 100.0, "pro", None, False, 12),
    ("upgrade", "2024-02-20", None, 0.0, "trial", 3.0, True, None),
    # free: a free plan with seats beside a paid seatless one: the account pays for "analytics", monthly.
    ("free", "2023-11-01", None, 0.0, "free", 3.0, False, 12),
    ("free", "2024-01-05", None, 200.0, "analytics", None, False, 1),
    # freeplan: a paid unnamed seatless add-on beside a free plan with seats: no paid row with seats names a plan, so
    # the free plan's name stands; the renewal is the paid add-on's.
    ("freeplan", "2024-01-05", None, 40.0, None, 0.0, False, 1),
    ("freeplan", "2023-11-01", None, 0.0, "Free", 3.0, False, 12),
    # hike: one seat renewed on the same plan at a 10% higher price (MRR up, no contraction).
    ("hike", "2023-06-10", "2024-01-10", 50.0, "solo", 1.0, False, 1),
    ("hike", "2024-01-10", None, 55.0, "solo", 1.0, False, 1),
]
ACCOUNTS = ["base", "monthly", "trial", "tie", "gone", "old", "due", "unnamed", "addon", "upgrade", "free", "freeplan",
            "hike", "none"]
NAN = float("nan")

EXPECTED = {  # (account, as_of) → mrr, mrr_change_90d, seats, plan, days_to_renewal, billing_period_months,
#   in_trial, downgrades_365d, price_increases_365d
    ("base", AS_OF): (320.0, 320 / 350 - 1, 10.0, "growth", 214.0, 12.0, 0.0, 1.0, 0.0),  # renewal 2024-10-01
    ("base", EARLIER): (350.0, 350 / 150 - 1, 12.0, "growth", 335.0, 12.0, 0.0, 0.0, 0.0),  # MRR on 2023-08-03: 150
    ("monthly", AS_OF): (80.0, NAN, 0.0, "starter", 30.0, 1.0, 0.0, 0.0, 0.0),  # 2024-02-29 passed; next 2024-03-31
    ("trial", AS_OF): (0.0, NAN, 3.0, "trial", NAN, NAN, 1.0, 0.0, 0.0),
    ("tie", AS_OF): (120.0, 1.0, 2.0, "beta", NAN, NAN, 0.0, 0.0, 0.0),
    ("gone", AS_OF): (0.0, -1.0, 0.0, None, NAN, NAN, 0.0, 0.0, 0.0),
    ("old", AS_OF): (100.0, 0.0, 4.0, "legacy", 306.0, 12.0, 0.0, 1.0, 0.0),  # renewal 2025-01-01
    ("due", AS_OF): (10.0, 0.0, 1.0, "starter", 0.0, 1.0, 0.0, 0.0, 0.0),
    ("unnamed", MID_MONTH): (250.0, NAN, 1.0, None, 21.0, 1.0, 0.0, 0.0, 0.0),  # 2024-03-10 passed; next 2024-04-10
    ("addon", AS_OF): (75.0, 75 / 30 - 1, 1.0, "solo", 188.0, 12.0, 0.0, 0.0, 0.0),  # renewal 2024-09-05
    ("upgrade", AS_OF): (100.0, 0.0, 3.0, "pro", 92.0, 12.0, 0.0, 0.0, 0.0),  # renewal 2024-06-01
    ("free", AS_OF): (200.0, NAN, 3.0, "analytics", 4.0, 1.0, 0.0, 0.0, 0.0),  # renewal 2024-03-05
    ("freeplan", AS_OF): (40.0, NAN, 3.0, "Free", 4.0, 1.0, 0.0, 0.0, 0.0),  # renewal 2024-03-05
    ("hike", AS_OF): (55.0, 0.1, 1.0, "solo", 9.0, 1.0, 0.0, 0.0, 1.0),  # MRR on 2023-12-02: 50; next 2024-03-10
    ("none", AS_OF): (0.0, NAN, 0.0, None, NAN, NAN, 0.0, 0.0, 0.0),
}


def _subscriptions(rows=SUBSCRIPTIONS) -> pd.DataFrame:
    account, start, end, mrr, plan, seats, trial, period = zip(*rows, strict=True)
    return pd.DataFrame({"account_id": list(account), "start_at": ts(*start), "end_at": ts(*end), "mrr": list(mrr),
                         "plan": list(plan), "seats": pd.Series(seats, dtype="float64"),
                         "is_trial": list(trial), "billing_period_months": pd.Series(period, dtype="Int64")})


def _tables(subs: pd.DataFrame, accounts: list[str] = ACCOUNTS) -> dict[str, pd.DataFrame]:
    events = pd.DataFrame({"account_id": ["base"], "event_at": ts("2024-01-05"), "event_name": ["login"]})
    return {"accounts": tiny_accounts(*accounts), "subscriptions": subs, "events": events}


def _grid(keys=EXPECTED) -> ir.Table:
    keys = sorted(keys)
    return ibis.memtable(pd.DataFrame({"account_id": [k[0] for k in keys], "as_of": ts(*[k[1] for k in keys])}))


def _features(con, sources_config=None, keys=EXPECTED) -> pd.DataFrame:
    expr = compute_commercial_features(load_sources(con, sources_config or {}), _grid(keys), FeatureConfig())
    out = expr.execute()
    out["as_of"] = out["as_of"].dt.strftime("%Y-%m-%d")
    return out.sort_values(["account_id", "as_of"]).reset_index(drop=True)


def _row(frame: pd.DataFrame, account: str, as_of: str) -> pd.Series:
    rows = frame[(frame.account_id == account) & (frame.as_of == as_of)]
    assert len(rows) == 1
    return rows.iloc[0]


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> pd.DataFrame:
    """The features of the full warehouse, computed once for the module."""
    con = ibis.duckdb.connect(str(tmp_path_factory.mktemp("commercial") / "warehouse.duckdb"), threads=1)
    out = _features(_load(con, _tables(_subscriptions())))
    con.disconnect()
    return out


def test_commercial_features_exact_values(full):
    out = full
    assert list(out.columns) == ["account_id", "as_of", *ALL]
    assert len(out) == len(EXPECTED)
    for (account, as_of), expected in EXPECTED.items():
        row = _row(out, account, as_of)
        for name, value in zip(ALL, expected, strict=True):
            if name == "plan":
                assert (row[name] if isinstance(row[name], str) else None) == value, (account, as_of, name)
            elif np.isnan(value):
                assert pd.isna(row[name]), (account, as_of, name)
            else:
                assert row[name] == pytest.approx(value), (account, as_of, name)
    numeric = [c for c in ALL if c != "plan"]
    assert all(out[c].dtype == "float64" for c in numeric)


@pytest.mark.parametrize(("column", "features"), [
    ("plan", ["plan", "price_increases_365d"]), ("seats", ["seats", "price_increases_365d"]),
    ("is_trial", ["in_trial"]),
    ("billing_period_months", ["days_to_renewal", "billing_period_months"])])
def test_a_missing_optional_column_drops_only_its_features(load_tables, full, column, features):
    out = _features(load_tables(**_tables(_subscriptions().drop(columns=[column]))))
    assert list(out.columns) == ["account_id", "as_of", *[c for c in ALL if c not in features]]
    expected = full.drop(columns=features)
    base_row = ["plan", "days_to_renewal", "billing_period_months"]
    if column == "seats":   # nothing marks the add-on: the largest row gives the plan and the renewal (2024-03-20)
        expected.loc[expected.account_id == "addon", base_row] = ["Add-on", 19.0, 1.0]
        expected.loc[expected.account_id == "unnamed", "plan"] = "addon"
        expected.loc[expected.account_id == "freeplan", "plan"] = None   # the paid row is the base row: unnamed
    pd.testing.assert_frame_equal(out, expected)


def test_required_columns_alone_give_mrr_change_and_downgrades(load_tables):
    subs = _subscriptions()[["account_id", "start_at", "end_at", "mrr"]]
    out = _features(load_tables(**_tables(subs)))
    assert list(out.columns) == ["account_id", "as_of", "mrr", "mrr_change_90d", "downgrades_365d"]
    assert _row(out, "base", AS_OF)["downgrades_365d"] == 1.0


PRICE_ROWS = [  # (account, start, end, mrr, plan, seats, is_trial, billing_period_months), each seen at AS_OF
    # raised: two seats renewed on the same plan at 60 a seat instead of 50.
    ("raised", "2023-09-01", "2024-01-01", 100.0, "team", 2.0, False, 1),
    ("raised", "2024-01-01", None, 120.0, "team", 2.0, False, 1),
    # same_price: more seats at the same price per seat; slight: 1.5% more per seat (under the 2% floor).
    ("same_price", "2023-09-01", "2024-01-01", 100.0, "team", 2.0, False, 1),
    ("same_price", "2024-01-01", None, 200.0, "team", 4.0, False, 1),
    ("slight", "2023-09-01", "2024-01-01", 100.0, "team", 2.0, False, 1),
    ("slight", "2024-01-01", None, 101.5, "team", 2.0, False, 1),
    # plan_change: a dearer seat on another plan is an upgrade, not a price increase.
    ("plan_change", "2023-09-01", "2024-01-01", 100.0, "team", 2.0, False, 1),
    ("plan_change", "2024-01-01", None, 200.0, "business", 2.0, False, 1),
    # addon: dearer add-on rows without seats (0, then NULL) never count, not even after a row with a seat.
    ("addon", "2023-09-01", "2024-01-01", 10.0, "extra", 1.0, False, 1),
    ("addon", "2024-01-01", "2024-02-01", 20.0, "extra", 0.0, False, 1),
    ("addon", "2024-02-01", None, 30.0, "extra", None, False, 1),
    # starts_at_as_of: the dearer row starts on the as-of itself.
    ("starts_at_as_of", "2023-09-01", AS_OF, 100.0, "team", 2.0, False, 1),
    ("starts_at_as_of", AS_OF, None, 120.0, "team", 2.0, False, 1),
    # ends_at_as_of: the dearer row starts half a day before the old row's end, which is the as-of.
    ("ends_at_as_of", "2023-09-01", AS_OF, 100.0, "team", 2.0, False, 1),
    ("ends_at_as_of", "2024-02-29 12:00", None, 120.0, "team", 2.0, False, 1),
    # aged: increases 366 days and exactly 365 days before the as-of (2024 is a leap year): the second is in.
    ("aged", "2022-01-01", "2023-03-01", 100.0, "team", 2.0, False, 1),
    ("aged", "2023-03-01", "2023-03-02", 120.0, "team", 2.0, False, 1),
    ("aged", "2023-03-02", None, 140.0, "team", 2.0, False, 1),
    # gaps: renewals written a day after and a day before the old end count; two days after does not.
    ("gaps", "2023-06-01", "2023-09-01", 100.0, "team", 2.0, False, 1),
    ("gaps", "2023-09-02", "2023-12-01", 120.0, "team", 2.0, False, 1),
    ("gaps", "2023-11-30", "2024-01-01", 140.0, "team", 2.0, False, 1),
    ("gaps", "2024-01-03", None, 160.0, "team", 2.0, False, 1),
    # twins: one dearer row continuing two rows that end together is one increase; a trial at 0 never rises.
    ("twins", "2023-09-01", "2024-01-01", 100.0, "team", 2.0, False, 1),
    ("twins", "2023-10-01", "2024-01-01", 100.0, "team", 2.0, False, 1),
    ("twins", "2024-01-01", None, 120.0, "team", 2.0, False, 1),
    ("twins", "2023-08-01", "2023-09-01", 0.0, "team", 2.0, True, 1),
]
PRICE_INCREASES = {"raised": 1.0, "same_price": 0.0, "slight": 0.0, "plan_change": 0.0, "addon": 0.0,
                   "starts_at_as_of": 0.0, "ends_at_as_of": 0.0, "aged": 1.0, "gaps": 2.0, "twins": 1.0}


def _price_increases(load_tables, rows=PRICE_ROWS) -> dict[str, float]:
    accounts = sorted(PRICE_INCREASES)
    con = load_tables(**_tables(_subscriptions(rows), accounts))
    out = _features(con, keys=[(a, AS_OF) for a in accounts])
    return dict(zip(out.account_id, out.price_increases_365d, strict=True))


def test_price_increases_count_same_plan_renewals_dearer_per_seat_known_before_the_as_of(load_tables):
    assert _price_increases(load_tables) == PRICE_INCREASES


def test_a_price_increase_a_day_older_is_seen(load_tables):
    """Guard against a comparison that cannot fail: the renewal on the as-of, moved a day earlier, counts."""
    moved = [(a, "2024-02-29" if s == AS_OF and a == "starts_at_as_of" else s,
              "2024-02-29" if e == AS_OF and a == "starts_at_as_of" else e, *rest)
             for a, s, e, *rest in PRICE_ROWS]
    assert _price_increases(load_tables, moved)["starts_at_as_of"] == 1.0


def test_a_plan_written_in_another_case_or_with_spaces_is_the_same_plan(load_tables):
    """"Team " renewing "team" at a dearer seat is a price increase; a renewal onto "Business" is a plan change."""
    rows = [("raised", "2023-09-01", "2024-01-01", 100.0, "team", 2.0, False, 1),
            ("raised", "2024-01-01", None, 120.0, "Team ", 2.0, False, 1),
            ("plan_change", "2023-09-01", "2024-01-01", 100.0, " TEAM", 2.0, False, 1),
            ("plan_change", "2024-01-01", None, 200.0, "Business", 2.0, False, 1)]
    con = load_tables(**_tables(_subscriptions(rows), ["plan_change", "raised"]))
    out = _features(con, keys=[("plan_change", AS_OF), ("raised", AS_OF)])
    assert dict(zip(out.account_id, out.price_increases_365d, strict=True)) == {"plan_change": 0.0, "raised": 1.0}


def _future_changed(subs: pd.DataFrame, new_end: str | None) -> pd.DataFrame:
    """Move every end at or after the account's last as-of (or open) to `new_end` (None: open; "as_of": that
    as-of), and add rows starting at or after the as-of."""
    subs = subs.copy()
    last_as_of = subs.account_id.map(lambda a: pd.Timestamp(max(k[1] for k in EXPECTED if k[0] == a)))
    future = subs.end_at.isna() | (subs.end_at >= last_as_of)
    moved = last_as_of if new_end == "as_of" else pd.Series(pd.Timestamp(new_end), index=subs.index)
    subs.loc[future, "end_at"] = moved[future].astype("datetime64[us]")
    extra = _subscriptions([("base", AS_OF, None, 999.0, "mega", 99.0, False, 1),
                            ("gone", "2024-04-01", None, 40.0, "starter", 2.0, False, 1),
                            ("none", "2024-03-01 09:00", "2024-05-01", 70.0, "starter", 1.0, True, 12),
                            ("monthly", "2024-03-02", None, 500.0, "enterprise", 20.0, False, 12),
                            ("hike", AS_OF, None, 90.0, "solo", 1.0, False, 1)])
    return pd.concat([subs, extra], ignore_index=True)


@pytest.mark.parametrize("new_end", [None, "as_of", "2025-04-05 13:00"])
def test_end_dates_and_rows_at_or_after_the_as_of_change_nothing(load_tables, full, new_end):
    after = _features(load_tables(**_tables(_future_changed(_subscriptions(), new_end))))
    pd.testing.assert_frame_equal(full, after)


def test_a_change_before_the_as_of_is_seen(load_tables, full):
    """Guard against a comparison that cannot fail: moving a start before the as-of changes features."""
    moved = _subscriptions()
    moved.loc[(moved.account_id == "tie") & (moved.plan == "beta"), "start_at"] = pd.Timestamp("2023-11-20")
    after = _features(load_tables(**_tables(moved)))
    assert _row(full, "tie", AS_OF)["mrr_change_90d"] == 1.0
    assert _row(after, "tie", AS_OF)["mrr_change_90d"] == 0.0


def _load(con, frames: dict[str, pd.DataFrame], database: str | None = None):
    for name, frame in frames.items():
        con.create_table(name, frame, database=database, overwrite=True)
    return con


@pytest.mark.postgres
def test_postgres_gives_the_same_frame(full, postgres_schema):
    frames = _tables(_subscriptions())
    con, schema = ibis.connect(postgres_schema.url), postgres_schema.name
    try:
        _load(con, frames, database=schema)
        mapping = {name: SourceTable(table=f"{schema}.{name}") for name in frames}
        pd.testing.assert_frame_equal(_features(con, mapping), full)
    finally:
        con.disconnect()


def test_start_dates_kept_as_date_give_the_same_features(load_tables, full):
    # Many warehouses keep contract dates as DATE and cancellations as TIMESTAMP; the starts here are all midnights.
    con = load_tables(**_tables(_subscriptions()))
    con.raw_sql("CREATE OR REPLACE TABLE subscriptions AS "
                "SELECT * REPLACE (CAST(start_at AS DATE) AS start_at) FROM subscriptions")
    assert con.table("subscriptions").schema()["start_at"].is_date()
    pd.testing.assert_frame_equal(_features(con), full)


def test_a_row_whose_seats_are_nan_is_an_add_on_like_a_seatless_one(load_tables):
    rows = [("addon", "2023-09-05", None, 30.0, "solo", 1.0, False, 12),
            ("addon", "2024-01-20", None, 45.0, "Add-on", 0.0, False, 1)]
    con = load_tables(**_tables(_subscriptions(rows), ["addon"]))
    con.raw_sql("UPDATE subscriptions SET seats = 'NaN'::DOUBLE WHERE plan = 'Add-on'")  # not NULL: a float NaN
    assert con.raw_sql("SELECT count(*) FROM subscriptions WHERE isnan(seats)").fetchone() == (1,)
    out = _features(con, keys=[("addon", AS_OF)])
    assert out[["plan", "days_to_renewal", "billing_period_months"]].iloc[0].tolist() == ["solo", 188.0, 12.0]


def test_a_row_whose_seats_are_nan_is_never_compared_for_a_price_increase(load_tables):
    """A row of NaN seats renewed on five seats at the same MRR: no price increase is read (engines order NaN above
    every number, so a price per seat against it would always look higher)."""
    rows = [("nanold", "2023-09-10", "2024-01-10", 50.0, "team", 1.0, False, 1),
            ("nanold", "2024-01-10", None, 50.0, "team", 5.0, False, 1)]
    con = load_tables(**_tables(_subscriptions(rows), ["nanold"]))
    con.raw_sql("UPDATE subscriptions SET seats = 'NaN'::DOUBLE WHERE start_at < TIMESTAMP '2024-01-01'")
    assert _features(con, keys=[("nanold", AS_OF)])["price_increases_365d"].tolist() == [0.0]
