"""Commercial state of an account at an as-of, from the subscription rows known before it."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.sources import Sources


def open_subscriptions(sources: Sources, grid: ir.Table) -> ir.Table:
    """Join each (account_id, as_of) to its subscription rows open just before the as-of.

    A row is open when it started before the as-of and had not ended before it. An `end_at` at or after the
    as-of is future data (often filled only at cancellation), so only the fact that it is not earlier is read.
    """
    subs = sources["subscriptions"]
    return grid.join(subs, [grid.account_id == subs.account_id, subs.start_at < grid.as_of,
                            subs.end_at.isnull() | (subs.end_at >= grid.as_of)])


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
