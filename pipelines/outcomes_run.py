"""The outcomes stage: for every scoring whose horizon plus grace has passed, what really happened (the training
label, read by the same code), how the champion did in the wild, which playbooks worked against their holdout, and
which churns the scorings missed; written atomically to churn_outcomes, churn_model_performance,
churn_playbook_effects and churn_missed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import ibis
import numpy as np
import pandas as pd

from features.commercial import compute_subscription_state
from features.snapshots import build_labelled_population, compute_churn_dates
from pipelines.config import Params
from pipelines.errors import StageError
from pipelines.features_run import grid_dates
from pipelines.progress import Progress
from pipelines.validation.validate import run_validate
from pipelines.warehouse import Warehouse, check_writable, naive_utc, open_warehouse, open_writer
from serving.effects import ALL, INTENT_TO_TREAT, estimate_effects, first_exposures
from serving.outcomes import (
    VALIDATION_METRICS,
    arms_from_actions,
    compute_model_performance,
    find_missed,
    join_outcomes,
    merge_assignments,
    split_matured,
)
from serving.tables import (
    ASSIGNMENTS_TABLE,
    EFFECTS_TABLE,
    MISSED_TABLE,
    OUTCOMES_TABLE,
    PERFORMANCE_TABLE,
    SCORES_TABLE,
)
from serving.writeback import write_outcomes

SCORE_COLUMNS = ["account_id", "as_of", "churn_probability", "risk_tier", "mrr", "top_reasons", "playbook",
                 "model_name", "model_version"]


@dataclass(frozen=True)
class OutcomesResult:
    """What `run_outcomes` wrote: the matured as-ofs, those still pending (as-of, known from), each table's row
    count, the pooled intent-to-treat effects, the performance rows, and the churns seen and missed."""

    matured: list[date]
    pending: list[tuple[date, date]]
    rows: dict[str, int]
    effects: pd.DataFrame
    performance: pd.DataFrame
    churns: int
    missed: int
    confidence: float = 0.95
    notes: list[str] = field(default_factory=list)
    true_effects: pd.DataFrame | None = None   # on a simulated warehouse: each playbook's true effect


@dataclass(frozen=True)
class OutcomeInputs:
    """What the stage reads from the warehouse: the scored rows (every as-of), the scorer's arms, the cs_actions rows
    (None without the table), the labelled population of the as-ofs to judge, and every known churn date."""

    scores: pd.DataFrame
    assignments: pd.DataFrame
    actions: pd.DataFrame | None
    labels: pd.DataFrame
    churns: pd.DataFrame
    recorded: pd.DataFrame
    data_end: datetime


def _read_scores(con: ibis.BaseBackend) -> pd.DataFrame | None:
    """Every churn_scores row (SCORE_COLUMNS), or None when nothing was scored yet."""
    if SCORES_TABLE not in con.list_tables():
        return None
    table = con.table(SCORES_TABLE)
    frame = table.select(*[c for c in SCORE_COLUMNS if c in table.columns]).execute()
    return frame.assign(account_id=frame["account_id"].astype(str),
                        as_of=pd.to_datetime(frame["as_of"]).dt.date).reindex(columns=SCORE_COLUMNS)


def _read_assignments(con: ibis.BaseBackend, as_ofs: list[date]) -> pd.DataFrame:
    columns = ["account_id", "as_of", "playbook", "arm"]
    if ASSIGNMENTS_TABLE not in con.list_tables() or not as_ofs:
        return pd.DataFrame(columns=columns)
    table = con.table(ASSIGNMENTS_TABLE)
    return table.filter(table.as_of.isin(as_ofs)).select(*columns).execute()


def _labels(params: Params, wh: Warehouse, as_ofs: list[date]) -> pd.DataFrame:
    """The labelled population at the as-ofs (training's label and its churn date) with each account's MRR."""
    columns = ["account_id", "as_of", "label", "churn_at", "mrr"]
    if not as_ofs:
        return pd.DataFrame(columns=columns)
    population = build_labelled_population(wh.sources, as_ofs, params.label, wh.data_end,
                                           params.snapshots.include_trials)
    state = compute_subscription_state(wh.sources, population.select("account_id", "as_of"))
    joined = population.join(state, ["account_id", "as_of"]).select(columns)
    return naive_utc(joined.execute())


def _read_inputs(params: Params, wh: Warehouse, progress: Progress) -> tuple[OutcomeInputs, list, list]:
    with progress.stage("read scores") as info:
        scores = _read_scores(wh.con)
        actions = naive_utc(wh.sources["cs_actions"].execute()) if wh.sources.has("cs_actions") else None
        grid = grid_dates(params, wh, lookback_days=0)
        recorded = arms_from_actions(actions, grid)
        if scores is None and recorded.empty:
            raise StageError(f"table {SCORES_TABLE}: not in the warehouse and cs_actions records no arm; nothing "
                             "was scored yet (run `churn score`, then `churn outcomes` once the horizon and grace of "
                             "a scoring have passed)")
        if scores is None:   # the CS tool's own holdouts (cs_actions arms) are judged without a scoring
            scores = pd.DataFrame(columns=SCORE_COLUMNS)
        matured, pending = split_matured(scores["as_of"], params.label, wh.data_end)
        recorded_matured, _ = split_matured(recorded["as_of"], params.label, wh.data_end)
        recorded = recorded[recorded["as_of"].isin(recorded_matured)]
        info["detail"] = (f"{len(scores):,} score rows, {scores['as_of'].nunique()} as-ofs ({len(matured)} "
                          f"matured), cs_actions {'absent' if actions is None else f'{len(actions):,} rows'}")
    with progress.stage("labels") as info:
        judged = sorted(set(matured) | set(recorded["as_of"]))
        labels = _labels(params, wh, judged)
        churns = naive_utc(compute_churn_dates(wh.sources, params.label, wh.data_end).execute())
        info["detail"] = (f"{len(labels):,} account-as-ofs over {len(judged)} as-ofs, {len(churns):,} known churns "
                          f"by {wh.data_end:%Y-%m-%d}")
    inputs = OutcomeInputs(scores=scores, assignments=_read_assignments(wh.con, matured), actions=actions,
                           labels=labels, churns=churns, recorded=recorded, data_end=wh.data_end)
    return inputs, matured, pending


def _validation(params: Params, performance_keys: list[tuple[str, str]], notes: list[str]) -> dict:
    from training.errors import RegistryError
    from training.registry import read_validation_metrics

    try:
        found = read_validation_metrics(params.mlflow, performance_keys, VALIDATION_METRICS)
    except RegistryError as exc:
        notes.append(f"validation figures not read: {exc}")
        return {}
    unknown = [f"{name} v{version}" for name, version in performance_keys if (name, version) not in found]
    if unknown:
        notes.append(f"no validation figures for {', '.join(unknown)} in {params.mlflow.tracking_uri}")
    return found


def compute_outcome_tables(params: Params, inputs: OutcomeInputs, matured: list[date],
                           notes: list[str]) -> dict[str, pd.DataFrame]:
    """The four outcome tables from what was read, before they carry their computation time."""
    scored = inputs.scores[inputs.scores["as_of"].isin(matured)]
    assignments = merge_assignments(inputs.assignments, inputs.recorded)
    outcomes, dropped = join_outcomes(scored, assignments, inputs.labels, inputs.actions, params.label.horizon_days)
    if dropped:
        notes.append(f"{dropped:,} scored or assigned account-as-ofs left out: the account had no subscription "
                     "covering the as-of (so no label)")
    if inputs.actions is None:
        notes.append("no cs_actions table: action_done is unknown and there is no per-protocol view")
    elif "arm" in inputs.actions and "playbook" in inputs.actions:
        loose = inputs.actions["arm"].notna() & inputs.actions["playbook"].isna()
        if loose.any():
            notes.append(f"{int(loose.sum()):,} cs_actions row(s) carry an arm but no playbook: their action text "
                         "stands for the playbook and held-back ones without an action are left out; fill "
                         "cs_actions.playbook so each experiment is one playbook")
    keys = sorted({(str(n), str(v)) for n, v in outcomes[["model_name", "model_version"]].dropna().itertuples(
        index=False)})
    performance = compute_model_performance(outcomes, params.scoring.tier_names, params.evaluation.capacity,
                                            _validation(params, keys, notes))
    effects = estimate_effects(outcomes, 1 - params.outcomes.confidence, params.outcomes.min_arm_accounts)
    missed = find_missed(inputs.scores, inputs.churns, params.scoring.tier_names[0], params.label.horizon_days)
    return {OUTCOMES_TABLE: outcomes, PERFORMANCE_TABLE: performance, EFFECTS_TABLE: effects, MISSED_TABLE: missed}


SIM_TRUTH, SIM_PLAYBOOKS = "sim_truth", "sim_playbooks"


def records_playbook_truth(con: ibis.BaseBackend) -> bool:
    """Whether the warehouse is a simulated one that records its CS team's true playbook effects."""
    tables = set(con.list_tables())
    return {SIM_TRUTH, SIM_PLAYBOOKS} <= tables and "playbook_factor" in con.table(SIM_TRUTH).columns


def simulated_effects(con: ibis.BaseBackend, outcomes: pd.DataFrame, horizon_days: int) -> pd.DataFrame | None:
    """On a simulated warehouse (one holding `sim_truth` with playbook factors and `sim_playbooks`), each playbook's
    true effect over the accounts the experiments judged (`pipelines.synthetic.oracle.true_playbook_effects`):
    what the estimates should find. None on any other warehouse.

    Args:
        outcomes: churn_outcomes rows (account_id, as_of, playbook, arm).
    """
    if not records_playbook_truth(con):
        return None
    from pipelines.synthetic.oracle import true_playbook_effects

    truth = con.table(SIM_TRUTH).select("account_id", "renewal_at", "hazard", "playbook_factor",
                                        "lifecycle_start").execute()
    return true_playbook_effects(truth, con.table(SIM_PLAYBOOKS).execute(), first_exposures(outcomes), horizon_days)


def inside(row, truth: pd.DataFrame | None) -> bool | None:
    """Whether the simulated true effect of an effects row's playbook lies inside its relative interval (None when
    the truth or the interval is not known)."""
    if truth is None or row.playbook not in truth.index or pd.isna(row.relative_low):
        return None
    effect = truth.at[row.playbook, "true_effect"]
    return None if pd.isna(effect) else bool(row.relative_low <= effect <= row.relative_high)


def describe_effects(result: OutcomesResult) -> list[str]:
    """The pooled intent-to-treat effect of each playbook, one line each, for the terminal; on a simulated
    warehouse with the true effect beside it."""
    lines = []
    for row in result.effects.itertuples():
        rates = (f"churn {row.treated_churn_rate:.1%} treated (n={row.treated:,}) vs {row.holdout_churn_rate:.1%} "
                 f"holdout (n={row.holdout:,})" if row.treated and row.holdout
                 else f"{row.treated:,} treated, {row.holdout:,} held out")
        relative = "n/a" if pd.isna(row.relative_difference) else f"{row.relative_difference:+.0%}"
        effect = ("" if pd.isna(row.relative_low) else f"; relative {relative} "
                  f"[{row.relative_low:+.0%}, {row.relative_high:+.0%}]")
        mrr = ("" if pd.isna(row.mrr_retained_per_treated)
               else f"; MRR kept per treated account {row.mrr_retained_per_treated:,.0f}")
        truth = result.true_effects
        if truth is not None:
            true = truth["true_effect"].get(row.playbook, np.nan)
            if pd.isna(true):
                mrr += "; simulated truth n/a (no renewal in the horizon, or the truth tables lack it)"
            else:
                covered = inside(row, truth)
                mark = "" if covered is None else " (inside the interval)" if covered else " (OUTSIDE the interval)"
                mrr += f"; simulated truth {true:+.0%}{mark}"
        lines.append(f"{row.playbook:<24} {row.verdict:<12} {rates}{effect}{mrr}")
    return lines


# What `churn outcomes` writes, for the refusal of an engine the write-back cannot write.
WRITES = f"{OUTCOMES_TABLE}, {PERFORMANCE_TABLE}, {EFFECTS_TABLE} and {MISSED_TABLE}"


def run_outcomes(params: Params, progress: Progress) -> OutcomesResult:
    """Judge every scoring whose horizon plus grace has passed and replace the four outcome tables."""
    check_writable(params, WRITES)
    run_validate(params, params.validation, progress, datetime.now()).raise_for_errors()
    notes: list[str] = []
    with open_warehouse(params, progress, read_only=True) as wh:
        inputs, matured, pending = _read_inputs(params, wh, progress)
        with progress.stage("outcomes + effects") as info:
            tables = compute_outcome_tables(params, inputs, matured, notes)
            truth = simulated_effects(wh.con, tables[OUTCOMES_TABLE], params.label.horizon_days)
            computed_at = pd.Timestamp(datetime.now().replace(microsecond=0))
            tables = {name: frame.assign(computed_at=computed_at) for name, frame in tables.items()}
            info["detail"] = ", ".join(f"{name} {len(frame):,}" for name, frame in tables.items())
    for note in notes:
        progress.note(note)
    for as_of, known in pending:
        progress.note(f"scoring of {as_of} pending: its outcome is known once the data reaches {known} "
                      f"(label.horizon_days + label.grace_days after it)")
    with progress.stage("write outcomes") as info, open_writer(params, WRITES) as con:
        write_outcomes(con, tables)
        info["detail"] = f"{len(tables)} tables replaced in one transaction"
    effects = tables[EFFECTS_TABLE]
    pooled = effects[(effects["analysis"] == INTENT_TO_TREAT) & (effects["tier"] == ALL) & (effects["window"] == ALL)]
    missed = tables[MISSED_TABLE]
    return OutcomesResult(matured=matured, pending=pending, rows={n: len(f) for n, f in tables.items()},
                          effects=pooled.reset_index(drop=True), performance=tables[PERFORMANCE_TABLE],
                          churns=len(missed), missed=int(missed["missed"].sum()),
                          confidence=params.outcomes.confidence, notes=notes, true_effects=truth)
