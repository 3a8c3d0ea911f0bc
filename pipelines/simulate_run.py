"""The simulate stage: fill a warehouse with the synthetic company and its truth."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.config import Params, SimulateConfig
from pipelines.errors import StageError
from pipelines.progress import Progress
from pipelines.warehouse import connect_warehouse, redact_url, write_tables
from serving.tables import OUTPUT_TABLES, OUTPUT_VIEWS

SOURCE_TABLES = ("accounts", "subscriptions", "events", "users", "tickets", "surveys", "milestones", "cs_actions")


@dataclass(frozen=True)
class SimulateResult:
    """What `run_simulate` wrote: how many accounts and events."""

    accounts: int
    events: int


def run_simulate(params: Params, config: SimulateConfig, progress: Progress, replace: bool = False) -> SimulateResult:
    """Generate the synthetic warehouse of the configured profile and write its tables (canonical names,
    cs_actions included; a source table the profile lacks is dropped) plus the truth tables `sim_truth`,
    `sim_causes`, `sim_playbooks` and (unless `simulate.nowcast_paths` is 0) `sim_nowcast`, the nowcast oracle for
    `label.horizon_days`.

    Refuses to overwrite a warehouse that holds an `accounts` table it did not generate, unless `replace`.
    """
    con = connect_warehouse(params.warehouse.url, params.warehouse.threads, create=True)
    try:
        return _fill(con, params, config, progress, replace)
    finally:
        con.disconnect()


def _fill(con, params: Params, config: SimulateConfig, progress: Progress, replace: bool) -> SimulateResult:
    from pipelines.synthetic.config import NowcastConfig, SimulationConfig
    from pipelines.synthetic.generate import generate_warehouse

    existing = set(con.list_tables())
    if "accounts" in existing and "sim_truth" not in existing and not replace:
        raise StageError(f"warehouse {redact_url(params.warehouse.url)} already holds an accounts table that "
                         "`churn simulate` did not write; pass --replace to overwrite it")
    with progress.stage("generate") as info:
        frames = generate_warehouse(SimulationConfig(accounts=config.accounts, months=config.months,
                                                     seed=config.seed, start=config.start, causes=config.causes,
                                                     cs_team=config.cs_team.team(), profile=config.profile,
                                                     nowcast=NowcastConfig(horizon_days=params.label.horizon_days,
                                                                           paths=config.nowcast_paths)))
        info["detail"] = (f"{config.profile}: {len(frames['accounts']):,} accounts, {len(frames['events']):,} "
                          f"event rows, {config.months} months")
    _note_vocabulary(params, config.profile, progress)
    with progress.stage("write warehouse") as info:
        # The pipeline's outputs describe the company this replaces: scores, drift, arms, outcomes and effects.
        for name in OUTPUT_VIEWS:
            if name in existing:
                con.drop_view(name)
        # A profile without tickets, surveys or milestones must not leave an earlier company's ones behind.
        stale = [name for name in SOURCE_TABLES if name not in frames]
        for name in (*OUTPUT_TABLES, *stale):
            if name in existing:
                con.drop_table(name)
        if "sim_nowcast" in existing and "sim_nowcast" not in frames:
            con.drop_table("sim_nowcast")   # switched off: an older run's nowcast describes another company
        write_tables(con, frames)
        info["detail"] = ", ".join(f"{name} {len(frame):,}" for name, frame in frames.items())
    return SimulateResult(accounts=len(frames["accounts"]), events=len(frames["events"]))


def _note_vocabulary(params: Params, name: str, progress: Progress) -> None:
    """Say so when `features:` still names another company's events: the profile's params file names its own."""
    from pipelines.synthetic.profiles import get_profile

    profile = get_profile(name)
    if params.features.login_event != profile.login_event or set(params.features.core_events) - set(
            profile.event_names):
        progress.note(f"the {name} company names its events its own way (login {profile.login_event!r}, core "
                      f"{', '.join(profile.core_events)}); features: names others: lay docs/profiles/{name}.yaml "
                      f"over your params (--params params.yaml --params docs/profiles/{name}.yaml)")
