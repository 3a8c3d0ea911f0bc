"""Commercial state of an account at an as-of, from the subscription rows known before it.

Point in time: a subscription row counts at as-of t only when it started before t, and its `end_at` is only ever
compared with t or with earlier instants. An end at or after t is future data (often filled only at cancellation,
or a contract term end): moving it to another time at or after t, or clearing it, changes no feature at t.
"""

from __future__ import annotations

import functools
import operator

import ibis
import ibis.expr.types as ir

from features.catalog import COMMERCIAL, producible
from features.config import FeatureConfig
from features.joins import left_join_all
from features.pit import days_before, open_before, rows_before, rows_open_before, rows_within
from features.sources import Sources

MRR_CHANGE_DAYS = 90  # fixed by the catalog's `mrr_change_90d`
DOWNGRADE_DAYS = 365  # fixed by the catalog's `downgrades_365d`
PRICE_INCREASE_DAYS = 365  # fixed by the catalog's `price_increases_365d`
# A renewal row charging more than 2% more per seat is a price increase; smaller steps are rounding of the MRR.
PRICE_INCREASE_MIN = 0.02
# Warehouses write a renewal's start on the old row's end, or a day after or before it.
RENEWAL_GAP_DAYS = 1
_KEYS = ["account_id", "as_of"]
_EXACT = ibis.dtype("decimal(38, 6)")


def open_subscriptions(sources: Sources, grid: ir.Table) -> ir.Table:
    """Join each (account_id, as_of) to its subscription rows open just before the as-of.

    A row is open when it started before the as-of and had not ended before it. An `end_at` at or after the
    as-of is future data (often filled only at cancellation), so only the fact that it is not earlier is read.
    """
    return rows_open_before(grid, sources["subscriptions"], "start_at", "end_at")


def compute_subscription_state(sources: Sources, grid: ir.Table) -> ir.Table:
    """Return (account_id, as_of, mrr, seats): summed over the overlapping rows open just before each as-of.

    Accounts with no open row get 0 MRR and NULL seats; seats are NULL when the warehouse has no seat column.
    """
    joined = open_subscriptions(sources, grid)
    metrics = {"mrr": joined.mrr.sum()}
    if sources.has("subscriptions", "seats"):
        metrics["seats"] = joined.seats.sum()
    state = joined.group_by(["account_id", "as_of"]).aggregate(**metrics)
    out = grid.left_join(state, ["account_id", "as_of"]).select(
        grid.account_id, grid.as_of, mrr=state.mrr.fill_null(0.0),
        seats=state.seats if "seats" in metrics else ibis.null("float64"))
    return out


def compute_mrr_change_points(sources: Sources) -> ir.Table:
    """Return (account_id, changed_at, mrr_before, mrr_after): the account's MRR just before and just after every
    subscription start and end.

    MRR after c sums the rows with start_at <= c < end_at, before c those with start_at < c <= end_at; both are
    running sums of +mrr at each start and -mrr at each end, so the cost grows with rows, not rows squared.
    The table holds no as-of: a feature at t keeps the points with `changed_at < t`, whose running sums hold only
    starts and ends before t, so nothing at or after t reaches them.
    """
    subs = sources["subscriptions"]
    # Rows that end before they start cover no instant; dropping them also keeps a row starting at or after t from
    # reaching back with an earlier end. For a row with start_at < t <= end_at the test is constant.
    subs = subs.filter(subs.end_at.isnull() | (subs.end_at > subs.start_at))
    # Exact decimals, so that a row's start and end cancel to exactly 0 and equal MRRs compare equal.
    mrr = subs.mrr.fill_null(0).cast(_EXACT)
    # One timestamp type on both sides of the union: a warehouse may keep start_at as DATE and end_at as TIMESTAMP.
    moment = subs.end_at.type() if subs.end_at.type() == subs.start_at.type() else ibis.dtype("timestamp")
    starts = subs.select("account_id", changed_at=subs.start_at.cast(moment), delta=mrr)
    ends = subs.filter(subs.end_at.notnull()).select("account_id", changed_at=subs.end_at.cast(moment), delta=-mrr)
    deltas = starts.union(ends, distinct=False)
    steps = deltas.group_by(["account_id", "changed_at"]).aggregate(delta=deltas.delta.sum())
    steps = steps.mutate(after=steps.delta.sum().over(
        ibis.cumulative_window(group_by="account_id", order_by="changed_at")))
    return steps.select("account_id", "changed_at", mrr_before=(steps.after - steps.delta).cast("float64"),
                        mrr_after=steps.after.cast("float64"))


