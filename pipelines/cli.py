"""The `churn` command line: one command per stage, each a thin shell around library functions."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:  # the stage modules import heavy libraries: `churn --help` must not wait for them
    from pipelines.training_run import TrainResult

# Quiet third-party telemetry and progress bars before anything imports them (this machine may be offline).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
# A tracking server that does not answer is an error in seconds, not minutes of retries.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")

app = typer.Typer(help="Churn prediction for B2B SaaS accounts, from warehouse tables to scores and reasons.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
# markup=False: data and user text (`[/red]` in an account name, a YAML error) print as they are; our own colours
# are styles on Text, never markup parsed out of a string.
console = Console(highlight=False, soft_wrap=True, markup=False)
# Secret values of the loaded params (passwords in URLs), hidden in every error line.
_SECRETS: list[str] = []

AS_OF_HELP = "As-of date (YYYY-MM-DD); features read only data strictly before it."


@app.callback()
def main(ctx: typer.Context,
         params: list[Path] = typer.Option([Path("params.yaml")], "--params", metavar="PATH",
                                           help="Path to params.yaml; repeat it to lay more files over it (later "
                                                "ones win), e.g. a company profile's docs/profiles/NAME.yaml.")
         ) -> None:
    """Churn prediction: simulate, validate, features, kpis, train, score, outcomes, report, demo, bench, evaluate."""
    ctx.obj = params
    logging.getLogger("alembic").setLevel(logging.WARNING)


@contextmanager
def _expected_errors() -> Iterator[None]:
    """Turn the errors a user can fix into red lines and exit code 1, without a traceback, secrets redacted."""
    from features.sources import ContractError
    from pipelines.config import ParamsError
    from pipelines.errors import StageError
    from pipelines.urls import redact
    from pipelines.warehouse import WarehouseError
    from serving.writeback import WriteRefused
    from training.errors import RegistryError

    try:
        yield
    except (ParamsError, ContractError, StageError, WarehouseError, RegistryError, WriteRefused) as exc:
        console.print(Text.assemble(("error:", "red"), " ", redact(str(exc), _SECRETS)))
        raise typer.Exit(1) from None
    except MemoryError as exc:
        # Stages publish at their end in one transaction, so running out of memory before it leaves the
        # warehouse's tables as they were.
        detail = str(exc).splitlines()[0] if str(exc) else "no detail"
        console.print(Text.assemble(("error:", "red"), f" out of memory ({detail}); give the run less data: fewer "
                                    "accounts, months or as-of dates"))
        raise typer.Exit(1) from None


def _params(ctx: typer.Context):
    from pipelines.config import load_params
    from pipelines.urls import password_forms

    params = load_params(*ctx.obj)
    _SECRETS.extend(password_forms(params.warehouse.url) + password_forms(params.mlflow.tracking_uri))
    return params


def _write_markdown(path: Path, text: str) -> None:
    """Write a generated document whole; a path that cannot be written is one line naming the option."""
    from pipelines.errors import StageError
    from pipelines.files import write_files

    if path.is_dir():
        raise StageError(f"--markdown: cannot write {path}: Is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StageError(f"--markdown: cannot write {path}: {exc.strerror or exc}") from None
    write_files({path: text}, "--markdown")


def _progress():
    from pipelines.progress import Progress

    return Progress(console)


def _date(value: datetime | None):
    return value.date() if value else None


@app.command()
def simulate(ctx: typer.Context,
             accounts: int = typer.Option(None, help="Accounts to generate (default: simulate.accounts)."),
             months: int = typer.Option(None, help="Months of history (default: simulate.months)."),
             seed: int = typer.Option(None, help="Random seed (default: simulate.seed)."),
             replace: bool = typer.Option(False, help="Overwrite source tables not written by simulate.")) -> None:
    """Fill the warehouse with a synthetic B2B SaaS company (source tables + sim_truth)."""
    from pipelines.simulate_run import run_simulate

    with _expected_errors():
        params = _params(ctx)
        config = params.simulate.with_options(accounts=accounts, months=months, seed=seed)
        run_simulate(params, config, _progress(), replace)


@app.command()
def validate(ctx: typer.Context) -> None:
    """Validate the source tables with Great Expectations (contract, keys, ranges, orphans, future timestamps);
    print one table of failures, write a self-contained page under validation.data_docs_dir, exit 1 on an error."""
    from pipelines.validation.validate import run_validate

    with _expected_errors():
        params = _params(ctx)
        run_validate(params, params.validation, _progress(), datetime.now()).raise_for_errors()
        console.print("contract satisfied", style="green")


def _list_mix_templates(params) -> None:
    """The mix features of the event names picked at training, one line per kind (`<event>` for each name)."""
    mix = params.features.event_mix
    if mix.events is not None or not mix.top:
        return
    from features.catalog import mix_specs

    for spec, kind in zip(mix_specs(["<event>"], params.features.trend_window_days), ("share", "change"), strict=True):
        name = f"mix_{kind}_<event>"
        console.print(f"{name:<40} {spec.group:<10} {spec.role:<7} {spec.unit:<8} {spec.description} One per event "
                      f"name of the {mix.top} with the most events, picked at training.")


@app.command()
def features(ctx: typer.Context,
             as_of: datetime = typer.Option(None, formats=["%Y-%m-%d"], help=AS_OF_HELP),
             list_: bool = typer.Option(False, "--list", help="Print the feature catalog and exit."),
             markdown: Path = typer.Option(None, help="Write the catalog as Markdown to this file and exit.")) -> None:
    """Compute the feature table for the as-of grid (or one date) and write churn_features.

    Once the params change its columns (a window, a source), a grid run rebuilds it; one --as-of is refused."""
    with _expected_errors():
        params = _params(ctx)
        if list_ or markdown:
            from features.catalog import catalog_markdown
            from pipelines.features_run import catalog_specs

            specs = catalog_specs(params)
            if markdown:
                _write_markdown(markdown, catalog_markdown(list(specs.values())))
                console.print(f"wrote {len(specs)} features to {markdown}")
            else:
                for spec in specs.values():
                    console.print(f"{spec.name:<40} {spec.group:<10} {spec.role:<7} {spec.unit:<8} {spec.description}")
                _list_mix_templates(params)
            return
        from pipelines.features_run import run_features

        run_features(params, _date(as_of), _progress())


@app.command()
def kpis(ctx: typer.Context,
         list_: bool = typer.Option(False, "--list", help="Print the KPI definitions and exit."),
         markdown: Path = typer.Option(None, help="Write the KPI definitions as Markdown to this file and exit."),
         ) -> None:
    """Compute the customer-success KPIs per calendar month and segment in the warehouse and write churn_kpis
    (and the view churn_kpis_latest); `--list` prints the definitions, `--markdown` writes them as docs."""
    with _expected_errors():
        params = _params(ctx)
        if list_ or markdown:
            from features.kpis.definitions import KPIS, expand_kpis, kpis_markdown

            specs = expand_kpis(KPIS, params.kpis.ttv_days)
            if markdown:
                _write_markdown(markdown, kpis_markdown(specs))
                console.print(f"wrote {len(specs)} KPIs to {markdown}")
            else:
                for spec in specs:
                    console.print(f"{spec.name:<32} {spec.unit:<8} {spec.formula}")
            return
        from pipelines.kpis_run import describe_headline, run_kpis

        result = run_kpis(params, _progress())
    console.print(describe_headline(result))


@app.command()
def train(ctx: typer.Context,
          force_promote: bool = typer.Option(False, help="Make the new model champion even if it loses."),
          backtest: int = typer.Option(0, min=0, help="Also refit on K successive out-of-time folds and report "
                                                       "each fold and mean ± spread.")) -> None:
    """Train LightGBM out of time beside its baselines, log the run to MLflow, register it, gate the champion."""
    from pipelines.training_run import run_train

    with _expected_errors():
        result = run_train(_params(ctx), _progress(), force_promote, backtest)
        _print_training(result)


@app.command()
def score(ctx: typer.Context,
          as_of: datetime = typer.Option(None, formats=["%Y-%m-%d"], help=AS_OF_HELP + " Default: latest."),
          allow_drift: bool = typer.Option(False, help="Publish scores even when features drifted beyond "
                                                       "scoring.drift.stop.")) -> None:
    """Score accounts active at the as-of with the champion and write churn_scores and its drivers."""
    from pipelines.scoring_run import run_score

    with _expected_errors():
        result = run_score(_params(ctx), _progress(), _date(as_of), allow_drift)
        held = (f"; {result.held_out:,} of the {result.assigned:,} accounts in a playbook held out"
                if result.assigned else "")
        console.print(f"scored {result.accounts:,} accounts as of {result.as_of} with model "
                      f"v{result.model_version}; MRR at risk {result.mrr_at_risk:,.0f}{held}")


@app.command()
def outcomes(ctx: typer.Context) -> None:
    """For every scoring whose horizon plus grace has passed (and every arm a CS tool recorded in cs_actions on a
    matured as-of, with or without a scoring): what happened, how the model did in the wild, which playbooks reduced
    churn against their holdout, which churns were missed. Replaces churn_outcomes, churn_model_performance,
    churn_playbook_effects and churn_missed in one transaction; names pending scorings. On a simulated warehouse,
    prints each playbook's true effect beside its estimate."""
    from pipelines.outcomes_run import describe_effects, run_outcomes

    with _expected_errors():
        result = run_outcomes(_params(ctx), _progress())
    if not result.matured and result.effects.empty:
        console.print("no scoring has matured yet: nothing to judge (see the pending scorings above)")
        return
    if result.matured:
        console.print(f"judged {len(result.matured)} scoring(s), {result.matured[0]} to {result.matured[-1]}; "
                      f"{result.churns:,} churns seen by the scorings, {result.missed:,} of them never flagged")
    else:
        console.print("no scoring has matured yet; the arms cs_actions recorded are judged")
    for row in result.performance.itertuples():
        console.print(f"  {row.as_of}  model v{row.model_version}  ROC-AUC {row.roc_auc:.3f} in the wild vs "
                      f"{row.validation_roc_auc:.3f} in validation, recall@{row.capacity} "
                      f"{row.recall_at_capacity:.2f}, churn {row.churn_rate:.1%}")
    console.print(f"playbook effects (intent to treat, every matured as-of pooled, {result.confidence:.0%} intervals):")
    for line in describe_effects(result) or ["no playbook has treated and held-back accounts yet"]:
        console.print(f"  {line}")


