"""The demo: a fresh synthetic warehouse, trained, scored at the latest as-of, its KPIs computed, the simulated CS
team's playbook experiments judged against their holdouts (beside the true effects), and reported on, in one go."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pipelines.config import Params
from pipelines.kpis_run import KpisResult, run_kpis
from pipelines.outcomes_run import OutcomesResult, run_outcomes
from pipelines.progress import Progress
from pipelines.report_run import ReportResult, run_report
from pipelines.scoring_run import ScoreResult, run_score
from pipelines.simulate_run import run_simulate
from pipelines.training_run import TrainResult, run_train
from pipelines.warehouse import check_writable
from serving.tables import KPIS_TABLE, SCORES_TABLE


@dataclass(frozen=True)
class DemoResult:
    """What the demo's stages produced, and how long the demo took in all."""

    trained: TrainResult
    scored: ScoreResult
    kpis: KpisResult
    outcomes: OutcomesResult
    report: ReportResult
    seconds: float


def run_demo(params: Params, progress: Progress) -> DemoResult:
    """Simulate the warehouse `params.simulate` describes, train, score the latest as-of, compute the KPIs, judge
    the playbook experiments the simulated CS team logged in cs_actions, and write the report."""
    check_writable(params, f"the simulated source tables, {SCORES_TABLE}, {KPIS_TABLE} and the outcome tables")
    start = time.perf_counter()
    run_simulate(params, params.simulate, progress)
    trained = run_train(params, progress)
    scored = run_score(params, progress)
    kpis = run_kpis(params, progress)
    outcomes = run_outcomes(params, progress)
    report = run_report(params, progress)
    return DemoResult(trained=trained, scored=scored, kpis=kpis, outcomes=outcomes, report=report,
                      seconds=time.perf_counter() - start)
