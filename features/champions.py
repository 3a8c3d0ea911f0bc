"""Champion signals: whether the account's admin-role users (`features.admin_roles`: those who bought the product and
run it) are still around, computed in the warehouse from `users.role` and the events of those users.

An admin of an account at as-of t is a user with an admin role created before t (the role is the user's row as
the warehouse holds it; a user created at or after t is not known at t). Admin events are rolled up once to one
row per account, user and day. An admin is *lost* at t when active in [t - admin_lost_days, t - admin_active_days)
and not in the last admin_active_days: someone who ran the product and went quiet.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from features.catalog import CHAMPIONS, FeatureSpec, producible
from features.config import FeatureConfig
from features.joins import left_join_all
from features.pit import days_before, days_between, rows_before, rows_within
from features.sources import Sources

_KEYS = ["account_id", "as_of"]


def _admins(sources: Sources, config: FeatureConfig) -> ir.Table:
    users = sources["users"]
    roles = sorted({role.strip().lower() for role in config.admin_roles})
    admins = users.filter(users.role.strip().lower().isin(roles))
    return admins.select("account_id", "user_id", "created_at")


def _admin_days(sources: Sources, admins: ir.Table, as_of_dates: list[date]) -> ir.Table:
    """(account_id, user_id, created_at, day): the days each admin was active, before the newest as-of."""
    events = sources["events"]
    events = events.filter(events.event_at < ibis.timestamp(max(as_of_dates)), events.user_id.notnull())
    days = events.select("account_id", "user_id", day=events.event_at.truncate("D")).distinct()
    return days.join(admins, ["account_id", "user_id"])


def _last_admin_day(days: ir.Table, keys: ir.Table) -> ir.Table:
    # An admin created at or after the as-of is not an admin yet: its days do not count.
    j = rows_before(keys, days, "day", days.created_at < keys.as_of)
    last = j.group_by(_KEYS).aggregate(day=j.day.max())
    return last.select(*_KEYS, days_since_admin_active=days_between(last.as_of, last.day))


def _activity(days: ir.Table, keys: ir.Table, config: FeatureConfig) -> ir.Table:
    """Per grid row: admins active in the last admin_active_days, and admins lost (see the module docstring)."""
    j = rows_within(keys, days, "day", config.admin_lost_days, days.created_at < keys.as_of)
    per_user = j.group_by([*_KEYS, "user_id"]).aggregate(last_day=j.day.max())
    recent = per_user.last_day >= days_before(per_user.as_of, config.admin_active_days)
    return per_user.group_by(_KEYS).aggregate(active=per_user.count(where=recent), lost=per_user.count(where=~recent))


def _admin_counts(admins: ir.Table, keys: ir.Table) -> ir.Table:
    j = rows_before(keys, admins, "created_at")
    return j.group_by(_KEYS).aggregate(admins=j.count())


def champion_specs(sources: Sources, config: FeatureConfig) -> list[FeatureSpec]:
    """The champion features this warehouse can provide (they need users.role and events.user_id)."""
    return producible(CHAMPIONS, config.windows_by_kind(), sources.missing + config.unset_needs())


def compute_champion_features(sources: Sources, grid: ir.Table, config: FeatureConfig,
                              as_of_dates: list[date]) -> ir.Table | None:
    """Return one row per grid (account_id, as_of) with the champion features, or None without `users.role`.

    The share of admins active is NULL for an account with no admin before the as-of, days since an admin was
    active NULL when none ever was; admins lost is 0 without any.

    Args:
        grid: (account_id, as_of) rows, as_of a midnight timestamp among `as_of_dates`.
        config: admin_roles, admin_active_days and admin_lost_days.
    """
    specs = champion_specs(sources, config)
    if not specs:
        return None
    keys = grid.select(*_KEYS)
    admins = _admins(sources, config)
    days = _admin_days(sources, admins, as_of_dates)
    j = left_join_all(keys, (_last_admin_day(days, keys), _activity(days, keys, config), _admin_counts(admins, keys)))
    active = j.active.fill_null(0).cast("float64")
    values = {
        "days_since_admin_active": j.days_since_admin_active,
        f"admin_active_share_{config.admin_active_days}d": ibis.ifelse(
            j.admins > 0, active / j.admins.nullif(0).cast("float64"), ibis.null("float64")),
        f"admins_lost_{config.admin_lost_days}d": j.lost.fill_null(0).cast("float64"),
    }
    return j.select(*_KEYS, **{s.name: values[s.name] for s in specs})
