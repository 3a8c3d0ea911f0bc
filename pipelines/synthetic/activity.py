"""Product activity: the users of each account (an admin at sign-up, the others invited over time), their
product events (active user-days driven by health, sessions in working hours, a login then core and other
events), the outcomes customers reach with the product (deals won and lost, `win_deal` and `lose_deal`, with the
deal's amount in `value`), and the onboarding milestones each account reaches at its own speed. Two churn causes
show here: a champion loss takes the account's most active admin away (its most active user when it has no admin
left) and makes the others' activity decay, and a stalled onboarding holds back the first value events
(create_report, run_automation), the later milestones and every outcome until first value, and wins fewer deals
after it. Builds the `users`, `events` and `milestones` output frames; `pick_users` lends a user who existed at a
time to the survey answers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.synthetic.causes import Episodes
from pipelines.synthetic.clock import DAY, OPEN, Clock, account_start_keys, time_keys
from pipelines.synthetic.company import Company
from pipelines.synthetic.draws import pick, sigmoid, working_seconds
from pipelines.synthetic.frames import format_ids, take
from pipelines.synthetic.profiles import EVENT_SLOTS

_ROLES = ("admin", "member", "viewer")
# Event codes (`profiles.EVENT_SLOTS`; each profile names them): 0 the login, 1-5 core, 6-14 other, 15-16 outcomes.
_CORE_WEIGHTS = (0.3, 0.2, 0.1, 0.2, 0.2)
_OTHER_WEIGHTS = (0.32, 0.16, 0.1, 0.08, 0.07, 0.14, 0.03, 0.05, 0.05)
_CORE, _OTHER = len(_CORE_WEIGHTS), len(_OTHER_WEIGHTS)
_EVENT_SECONDS = np.array([5, 240, 90, 300, 40, 180, 45, 20, 60, 30, 40, 2, 30, 60, 30, 60, 60], dtype=float)
_WON, _LOST = EVENT_SLOTS - 2, EVENT_SLOTS - 1
_OUTCOME_SHARE = 0.08  # at health 0, the share of a session's other events that record a deal's outcome instead
_DEAL_VALUE = np.array([400.0, 1500.0, 6000.0])  # median deal amount, by segment
_INSTEAD_OF_VALUE = np.arange(EVENT_SLOTS)  # before its first value, a stalled account does other core work:
_INSTEAD_OF_VALUE[1:3] = (5, 3)  # create_project instead of create_report, configure_integration for run_automation
_AGGREGATED_SPREAD_SECONDS = 1800  # a pre-aggregated row's first event comes this long after the login at most

_MILESTONE_DAYS = np.array([0.01, 3.0, 5.0, 8.0, 20.0])  # median days after sign-up at average speed


# --- users -------------------------------------------------------------------------------------------------


def draw_users(rng: np.random.Generator, company: Company) -> pd.DataFrame:
    """Users by account and arrival: an admin at sign-up, the others invited over time (slower onboarding,
    slower invites), kept only when invited while the account is alive."""
    acc = company.acc
    counts = acc["n_users"].to_numpy()
    acct = np.repeat(np.arange(len(acc)), counts)
    rank = np.arange(len(acct)) - np.repeat(np.cumsum(counts) - counts, counts)
    early = rng.exponential(20.0 * acc["ttv"].to_numpy()[acct])
    delay = np.where(rng.random(len(acct)) < 0.7, early, rng.uniform(0, 540, len(acct)))
    delay = np.round(np.where(rank == 0, 0.0, delay) * DAY).astype(np.int64)
    created = acc["created"].to_numpy()[acct] + delay
    role = np.where(rank == 0, 0, pick(rng, np.tile([0.1, 0.7, 0.2], (len(acct), 1))))
    propensity = rng.normal(0.0, 0.8, len(acct)) + np.array([0.3, 0.0, -0.6])[role]
    users = pd.DataFrame({"acct": acct, "created": created, "role": role, "propensity": propensity})
    users = users[(created < company.clock.end) & company.alive(acct, created)]
    return users.sort_values(["acct", "created"], kind="stable", ignore_index=True)


def pick_users(rng: np.random.Generator, users: pd.DataFrame, acct: np.ndarray, seconds: np.ndarray):
    """A random user of the account who existed at `seconds` (-1 when none did)."""
    keys = time_keys(users["acct"].to_numpy(), users["created"].to_numpy())
    lo = np.searchsorted(keys, account_start_keys(acct), "left")
    count = np.searchsorted(keys, time_keys(acct, seconds), "right") - lo
    chosen = lo + np.floor(rng.random(len(acct)) * count).astype(np.int64)
    return np.where(count > 0, chosen, -1)


def user_ids(users: pd.DataFrame) -> pa.Array:
    """The user ids (U000001, ...) by row of `users`."""
    return format_ids("U", len(users), 6)


def users_frame(users: pd.DataFrame, ids: pa.Array, clock: Clock) -> pd.DataFrame:
    """The `users` table."""
    return pd.DataFrame({
        "user_id": take(user_ids(users), np.arange(len(users))),
        "account_id": take(ids, users["acct"].to_numpy()),
        "created_at": clock.timestamps(users["created"].to_numpy()),
        "role": take(_ROLES, users["role"].to_numpy()),
    })


# --- events ------------------------------------------------------------------------------------------------


def champion_departures(users: pd.DataFrame, champions: Episodes) -> np.ndarray:
    """When each user of `users` stops using the product (`OPEN` = never): at the onset of a champion loss, the
    account's most active admin (highest activity propensity) among those who had joined and not yet left, or its
    most active user when no admin is left: the admin who bought the product is the champion who goes."""
    left = np.full(len(users), OPEN)
    u_acct, created = users["acct"].to_numpy(), users["created"].to_numpy()
    # Admins first (role 0), then by propensity: propensity is a normal draw, far below this head start.
    propensity = users["propensity"].to_numpy() + 100.0 * (users["role"].to_numpy() == 0)
    first = np.searchsorted(u_acct, champions.acct, "left")
    count = np.searchsorted(u_acct, champions.acct, "right") - first
    rank = np.arange(len(champions.acct)) - np.searchsorted(champions.acct, champions.acct, "left")
    for r in range(int(rank.max(initial=-1)) + 1):  # the account's first episodes first: a champion leaves once
        episode = np.flatnonzero(rank == r)
        pair = np.repeat(episode, count[episode])
        user = np.arange(len(pair)) - np.repeat(np.cumsum(count[episode]) - count[episode], count[episode])
        user += np.repeat(first[episode], count[episode])
        onset = champions.start[pair]
        there = (created[user] <= onset) & (left[user] > onset)
        order = np.lexsort((np.where(there, propensity[user], -np.inf), pair))
        last = np.append(pair[order][1:] != pair[order][:-1], True)
        best = order[last][there[order[last]]]
        left[user[best]] = onset[best]
    return left


def draw_events(rng: np.random.Generator, company: Company, users: pd.DataFrame, left: np.ndarray,
                outcome_rng: np.random.Generator) -> pd.DataFrame:
    """The `events` table: active user-days (health-driven, lower during a champion loss), sessions in working
    hours, events within sessions, some of them deal outcomes with an amount (`_record_outcomes`, drawn from
    `outcome_rng`); a user's events stop when it `left` (`champion_departures`)."""
    pieces = _user_spans(users.assign(left=left), company.spans)
    piece, day = _active_user_days(rng, company, pieces)
    sessions = _sessions(rng, company, pieces, piece, day)
    profile = company.profile
    drawn = (_session_counts(rng, sessions, profile.session_events_log) if profile.aggregated_events
             else _session_events(rng, sessions, profile.session_events_log))
    events = _record_outcomes(outcome_rng, company, pieces, sessions, drawn)
    piece = events["piece"]
    keep = (events["at"] >= pieces["lo"].to_numpy()[piece]) & (events["at"] < pieces["hi"].to_numpy()[piece])
    order = np.flatnonzero(keep)[np.argsort(events["at"][keep], kind="stable")]
    events = {name: values[order] for name, values in events.items()}
    user = pieces["user"].to_numpy()[events["piece"]]
    sessions = int(events["session"].max(initial=0)) + 1
    counts = {"event_count": events["count"]} if profile.aggregated_events else {}
    return pd.DataFrame({
        "account_id": take(company.ids, users["acct"].to_numpy()[user]),
        "event_at": company.clock.timestamps(events["at"]),
        "event_name": take(pa.array(profile.event_names), events["code"]),
        "user_id": take(user_ids(users), user),
        "session_id": take(format_ids("S", sessions, 8), events["session"]),
        "duration_s": events["duration"],
        **counts,
        "value": events["value"],
    })


