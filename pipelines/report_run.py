"""The report stage: what the scorer wrote for an as-of (and the one before), account attributes and the scoring
model's MLflow run, rendered into the managers' report with Markdown and CSV exports of the at-risk list."""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import ibis
import numpy as np
import pandas as pd

from features.catalog import FeatureSpec
from features.vocabulary import EventVocabulary
from pipelines.config import Params
from pipelines.errors import StageError
from pipelines.features_run import account_attributes, build_feature_frame, catalog_specs, changed_feature_settings
from pipelines.files import ensure_writable, write_files
from pipelines.outcomes_run import records_playbook_truth, simulated_effects
from pipelines.progress import Progress
from pipelines.warehouse import open_warehouse
from serving.explain import BENCHMARKS_ARTIFACT, Benchmarks, explain_predictions
from serving.outcomes import split_matured
from serving.report.exports import at_risk_csv, at_risk_markdown
from serving.report.inputs import LoopFacts, ModelFacts, Portfolio, ReportInputs
from serving.report.render import render_manager_report
from serving.report.tables import build_at_risk
from serving.score import describe_tiers
from serving.tables import (
    DRIVERS_TABLE,
    EFFECTS_TABLE,
    KPIS_TABLE,
    MISSED_TABLE,
    OUTCOMES_TABLE,
    PERFORMANCE_TABLE,
    SCORES_TABLE,
)
from serving.writeback import DRIVERS_SCHEMA, KPIS_SCHEMA, OUTCOME_SCHEMAS, SCORES_SCHEMA, describe_schema_problems


@dataclass(frozen=True)
class ReportResult:
    """The files `run_report` wrote: the managers' HTML report and the at-risk list as Markdown and CSV."""

    html: Path
    markdown: Path
    csv: Path


def _pick_as_ofs(con: ibis.BaseBackend, as_of: date | None) -> tuple[date, date | None, list[date]]:
    """The as-of to report on (default: the newest scored), the scored as-of before it, if any, and every scored
    as-of."""
    if SCORES_TABLE not in con.list_tables():
        raise StageError(f"table {SCORES_TABLE} not found in the warehouse: run `churn score` first")
    dates = sorted(pd.to_datetime(con.table(SCORES_TABLE).select("as_of").distinct().execute()["as_of"]).dt.date)
    if not dates:
        raise StageError(f"table {SCORES_TABLE} is empty: run `churn score` first")
    if as_of is None:
        as_of = dates[-1]
    elif as_of not in dates:
        shown = ", ".join(str(d) for d in dates[-6:])
        raise StageError(f"--as-of {as_of}: no scores for that date in {SCORES_TABLE} (scored as-of dates: {shown})")
    earlier = [d for d in dates if d < as_of]
    return as_of, earlier[-1] if earlier else None, dates


def _read(con: ibis.BaseBackend, name: str, schema: ibis.Schema, as_of: date | None) -> pd.DataFrame | None:
    if as_of is None or name not in con.list_tables():
        return None
    table = con.table(name)
    frame = table.filter(table.as_of == ibis.literal(as_of)).select(
        *[c for c in schema.names if c in table.columns]).execute()
    frame["account_id"] = frame["account_id"].astype(str)
    return frame


def keep_cause_drivers(drivers: pd.DataFrame | None, specs: dict[str, FeatureSpec]) -> pd.DataFrame | None:
    """The cause drivers: context rows (renewal timing, tenure, plan) are never reasons. Drivers written before
    roles existed (no role column, or a null role) ranked context among their reasons ("Renewal due in 12 days"):
    their role is the catalog's, so the report's entered, left and rising tables do not quote it either; a feature
    the catalog no longer has is kept."""
    if drivers is None:
        return None
    stored = drivers["role"] if "role" in drivers.columns else pd.Series(None, index=drivers.index, dtype=object)
    catalog = drivers["feature"].map({name: spec.role for name, spec in specs.items()})
    role = stored.where(stored.notna(), catalog)
    return drivers[role.isna() | (role == "cause")].reset_index(drop=True)


def _missing_errors() -> tuple[type[BaseException], ...]:
    from mlflow.exceptions import MlflowException

    return (MlflowException, OSError, ValueError, KeyError)


def _scoring_model(scores: pd.DataFrame) -> tuple[str, str]:
    versions = scores[["model_name", "model_version"]].value_counts()
    return str(versions.index[0][0]), str(versions.index[0][1])


