"""Support and voice of the customer: support tickets (more, more urgent and slower to close when health is
low, some with a CSAT answer), quarterly NPS campaigns and occasional customer-effort (CES) answers, all scored
on the account's health at the time; and what two churn causes add to them: the many urgent, slow, badly rated
tickets of a support-pain episode, and the detractor NPS, low CSAT and hard CES answers of an unhappy-voice
episode. Some answers carry a comment whose words agree with the score, with noise (`draw_comments`); an
unhappy-voice answer's comment is negative. Tickets and NPS answers are drawn as candidates over the whole history
before the contracts (the churn hazard reads the episodes' ones) and later kept only while the account was alive;
builds the `tickets` and `surveys` output frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.synthetic.activity import pick_users, user_ids
from pipelines.synthetic.causes import Episodes
from pipelines.synthetic.clock import DAY, OPEN, Clock
from pipelines.synthetic.company import Company
from pipelines.synthetic.draws import pick, sigmoid, working_seconds
from pipelines.synthetic.frames import format_ids, take
from pipelines.synthetic.health import health_at

_PRIORITIES = ("low", "normal", "high", "urgent")
_SURVEY_TYPES = ("nps", "csat", "ces")  # the `kind` codes of the answers
_EPISODE_TICKETS = np.array([1.0, 1.8, 3.5])  # tickets per week of a support-pain episode, by segment
_EPISODE_PRIORITY = np.array([0.05, 0.15, 0.45, 0.35])  # low, normal, high, urgent
_NPS_MEAN = 7.2  # an NPS answer at health 0
CAMPAIGN_DAYS, FIRST_CAMPAIGN_DAYS = 91, 30  # an NPS campaign per account every this many days, the first after sign-up
NPS_USERS_POWER = 0.6  # answers per campaign: the profile's nps_answers x users ** this
NPS_DELAY_DAYS = 4.0  # mean days from a campaign to an answer
VOICE_EXTRA_NPS, VOICE_DELAY_DAYS = 0.7, 3.0  # unhappy voice: detractor answers beyond the first, mean delay (days)
_VOICE_NPS_DROP, _VOICE_CES_DROP = 4.0, 2.5  # points an unhappy-voice episode takes off NPS and CES answers
_COMMENT_CHANCE = np.array([0.5, 0.3, 0.3])  # share of NPS, CSAT and CES answers with a comment
_SCALE = np.array([[7.5, 2.0], [3.5, 1.0], [4.5, 1.5]])  # per survey type: the neutral score and a point's weight
_MOOD_NOISE, _MOOD_CUT = 0.8, 0.75  # noise on a comment's mood; beyond ±cut it is positive or negative
# What customers write, by mood (negative, neutral, positive); each sentence's VADER sign agrees with its mood
# (tests/pipelines/test_simulate.py checks it).
COMMENTS = (
    ("The product is too slow and the reports keep failing.", "We are frustrated: exports are broken again.",
     "Support was useless and the problem is still not fixed.", "We are disappointed and will look at other tools.",
     "Too expensive and hard to use, not worth it.", "Nobody on our team wants to use it anymore, it is a pain.",
     "Bad experience, the integration broke our workflow.",
     "Terrible onboarding, we still cannot get value from it."),
    ("It does the job.", "We use it for weekly reporting.", "Some features we have not tried yet.",
     "The new release looks similar to the old one.", "We mostly use the dashboards.", "Nothing to add for now."),
    ("Great product, it saves us hours every week.", "Love the automations, the team is happy.",
     "Support was quick and helpful, thanks!", "Easy to use and the reports look excellent.",
     "Really good value, we recommend it to others.", "The best tool we have adopted this year."),
)


def draw_tickets(rng: np.random.Generator, acc: pd.DataFrame, health: np.ndarray, clock: Clock,
                 monthly: tuple[float, ...]) -> pd.DataFrame:
    """Candidate tickets over the whole history (`monthly` per account and month at health 0, by segment: the
    profile's); more, more urgent and slower to close when health is low."""
    rate = np.array(monthly)[acc["segment"].to_numpy()] / 22 * np.exp(-0.6 * health)
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
        "episode": False,
    })