@app.command()
def report(ctx: typer.Context,
           as_of: datetime = typer.Option(None, formats=["%Y-%m-%d"],
                                          help="Scored as-of date to report on (YYYY-MM-DD). Default: the newest "
                                               "in churn_scores.")) -> None:
    """Write the CS managers' report (self-contained HTML) and the at-risk list (Markdown, CSV) for a scored as-of."""
    from pipelines.report_run import run_report

    with _expected_errors():
        result = run_report(_params(ctx), _progress(), _date(as_of))
    console.print(f"manager report {result.html}")


@app.command()
def bench(ctx: typer.Context) -> None:
    """Benchmark on scaled synthetic warehouses (params `bench:`): feature build beside a pandas notebook version,
    training, and scoring with drivers and write-back; prints a table and writes reports/bench.json."""
    from pipelines.bench.run import run_bench

    with _expected_errors():
        params = _params(ctx)
        result = run_bench(params, params.bench, _progress())
    if not result["all_targets_met"]:
        console.print("some targets were missed (see MISS above); the bench itself ran to the end", style="yellow")


@app.command()
def evaluate(ctx: typer.Context,
             profiles: bool = typer.Option(False, "--profiles",
                                           help="Simulate and train every company profile of `evaluate.profiles` "
                                                "(demo, self_serve, enterprise) at its configured size.")) -> None:
    """How the model does on warehouses unlike the demo's: with --profiles, each company profile is simulated and
    trained through params alone (the --params files with docs/profiles/NAME.yaml laid over them) in a temporary
    folder, and one table compares the model, the fitted health score and the logistic regression (ROC-AUC, PR-AUC,
    Brier score, lift in the top decile) and the model's gap to the oracles (hindsight, and nowcast when training
    reports one); a second table gives the model's lead over each baseline with a 95% interval. Your warehouse and
    MLflow store are not touched."""
    from pipelines.errors import StageError
    from pipelines.evaluate_run import format_leads, format_table, run_evaluate

    with _expected_errors():
        if not profiles:
            raise StageError("churn evaluate: say what to evaluate: --profiles (see `churn evaluate --help`)")
        params = _params(ctx)
        scores = run_evaluate(list(ctx.obj), params.evaluate, _progress())
    console.print("")
    for line in [*format_table(scores), "", *format_leads(scores)]:
        console.print(line, markup=False, highlight=False)


