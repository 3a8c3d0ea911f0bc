"""The source contract: the canonical tables and columns every warehouse is mapped onto (docs/CONTRACT.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ColumnSpec:
    """One canonical column: its name, the type it is cast to, and whether the contract requires it."""

    name: str
    dtype: str
    required: bool = True


@dataclass(frozen=True)
class TableSpec:
    """One canonical table of the contract.

    Attributes:
        feature_columns: when set, the only columns features may read (cs_actions: when an action was done and its
            arm, so that touches are counted and holdout records are not; never which playbook or who did it).
        read_by_labels: False for a table labels never read (cs_actions: what the CS team did follows from the
            scores; churn comes from subscriptions only).
        one_of: optional columns of which the table needs at least one (cs_actions: playbook or action).
    """

    name: str
    required: bool
    columns: tuple[ColumnSpec, ...]
    feature_columns: tuple[str, ...] = ()
    read_by_labels: bool = True
    one_of: tuple[str, ...] = ()

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)

    def read_by_features(self, column: str) -> bool:
        """Whether a feature may read `column` of this table."""
        return not self.feature_columns or column in self.feature_columns


def _cols(spec: str) -> tuple[ColumnSpec, ...]:
    """Parse 'name:type, [optional:type]' into column specs."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        optional = part.startswith("[")
        name, dtype = part.strip("[]").split(":")
        out.append(ColumnSpec(name, dtype, required=not optional))
    return tuple(out)


CONTRACT: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec("accounts", True, _cols(
            "account_id:string, created_at:timestamp, [name:string], [segment:string], [industry:string], "
            "[region:string], [csm_owner:string]")),
        TableSpec("subscriptions", True, _cols(
            "account_id:string, start_at:timestamp, end_at:timestamp, mrr:float64, [plan:string], "
            "[seats:float64], [is_trial:boolean], [billing_period_months:int64]")),
        TableSpec("events", True, _cols(
            "account_id:string, event_at:timestamp, event_name:string, [user_id:string], [session_id:string], "
            "[duration_s:float64], [event_count:int64], [value:float64]")),
        TableSpec("users", False, _cols("user_id:string, account_id:string, created_at:timestamp, [role:string]")),
        TableSpec("tickets", False, _cols(
            "ticket_id:string, account_id:string, created_at:timestamp, [resolved_at:timestamp], "
            "[priority:string], [first_contact_resolved:boolean], [reopened:boolean], [csat:float64]")),
        TableSpec("surveys", False, _cols(
            "response_id:string, account_id:string, responded_at:timestamp, survey_type:string, "
            "score:float64, [user_id:string], [comment:string]")),
        TableSpec("milestones", False, _cols("account_id:string, milestone:string, achieved_at:timestamp")),
        TableSpec("cs_actions", False, _cols(
            "account_id:string, done_at:timestamp, [playbook:string], [action:string], [owner:string], "
            "[arm:string]"), feature_columns=("account_id", "done_at", "arm"), read_by_labels=False,
            one_of=("playbook", "action")),
    )
}
# Tables no label reads (tests/features/test_no_leak.py proves it, and that features read cs_actions only before the
# as-of and only through `feature_columns`).
NOT_FOR_LABELS = tuple(name for name, spec in CONTRACT.items() if not spec.read_by_labels)