def _run_facts(client, name: str, version: str, run_id: str, capacity: int | None) -> ModelFacts:
    import mlflow

    missing = _missing_errors()
    run = client.get_run(run_id)
    # An older or partial run may lack the metrics or the plot: the panel then says they are missing.
    try:
        metrics = mlflow.artifacts.load_dict(f"runs:/{run_id}/metrics.json").get("validation", {})
    except missing:
        metrics = {}
    png = None
    with tempfile.TemporaryDirectory() as folder, contextlib.suppress(*missing):
        png = Path(client.download_artifacts(run_id, "plots/calibration.png", folder)).read_bytes()
    tags, logged = run.data.tags, run.data.params
    return ModelFacts(
        name=name, version=version, run_id=run_id,
        trained_at=f"{datetime.fromtimestamp(run.info.start_time / 1000):%Y-%m-%d %H:%M}",
        window={k: tags[k] for k in ("train_as_of", "calib_as_of", "valid_as_of") if k in tags},
        metrics=metrics, calibration_png=png, calibration_method=tags.get("calibration"),
        data_end=logged.get("data_end"), capacity=int(logged["capacity"]) if "capacity" in logged else capacity)


def _load_model(params: Params, name: str, version: str):
    """The model version that wrote the scores, its run's facts and its benchmarks; (None, None, None) if gone."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(params.mlflow.tracking_uri)
    client, missing = MlflowClient(), _missing_errors()
    try:
        run_id = client.get_model_version(name, version).run_id
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model().model
    except missing:
        return None, None, None
    try:  # a model trained before benchmarks were logged has none: reasons then carry no comparison
        benchmarks = Benchmarks.from_dict(mlflow.artifacts.load_dict(f"runs:/{run_id}/{BENCHMARKS_ARTIFACT}"))
    except missing:
        benchmarks = None
    return model, _run_facts(client, name, version, run_id, params.evaluation.capacity), benchmarks


def _portfolio(params: Params, wh, model, as_of: date, scores: pd.DataFrame, progress: Progress):
    """Exact contributions of every scored account, recomputed from the features at the as-of."""
    changed = changed_feature_settings(model, params)
    if changed:   # today's features would mean something else to the model
        progress.note(f"portfolio drivers skipped: the model was trained with other feature settings: "
                      f"{'; '.join(changed)}")
        return None, []
    frame, _ = build_feature_frame(params, wh, [as_of], progress,
                                   EventVocabulary.of_model(model.vocabulary, params.features))
    frame["account_id"] = frame["account_id"].astype(str)
    frame = frame[frame["account_id"].isin(scores["account_id"])].set_index("account_id")
    lacking = [f for f in model.features if f not in frame.columns]
    if lacking:
        progress.note(f"portfolio drivers skipped: the warehouse no longer gives {', '.join(lacking[:5])}")
        return None, []
    contributions = explain_predictions(model, frame)
    published = scores.set_index("account_id")["churn_probability"].reindex(frame.index)
    moved = int((np.abs(model.predict(frame) - published.to_numpy()) > 1e-6).sum())
    notes = [f"{moved} account(s) changed in the warehouse since they were scored; the portfolio plots and "
             "waterfalls use today's data"] if moved else []
    return Portfolio(contributions=contributions, values=frame[model.features], calibrator=model.calibrator), notes


def _read_kpis(con: ibis.BaseBackend) -> pd.DataFrame | None:
    """The rows of churn_kpis, or None when `churn kpis` has not written it.

    Raises:
        StageError: the table has another shape, or repeats a (month, segment, kpi); `churn kpis` never writes
            either, so another version or tool did.
    """
    if KPIS_TABLE not in con.list_tables():
        return None
    problems = describe_schema_problems(con, KPIS_TABLE, KPIS_SCHEMA, writing=False)
    if problems:
        raise StageError(f"table {KPIS_TABLE}: {'; '.join(problems)} (written by another version or tool; drop it "
                         f"and run `churn kpis`)")
    frame = con.table(KPIS_TABLE).select(*KPIS_SCHEMA.names).execute()
    repeated = int(frame.duplicated(["month", "segment", "kpi"]).sum())
    if repeated:
        raise StageError(f"table {KPIS_TABLE}: {repeated:,} row(s) repeat a month, segment and kpi (rule: one row "
                         f"each; run `churn kpis` to write it again)")
    return frame


def _read_outcome_table(con: ibis.BaseBackend, name: str) -> pd.DataFrame | None:
    """The rows `churn outcomes` wrote to `name` (OUTCOME_SCHEMAS), or None when it has not run.

    Raises:
        StageError: the table has another shape (written by another version or tool).
    """
    if name not in con.list_tables():
        return None
    schema = OUTCOME_SCHEMAS[name]
    problems = describe_schema_problems(con, name, schema, writing=False)
    if problems:
        raise StageError(f"table {name}: {'; '.join(problems)} (written by another version or tool; drop it and "
                         "run `churn outcomes`)")
    frame = con.table(name).select(*schema.names).execute()
    if "account_id" in frame.columns:
        frame["account_id"] = frame["account_id"].astype(str)
    return frame


def _read_loop(params: Params, wh, scored: list[date]) -> LoopFacts:
    """What `churn outcomes` wrote (effects, missed churns, the scorings it judged) and which scorings have matured
    by the data's end or are pending."""
    matured, pending = split_matured(scored, params.label, wh.data_end)
    performance = _read_outcome_table(wh.con, PERFORMANCE_TABLE)
    judged = None if performance is None else sorted({pd.Timestamp(d).date() for d in performance["as_of"]})
    effects = _read_outcome_table(wh.con, EFFECTS_TABLE)
    truth = None
    if effects is not None and len(effects) and records_playbook_truth(wh.con):
        truth = simulated_effects(wh.con, _read_outcome_table(wh.con, OUTCOMES_TABLE), params.label.horizon_days)
    return LoopFacts(effects=effects, missed=_read_outcome_table(wh.con, MISSED_TABLE), judged=judged,
                     matured=matured, pending=pending, confidence=params.outcomes.confidence,
                     min_arm_accounts=params.outcomes.min_arm_accounts, true_effects=truth)


