"""Seeded, vectorised synthetic B2B SaaS warehouse: the contract's source tables plus the true churn hazards.

Every account carries a latent daily health (an AR(1) drift with occasional negative shocks, plus an
onboarding dip that is deeper when time to value is slow). Health drives activity, tickets, survey scores,
trial conversion, plan changes and the churn hazard. Churn is drawn only at renewals (monthly or annual
anniversaries of the paid start), and `sim_truth` keeps the exact hazard of every renewal drawn, so the
oracle's score is known.

Internally a timestamp is an int64 count of seconds since the history start (`OPEN` means "no end"); the
returned frames get naive datetime64[us] columns (the pandas 3 default, DuckDB TIMESTAMP).

`generate_warehouse` runs the parts in order: accounts, health, candidate tickets and NPS answers, contracts
(which decide when each account is alive), then users, events, milestones and surveys inside the alive spans.
Each part draws from its own random stream, so tuning one table never reshuffles the others.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.synthetic.accounts import accounts_frame, draw_accounts
from pipelines.synthetic.activity import draw_events, draw_milestones, draw_users, users_frame
from pipelines.synthetic.clock import make_clock
from pipelines.synthetic.company import Company
from pipelines.synthetic.config import SimulationConfig
from pipelines.synthetic.contracts import addon_rows, simulate_contracts, subscriptions_frame, truth_frame
from pipelines.synthetic.frames import format_ids
from pipelines.synthetic.health import Candidates, cumulate_health, simulate_health
from pipelines.synthetic.support import draw_ces, draw_nps, draw_tickets, finish_tickets, surveys_frame, tickets_frame

_STREAMS = ("accounts", "health", "tickets", "nps", "contracts", "addons", "users", "surveys", "events",
            "milestones")  # the order fixes each stream's seed: append new ones, never reorder


def generate_warehouse(config: SimulationConfig) -> dict[str, pd.DataFrame]:
    """Return the source tables (canonical names) plus 'sim_truth'.

    Args:
        config: size, length, seed and start of the history; the same config always gives the same frames.

    Returns:
        accounts, subscriptions, events, users, tickets, surveys and milestones with the contract's columns
        (naive datetime64[us] timestamps), and sim_truth (account_id, month, renewal_at, hazard, drawn,
        lifecycle_start): one row per renewal of each paid lifecycle inside the history with its true churn
        probability; `drawn` is False for the renewals after the lifecycle churned (their hazard is what the
        account would have faced), and `lifecycle_start` tells a re-activated account's lifecycles apart.
    """
    # one child stream per part, so tuning one table never reshuffles the others
    streams = dict(zip(_STREAMS, np.random.default_rng(config.seed).spawn(len(_STREAMS)), strict=True))
    clock = make_clock(config)
    acc = draw_accounts(streams["accounts"], config.accounts, clock)
    health = simulate_health(streams["health"], acc, clock)
    candidates = Candidates(draw_tickets(streams["tickets"], acc, health, clock),
                            draw_nps(streams["nps"], acc, health, clock))
    subs, truth, spans, paid_start = simulate_contracts(streams["contracts"], acc, cumulate_health(health),
                                                        candidates, clock)
    subs = pd.concat([subs, addon_rows(streams["addons"], acc, spans, paid_start, clock)], ignore_index=True)
    company = Company(acc=acc, health=health, spans=spans, clock=clock, ids=format_ids("A", len(acc), 5))
    users = draw_users(streams["users"], company)
    tickets, csat = finish_tickets(streams["tickets"], candidates.tickets, company)
    ces = draw_ces(streams["surveys"], acc, health, clock)
    answers = [candidates.nps.assign(kind=0), csat, ces.assign(kind=2)]
    return {
        "accounts": accounts_frame(acc, company.ids, clock),
        "subscriptions": subscriptions_frame(subs, company.ids, clock),
        "events": draw_events(streams["events"], company, users),
        "users": users_frame(users, company.ids, clock),
        "tickets": tickets_frame(tickets, company.ids, clock),
        "surveys": surveys_frame(streams["surveys"], answers, users, company),
        "milestones": draw_milestones(streams["milestones"], company),
        "sim_truth": truth_frame(truth, company.ids, clock),
    }