@app.command()
def demo(ctx: typer.Context) -> None:
    """Simulate a fresh warehouse, train, score the latest as-of, compute the KPIs, judge the simulated CS team's
    playbook experiments, report, print a summary."""
    from pipelines.demo_run import run_demo
    from pipelines.kpis_run import describe_headline
    from pipelines.outcomes_run import describe_effects
    from pipelines.urls import redact
    from pipelines.warehouse import warehouse_location

    with _expected_errors():
        params = _params(ctx)
        result = run_demo(params, _progress())
    scored = result.scored
    _print_training(result.trained)
    console.print(f"\nDemo finished in {result.seconds:.0f} s", style="bold")
    console.print(f"  accounts scored     {scored.accounts:,} as of {scored.as_of} "
                  f"(tiers {scored.tiers}), MRR at risk {scored.mrr_at_risk:,.0f}")
    console.print(f"  warehouse           {warehouse_location(params.warehouse.url)}")
    console.print("  scores              tables churn_scores, churn_score_drivers, view churn_scores_latest")
    console.print(f"  MLflow store        {redact(params.mlflow.tracking_uri, _SECRETS)} "
                  f"(artifacts in {params.mlflow.artifact_root}/)")
    console.print(f"  KPIs                {describe_headline(result.kpis)}")
    console.print(f"  playbook effects    the simulated CS team's holdouts (cs_actions), intent to treat, "
                  f"{result.outcomes.confidence:.0%} intervals, beside the true effects:")
    for line in describe_effects(result.outcomes) or ["no playbook has treated and held-back accounts"]:
        console.print(f"    {line}")
    console.print(f"  manager report      {result.report.html}")