def _gather(params: Params, progress: Progress, as_of: date | None) -> ReportInputs:
    with open_warehouse(params, progress, read_only=True) as wh:
        with progress.stage("read scores") as info:
            as_of, previous, scored = _pick_as_ofs(wh.con, as_of)
            scores = _read(wh.con, SCORES_TABLE, SCORES_SCHEMA, as_of)
            drivers = _read(wh.con, DRIVERS_TABLE, DRIVERS_SCHEMA, as_of)
            attributes = account_attributes(wh)
            info["detail"] = (f"{len(scores):,} accounts as of {as_of}"
                              + (f", previous {previous}" if previous else ", no previous scoring"))
        with progress.stage("scoring model") as info:
            model, facts, benchmarks = _load_model(params, *_scoring_model(scores))
            info["detail"] = f"{facts.name} v{facts.version}, run {facts.run_id}" if facts else "not in MLflow"
        # The mix features are named after the event names the model picked: its vocabulary names them.
        specs = catalog_specs(params, None if model is None else EventVocabulary.of_model(model.vocabulary,
                                                                                           params.features))
        drivers = keep_cause_drivers(drivers, specs)
        portfolio, notes = (_portfolio(params, wh, model, as_of, scores, progress) if model is not None
                            else (None, ["the model that wrote these scores is not in MLflow any more"]))
        return ReportInputs(
            as_of=as_of, scores=scores, drivers=drivers if drivers is not None else pd.DataFrame(
                columns=list(DRIVERS_SCHEMA.names)), attributes=attributes, specs=specs,
            tier_names=params.scoring.tier_names, previous_as_of=previous,
            tier_rule=describe_tiers(params.scoring, model.base_rate if model is not None else None),
            previous_scores=_read(wh.con, SCORES_TABLE, SCORES_SCHEMA, previous),
            previous_drivers=keep_cause_drivers(_read(wh.con, DRIVERS_TABLE, DRIVERS_SCHEMA, previous), specs),
            portfolio=portfolio, model=facts,
            benchmarks=benchmarks, horizon_days=params.label.horizon_days, notes=notes, kpis=_read_kpis(wh.con),
            kpi_days=params.kpis.ttv_days, loop=_read_loop(params, wh, scored))


def run_report(params: Params, progress: Progress, as_of: date | None = None,
               reports_dir: Path | None = None) -> ReportResult:
    """Write reports/churn_report_<as_of>.html (self-contained) and the at-risk list next to it as
    churn_report_<as_of>_at_risk.md and .csv; return the three paths.

    Args:
        as_of: the scored as-of to report on; default the newest in churn_scores.
        reports_dir: where to write; default `report.dir`.
    """
    config = params.report
    folder = ensure_writable(Path(reports_dir or config.dir), "report.dir")
    inputs = _gather(params, progress, as_of)
    with progress.stage("render report") as info:
        at_risk = build_at_risk(inputs, config)
        path = folder / f"churn_report_{inputs.as_of}.html"
        stem = folder / f"churn_report_{inputs.as_of}_at_risk"
        markdown, csv = stem.with_suffix(".md"), stem.with_suffix(".csv")
        write_files({path: render_manager_report(inputs, config, at_risk),
                     markdown: at_risk_markdown(at_risk, inputs.as_of), csv: at_risk_csv(at_risk)}, "report.dir")
        info["detail"] = f"{len(at_risk)} at-risk accounts, {path.stat().st_size / 1e6:.1f} MB"
    return ReportResult(html=path, markdown=markdown, csv=csv)
