"""Atomic, idempotent write-back of per-as-of result tables to the warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import ibis
import pandas as pd
import sqlglot.expressions as sge

from serving.history import PREVIOUS_COLUMNS
from serving.tables import (
    ASSIGNMENTS_TABLE,
    DRIVERS_TABLE,
    EFFECTS_TABLE,
    KPIS_LATEST_VIEW,
    KPIS_TABLE,
    LATEST_VIEW,
    MISSED_TABLE,
    OUTCOMES_TABLE,
    PERFORMANCE_TABLE,
    SCORES_TABLE,
)

SCORES_SCHEMA = ibis.schema({
    "account_id": "string", "as_of": "date", "churn_probability": "float64", "risk_tier": "string",
    "risk_rank": "int64", "health_score": "float64", "mrr": "float64", "top_reasons": "string",
    "recommended_action": "string", "owner_role": "string", "urgency": "string", "due_by": "date",
    # The playbook (rule id) that matched the account and its arm in the holdout experiment (serving/experiments.py):
    # treatment, holdout (no action on purpose), or null (no playbook, or experiments off).
    "playbook": "string", "arm": "string",
    "renewal_date": "date", "days_to_renewal": "int64", "billing_period_months": "int64",
    # Risk over time (serving/history.py): the scoring before this as-of and how long the account is in its tier.
    "previous_as_of": "date", "previous_probability": "float64", "previous_tier": "string",
    "probability_change": "float64", "tier_since": "date", "days_in_tier": "int64",
    "model_name": "string", "model_version": "string", "scored_at": "timestamp",
})
DRIVERS_SCHEMA = ibis.schema({
    # rank: 1.. for the cause drivers (risk first, then protective); missing for context features (role context),
    # whose contributions are written too, so nothing the model used is hidden.
    "account_id": "string", "as_of": "date", "rank": "int64", "feature": "string", "role": "string",
    "value": "float64",
    # contribution: TreeSHAP in log-odds; probability_points: percentage points of the calibrated probability the
    # driver adds (the probability minus the probability with that contribution taken out of the log-odds).
    "contribution": "float64", "probability_points": "float64", "direction": "string", "reason": "string",
})
# One row per account, as-of and playbook for the accounts a playbook matched while experiments were on: the arm
# the account was assigned (serving/experiments.py), written in the same transaction as the scores.
ASSIGNMENTS_SCHEMA = ibis.schema({"account_id": "string", "as_of": "date", "playbook": "string", "arm": "string",
                                 "assigned_at": "timestamp"})
KPIS_SCHEMA = ibis.schema({
    "month": "date", "segment": "string", "kpi": "string", "value": "float64", "numerator": "float64",
    "denominator": "float64",
})

# What `churn outcomes` writes for the matured scorings (serving/outcomes.py, serving/effects.py): every table is
# recomputed from the scores and the warehouse at each run and replaced whole, all four in one transaction.
_COMPUTED_AT = {"computed_at": "timestamp"}
OUTCOMES_SCHEMA = ibis.schema({
    "account_id": "string", "as_of": "date", "churn_probability": "float64", "risk_tier": "string",
    "playbook": "string", "arm": "string", "arm_source": "string", "action_done": "boolean", "churned": "int64",
    "churned_mrr": "float64", "churn_date": "date", "mrr": "float64", "top_reasons": "string",
    "model_name": "string", "model_version": "string", **_COMPUTED_AT,
})
PERFORMANCE_SCHEMA = ibis.schema({
    "as_of": "date", "model_name": "string", "model_version": "string", "accounts": "int64", "churned": "int64",
    "churn_rate": "float64", "mean_probability": "float64", "roc_auc": "float64", "pr_auc": "float64",
    "brier": "float64", "ece": "float64", "top_decile_lift": "float64", "recall_at_capacity": "float64",
    "precision_at_capacity": "float64", "mrr_captured_at_capacity": "float64", "capacity": "int64",
    "calibration_by_tier": "string", "validation_roc_auc": "float64", "validation_pr_auc": "float64",
    "validation_brier": "float64", "validation_top_decile_lift": "float64",
    "validation_recall_at_capacity": "float64", "roc_auc_change": "float64", **_COMPUTED_AT,
})
EFFECTS_SCHEMA = ibis.schema({
    "analysis": "string", "playbook": "string", "tier": "string", "window": "string", "window_start": "date",
    "window_end": "date", "treated": "int64", "holdout": "int64", "treated_churned": "int64",
    "holdout_churned": "int64", "treated_churn_rate": "float64", "holdout_churn_rate": "float64",
    "absolute_difference": "float64", "absolute_low": "float64", "absolute_high": "float64",
    "relative_difference": "float64", "relative_low": "float64", "relative_high": "float64", "p_value": "float64",
    "mrr_retained_per_treated": "float64", "mrr_retained_low": "float64", "mrr_retained_high": "float64",
    "mrr_retained_total": "float64", "verdict": "string", "caveat": "string", **_COMPUTED_AT,
})
MISSED_SCHEMA = ibis.schema({
    "account_id": "string", "churn_date": "date", "churned_mrr": "float64", "missed": "boolean",
    "scorings": "int64", "last_as_of": "date", "last_tier": "string", "last_probability": "float64",
    "top_reasons": "string", "first_flagged_as_of": "date", "lead_days": "int64", **_COMPUTED_AT,
})
OUTCOME_SCHEMAS = {OUTCOMES_TABLE: OUTCOMES_SCHEMA, PERFORMANCE_TABLE: PERFORMANCE_SCHEMA,
                   EFFECTS_TABLE: EFFECTS_SCHEMA, MISSED_TABLE: MISSED_SCHEMA}


def _quote(con: ibis.BaseBackend, name: str) -> str:
    return sge.to_identifier(name, quoted=True).sql(dialect=con.dialect)


def _date_list(as_ofs: list[date]) -> str:
    return ", ".join(f"DATE '{d:%Y-%m-%d}'" for d in sorted(set(as_ofs)))


def _stage(con: ibis.BaseBackend, name: str, frame: pd.DataFrame, schema: ibis.Schema) -> str:
    stage = f"_stage_{name}"
    frame = frame.copy()
    for column, dtype in schema.items():
        if dtype.is_date():
            frame[column] = pd.to_datetime(frame[column]).dt.date
    con.create_table(stage, ibis.memtable(frame[list(schema.names)], schema=schema), temp=True, overwrite=True)
    return stage


def _replace_statements(con: ibis.BaseBackend, name: str, stage: str, schema: ibis.Schema,
                        migrate: list[str | _SameColumns],
                        as_ofs: list[date] | None = None) -> list[str | _SameColumns]:
    """Lock the table, bring it to `schema` (`migrate`), and replace its rows of `as_ofs` (None: every row) with the
    staged ones."""
    target = _quote(con, name)
    columns = ", ".join(_quote(con, c) for c in schema.names)
    # DuckDB lets one process write a file at a time; PostgreSQL needs the lock so two writers of the same
    # as-of run one after the other (under READ COMMITTED a waiting DELETE would not see the other's new rows).
    lock = [f"LOCK TABLE {target} IN EXCLUSIVE MODE"] if con.name == "postgres" else []
    where = "" if as_ofs is None else f" WHERE {_quote(con, 'as_of')} IN ({_date_list(as_ofs)})"
    return lock + migrate + [
        f"DELETE FROM {target}{where}",
        f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {_quote(con, stage)}",
    ]


class WriteRefused(RuntimeError):
    """The warehouse refused a write (a lacking privilege, an object of the user's in the way), or another run changed
    the table while this one waited for it, in one line naming the tables; the transaction rolled back, so nothing
    was written."""


@dataclass(frozen=True)
class _SameColumns:
    """An entry of a write's statements, placed after the table's lock: the table must still have the columns the
    write was planned on (`columns`), and then `alters` run. On PostgreSQL another run may change them between the
    plan and the lock (a feature-table rebuild with other params); then this write is refused instead of mixing rows
    of two feature sets. A table another run already brought to `target` (the same rebuild) needs no alter."""

    con: ibis.BaseBackend
    table: str
    columns: frozenset[str]
    alters: tuple[str, ...] = ()
    target: frozenset[str] | None = None

    def run(self, execute) -> None:
        found = {column[0] for column in execute(f"SELECT * FROM {_quote(self.con, self.table)} WHERE 1 = 0")}
        if found == self.columns:
            for statement in self.alters:
                execute(statement)
        elif found != self.target:
            added, removed = sorted(found - self.columns), sorted(self.columns - found)
            change = "; ".join(f"{word} {', '.join(names)}" for word, names in (("now has", added),
                                                                                 ("lost", removed)) if names)
            raise WriteRefused(f"{self.table}: another run changed its columns while this one waited to write "
                               f"({change}); nothing was written; run the command again")


def _run_atomically(con: ibis.BaseBackend, statements: list[str | _SameColumns], before_commit=None) -> None:
    """Run statements in one transaction: all take effect or none does (also when the process is killed)."""
    if con.name == "duckdb":
        raw = con.con
        raw.execute("BEGIN TRANSACTION")
        try:
            _run_all(statements, lambda sql: raw.execute(sql).description)
            if before_commit:
                before_commit()
            raw.execute("COMMIT")
        except BaseException:
            raw.execute("ROLLBACK")
            raise
        return
    with con.begin() as cursor:
        def execute(sql: str):
            cursor.execute(sql)
            return cursor.description

        _run_all(statements, execute)
        if before_commit:
            before_commit()


def _run_all(statements: list[str | _SameColumns], execute) -> None:
    for statement in statements:
        if isinstance(statement, _SameColumns):
            statement.run(execute)
        else:
            execute(statement)


def _engine_errors(con: ibis.BaseBackend) -> tuple[type[Exception], ...]:
    """The exceptions the connection's engine raises for a statement it refuses; () for other engines."""
    if con.name == "duckdb":
        import duckdb

        return (duckdb.Error,)
    if con.name == "postgres":
        import psycopg

        return (psycopg.Error,)
    return ()


def describe_engine_error(exc: Exception) -> str:
    """The engine's refusal in one line: its message and, for PostgreSQL, the detail that names the object (a view
    that depends on the table, say). PostgreSQL's hint is left out: it suggests DROP ... CASCADE, which would drop
    the user's views with the table."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    detail = getattr(getattr(exc, "diag", None), "message_detail", None)
    return (lines[0] if lines else type(exc).__name__) + (f" ({detail.strip()})" if detail else "")


@contextmanager
def _refusals(con: ibis.BaseBackend, names, action: str = "write") -> Iterator[None]:
    """Turn the engine's refusal of a write of tables `names` into a WriteRefused line, for every stage's writes
    (a view named like the table, a role that does not own it, a view of the user's on a dropped column)."""
    try:
        yield
    except _engine_errors(con) as exc:
        raise WriteRefused(f"{', '.join(names)}: the warehouse refused the {action}: {describe_engine_error(exc)}; "
                           "nothing was written") from None


# The columns that say which rows a table holds: a table lacking one was not written by any version of this
# project, so it is refused rather than migrated.
ROW_KEYS = ("account_id", "as_of")


def _kind(dtype: ibis.DataType) -> str:
    """The type's kind, without the width, precision or length an engine picks (PostgreSQL stores int8 as a
    smallint, DuckDB a timestamp as timestamp(6))."""
    kinds = ("boolean", "integer", "floating", "decimal", "string", "date", "timestamp")
    return next((k for k in kinds if getattr(dtype, f"is_{k}")()), str(dtype.copy(nullable=True)))


def _add_column_statements(con: ibis.BaseBackend, name: str, schema: ibis.Schema, columns: list[str]) -> list[str]:
    # IF NOT EXISTS: a second writer that read the table before the first one added the columns waits on its lock,
    # then finds them there.
    types = {c: con.compiler.type_mapper.from_ibis(schema[c]).sql(con.dialect) for c in columns}
    return [f"ALTER TABLE {_quote(con, name)} ADD COLUMN IF NOT EXISTS {_quote(con, c)} {types[c]}" for c in columns]


def describe_schema_problems(con: ibis.BaseBackend, name: str, schema: ibis.Schema,
                             writing: bool = True, add_missing: bool = False) -> list[str]:
    """What keeps the existing table `name` from holding rows of `schema`: the columns it lacks (with
    `add_missing`, only row keys: the others get added), those of another type and, when `writing`, its own columns
    that refuse NULL (an insert of `schema`'s columns would fail on them). [] when the table does not exist or fits."""
    if name not in con.list_tables():
        return []
    existing = con.table(name).schema()
    lacking = [c for c in schema.names if c not in existing and (not add_missing or c in ROW_KEYS)]
    problems = [f"lacks column(s) {', '.join(lacking)}"] if lacking else []
    problems += [f"column {c} is {_kind(existing[c])}, not {_kind(schema[c])}"
                 for c in schema.names if c in existing and _kind(existing[c]) != _kind(schema[c])]
    if writing:
        problems += [f"column {c} (not ours) refuses NULL" for c, dtype in existing.items()
                     if c not in schema and not dtype.nullable]
    return problems


def _create_if_missing(con: ibis.BaseBackend, name: str, schema: ibis.Schema) -> bool:
    """Create table `name` with `schema` unless it exists; return whether it was created."""
    if name in con.list_tables():
        return False
    con.create_table(name, schema=schema)
    return True


def _ensure_table(con: ibis.BaseBackend, name: str, schema: ibis.Schema, add_missing: bool = False) -> list[str]:
    """Create table `name` on first use; return the statements that bring an existing one up to `schema`.

    With `add_missing`, the columns of `schema` an existing table lacks are added as nullable (its older rows keep
    nulls there); without it, or for a row key (ROW_KEYS), a lacking column is a ValueError naming it, like a column
    of another kind of type or a NOT NULL column of its own.
    """
    problems = describe_schema_problems(con, name, schema, add_missing=add_missing)
    if problems:
        raise ValueError(f"table {name}: {'; '.join(problems)} (written by another version or tool; drop or "
                         f"migrate it)")
    if _create_if_missing(con, name, schema):
        return []
    existing = con.table(name).schema()
    return _add_column_statements(con, name, schema, [c for c in schema.names if c not in existing])


def replace_as_of_rows(con: ibis.BaseBackend, tables: dict[str, tuple[pd.DataFrame, ibis.Schema]],
                       as_ofs: list[date], latest_view_of: str | None = None, before_commit=None,
                       add_missing: bool = False, exact_columns: bool = False) -> None:
    """Replace the rows of `as_ofs` in each table with the given frames, all in one transaction.

    Tables are created on first use. A failure at any point leaves every table as it was; running the same
    as-of twice leaves the same rows. With `latest_view_of`, the view churn_scores_latest is (re)defined
    over that table's newest as-of in the same transaction. `before_commit` is called inside the transaction,
    after every statement and before the commit (tests use it to kill a writer at that point). With
    `add_missing`, a table written by an older version gains the columns it lacks, as nullable, in the same
    transaction (see `_ensure_table`). With `exact_columns`, each table must hold exactly the schema's columns once
    locked (a table whose columns follow the params, changed by another run meanwhile, is refused: `_SameColumns`).
    """
    with _refusals(con, tables):
        statements = []
        for name, (frame, schema) in tables.items():
            if exact_columns:
                # The caller has checked the columns; they are checked again under the lock, so a change by another
                # run in between is that check's one line, not _ensure_table's error.
                _create_if_missing(con, name, schema)
                migrate = [_SameColumns(con, name, frozenset(schema.names))]
            else:
                migrate = _ensure_table(con, name, schema, add_missing)
            stage = _stage(con, name, frame, schema)
            statements += _replace_statements(con, name, stage, schema, migrate, as_ofs)
        if latest_view_of is not None:
            source, as_of = _quote(con, latest_view_of), _quote(con, "as_of")
            statements.append(f"CREATE OR REPLACE VIEW {_quote(con, LATEST_VIEW)} AS SELECT * FROM {source} "
                              f"WHERE {as_of} = (SELECT MAX({as_of}) FROM {source})")
        _run_atomically(con, statements, before_commit)


def replace_table(con: ibis.BaseBackend, name: str, frame: pd.DataFrame, schema: ibis.Schema,
                  views: dict[str, str] | None = None, before_commit=None) -> None:
    """Replace every row of table `name` with the frame and (re)define `views` (name → SELECT), in one transaction.

    The table is created on first use. A failure at any point leaves the table and views as they were; writing the
    same frame twice leaves the same rows. `before_commit` is called inside the transaction, before the commit.
    """
    replace_tables(con, {name: (frame, schema)}, views, before_commit)


def replace_tables(con: ibis.BaseBackend, tables: dict[str, tuple[pd.DataFrame, ibis.Schema]],
                   views: dict[str, str] | None = None, before_commit=None, add_missing: bool = False,
                   reshape: bool = False) -> None:
    """Replace every row of each table with its frame and (re)define `views`, all in one transaction.

    Tables are created on first use; with `add_missing`, one written by an older version gains the columns it lacks
    (see `_ensure_table`); with `reshape`, its columns are brought to the frame's schema (`_reshape_statements`).
    A failure at any point leaves every table and view as it was.
    """
    with _refusals(con, tables, "rebuild" if reshape else "write"):
        statements = []
        for name, (frame, schema) in tables.items():
            migrate = _reshape_statements(con, name, schema) if reshape else _ensure_table(con, name, schema,
                                                                                           add_missing)
            stage = _stage(con, name, frame, schema)
            statements += _replace_statements(con, name, stage, schema, migrate)
        statements += [f"CREATE OR REPLACE VIEW {_quote(con, view)} AS {sql}" for view, sql in (views or {}).items()]
        _run_atomically(con, statements, before_commit)


def _reshape_statements(con: ibis.BaseBackend, name: str, schema: ibis.Schema) -> list[str | _SameColumns]:
    """Create table `name` on first use; return the statements that alter an existing one in place to `schema`:
    columns it should not hold dropped, those of another type dropped and added again, lacking ones added, once the
    columns they were planned on are found still there (`_SameColumns`).

    In place, not dropped and created, so the grants, indexes and comments the warehouse keeps on it stay. On
    PostgreSQL a view of the user's that reads a dropped column refuses the DROP COLUMN; DuckDB does not track
    views, so there such a view fails when next read.
    """
    _create_if_missing(con, name, schema)
    existing = con.table(name).schema()
    retyped = [c for c in schema.names if c in existing and _kind(existing[c]) != _kind(schema[c])]
    dropped = [c for c in existing.names if c not in schema] + retyped
    added = [c for c in schema.names if c not in existing or c in retyped]
    alters = ([f"ALTER TABLE {_quote(con, name)} DROP COLUMN {_quote(con, c)}" for c in dropped]
              + _add_column_statements(con, name, schema, added))
    return [_SameColumns(con, name, frozenset(existing.names), tuple(alters), frozenset(schema.names))]


def rebuild_table(con: ibis.BaseBackend, name: str, frame: pd.DataFrame, schema: ibis.Schema,
                  before_commit=None) -> None:
    """Replace every row of table `name` with the frame and bring its columns to `schema`, in one transaction: for a
    derived table whose columns follow the params (churn_features after a window or source was added or dropped)."""
    replace_tables(con, {name: (frame, schema)}, before_commit=before_commit, reshape=True)


def write_kpis(con: ibis.BaseBackend, kpis: pd.DataFrame, before_commit=None) -> None:
    """Publish churn_kpis (every month, segment and KPI) and the view churn_kpis_latest, atomically.

    The view holds, per KPI and segment, the rows of its newest month: churn KPIs settle later than the others.
    """
    table = _quote(con, KPIS_TABLE)
    month, kpi, segment = (_quote(con, c) for c in ("month", "kpi", "segment"))
    latest = (f"SELECT k.* FROM {table} AS k WHERE k.{month} = (SELECT MAX(l.{month}) FROM {table} AS l "
              f"WHERE l.{kpi} = k.{kpi} AND l.{segment} = k.{segment})")
    replace_table(con, KPIS_TABLE, kpis, KPIS_SCHEMA, {KPIS_LATEST_VIEW: latest}, before_commit)


def write_scores(con: ibis.BaseBackend, scores: pd.DataFrame, drivers: pd.DataFrame,
                 as_ofs: list[date], before_commit=None, assignments: pd.DataFrame | None = None) -> None:
    """Publish churn_scores, churn_score_drivers and churn_playbook_assignments for `as_ofs` atomically, and the
    latest-scores view.

    Tables written by an older version gain the columns they lack (nullable: their older rows keep nulls) in the
    same transaction, so a failed publish leaves them as they were, columns included.

    Args:
        assignments: the as-ofs' experiment arms (ASSIGNMENTS_SCHEMA), or None when experiments are off: then the
            assignment table is not created, and an existing one loses its rows of `as_ofs` (the scores replacing
            them carry no arm).
    """
    tables = {SCORES_TABLE: (scores, SCORES_SCHEMA), DRIVERS_TABLE: (drivers, DRIVERS_SCHEMA)}
    if assignments is None and ASSIGNMENTS_TABLE in con.list_tables():
        assignments = pd.DataFrame(columns=ASSIGNMENTS_SCHEMA.names)
    if assignments is not None:
        tables[ASSIGNMENTS_TABLE] = (assignments, ASSIGNMENTS_SCHEMA)
    replace_as_of_rows(con, tables, as_ofs, latest_view_of=SCORES_TABLE, before_commit=before_commit,
                       add_missing=True)


def write_outcomes(con: ibis.BaseBackend, tables: dict[str, pd.DataFrame], before_commit=None) -> None:
    """Publish churn_outcomes, churn_model_performance, churn_playbook_effects and churn_missed (OUTCOME_SCHEMAS),
    each replaced whole, in one transaction: a failed or killed run leaves all four as they were."""
    lacking = sorted(set(OUTCOME_SCHEMAS) - set(tables))
    if lacking:
        raise ValueError(f"write_outcomes: no frame for {', '.join(lacking)}")
    replace_tables(con, {name: (tables[name], schema) for name, schema in OUTCOME_SCHEMAS.items()},
                   before_commit=before_commit, add_missing=True)


def add_missing_columns(con: ibis.BaseBackend, name: str, schema: ibis.Schema) -> list[str]:
    """Add to an existing table, as nullable columns, those of `schema` it lacks; return their names.

    For log tables that gained columns (churn_drift): their older rows keep nulls in the new columns.
    """
    if name not in con.list_tables():
        return []
    existing = con.table(name).schema()
    lacking = [c for c in schema.names if c not in existing]
    with _refusals(con, [name]):
        _run_atomically(con, _add_column_statements(con, name, schema, lacking))
    return lacking


def read_previous_scores(con: ibis.BaseBackend, as_of: date) -> tuple[date | None, pd.DataFrame | None]:
    """The newest published scoring at or before `as_of`: its as-of and its rows (account_id, mrr).

    A re-run of an as-of is compared with the rows it would replace. (None, None) when there is no such scoring.
    """
    if SCORES_TABLE not in con.list_tables():
        return None, None
    scores = con.table(SCORES_TABLE)
    newest = scores.filter(scores.as_of <= as_of).as_of.max().execute()
    if pd.isna(newest):
        return None, None
    newest = pd.Timestamp(newest).date()
    return newest, scores.filter(scores.as_of == newest).select("account_id", "mrr").execute()


def read_previous_scorings(con: ibis.BaseBackend, as_ofs: list[date]) -> pd.DataFrame:
    """The published rows that the scorings of `as_ofs` follow: for each as-of, the rows of the newest scoring
    strictly before it that `as_ofs` do not replace (columns PREVIOUS_COLUMNS of serving/history.py).

    Rows written before churn_scores had tier_since get it from the table's history, computed in the warehouse:
    the first as-of of the account's unbroken run of scorings in its tier. Empty when there is no such scoring.
    """
    if SCORES_TABLE not in con.list_tables():
        return pd.DataFrame(columns=PREVIOUS_COLUMNS)
    scores = con.table(SCORES_TABLE)
    dates = sorted(pd.to_datetime(scores.select("as_of").distinct().execute()["as_of"]).dt.date)
    replaced = set(as_ofs)
    wanted = sorted({max(earlier) for as_of in replaced
                     if (earlier := [d for d in dates if d < as_of and d not in replaced])})
    if not wanted:
        return pd.DataFrame(columns=PREVIOUS_COLUMNS)
    rows = scores.filter(scores.as_of.isin(wanted)).select(
        *[c for c in PREVIOUS_COLUMNS if c in scores.columns]).execute().reindex(columns=PREVIOUS_COLUMNS)
    rows["account_id"] = rows["account_id"].astype(str)
    rows["as_of"] = pd.to_datetime(rows["as_of"]).dt.date
    rows["tier_since"] = pd.to_datetime(rows["tier_since"]).dt.date.astype(object)
    for as_of in sorted(set(rows.loc[rows["tier_since"].isna(), "as_of"])):
        lacking = rows["tier_since"].isna() & (rows["as_of"] == as_of)
        starts = _tier_run_starts(scores, as_of).set_index("account_id")["tier_since"]
        rows.loc[lacking, "tier_since"] = rows.loc[lacking, "account_id"].map(starts)
    return rows


def _tier_run_starts(scores: ibis.Table, until: date) -> pd.DataFrame:
    """For each account scored at `until`: the first as-of of its unbroken run of scorings in its tier there
    (account_id, tier_since), from every scoring up to `until` (gaps and islands, in the warehouse)."""
    past = scores.filter(scores.as_of <= until)
    dates = past.select("as_of").distinct()
    dates = dates.mutate(n=ibis.row_number().over(order_by=dates.as_of))
    rows = past.select("account_id", "as_of", "risk_tier").join(dates, "as_of")
    # Consecutive scorings in one tier keep n − (their rank among the account's scorings in that tier) constant.
    rows = rows.mutate(run=rows.n - ibis.row_number().over(group_by=[rows.account_id, rows.risk_tier],
                                                            order_by=rows.n))
    runs = rows.group_by(["account_id", "risk_tier", "run"]).aggregate(tier_since=rows.as_of.min(),
                                                                        last=rows.as_of.max())
    starts = runs.filter(runs["last"] == until).select("account_id", "tier_since").execute()
    return starts.assign(account_id=starts["account_id"].astype(str),
                         tier_since=pd.to_datetime(starts["tier_since"]).dt.date)