def draw_episode_tickets(rng: np.random.Generator, acc: pd.DataFrame, pain: Episodes, clock: Clock) -> pd.DataFrame:
    """Candidate tickets of the support-pain episodes: one at each onset, then a segment's weekly rate through the
    episode; mostly high or urgent, about 4.5 times slower to resolve, rarely solved at first contact, rated low."""
    weeks = (pain.end - pain.start) / (7 * DAY)
    count = 1 + rng.poisson(_EPISODE_TICKETS[acc["segment"].to_numpy()[pain.acct]] * weeks * pain.severity)
    episode = np.repeat(np.arange(len(pain.acct)), count)
    onset = np.zeros(len(episode), dtype=bool)
    onset[np.cumsum(count) - count] = True
    later = pain.start[episode] + np.floor(rng.random(len(episode)) * (pain.end - pain.start)[episode])
    created = np.where(onset, pain.start[episode], later.astype(np.int64) // DAY * DAY
                       + working_seconds(rng, len(episode)))
    acct, n = pain.acct[episode], len(episode)
    priority = pick(rng, np.tile(_EPISODE_PRIORITY, (n, 1)))
    log_hours = np.log(6.0) + 1.5 + np.array([0.7, 0.3, -0.2, -0.8])[priority] + rng.normal(0, 1.1, n)
    resolved = created + np.round(np.exp(log_hours) * 3600).astype(np.int64)
    fcr = rng.random(n) < 0.15
    reopened = ~fcr & (rng.random(n) < 0.4)
    answered = (rng.random(n) < 0.45) & (resolved < clock.end)
    csat = np.clip(np.round(2.0 - 0.8 * reopened + rng.normal(0, 0.8, n)), 1, 5)
    keep = (created >= 0) & (created < clock.end) & (created > acc["created"].to_numpy()[acct])
    return pd.DataFrame({
        "acct": acct, "created": created, "resolved": np.where(resolved < clock.end, resolved, OPEN),
        "priority": priority, "fcr": fcr, "reopened": reopened, "csat": np.where(answered, csat, np.nan),
        "episode": True,
    })[keep].reset_index(drop=True)