def compute_price_increase_points(sources: Sources) -> ir.Table:
    """Return (account_id, plan, start_at, known_at): every start of a row that renews an earlier row of the same plan
    at a higher price per seat.

    A row renews an earlier one of the same plan (plans compared, and returned, lower-cased without surrounding
    spaces) when it starts within `RENEWAL_GAP_DAYS` of that row's end; its price per seat (mrr / seats) must
    exceed the earlier row's by more than `PRICE_INCREASE_MIN`. Rows without seats (add-ons) and earlier rows
    charging nothing (trials) never count. `known_at` is the latest of the new start and the old end: a feature at t
    keeps the points with `known_at < t`, so both rows are known before t and no end at or after t is read for its
    value.
    """
    subs = sources["subscriptions"]
    seated = subs.filter(subs.seats > 0, ~subs.seats.isnan(), subs.plan.notnull(), subs.mrr.notnull())
    # One timestamp type on both sides: a warehouse may keep start_at as DATE and end_at as TIMESTAMP.
    moment = subs.end_at.type() if subs.end_at.type() == subs.start_at.type() else ibis.dtype("timestamp")
    # Billing systems and hand-kept sheets write one plan as "Team" on one row and "team " on the next.
    seated = seated.mutate(start_at=seated.start_at.cast(moment), end_at=seated.end_at.cast(moment),
                           plan=seated.plan.strip().lower())
    new = seated.select("account_id", "plan", "start_at", "mrr", "seats")
    old = seated.filter(seated.end_at.notnull(), seated.mrr > 0).select(
        "account_id", "plan", old_start_at="start_at", old_end_at="end_at", old_mrr="mrr", old_seats="seats")
    gap = ibis.interval(days=RENEWAL_GAP_DAYS)
    pairs = new.join(old, [new.account_id == old.account_id, new.plan == old.plan,
                           old.old_start_at < new.start_at,
                           new.start_at.between(old.old_end_at - gap, old.old_end_at + gap),
                           new.mrr * old.old_seats > old.old_mrr * new.seats * (1 + PRICE_INCREASE_MIN)])
    pairs = pairs.mutate(known_at=ibis.greatest(pairs.start_at, pairs.old_end_at))
    # One point per renewal start, however many earlier rows it continues.
    return pairs.group_by(["account_id", "plan", "start_at"]).aggregate(known_at=pairs.known_at.min())


def is_expansion(changes: ir.Table) -> ir.BooleanValue:
    """An MRR increase of an account already paying."""
    return (changes.mrr_before > 0) & (changes.mrr_after > changes.mrr_before)


def is_contraction(changes: ir.Table) -> ir.BooleanValue:
    """An MRR decrease that leaves the account paying (a downgrade, not a churn)."""
    return (changes.mrr_after > 0) & (changes.mrr_after < changes.mrr_before)


def _open_totals(sources: Sources, keys: ir.Table) -> ir.Table:
    """MRR now and 90 days ago, seats, open and paid row counts, from one join of rows started before the as-of."""
    j = rows_before(keys, sources["subscriptions"], "start_at")
    now = open_before(j.start_at, j.end_at, j.as_of)
    then = open_before(j.start_at, j.end_at, days_before(j.as_of, MRR_CHANGE_DAYS))
    metrics = {"mrr": j.mrr.sum(where=now), "mrr_then": j.mrr.sum(where=then), "open_rows": j.count(where=now)}
    if sources.has("subscriptions", "seats"):
        metrics["seats"] = j.seats.sum(where=now)
    if sources.has("subscriptions", "is_trial"):
        metrics["paid_rows"] = j.count(where=now & ~j.is_trial.fill_null(False))
    return j.group_by(_KEYS).aggregate(**metrics)


