"""The evaluate stage (`churn evaluate --profiles`): how the product does on warehouses unlike the demo's.

For each company profile of `evaluate.profiles`, in a temporary folder of its own (warehouse, MLflow store,
reports): simulate the company at the configured size, then validate and train it through params alone (the
params files given with --params, with the profile's docs/profiles/NAME.yaml laid over them), and collect the
validation metrics of the model and its two baselines beside the oracle's. Nothing outside the temporary folders
is written, so the user's warehouse and MLflow store are untouched.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pipelines.config import EvaluateConfig, EvaluateSize, Params, ParamsError, load_params
from pipelines.errors import StageError
from pipelines.progress import Progress
from pipelines.simulate_run import run_simulate
from pipelines.training_run import TrainResult, run_train
from training.evaluate import lead_interval
from training.experiment import MODEL

CONTENDERS = (("model", None), ("health", "health_score"), ("logistic", "logistic_regression"))
LEAD_NAMES = {"roc_auc": "ROC-AUC", "brier": "Brier"}   # what the model's lead over a baseline is measured in
METRICS = (("ROC-AUC", "roc_auc"), ("PR-AUC", "pr_auc"), ("Brier", "brier"), ("lift", "top_decile_lift"))
_DIGITS = {"brier": 4}   # Brier scores of a few percent need a fourth decimal to tell the contenders apart


@dataclass(frozen=True)
class ProfileScore:
    """One profile's line of the table: its labelled rows and churners, each contender's validation metrics
    (model, health, logistic -> roc_auc, pr_auc, brier, top_decile_lift), the oracles' ROC-AUC, and the seconds
    taken."""

    profile: str
    rows: int
    churners: int
    valid_churners: int
    metrics: dict[str, dict[str, float]]
    oracle_roc_auc: float | None
    nowcast_roc_auc: float | None
    seconds: float
    # baseline (health, logistic) -> metric (roc_auc, brier) -> the model's lead (estimate, low, high): + is ahead
    leads: dict[str, dict[str, tuple[float, float, float]]] = field(default_factory=dict)


def run_evaluate(params_files: list[Path], config: EvaluateConfig, progress: Progress) -> list[ProfileScore]:
    """Simulate and train each profile of `config` in a temporary folder; one `ProfileScore` per profile.

    Args:
        params_files: the --params files; each profile's params file is laid over them.
        config: the profiles, their sizes and the folder holding their params files.

    Raises:
        StageError: a profile's params file is missing or simulates another profile, its history would run past
            today, or its warehouse does not fit in memory.
        ParamsError: the params laid over each other are invalid.
    """
    chosen = [(name, size, _profile_params(params_files, config, name)) for name, size in config.profiles.items()]
    for name, size, params in chosen:   # every size checked before the first profile spends minutes
        _check_history_ends_by_today(name, size, params.simulate.start, config.params_dir / f"{name}.yaml")
    return [_evaluate_profile(name, size, params, progress) for name, size, params in chosen]


def _check_history_ends_by_today(name: str, size: EvaluateSize, start: date, overlay: Path) -> None:
    """A simulated history running past today holds future timestamps, which validation rejects after the whole
    company has been simulated; say so before, with the most months that fit."""
    today = date.today()
    fit = (today.year - start.year) * 12 + today.month - start.month - (today.day < start.day)
    if size.months > fit:
        raise StageError(f"evaluate.profiles.{name}.months: {size.months} months from simulate.start {start} run "
                         f"past today ({today}); at most {max(fit, 0)}, or an earlier simulate.start in {overlay}")


def _profile_params(params_files: list[Path], config: EvaluateConfig, name: str) -> Params:
    overlay = config.params_dir / f"{name}.yaml"
    if not overlay.is_file():
        raise StageError(f"evaluate.params_dir: no params file {overlay} for profile {name}")
    try:
        params = load_params(*params_files, overlay)
    except ParamsError as exc:
        raise StageError(f"profile {name}: {exc}") from None
    if params.simulate.profile != name:
        raise StageError(f"{overlay}: simulate.profile is {params.simulate.profile!r}, not {name!r}")
    return params


def _evaluate_profile(name: str, size: EvaluateSize, params: Params, progress: Progress) -> ProfileScore:
    start = time.perf_counter()
    progress.note(f"profile {name}: {size.accounts:,} accounts, {size.months} months")
    with tempfile.TemporaryDirectory(prefix=f"churn-evaluate-{name}-") as folder:
        local = isolate_params(params, Path(folder), size)
        try:
            run_simulate(local, local.simulate, progress)
            trained = run_train(local, progress, reports_dir=Path(folder) / "reports")
        except MemoryError:
            raise StageError(f"evaluate.profiles.{name}: {size.accounts:,} accounts over {size.months} months do not "
                             "fit in this machine's memory; give it fewer accounts") from None
    with progress.stage("model vs baselines") as info:
        leads = _leads(trained)
        info["detail"] = f"{name}: {_verdict(leads)}"
    return _score(name, trained, leads, time.perf_counter() - start)


def isolate_params(params: Params, folder: Path, size: EvaluateSize) -> Params:
    """The params with every path the run writes (warehouse, MLflow store and artifacts, validation page,
    reports) inside `folder`, and the simulated company at `size`."""
    return params.model_copy(update={
        "warehouse": params.warehouse.model_copy(update={"url": f"duckdb://{folder / 'warehouse.duckdb'}"}),
        "mlflow": params.mlflow.model_copy(update={"tracking_uri": f"sqlite:///{folder / 'mlruns.db'}",
                                                   "artifact_root": str(folder / "mlruns")}),
        "validation": params.validation.model_copy(update={"data_docs_dir": folder / "validation"}),
        "report": params.report.model_copy(update={"dir": folder / "reports"}),
        "simulate": params.simulate.model_copy(update={"accounts": size.accounts, "months": size.months}),
    })


def _score(name: str, trained: TrainResult, leads: dict, seconds: float) -> ProfileScore:
    results = {"model": trained.metrics, **trained.baselines}
    metrics = {label: {key: float(results[source or "model"][key]) for _, key in METRICS}
               for label, source in CONTENDERS}
    return ProfileScore(profile=name, rows=trained.labelled[0], churners=trained.labelled[1],
                        valid_churners=trained.validated[1], metrics=metrics, oracle_roc_auc=trained.oracle_roc_auc,
                        nowcast_roc_auc=trained.nowcast_roc_auc, seconds=seconds, leads=leads)


def _leads(trained: TrainResult) -> dict[str, dict[str, tuple[float, float, float]]]:
    """The model's lead over each baseline on ROC-AUC and Brier on the validation rows, with a 95% interval (a
    bootstrap over accounts, 1,000 resamples each)."""
    rows = trained.validation
    model = rows[MODEL]
    return {label: {metric: lead_interval(rows["label"], model, rows[source], rows["account_id"], metric)
                    for metric in LEAD_NAMES}
            for label, source in CONTENDERS if source is not None}


def _verdict(leads: dict[str, dict[str, tuple[float, float, float]]]) -> str:
    """Ahead where the whole interval is above 0, behind where it is below, level where it holds 0."""
    def word(low: float, high: float) -> str:
        return "ahead of" if low > 0 else "behind" if high < 0 else "level with"

    words = {(label, metric): word(low, high) for label, by in leads.items() for metric, (_, low, high) in by.items()}
    if all(w == "ahead of" for w in words.values()):
        return "ahead of both on ROC-AUC and Brier"
    return "; ".join(f"{w} {label} on {LEAD_NAMES[metric]}" for (label, metric), w in words.items()
                     if w != "ahead of")


def format_table(scores: list[ProfileScore]) -> list[str]:
    """The table's lines: per profile its labelled rows and churners (and the churners in validation), ROC-AUC,
    PR-AUC, Brier score (lower is better) and lift in the top decile as model / fitted health score / logistic
    regression (the health score mapped to probabilities on the calibration dates, as the model is), and the
    model's gap in ROC-AUC to the hindsight oracle (and to the nowcast oracle: a column shown only when training
    reports one)."""
    oracles = [("hindsight", "oracle_roc_auc")]
    if any(s.nowcast_roc_auc is not None for s in scores):
        oracles.append(("nowcast", "nowcast_roc_auc"))
    trio = " / ".join(label for label, _ in CONTENDERS)
    head = [f"{'profile':<11}{'rows':>8}{'churners':>10}{'in valid':>10}"]
    head += [f"{metric:>27}" for metric, _ in METRICS]
    head += [f"{name + ' oracle':>18}{'gap':>7}" for name, _ in oracles] + [f"{'seconds':>9}"]
    legend = f"{'':<39}" + "".join(f"{trio:>27}" for _ in METRICS)
    lines = ["".join(head), legend]
    for s in scores:
        cells = [f"{s.profile:<11}{s.rows:>8,}{s.churners:>10,}{s.valid_churners:>10,}"]
        cells += [f"{' / '.join(f'{s.metrics[label][key]:.{_DIGITS.get(key, 3)}f}' for label, _ in CONTENDERS):>27}"
                  for _, key in METRICS]
        for _, attribute in oracles:
            oracle = getattr(s, attribute)
            cells.append(f"{'n/a':>18}{'':>7}" if oracle is None
                         else f"{oracle:>18.3f}{oracle - s.metrics['model']['roc_auc']:>7.3f}")
        lines.append("".join(cells + [f"{s.seconds:>9.0f}"]))
    return lines


def format_leads(scores: list[ProfileScore]) -> list[str]:
    """The second table's lines: per profile, the model's lead over the fitted health score and over the logistic
    regression in ROC-AUC and in Brier score (+ is the model ahead), each with its 95% interval from a bootstrap over
    accounts, and a verdict: ahead where the whole interval is above 0, level where it holds 0, behind below."""
    pairs = [(label, metric) for label, source in CONTENDERS if source is not None for metric in LEAD_NAMES]
    head = f"{'profile':<11}" + "".join(f"{LEAD_NAMES[m] + ' vs ' + label:>29}" for label, m in pairs)
    lines = ["the model's lead over each baseline, 95% interval from a bootstrap over accounts (+ = the model ahead)",
             head + "  verdict"]
    for s in scores:
        cells = [f"{s.profile:<11}"]
        for label, metric in pairs:
            estimate, low, high = s.leads[label][metric]
            cells.append(f"{f'{estimate:+.4f} ({low:+.4f}, {high:+.4f})':>29}")
        lines.append("".join(cells) + "  " + _verdict(s.leads))
    return lines
