"""Time-to-value features: tenure, first value, onboarding, trial conversion, first expansion, core adoption.

Each milestone of an account is a first time (first value event, first use of a core event, first achievement of
an onboarding milestone, first trial and paid start, first expansion), and the first time before an as-of t is the
account's first time overall when that falls before t. So events and milestones are rolled up once to their first
times, and only those small rollups meet the grid; the raw events never do.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.catalog import VALUE, producible
from features.commercial import compute_mrr_change_points, is_expansion
from features.config import FeatureConfig
from features.joins import left_join_all
from features.pit import days_between, rows_before
from features.sources import Sources

_KEYS = ["account_id", "as_of"]


def _first_event_uses(sources: Sources, keys: ir.Table, names: list[str]) -> ir.Table:
    """(account_id, event_name, first_at): first use of each named event, over events before the newest as-of."""
    events = sources["events"]
    events = events.filter(events.event_name.isin(names), events.event_at < keys.as_of.max())
    return events.group_by(["account_id", "event_name"]).aggregate(first_at=events.event_at.min())


def _first_value(uses: ir.Table, value_events: list[str]) -> ir.Table:
    value = uses.filter(uses.event_name.isin(value_events))
    return value.group_by("account_id").aggregate(first_value_at=value.first_at.min())


def _core_adoption(uses: ir.Table, keys: ir.Table, accounts: ir.Table, core_events: list[str]) -> ir.Table:
    """Core events adopted before each as-of and the median days from creation to their first use."""
    core = uses.filter(uses.event_name.isin(core_events))
    core = core.left_join(accounts, "account_id").drop("account_id_right")
    j = rows_before(keys, core, "first_at")
    # A creation date at or after the as-of is not known yet, so no day count may be read from it.
    days = ibis.ifelse(j.created_at < j.as_of, days_between(j.first_at, j.created_at), ibis.null("float64"))
    return j.group_by(_KEYS).aggregate(core_adopted=j.event_name.nunique(), core_median_days=days.median())


def _onboarding(sources: Sources, keys: ir.Table, milestones: list[str]) -> ir.Table:
    """Onboarding milestones achieved before each as-of and when the last of them was first achieved."""
    m = sources["milestones"]
    m = m.filter(m.milestone.isin(milestones), m.achieved_at < keys.as_of.max())
    firsts = m.group_by(["account_id", "milestone"]).aggregate(first_at=m.achieved_at.min())
    j = rows_before(keys, firsts, "first_at")
    return j.group_by(_KEYS).aggregate(onboarded=j.milestone.nunique(), last_onboarded_at=j.first_at.max())


def _trial_starts(sources: Sources) -> ir.Table:
    subs = sources["subscriptions"]
    trial = subs.is_trial.fill_null(False)
    return subs.group_by("account_id").aggregate(first_trial_at=subs.start_at.min(where=trial),
                                                 first_converted_at=subs.start_at.min(where=~trial))


def _first_expansion(sources: Sources) -> ir.Table:
    subs = sources["subscriptions"]
    paid = subs.group_by("account_id").aggregate(first_paid_at=subs.start_at.min(where=subs.mrr > 0))
    changes = compute_mrr_change_points(sources)
    grown = changes.filter(is_expansion(changes))
    grown = grown.group_by("account_id").aggregate(first_expansion_at=grown.changed_at.min())
    return paid.join(grown, "account_id")


def _value_parts(sources: Sources, keys: ir.Table, config: FeatureConfig) -> tuple[list, list]:
    """The per-account rollups (joined on account_id) and per-as-of ones (joined on account_id, as_of)."""
    accounts = sources["accounts"]
    segment = ["segment"] if sources.has("accounts", "segment") else []
    per_account, per_as_of = [accounts.select("account_id", "created_at", *segment), _first_expansion(sources)], []
    accounts = accounts.select("account_id", "created_at")
    names = sorted(set(config.value_events) | set(config.core_events))
    if names:
        uses = _first_event_uses(sources, keys, names)
        if config.value_events:
            per_account.append(_first_value(uses, config.value_events))
        if config.core_events:
            per_as_of.append(_core_adoption(uses, keys, accounts, config.core_events))
    if sources.has("subscriptions", "is_trial"):
        per_account.append(_trial_starts(sources))
    if sources.has("milestones") and config.onboarding_milestones:
        per_as_of.append(_onboarding(sources, keys, config.onboarding_milestones))
    return per_account, per_as_of


def _column(j: ir.Table, name: str, dtype: str) -> ir.Value:
    return j[name] if name in j.columns else ibis.null(dtype)


def _share(done: ir.Value, total: int) -> ir.FloatingValue:
    # With nothing configured the share is undefined, not 0.
    return done.fill_null(0).cast("float64") / total if total else ibis.null("float64")


def _overdue_days(j: ir.Table, reached: ir.BooleanValue, config: FeatureConfig) -> ir.FloatingValue:
    """Days past the account's segment target for first value while not reached; NULL without a target."""
    targets = {segment: float(days) for segment, days in config.ttv_targets.items() if segment != "*"}
    fallback = config.ttv_targets.get("*")
    if "segment" not in j.columns or not config.value_events or not (targets or fallback):
        return ibis.null("float64")
    otherwise = ibis.literal(float(fallback)) if fallback else ibis.null("float64")
    target = ibis.cases(*[(j.segment == s, days) for s, days in targets.items()], else_=otherwise)
    age = days_between(j.as_of, ibis.ifelse(j.created_at < j.as_of, j.created_at, ibis.null("timestamp")))
    late = age - target
    # No GREATEST: engines skip its NULL arguments, and an unknown age or target must stay unknown.
    return ibis.cases((late.isnull(), ibis.null("float64")), (reached | (late < 0), 0.0), else_=late)