def _next_renewal(start_at: ir.TimestampValue, period_months: ir.IntegerValue,
                  as_of: ir.TimestampValue) -> ir.TimestampValue:
    """start_at + k × period calendar months for the smallest k >= 1 landing at or after the as-of.

    With m the calendar months from start to as-of, k = max(1, ceil(m / period)) lands in the as-of's month or
    later; only when it lands in that month can it still fall before the as-of, and then k + 1 is the answer.
    """
    period = ibis.ifelse(period_months > 0, period_months, ibis.null("int64"))
    months = (as_of.year() - start_at.year()) * 12 + as_of.month() - start_at.month()
    k = ibis.greatest(1, (months + period - 1) // period)
    first = start_at + (k * period).as_interval("M")
    return ibis.ifelse(first >= as_of, first, start_at + ((k + 1) * period).as_interval("M"))


def _largest_open_row(sources: Sources, keys: ir.Table) -> ir.Table | None:
    """Plan and next renewal of the base row: the largest open paid row with seats (ties: latest start, then plan
    name).

    A row without seats is taken for an add-on (as in `compute_price_increase_points`): a monthly add-on larger than
    a one-seat annual plan must not give the account its plan name and renewal date. An unpaid row (a trial, or MRR
    0) comes after every paid one, so its seats do not outrank the plan being paid for. A key whose column is missing
    is left out (docs/CONTRACT.md, "Overlapping subscription rows").
    """
    has_plan = sources.has("subscriptions", "plan")
    has_period = sources.has("subscriptions", "billing_period_months")
    if not (has_plan or has_period):
        return None
    j = open_subscriptions(sources, keys)
    has_seats, has_trial = sources.has("subscriptions", "seats"), sources.has("subscriptions", "is_trial")

    def add_on_keys(t: ir.Table) -> list[ir.Value]:
        """Sort keys putting unpaid rows (trials, MRR 0), then rows without seats (null, 0 or NaN), last."""
        unpaid = t.mrr.fill_null(0) <= 0
        keys = [unpaid | t.is_trial.fill_null(False) if has_trial else unpaid]
        if has_seats:
            seats = t.seats.fill_null(0)
            keys.append((seats <= 0) | seats.isnan())
        return keys

    def not_paid_with_seats(t: ir.Table) -> ir.Value:
        return functools.reduce(operator.or_, add_on_keys(t))

    by_plan = [j.plan.isnull(), j.plan] if has_plan else []
    size_rank = ibis.row_number().over(ibis.window(group_by=_KEYS, order_by=[
        *add_on_keys(j), ibis.desc(j.mrr), ibis.desc(j.start_at), *by_plan]))
    j = j.mutate(size_rank=size_rank)
    metrics = {}
    if has_plan:
        # The plan is the first named row in the base row's order, except that a paid row with seats that names
        # none leaves it NULL: an add-on's or a trial's name never stands for the plan being paid for.
        plan_rank = ibis.row_number().over(ibis.window(group_by=_KEYS, order_by=[
            not_paid_with_seats(j), j.plan.isnull(), *add_on_keys(j), ibis.desc(j.mrr), ibis.desc(j.start_at), j.plan]))
        j = j.mutate(plan_rank=plan_rank)
        metrics["plan"] = j.plan.max(where=j.plan_rank == 0)
    if has_period:
        renewal = _next_renewal(j.start_at, j.billing_period_months, j.as_of)
        metrics["renewal_at"] = renewal.max(where=j.size_rank == 0)
        metrics["billing_period_months"] = j.billing_period_months.max(where=j.size_rank == 0)
    return j.group_by(_KEYS).aggregate(**metrics)


def _downgrades(sources: Sources, keys: ir.Table) -> ir.Table:
    changes = compute_mrr_change_points(sources)
    downs = changes.filter(is_contraction(changes))
    j = rows_within(keys, downs, "changed_at", DOWNGRADE_DAYS)
    return j.group_by(_KEYS).aggregate(downgrades=j.count())


def _price_increases(sources: Sources, keys: ir.Table) -> ir.Table | None:
    if not (sources.has("subscriptions", "seats") and sources.has("subscriptions", "plan")):
        return None
    points = compute_price_increase_points(sources)
    j = rows_within(keys, points, "known_at", PRICE_INCREASE_DAYS)
    return j.group_by(_KEYS).aggregate(price_increases=j.count())


def _commercial_values(j: ir.Table) -> dict[str, ir.Value]:
    open_rows = j.open_rows.fill_null(0)
    mrr, mrr_then = j.mrr.fill_null(0.0), j.mrr_then.fill_null(0.0)
    values = {
        "mrr": mrr.cast("float64"),
        "mrr_change_90d": ibis.ifelse(mrr_then > 0, mrr / mrr_then.nullif(0) - 1.0, ibis.null("float64")),
        "downgrades_365d": j.downgrades.fill_null(0).cast("float64"),
    }
    if "price_increases" in j.columns:
        values["price_increases_365d"] = j.price_increases.fill_null(0).cast("float64")
    if "seats" in j.columns:
        # No open row: 0 seats; open rows that all lack a seat count: unknown.
        values["seats"] = ibis.ifelse(open_rows > 0, j.seats, 0.0).cast("float64")
    if "paid_rows" in j.columns:
        values["in_trial"] = ibis.ifelse((open_rows > 0) & (j.paid_rows.fill_null(0) == 0), 1.0, 0.0)
    if "plan" in j.columns:
        values["plan"] = j.plan.cast("string")
    if "renewal_at" in j.columns:
        values["days_to_renewal"] = j.renewal_at.date().delta(j.as_of.date(), unit="day").cast("float64")
        period = j.billing_period_months
        values["billing_period_months"] = ibis.ifelse(period > 0, period, ibis.null("int64")).cast("float64")
    return values


def compute_commercial_features(sources: Sources, grid: ir.Table, config: FeatureConfig) -> ir.Table:
    """Return one row per grid (account_id, as_of) with the commercial features of the catalog.

    Features whose source column the warehouse lacks (seats, plan, is_trial, billing_period_months) are left out.

    Args:
        grid: (account_id, as_of) rows, as_of a midnight timestamp.
        config: feature settings (only the catalog's windows are read).
    """
    keys = grid.select("account_id", "as_of")
    parts = [_open_totals(sources, keys), _largest_open_row(sources, keys), _downgrades(sources, keys),
             _price_increases(sources, keys)]
    j = left_join_all(keys, parts)
    values = _commercial_values(j)
    specs = producible(COMMERCIAL, config.windows_by_kind(), sources.missing)
    return j.select("account_id", "as_of",
                    **{s.name: values[s.name] for s in specs})
