"""CS touches: how often the CS team acted on an account, from the actions its tools log (`cs_actions`).

Features read cs_actions only through `Sources.for_features` (when an action was done and its arm) and only rows
done before the as-of. A row in the `holdout` arm records that a playbook was held back: nothing was done, so it is
no touch. The arm is only that filter, never a feature, and the scorer's assignments
(churn_playbook_assignments) are never read (tests/features/test_no_leak.py proves both).
"""

from __future__ import annotations

import ibis.expr.types as ir

from features.catalog import TOUCHES, FeatureSpec, producible
from features.config import FeatureConfig
from features.joins import left_join_all
from features.pit import days_between, rows_before, rows_within
from features.sources import Sources

HOLDOUT = "holdout"
_KEYS = ["account_id", "as_of"]


def _touches(sources: Sources) -> ir.Table:
    actions = sources["cs_actions"]
    if sources.has("cs_actions", "arm"):
        actions = actions.filter(actions.arm.isnull() | (actions.arm.strip().lower() != HOLDOUT))
    return actions.select("account_id", "done_at")


def touch_specs(sources: Sources, config: FeatureConfig) -> list[FeatureSpec]:
    """The touch features this warehouse can provide (they need cs_actions)."""
    return producible(TOUCHES, config.windows_by_kind(), sources.missing + config.unset_needs())


def compute_touch_features(sources: Sources, grid: ir.Table, config: FeatureConfig) -> ir.Table | None:
    """Return one row per grid (account_id, as_of) with days since the last CS touch (NULL with none on record) and
    the touches in the last touch_window_days (0 with none), or None without cs_actions."""
    specs = touch_specs(sources, config)
    if not specs:
        return None
    keys, w, touches = grid.select(*_KEYS), config.touch_window_days, _touches(sources)
    before = rows_before(keys, touches, "done_at")
    last = before.group_by(_KEYS).aggregate(last_at=before.done_at.max())
    recent = rows_within(keys, touches, "done_at", w)
    counts = recent.group_by(_KEYS).aggregate(n=recent.count())
    j = left_join_all(keys, (last, counts))
    values = {"days_since_cs_touch": days_between(j.as_of, j.last_at),
              f"cs_touches_{w}d": j.n.fill_null(0).cast("float64")}
    return j.select(*_KEYS, **{s.name: values[s.name] for s in specs})