def _value_columns(j: ir.Table, config: FeatureConfig) -> dict[str, ir.Value]:
    null_day = ibis.null("float64")
    created = ibis.ifelse(j.created_at < j.as_of, j.created_at, ibis.null("timestamp"))
    # An account created before the event history began may have reached value before it: days from its creation
    # to a first use the events show are not known (a warehouse that started tracking years after its first sign-up
    # would otherwise read "took 700 days to reach first value").
    watched = (j.history_start.isnull() | (j.created_at >= j.history_start)).fill_null(False)
    first_value = _column(j, "first_value_at", "timestamp")
    reached = (first_value < j.as_of).fill_null(False)
    expanded = (j.first_expansion_at < j.as_of).fill_null(False)
    n_milestones = len(config.onboarding_milestones)
    onboarded = _column(j, "onboarded", "int64").fill_null(0)
    trial, converted = _column(j, "first_trial_at", "timestamp"), _column(j, "first_converted_at", "timestamp")
    # Trial-to-paid is the first conversion: both starts known before the as-of, the paid one not before the trial.
    was_converted = ((trial < j.as_of) & (converted < j.as_of) & (converted >= trial)).fill_null(False)
    return {
        "tenure_days": days_between(j.as_of, created),
        "value_reached": ibis.ifelse(reached, 1.0, 0.0),
        "days_to_first_value": ibis.ifelse(reached & watched, days_between(first_value, created), null_day),
        "onboarding_share": _share(onboarded, n_milestones),
        "days_to_onboard": ibis.ifelse((onboarded == n_milestones) & (n_milestones > 0),
                                       days_between(_column(j, "last_onboarded_at", "timestamp"), created), null_day),
        "trial_to_paid_days": ibis.ifelse(was_converted, days_between(converted, trial), null_day),
        "days_to_first_expansion": ibis.ifelse(expanded, days_between(j.first_expansion_at, j.first_paid_at), null_day),
        "core_adoption_share": _share(_column(j, "core_adopted", "int64"), len(config.core_events)),
        "core_adoption_median_days": ibis.ifelse(watched, _column(j, "core_median_days", "float64").cast("float64"),
                                                 null_day),
        "onboarding_overdue_days": ibis.ifelse(watched, _overdue_days(j, reached, config), null_day),
    }


def compute_value_features(sources: Sources, grid: ir.Table, config: FeatureConfig) -> ir.Table:
    """Return one row per grid (account_id, as_of) with the time-to-value features of the catalog.

    Counts and flags are 0 when nothing happened before the as-of; day counts, shares and medians are NULL when
    undefined (not reached yet, nothing configured), and the day counts from sign-up (to first value, to core use,
    past the target) are NULL for accounts created before the event history's first event (not observed). Features
    needing a source the warehouse lacks (milestones, subscriptions.is_trial) are left out.

    Args:
        grid: (account_id, as_of) rows, as_of a midnight timestamp.
        config: value_events, onboarding_milestones and core_events name what counts.
    """
    keys = grid.select("account_id", "as_of")
    per_account, per_as_of = _value_parts(sources, keys, config)
    j = left_join_all(keys, [*per_account, *per_as_of])   # per account on account_id, per as-of on both keys
    # The first event of the whole warehouse, once it is before the as-of (a later one would be read from the future).
    start = sources["events"].event_at.min().as_scalar()
    j = j.mutate(history_start=ibis.ifelse(start < j.as_of, start, ibis.null("timestamp")))
    values = _value_columns(j, config)
    specs = producible(VALUE, config.windows_by_kind(), sources.missing)
    return j.select("account_id", "as_of", **{s.name: values[s.name] for s in specs})


def find_unmatched_targets(sources: Sources, config: FeatureConfig) -> list[str]:
    """The segments of `features.ttv_targets` (other than '*') that no account has: a target that applies to no one,
    usually a misspelt segment (the comparison is exact, case and spaces included)."""
    named = [segment for segment in config.ttv_targets if segment != "*"]
    if not named or not sources.has("accounts", "segment"):
        return []
    accounts = sources["accounts"]
    found = accounts.filter(accounts.segment.isin(named)).select("segment").distinct().execute()["segment"]
    return [segment for segment in named if segment not in set(found)]