def _print_training(result: TrainResult) -> None:
    oracle = result.oracle_roc_auc
    console.print(f"\n  rows {result.rows:,} over {result.accounts:,} accounts, "
                  f"train churn rate {result.churn_rate:.1%}")
    console.print(f"  {'validation':<22}{'ROC-AUC':>9}{'PR-AUC':>9}{'Brier':>9}{'lift@10%':>10}{'recall@cap':>12}")
    for name, m in [("lightgbm (calibrated)", result.metrics), *result.baselines.items()]:
        console.print(f"  {name:<22}{m['roc_auc']:>9.3f}{m['pr_auc']:>9.3f}{m['brier']:>9.4f}"
                      f"{m['top_decile_lift']:>10.2f}{m['recall_at_capacity']:>12.2f}")
    model = result.metrics["roc_auc"]
    for name, ceiling in (("hindsight oracle", oracle), ("nowcast oracle", result.nowcast_roc_auc)):
        if ceiling is not None:
            console.print(f"  {name:<22}{ceiling:>9.3f}   gap of the model {ceiling - model:+.3f}")
    if result.reasons is not None:
        churners, top = result.reasons.churners, result.reasons.top_tier
        console.print(f"  reason accuracy (simulated causes): top-tier churners {churners['model']:.2f} "
                      f"(chance {churners['random']:.2f}, largest feature {churners['largest_feature']:.2f}; "
                      f"{result.reasons.churners_rows} accounts), all top-tier {top['model']:.2f}")
    if result.backtest is not None:
        for row in result.backtest.itertuples():
            console.print(f"  backtest {row.contender:<21} ROC-AUC {row.roc_auc_mean:.3f} ± {row.roc_auc_std:.3f}"
                          f"   Brier {row.brier_mean:.4f} ± {row.brier_std:.4f}")
    console.print(f"  model v{result.version}: {result.decision['reason']}")
    console.print(f"  training report     {result.report_path}")


if __name__ == "__main__":
    app()