def _user_spans(users: pd.DataFrame, spans: pd.DataFrame) -> pd.DataFrame:
    """Per user and alive span of its account: the [lo, hi) in which the user can act (not before day 0, not
    after the user left)."""
    pieces = users.reset_index(names="user").merge(spans[["acct", "lo", "hi"]], on="acct", sort=False)
    lo = np.maximum(np.maximum(pieces["created"].to_numpy(), pieces["lo"].to_numpy()), 0)
    pieces = pieces.assign(lo=lo, hi=np.minimum(pieces["hi"].to_numpy(), pieces["left"].to_numpy()))
    return pieces[pieces["hi"] > pieces["lo"]].reset_index(drop=True)


def _active_user_days(rng, company: Company, pieces: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(piece, day) of each day a user is active: likelier on weekdays, for keen users, when healthy, unlikelier
    during a champion loss."""
    first = (pieces["lo"].to_numpy() // DAY).astype(np.int32)
    length = ((pieces["hi"].to_numpy() - 1) // DAY).astype(np.int32) - first + 1
    piece = np.repeat(np.arange(len(pieces), dtype=np.int32), length)
    offset = np.repeat(np.cumsum(length) - length, length).astype(np.int32)
    day = np.arange(len(piece), dtype=np.int32) - offset + first[piece]
    acct = pieces["acct"].to_numpy().astype(np.int32)[piece]
    logit = (company.profile.active_logit + company.health[day, acct] + company.activity[day, acct]
             + pieces["propensity"].to_numpy().astype(np.float32)[piece])
    chance = company.clock.weekday_factor(0.1).astype(np.float32)[day] / (1.0 + np.exp(-logit))
    active = rng.random(len(piece), dtype=np.float32) < chance
    return piece[active], day[active]


def _sessions(rng, company: Company, pieces, piece, day) -> dict[str, np.ndarray]:
    """One or more sessions per active user-day, starting in working hours; core use grows with onboarding, and
    value events wait for a stalled account's first value (`value_at`)."""
    acc = company.acc
    count = 1 + rng.poisson(company.profile.extra_sessions, len(piece))
    piece, day = np.repeat(piece, count), np.repeat(day, count).astype(np.int64)
    acct = pieces["acct"].to_numpy()[piece]
    start = day * DAY + working_seconds(rng, len(piece), mean_hour=13.0)
    age = (start - acc["created"].to_numpy()[acct]) / DAY
    onboarded = 1.0 - np.exp(-np.maximum(age, 0.0) / (8.0 * acc["ttv"].to_numpy()[acct]))
    h = company.health[day, acct].astype(np.float64)
    core_share = sigmoid(-0.7 + 0.7 * h + 0.4 * (pieces["role"].to_numpy()[piece] < 2)) * onboarded
    blocked = start < acc["value_at"].to_numpy()[acct]
    return {"piece": piece, "start": start, "h": h, "core_share": core_share, "blocked": blocked}


def _session_events(rng, sessions: dict[str, np.ndarray], log_mean: float) -> dict[str, np.ndarray]:
    """A login, then a health-driven number of core and other events (exp(`log_mean`) at health 0), one after
    another."""
    count = 1 + rng.poisson(np.exp(log_mean + 0.3 * sessions["h"]))
    session = np.repeat(np.arange(len(count)), count)
    first = np.cumsum(count) - count
    core = rng.random(len(session)) < sessions["core_share"][session]
    core_code = 1 + rng.choice(_CORE, size=len(session), p=_CORE_WEIGHTS)
    other_code = 1 + _CORE + rng.choice(_OTHER, size=len(session), p=_OTHER_WEIGHTS)
    code = np.where(core, core_code, other_code).astype(np.int8)
    code = np.where(sessions["blocked"][session], _INSTEAD_OF_VALUE[code], code).astype(np.int8)
    code[first] = 0  # "login"
    duration = np.round(_EVENT_SECONDS[code] * rng.lognormal(0.0, 0.6, len(session)), 1)
    step = duration + rng.exponential(25.0, len(session))
    elapsed = np.cumsum(step) - step
    at = sessions["start"][session] + np.round(elapsed - elapsed[first][session]).astype(np.int64)
    return {"piece": sessions["piece"][session], "session": session, "at": at, "code": code,
            "duration": duration}


def _session_counts(rng, sessions: dict[str, np.ndarray], log_mean: float) -> dict[str, np.ndarray]:
    """Pre-aggregated events: per session a login row, then one row per event name used with its number of
    events (`count`): the same health-driven mean (exp(`log_mean`) at health 0) and core share as
    `_session_events`, split over the names (Poisson); a stalled account's value events are other core work."""
    n, h = len(sessions["h"]), sessions["h"]
    mean, core = np.exp(log_mean + 0.3 * h), sessions["core_share"]
    rates = np.hstack([(mean * core)[:, None] * np.array(_CORE_WEIGHTS),
                       (mean * (1.0 - core))[:, None] * np.array(_OTHER_WEIGHTS)])
    counts = rng.poisson(rates)  # column j is event code j + 1
    blocked = np.flatnonzero(sessions["blocked"])
    for value_code in (1, 2):  # before its first value, a stalled account does other core work instead
        counts[blocked, _INSTEAD_OF_VALUE[value_code] - 1] += counts[blocked, value_code - 1]
        counts[blocked, value_code - 1] = 0
    session, column = np.nonzero(counts)
    session = np.concatenate([np.arange(n), session])
    code = np.concatenate([np.zeros(n, dtype=np.int64), column + 1]).astype(np.int8)
    count = np.concatenate([np.ones(n, dtype=np.int64), counts[session[n:], column]])
    order = np.lexsort((code, session))
    session, code, count = session[order], code[order], count[order]
    offset = np.where(code == 0, 0, np.floor(rng.uniform(1, _AGGREGATED_SPREAD_SECONDS, len(code))))
    duration = np.round(_EVENT_SECONDS[code] * count * rng.lognormal(0.0, 0.6, len(code)), 1)
    return {"piece": sessions["piece"][session], "session": session,
            "at": sessions["start"][session] + offset.astype(np.int64), "code": code, "duration": duration,
            "count": count}


def _record_outcomes(rng, company: Company, pieces: pd.DataFrame, sessions: dict[str, np.ndarray],
                     events: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Turn some of the sessions' other events into deal outcomes, each with the deal's amount in `value`: fewer
    and more often lost when health is low; none before a stalled account's first value, and fewer won after it
    (the onboarding cause's channel into outcomes)."""
    session = events["session"]
    h, blocked = sessions["h"][session], sessions["blocked"][session]
    acct = pieces["acct"].to_numpy()[sessions["piece"][session]]
    stalled = company.acc["stalled"].to_numpy()[acct]
    other = events["code"] > _CORE
    chance = np.where(blocked, 0.0, _OUTCOME_SHARE * 2 * sigmoid(0.8 * h) * np.where(stalled, 0.5, 1.0))
    outcome = other & (rng.random(len(session)) < chance)
    won = rng.random(len(session)) < sigmoid(0.4 + 1.2 * h - 1.0 * stalled)
    amount = _DEAL_VALUE[company.acc["segment"].to_numpy()[acct]] * rng.lognormal(0.0, 0.8, len(session))
    code = np.where(outcome, np.where(won, _WON, _LOST), events["code"]).astype(np.int8)
    duration = np.where(outcome, np.round(_EVENT_SECONDS[code] * rng.lognormal(0.0, 0.6, len(session)), 1),
                        events["duration"])
    counted = {"count": np.where(outcome, 1, events["count"])} if "count" in events else {}
    return events | {"code": code, "duration": duration, "value": np.where(outcome, np.round(amount, 2), np.nan),
                     **counted}


# --- onboarding milestones ---------------------------------------------------------------------------------


def draw_milestones(rng: np.random.Generator, company: Company) -> pd.DataFrame:
    """The `milestones` table: onboarding milestones reached at the account's own speed; slow accounts skip the
    later ones more. A stalled onboarding reaches the milestones after the workspace only once its first value
    came (and skips more of them), or never."""
    acc = company.acc
    n, m = len(acc), len(_MILESTONE_DAYS)
    days = _MILESTONE_DAYS[None, :] * acc["ttv"].to_numpy()[:, None] * rng.lognormal(0.0, 0.4, (n, m))
    days[:, 0] = rng.uniform(60, 1800, n) / DAY  # the workspace comes minutes after sign-up
    stalled, value_at = acc["stalled"].to_numpy(), acc["value_at"].to_numpy()
    wait = np.where(stalled & (value_at != OPEN), value_at - acc["created"].to_numpy(), 0) / DAY
    days[:, 1:] += wait[:, None]
    skip_logit = -3.2 + 0.8 * acc["z_ttv"].to_numpy()[:, None] + 0.4 * np.arange(m)[None, :] + 1.5 * stalled[:, None]
    skipped = (rng.random((n, m)) < sigmoid(skip_logit)) & (np.arange(m)[None, :] > 0)
    skipped |= (stalled & (value_at == OPEN))[:, None] & (np.arange(m)[None, :] > 0)
    acct, which = np.nonzero(~skipped)
    achieved = acc["created"].to_numpy()[acct] + np.round(days[acct, which] * DAY).astype(np.int64)
    keep = (achieved < company.clock.end) & company.alive(acct, achieved)
    return pd.DataFrame({
        "account_id": take(company.ids, acct[keep]),
        "milestone": take(company.profile.milestones, which[keep]),
        "achieved_at": company.clock.timestamps(achieved[keep]),
    })
