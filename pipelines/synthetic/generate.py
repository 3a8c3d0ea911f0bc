"""Seeded, vectorised synthetic B2B SaaS warehouse: the contract's source tables plus the true churn hazards and
the true causes behind them.

Every account carries a latent daily health (an AR(1) drift with occasional negative shocks, plus an
onboarding dip that is deeper when time to value is slow). Health is the background: it moves activity,
tickets, survey scores, trial conversion and plan changes a little, and the no-cause part of the churn hazard.
On top of it, five churn causes (`causes`) each move only their own signals and add their own term to the
hazard: a stalled onboarding (first value, milestones and deal outcomes late or never), a champion loss (the
most active admin leaves, the others' use decays), support pain (weeks of urgent, slow, badly rated tickets), an
unhappy voice (detractor NPS, low CSAT and CES answers, negative comments) and a price shock (a price increase
answered with fewer seats).
Churn is drawn only at renewals (monthly or annual anniversaries of the paid start); `sim_truth` keeps the exact
hazard of every renewal drawn with each cause's term in it and the renewal's true cause, so the oracle's score
and the true reason for a churn are known, and `sim_causes` lists every cause episode.

Internally a timestamp is an int64 count of seconds since the history start (`OPEN` means "no end"); the
returned frames get naive datetime64[us] columns (the pandas 3 default, DuckDB TIMESTAMP).

`generate_warehouse` runs the parts in order: accounts (and whose onboarding stalls), health, the cause
episodes, candidate tickets and NPS answers (with the episodes' ones), contracts (which decide when each account
is alive), then users, events (with deal outcomes and their amounts), milestones and surveys (with comments)
inside the alive spans. Each part and each cause draws from its own random stream, so tuning one table or
switching a cause off never reshuffles the others.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.synthetic.accounts import accounts_frame, draw_accounts
from pipelines.synthetic.activity import (
    champion_departures,
    draw_events,
    draw_milestones,
    draw_users,
    users_frame,
)
from pipelines.synthetic.causes import (
    CHAMPION_LOSS,
    SUPPORT_PAIN,
    UNHAPPY_VOICE,
    activity_offsets,
    causes_frame,
    draw_episodes,
    draw_onboarding,
)
from pipelines.synthetic.clock import DAY, make_clock, time_keys
from pipelines.synthetic.company import Company
from pipelines.synthetic.config import SimulationConfig
from pipelines.synthetic.contracts import (
    Pressures,
    addon_rows,
    simulate_contracts,
    subscriptions_frame,
    term_ends,
    truth_frame,
)
from pipelines.synthetic.cs_team import actions_frame, draw_flags, month_starts, playbooks_frame
from pipelines.synthetic.frames import format_ids
from pipelines.synthetic.hazard import Candidates
from pipelines.synthetic.health import cumulate_health, simulate_health
from pipelines.synthetic.nowcast import LatentState, nowcast_frame, simulate_nowcast
from pipelines.synthetic.profiles import OPTIONAL_TABLES, get_profile
from pipelines.synthetic.support import (
    draw_ces,
    draw_episode_tickets,
    draw_nps,
    draw_tickets,
    draw_voice_answers,
    finish_tickets,
    surveys_frame,
    tickets_frame,
    voice_ces,
    voice_nps,
)

_STREAMS = ("accounts", "health", "tickets", "nps", "contracts", "addons", "users", "surveys", "events",
            "milestones", "onboarding", "champion_loss", "support_pain", "unhappy_voice", "price_shock", "cs_team",
            "outcomes", "comments", "nowcast")
# the order fixes each stream's seed: append new ones, never reorder


def generate_warehouse(config: SimulationConfig) -> dict[str, pd.DataFrame]:
    """Return the source tables (canonical names) plus 'sim_truth' and 'sim_causes'.

    Args:
        config: size, length, seed, start of the history, the company profile and the causes' rate multipliers
            (times the profile's `cause_scale`); the same config always gives the same frames.

    Returns:
        accounts, subscriptions, events, users, tickets, surveys and milestones with the contract's columns
        (naive datetime64[us] timestamps; a profile without tickets, surveys or milestones leaves those tables
        out, and one with pre-aggregated events adds `event_count`); sim_truth (account_id, month, renewal_at,
        hazard, drawn, lifecycle_start, one column per cause, cause): one row per renewal of each paid lifecycle
        inside the history with its true churn probability, each cause's term in its logit and its true cause
        ("none" when no term exceeds `hazard.CAUSE_MARGIN`); `drawn` is False for the renewals after the
        lifecycle churned (their hazard is what the account would have faced), and `lifecycle_start` tells a
        re-activated account's lifecycles apart; sim_causes (account_id, cause, group, started_at, ended_at):
        every cause episode that overlaps a time the account was alive.
    """
    # one child stream per part, so tuning one table never reshuffles the others
    streams = dict(zip(_STREAMS, np.random.default_rng(config.seed).spawn(len(_STREAMS)), strict=True))
    profile, clock = get_profile(config.profile), make_clock(config)
    rates = {name: rate * profile.cause_scale.get(name, 1.0) for name, rate in config.causes.items()}
    acc = draw_accounts(streams["accounts"], config.accounts, clock, profile)
    acc = acc.assign(**draw_onboarding(streams["onboarding"], acc, rates["onboarding"]))
    health, health_states = simulate_health(streams["health"], acc, clock, month_starts(clock) // DAY)
    episodes = {name: draw_episodes(streams[name], acc, clock, spec, rates[name])
                for name, spec in (("champion_loss", CHAMPION_LOSS), ("support_pain", SUPPORT_PAIN),
                                   ("unhappy_voice", UNHAPPY_VOICE))}
    unhappy = episodes["unhappy_voice"]
    voiced = draw_voice_answers(streams["unhappy_voice"], acc, health, unhappy, clock)
    tickets = pd.concat([draw_tickets(streams["tickets"], acc, health, clock, profile.ticket_rate),
                         draw_episode_tickets(streams["support_pain"], acc, episodes["support_pain"], clock)],
                        ignore_index=True)
    nps, nps_phase = draw_nps(streams["nps"], acc, health, clock, profile.nps_answers)
    candidates = Candidates(tickets, pd.concat([voice_nps(nps, unhappy), voiced.loc[
        voiced["kind"] == 0, ["acct", "responded", "score", "voice"]]], ignore_index=True))
    cum = cumulate_health(health)
    flag_look = candidates.lookups()
    flags = draw_flags(streams["cs_team"], acc, cum, flag_look, episodes["champion_loss"], clock, config.cs_team)
    pressures = Pressures(champions=episodes["champion_loss"], shock_rng=streams["price_shock"],
                          shock_rate=rates["price_shock"], flags=flags, profile=profile)
    subs, truth, spans, paid_start, shocks = simulate_contracts(streams["contracts"], acc, cum,
                                                                candidates, pressures, clock)
    subs = pd.concat([subs, addon_rows(streams["addons"], acc, spans, paid_start, clock, profile)],
                     ignore_index=True)
    if profile.future_term_ends:
        subs = term_ends(subs, clock)
    company = Company(acc=acc, health=health, activity=activity_offsets(episodes["champion_loss"], len(acc), clock),
                      spans=spans, clock=clock, ids=format_ids("A", len(acc), 5), profile=profile)
    users = draw_users(streams["users"], company)
    tickets, csat = finish_tickets(streams["tickets"], candidates.tickets, company)
    ces = voice_ces(draw_ces(streams["surveys"], acc, health, clock), unhappy)
    answers = [candidates.nps.assign(kind=0), csat, ces.assign(kind=2), voiced[voiced["kind"] > 0]]
    own = voiced[voiced["kind"] == 0]
    latent = LatentState(acc=acc, clock=clock, cum=cum, health_states=health_states,
                         champions=episodes["champion_loss"], pain=episodes["support_pain"], unhappy=unhappy,
                         hazard_look=candidates.lookups(), flag_look=flag_look,
                         voice_keys=np.sort(time_keys(own["acct"].to_numpy(), own["responded"].to_numpy())),
                         nps_phase=nps_phase, flags=flags, spans=spans, paid_start=paid_start, shocks=shocks,
                         rates=rates, holdout_share=config.cs_team.holdout_share, profile=profile)
    nowcast = config.nowcast
    frames = {
        "accounts": accounts_frame(acc, company.ids, clock, profile),
        "subscriptions": subscriptions_frame(subs, company.ids, clock, profile.plans),
        "events": draw_events(streams["events"], company, users,
                              champion_departures(users, episodes["champion_loss"]), streams["outcomes"]),
        "users": users_frame(users, company.ids, clock),
        "tickets": tickets_frame(tickets, company.ids, clock),
        "surveys": surveys_frame(streams["surveys"], answers, users, company, streams["comments"]),
        "milestones": draw_milestones(streams["milestones"], company),
        "cs_actions": actions_frame(flags, company),
        "sim_truth": truth_frame(truth, company.ids, clock),
        "sim_causes": causes_frame(company, episodes, shocks),
        "sim_playbooks": playbooks_frame(config.cs_team),
    }
    if nowcast.paths:
        frames["sim_nowcast"] = nowcast_frame(simulate_nowcast(streams["nowcast"], latent, nowcast), company.ids,
                                              clock, nowcast.horizon_days)
    # A profile's warehouse without tickets, surveys or milestones simply lacks those tables.
    return {name: frame for name, frame in frames.items() if name not in OPTIONAL_TABLES or name in profile.tables}
