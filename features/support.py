"""Support-ticket features: volume, open tickets, high priority and resolution quality, computed in the warehouse.

A ticket is open at as-of t when it was created before t and not resolved before t. A `resolved_at` at or after t is
future data: it is only compared with t, never read. Resolution time, first-contact resolution, reopening and ticket
CSAT become known when a ticket is resolved, so they are read only for tickets resolved before t, and their window
runs on `resolved_at`.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.catalog import SUPPORT, producible
from features.config import FeatureConfig
from features.joins import left_join_all
from features.pit import days_before, days_between, latest_before, open_before, rows_before, within
from features.sources import Sources

# Optional ticket columns and their types; an absent one is filled with NULLs so that one query shape serves every
# warehouse, and the features that need it are left out of the result.
_OPTIONAL = {"resolved_at": "timestamp", "priority": "string", "first_contact_resolved": "boolean",
             "reopened": "boolean", "csat": "float64"}


def _share(flag: ir.Value, where: ir.Value) -> ir.Value:
    # A CASE rather than a cast: PostgreSQL casts booleans to neither float nor bigint. NULL flags are left out.
    return ibis.cases((flag, 1.0), (~flag, 0.0), else_=ibis.null("float64")).mean(where=where)


def _tickets(sources: Sources, config: FeatureConfig) -> ir.Table:
    """The tickets with every optional column present (NULL when the warehouse lacks it) and a high-priority flag."""
    t = sources["tickets"]
    filled = {c: t[c] if c in t.columns else ibis.null(dtype) for c, dtype in _OPTIONAL.items()}
    t = t.select("ticket_id", "account_id", "created_at", **filled)
    high = [p.lower() for p in config.high_priorities] or [""]
    return t.mutate(is_high=t.priority.lower().isin(high).fill_null(False))


def _ticket_metrics(t: ir.Table, grid: ir.Table, config: FeatureConfig) -> ir.Table:
    """Aggregate, per (account_id, as_of), the tickets created in a window, open, or resolved in the window."""
    sw = config.support_window_days
    reach = max(*config.windows, sw)
    # Only tickets some feature reads: created in the widest window, or not resolved before the support window.
    needed = ((t.created_at >= days_before(grid.as_of, reach)) | t.resolved_at.isnull()
              | (t.resolved_at >= days_before(grid.as_of, sw)))
    j = rows_before(grid, t, "created_at", needed)
    created_in = {w: j.created_at >= days_before(j.as_of, w) for w in {*config.windows, sw}}
    is_open = open_before(j.created_at, j.resolved_at, j.as_of)
    resolved = within(j.resolved_at, j.as_of, sw)
    # Cast before dividing: Spark reads the literal 3600.0 as a DECIMAL and would round the quotient to 6 places.
    hours = (j.resolved_at.epoch_seconds() - j.created_at.epoch_seconds()).cast("float64") / 3600.0
    metrics = {f"tickets_{w}d": j.count(where=created_in[w]) for w in config.windows}
    metrics |= {
        "open_tickets": j.count(where=is_open),
        "open_high_priority_tickets": j.count(where=is_open & j.is_high),
        f"high_priority_tickets_{sw}d": j.count(where=created_in[sw] & j.is_high),
        # The filter goes into the argument: Spark cannot take `where=` on a median (percentile) aggregate.
        f"median_resolution_hours_{sw}d": ibis.ifelse(resolved, hours, ibis.null("float64")).median(),
        f"first_contact_resolution_rate_{sw}d": _share(j.first_contact_resolved, resolved),
        f"reopen_rate_{sw}d": _share(j.reopened, resolved),
        f"ticket_csat_{sw}d": j.csat.mean(where=resolved),
    }
    return j.group_by(["account_id", "as_of"]).aggregate(**metrics)


def _last_ticket(tickets: ir.Table, grid: ir.Table) -> ir.Table:
    t = tickets.select("account_id", "created_at", "ticket_id")
    j = latest_before(grid, t, "created_at", ties=["ticket_id"])
    return j.select("account_id", "as_of", days_since_last_ticket=days_between(j.as_of, j.created_at))


def compute_support_features(sources: Sources, grid: ir.Table, config: FeatureConfig) -> ir.Table:
    """Return one row per grid (account_id, as_of) with the support features of the catalog the warehouse allows.

    Counts are 0 without tickets; rates, averages, the median and days since the last ticket are NULL with nothing
    to compute them from. Features needing a ticket column the warehouse lacks are left out.

    Args:
        sources: canonical sources; the `tickets` table must be present.
        grid: (account_id, as_of) rows, as_of a midnight timestamp.
    """
    tickets = _tickets(sources, config)
    keys = grid.select("account_id", "as_of")
    j = left_join_all(keys, (_ticket_metrics(tickets, keys, config), _last_ticket(tickets, keys)))
    specs = producible(SUPPORT, config.windows_by_kind(), sources.missing)
    out = {s.name: (j[s.name].fill_null(0) if s.unit == "count" else j[s.name]).cast("float64")
           for s in specs}
    return j.select("account_id", "as_of", **out)