def draw_nps(rng: np.random.Generator, acc: pd.DataFrame, health: np.ndarray, clock: Clock,
             answers_per_user: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Candidate NPS answers: a campaign per account about every quarter, a few of its users answer (Poisson with
    mean `answers_per_user` x users ** `NPS_USERS_POWER`: the profile's); and each account's first campaign day
    (its campaigns follow every `CAMPAIGN_DAYS`)."""
    n, k = len(acc), clock.days // CAMPAIGN_DAYS + 2
    phase = rng.uniform(0, CAMPAIGN_DAYS, n)
    campaign = phase[:, None] + float(CAMPAIGN_DAYS) * np.arange(k)[None, :]
    first = np.maximum(acc["created"].to_numpy() / DAY + FIRST_CAMPAIGN_DAYS, 0)
    a, j = np.nonzero((campaign >= first[:, None]) & (campaign < clock.days))
    answers = rng.poisson(answers_per_user * acc["n_users"].to_numpy()[a] ** NPS_USERS_POWER)
    acct = np.repeat(a, answers)
    day = np.floor(np.repeat(campaign[a, j], answers) + rng.exponential(NPS_DELAY_DAYS, len(acct))).astype(np.int64)
    responded = day * DAY + working_seconds(rng, len(acct))
    keep = responded < clock.end
    acct, responded = acct[keep], responded[keep]
    h = health_at(health, acct, responded)
    score = np.clip(np.round(_NPS_MEAN + 1.2 * h + rng.normal(0, 1.3, len(acct))), 0, 10)
    return pd.DataFrame({"acct": acct, "responded": responded, "score": score, "voice": False}), phase


def draw_voice_answers(rng: np.random.Generator, acc: pd.DataFrame, health: np.ndarray, unhappy: Episodes,
                       clock: Clock) -> pd.DataFrame:
    """Answers the account's users give in-app in the first days of each unhappy-voice episode: one or more
    detractor NPS answers (`kind` 0), usually a low CSAT (1) and a hard CES (2) answer; all flagged `voice`."""
    n = len(unhappy.acct)
    parts = [np.repeat(np.arange(n), 1 + rng.poisson(VOICE_EXTRA_NPS, n)), np.flatnonzero(rng.random(n) < 0.6),
             np.flatnonzero(rng.random(n) < 0.8)]
    episode, kind = np.concatenate(parts), np.repeat([0, 1, 2], [len(p) for p in parts])
    acct, severity = unhappy.acct[episode], unhappy.severity[episode]
    delay = rng.exponential(VOICE_DELAY_DAYS, len(episode))
    responded = unhappy.start[episode] + np.round(delay * DAY).astype(np.int64)
    h, noise = health_at(health, acct, responded).astype(np.float64), rng.normal(0.0, 1.0, len(episode))
    nps = np.clip(np.round(_NPS_MEAN + 1.2 * h - _VOICE_NPS_DROP * severity + 1.3 * noise), 0, 10)
    csat = np.clip(np.round(2.0 + 0.8 * noise), 1, 5)
    ces = np.clip(np.round(5.0 + 0.7 * h - _VOICE_CES_DROP * severity + 1.0 * noise), 1, 7)
    keep = (responded >= 0) & (responded < clock.end) & (responded > acc["created"].to_numpy()[acct])
    return pd.DataFrame({"acct": acct, "responded": responded, "score": np.choose(kind, [nps, csat, ces]),
                         "kind": kind, "voice": True})[keep].reset_index(drop=True)


def voice_nps(nps: pd.DataFrame, unhappy: Episodes) -> pd.DataFrame:
    """NPS answers given during an unhappy-voice episode score 4 x severity points lower, flagged `voice`."""
    return _unhappy(nps, unhappy, _VOICE_NPS_DROP, 0, 10)


def voice_ces(ces: pd.DataFrame, unhappy: Episodes) -> pd.DataFrame:
    """CES answers given during an unhappy-voice episode score 2.5 x severity points lower (more effort)."""
    return _unhappy(ces, unhappy, _VOICE_CES_DROP, 1, 7)


def _unhappy(answers: pd.DataFrame, unhappy: Episodes, drop: float, low: int, high: int) -> pd.DataFrame:
    severity = unhappy.strongest(answers["acct"].to_numpy(), answers["responded"].to_numpy())
    inside = severity > 0
    score = np.where(inside, np.clip(answers["score"].to_numpy() - np.round(drop * severity), low, high),
                     answers["score"].to_numpy())
    voice = answers["voice"].to_numpy() | inside if "voice" in answers else inside
    return answers.assign(score=score, voice=voice)


def draw_ces(rng: np.random.Generator, acc: pd.DataFrame, health: np.ndarray, clock: Clock) -> pd.DataFrame:
    """Occasional customer-effort answers (about one per account every eight months), 1-7, 7 = easy."""
    day, acct = np.nonzero(rng.random(health.shape) < 0.125 / 30)
    responded = day * DAY + working_seconds(rng, len(day))
    keep = responded > acc["created"].to_numpy()[acct]
    acct, responded = acct[keep], responded[keep]
    h = health_at(health, acct, responded)
    score = np.clip(np.round(5.0 + 0.7 * h + rng.normal(0, 1.0, len(acct))), 1, 7)
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


def draw_comments(rng: np.random.Generator, answers: pd.DataFrame) -> np.ndarray:
    """A comment for some answers (None for the others): a sentence whose mood follows the answer's score on its
    scale, with noise; an unhappy-voice answer's comment is always negative."""
    kind, n = answers["kind"].to_numpy().astype(int), len(answers)
    voice = answers["voice"].fillna(False).to_numpy(dtype=bool)
    mood = (answers["score"].to_numpy() - _SCALE[kind, 0]) / _SCALE[kind, 1] + rng.normal(0, _MOOD_NOISE, n)
    mood = np.where(voice, -np.inf, mood)
    bank = np.where(mood <= -_MOOD_CUT, 0, np.where(mood >= _MOOD_CUT, 2, 1))
    sentence = np.floor(rng.random(n) * np.array([len(c) for c in COMMENTS])[bank]).astype(int)
    written = rng.random(n) < _COMMENT_CHANCE[kind]
    return np.array([COMMENTS[b][i] if w else None for b, i, w in zip(bank, sentence, written, strict=True)],
                    dtype=object)


def surveys_frame(rng, parts: list[pd.DataFrame], users: pd.DataFrame, company: Company,
                  comment_rng: np.random.Generator) -> pd.DataFrame:
    """The `surveys` table: NPS, ticket CSAT and CES answers (`kind` 0, 1, 2) given while the account was
    alive, each by a user who existed then, some with a comment (`draw_comments`, from `comment_rng`)."""
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
        "comment": draw_comments(comment_rng, answers),
    })
