"""Support and voice of the customer: support tickets (more, more urgent and slower to close when health is
low, some with a CSAT answer), quarterly NPS campaigns and occasional customer-effort (CES) answers, all scored
on the account's health at the time. Tickets and NPS are drawn as candidates over the whole history before the
contracts (the churn hazard reads them) and later kept only while the account was alive; builds the `tickets`
and `surveys` output frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.synthetic.activity import pick_users, user_ids
from pipelines.synthetic.clock import DAY, OPEN, Clock
from pipelines.synthetic.company import Company
from pipelines.synthetic.draws import pick, sigmoid, working_seconds
from pipelines.synthetic.frames import format_ids, take
from pipelines.synthetic.health import health_at

_TICKET_RATE = np.array([0.6, 1.5, 3.5])  # tickets per account and month at health 0, by segment
_PRIORITIES = ("low", "normal", "high", "urgent")
_SURVEY_TYPES = ("nps", "csat", "ces")  # the `kind` codes of the answers


def draw_tickets(rng: np.random.Generator, acc: pd.DataFrame, health: np.ndarray, clock: Clock) -> pd.DataFrame:
    """Candidate tickets over the whole history; more, more urgent and slower to close when health is low."""
    rate = _TICKET_RATE[acc["segment"].to_numpy()] / 22 * np.exp(-0.6 * health)
    day, acct = np.nonzero(rng.random(health.shape) < rate * clock.weekday_factor(0.2)[:, None])
    created = day * DAY + working_seconds(rng, len(day))
    keep = created > acc["created"].to_numpy()[acct]
    day, acct, created = day[keep], acct[keep], created[keep]
    h = health[day, acct].astype(np.float64)
    logits = np.array([0.5, 1.5, 0.0, -1.5]) + np.outer(h, [0.4, 0.0, -0.4, -0.8])
    priority = pick(rng, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))
    log_hours = np.log(6.0) + np.array([0.7, 0.3, -0.2, -0.8])[priority] - 0.5 * h
    resolved = created + np.round(np.exp(log_hours + rng.normal(0, 1.1, len(h))) * 3600).astype(np.int64)
    fcr = rng.random(len(h)) < sigmoid(0.2 + 0.6 * h - 0.4 * (priority >= 2))
    reopened = ~fcr & (rng.random(len(h)) < sigmoid(-1.5 - 0.6 * h))
    answered = (rng.random(len(h)) < 0.35) & (resolved < clock.end)
    csat = np.clip(np.round(3.9 + 0.6 * h - 0.8 * reopened + rng.normal(0, 0.9, len(h))), 1, 5)
    return pd.DataFrame({
        "acct": acct, "created": created, "resolved": np.where(resolved < clock.end, resolved, OPEN),
        "priority": priority, "fcr": fcr, "reopened": reopened, "csat": np.where(answered, csat, np.nan),
    })


def draw_nps(rng: np.random.Generator, acc: pd.DataFrame, health: np.ndarray, clock: Clock) -> pd.DataFrame:
    """Candidate NPS answers: a campaign per account about every quarter, a few of its users answer."""
    n, k = len(acc), clock.days // 91 + 2
    campaign = rng.uniform(0, 91, n)[:, None] + 91.0 * np.arange(k)[None, :]
    first = np.maximum(acc["created"].to_numpy() / DAY + 30, 0)
    a, j = np.nonzero((campaign >= first[:, None]) & (campaign < clock.days))
    answers = rng.poisson(0.35 * acc["n_users"].to_numpy()[a] ** 0.6)
    acct = np.repeat(a, answers)
    day = np.floor(np.repeat(campaign[a, j], answers) + rng.exponential(4.0, len(acct))).astype(np.int64)
    responded = day * DAY + working_seconds(rng, len(acct))
    keep = responded < clock.end
    acct, responded = acct[keep], responded[keep]
    h = health_at(health, acct, responded)
    score = np.clip(np.round(6.8 + 1.6 * h + rng.normal(0, 1.7, len(acct))), 0, 10)
    return pd.DataFrame({"acct": acct, "responded": responded, "score": score})


def draw_ces(rng: np.random.Generator, acc: pd.DataFrame, health: np.ndarray, clock: Clock) -> pd.DataFrame:
    """Occasional customer-effort answers (about one per account every eight months), 1-7, 7 = easy."""
    day, acct = np.nonzero(rng.random(health.shape) < 0.125 / 30)
    responded = day * DAY + working_seconds(rng, len(day))
    keep = responded > acc["created"].to_numpy()[acct]
    acct, responded = acct[keep], responded[keep]
    h = health_at(health, acct, responded)
    score = np.clip(np.round(5.0 + 0.9 * h + rng.normal(0, 1.2, len(acct))), 1, 7)
    return pd.DataFrame({"acct": acct, "responded": responded, "score": score})


def finish_tickets(rng: np.random.Generator, tickets: pd.DataFrame, company: Company):
    """Tickets opened while the account was alive; an answered CSAT also becomes a csat survey response."""
    tickets = tickets[company.alive(tickets["acct"].to_numpy(), tickets["created"].to_numpy())]
    tickets = tickets.sort_values("created", kind="stable", ignore_index=True)
    acct, csat = tickets["acct"].to_numpy(), tickets["csat"].to_numpy()
    answered = ~np.isnan(csat)
    delay = np.round(rng.exponential(0.5 * DAY, len(tickets))).astype(np.int64)
    responded = np.where(answered, tickets["resolved"].to_numpy(), 0) + delay
    answered &= (responded < company.clock.end) & company.alive(acct, responded)
    tickets = tickets.assign(csat=np.where(answered, csat, np.nan))
    responses = pd.DataFrame({"acct": acct[answered], "responded": responded[answered],
                              "score": csat[answered], "kind": 1})
    return tickets, responses


def tickets_frame(tickets: pd.DataFrame, ids: pa.Array, clock: Clock) -> pd.DataFrame:
    """The `tickets` table."""
    return pd.DataFrame({
        "ticket_id": take(format_ids("T", len(tickets), 7), np.arange(len(tickets))),
        "account_id": take(ids, tickets["acct"].to_numpy()),
        "created_at": clock.timestamps(tickets["created"].to_numpy()),
        "resolved_at": clock.timestamps(tickets["resolved"].to_numpy()),
        "priority": take(_PRIORITIES, tickets["priority"].to_numpy()),
        "first_contact_resolved": tickets["fcr"].to_numpy(dtype=bool),
        "reopened": tickets["reopened"].to_numpy(dtype=bool),
        "csat": tickets["csat"].to_numpy(dtype=np.float64),
    })


def surveys_frame(rng, parts: list[pd.DataFrame], users: pd.DataFrame, company: Company) -> pd.DataFrame:
    """The `surveys` table: NPS, ticket CSAT and CES answers (`kind` 0, 1, 2) given while the account was
    alive, each by a user who existed then."""
    answers = pd.concat(parts, ignore_index=True)
    acct, responded = answers["acct"].to_numpy(), answers["responded"].to_numpy()
    answers = answers.assign(user=pick_users(rng, users, acct, responded))
    answers = answers[company.alive(acct, responded) & (answers["user"] >= 0).to_numpy()]
    answers = answers.sort_values("responded", kind="stable", ignore_index=True)
    return pd.DataFrame({
        "response_id": take(format_ids("R", len(answers), 7), np.arange(len(answers))),
        "account_id": take(company.ids, answers["acct"].to_numpy()),
        "responded_at": company.clock.timestamps(answers["responded"].to_numpy()),
        "survey_type": take(_SURVEY_TYPES, answers["kind"].to_numpy()),
        "score": answers["score"].to_numpy(dtype=np.float64),
        "user_id": take(user_ids(users), answers["user"].to_numpy()),
    })
