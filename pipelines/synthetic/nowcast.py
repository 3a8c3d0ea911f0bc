"""The nowcast oracle: P(churn within (as_of, as_of + horizon] | the true latent state at the as-of), estimated by
simulating each paying account forward from that state along `paths` fresh futures. Unlike the hindsight oracle
(`oracle.compute_oracle_probabilities`, which reads the hazards of the renewals that really came, with every later
shock and per-renewal draw in them), it knows only what exists at the as-of, so it is the fair ceiling for a model.

Known at the as-of t: the account's traits (segment, frailty, mean health, time to value, stall, first value if
already reached, billing period, the current lifecycle's paid start and so its renewal dates), its health drift
and shock dent at t (`health.simulate_health`), the daily health before t, the cause episodes under way with their
start and severity (not their end), the tickets and answers before t, a price shock of this lifecycle before t,
and the CS team's flags at or before t. Drawn fresh in each path, with the generator's own rules and constants:
health innovations and new shocks (as exact Gaussian draws of each 30-day window's sum, `_health_means`), the end
of each episode under way (its length given it lasted this long), new episodes (Poisson), the rest of an episode's
tickets and voice answers, the NPS campaigns' answers still to come (unhappy when inside an unhappy-voice episode),
first value of a stalled onboarding (given it has not come yet), a price shock at a later renewal (given none came
yet), each renewal's unseen draw (`hazard._NOISE_SD`), and the CS team's flags at later month starts: its rule
(`cs_team.flag_signals`) run on the path's state, with a fresh holdout draw. A path's churn probability is
1 − Π(1 − h) over its renewals in the horizon (the hazards as `hazard.cause_terms` and `churn_hazards` compute
them); the nowcast is its mean over the paths.

What it leaves out: the world past the history's end goes on (episodes, tickets and answers keep coming, while the
generator draws none there; such as-ofs' labels are unknown anyway), times of day of future tickets and answers
are continuous rather than working hours, and an unhappy-voice episode's pending first answer is told apart from
its extra ones by arrival counts only (exact when none arrived).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.synthetic.causes import (
    _STALL_DAYS,
    _STALL_NEVER,
    CHAMPION_LOSS,
    SEVERITY,
    STALL_SPREAD,
    SUPPORT_PAIN,
    UNHAPPY_VOICE,
    Episodes,
    EpisodeSpec,
    Shocks,
)
from pipelines.synthetic.clock import DAY, OPEN, Clock, add_months, time_keys
from pipelines.synthetic.config import NowcastConfig
from pipelines.synthetic.contracts import SHOCK_SHARE
from pipelines.synthetic.cs_team import FLAG_HEALTH_DAYS, PLAYBOOKS, Flags, flag_signals, month_starts
from pipelines.synthetic.draws import sigmoid
from pipelines.synthetic.frames import take
from pipelines.synthetic.hazard import (
    _HAZARD_SEGMENT,
    _HEALTH_WEIGHT,
    _NOISE_SD,
    _NOTICE_DAYS,
    HEALTH_DAYS,
    Lookups,
    Renewals,
    cause_terms,
)
from pipelines.synthetic.health import _HEALTH_PHI, _HEALTH_SD, _SHOCK_PHI, _SHOCK_RATE, SHOCK_SIZE, onboarding_dip
from pipelines.synthetic.profiles import Profile
from pipelines.synthetic.support import (
    _EPISODE_TICKETS,
    CAMPAIGN_DAYS,
    FIRST_CAMPAIGN_DAYS,
    NPS_DELAY_DAYS,
    NPS_USERS_POWER,
    VOICE_DELAY_DAYS,
    VOICE_EXTRA_NPS,
)

_KNOWN_DAYS = 240  # the tickets and answers before the as-of any window of a hazard or flag can reach


@dataclass(frozen=True)
class LatentState:
    """Everything the simulation knows about its company, handed over by `generate_warehouse`; the nowcast reads
    only what exists at each as-of from it."""

    acc: pd.DataFrame
    clock: Clock
    cum: np.ndarray  # running sums of daily health
    health_states: dict[int, tuple[np.ndarray, np.ndarray]]  # day -> (drift, dent) at its start
    champions: Episodes
    pain: Episodes
    unhappy: Episodes
    hazard_look: Lookups  # the live episode tickets and NPS answers the hazards read
    flag_look: Lookups  # the same as drawn, which the CS team reads
    voice_keys: np.ndarray  # sorted (account, time) keys of the unhappy-voice episodes' own NPS answers
    nps_phase: np.ndarray  # each account's first NPS campaign day
    flags: Flags
    spans: pd.DataFrame  # alive spans (acct, lo, hi, life)
    paid_start: np.ndarray  # each account's first paid start
    shocks: Shocks
    rates: dict[str, float]  # the causes' rates, times the profile's cause_scale
    holdout_share: float
    profile: Profile  # the company's knobs the hazard and the campaigns read


def simulate_nowcast(rng: np.random.Generator, state: LatentState, config: NowcastConfig) -> pd.DataFrame:
    """The nowcast at every month start of the history after its first day, for the accounts paying then.

    Returns:
        acct, as_of (seconds), probability: one row per (paying account, month start).
    """
    parts = [_nowcast_at(rng, state, int(t), config) for t in month_starts(state.clock)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {"acct": np.array([], dtype=np.int64), "as_of": np.array([], dtype=np.int64), "probability": []})


def nowcast_frame(nowcast: pd.DataFrame, ids: pa.Array, clock: Clock, horizon_days: int) -> pd.DataFrame:
    """The `sim_nowcast` table: account_id, as_of, horizon_days, probability."""
    return pd.DataFrame({
        "account_id": take(ids, nowcast["acct"].to_numpy()),
        "as_of": clock.timestamps(nowcast["as_of"].to_numpy()),
        "horizon_days": np.full(len(nowcast), horizon_days, dtype=np.int64),
        "probability": nowcast["probability"].to_numpy(dtype=np.float64),
    })


# --- one as-of ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rows:
    """The accounts paying at the as-of t, with their current lifecycle, and the paths: path-row i = row * paths + p."""

    t: int
    acct: np.ndarray
    life_start: np.ndarray
    bp: np.ndarray
    paths: int

    @property
    def n(self) -> int:
        return len(self.acct) * self.paths

    def per_path(self, values: np.ndarray) -> np.ndarray:
        return np.repeat(values, self.paths, axis=0)


def _nowcast_at(rng: np.random.Generator, state: LatentState, t: int, config: NowcastConfig) -> pd.DataFrame:
    rows = _paying_rows(state, t, config.paths)
    if not len(rows.acct):
        return pd.DataFrame({"acct": rows.acct, "as_of": rows.acct, "probability": np.zeros(0)})
    end = t + config.horizon_days * DAY
    renewals = _renewals(state.clock, rows, end)  # (rows, k), OPEN where none
    flag_times = month_starts(state.clock)  # the CS team's later looks before the horizon's last renewal
    flag_times = flag_times[(flag_times > t) & (flag_times < end)]
    decisions = np.where(renewals == OPEN, OPEN, renewals - _NOTICE_DAYS * DAY)
    queries = np.concatenate([decisions, np.broadcast_to(flag_times, (len(rows.acct), len(flag_times)))], axis=1)
    windows = np.repeat([HEALTH_DAYS, FLAG_HEALTH_DAYS], [decisions.shape[1], len(flag_times)])
    health = _health_means(rng, state, rows, queries, windows)  # (rows * paths, queries)
    future = _future(rng, state, rows, end, queries)
    factors = _future_flag_factors(rng, state, rows, future, flag_times, health[:, renewals.shape[1]:], renewals)
    survival = np.ones(rows.n)
    for k in range(renewals.shape[1]):
        due = rows.per_path(renewals[:, k])
        i = np.flatnonzero(due != OPEN)
        hazard = _hazards(rng, state, rows, future, i, due[i], health[i, k]) * factors[i, k]
        survival[i] *= 1.0 - np.clip(hazard, 0.0, 1.0)
    probability = 1.0 - survival.reshape(len(rows.acct), rows.paths).mean(axis=1)
    return pd.DataFrame({"acct": rows.acct, "as_of": np.full(len(rows.acct), t), "probability": probability})


def _paying_rows(state: LatentState, t: int, paths: int) -> _Rows:
    spans = state.spans
    life = spans["life"].to_numpy()
    acct, lo = spans["acct"].to_numpy(), spans["lo"].to_numpy()
    start = np.where(life == 0, state.paid_start[acct], lo)
    paying = (life >= 0) & (start <= t) & (t < spans["hi"].to_numpy())
    acct = acct[paying]
    return _Rows(t=t, acct=acct, life_start=start[paying], bp=state.acc["bp"].to_numpy()[acct], paths=paths)


def _renewals(clock: Clock, rows: _Rows, end: int) -> np.ndarray:
    """The current lifecycle's billing anniversaries in (t, end], shape (rows, k), `OPEN`-padded."""
    k_all = _anniversaries(clock, rows, end)
    inside = (k_all > rows.t) & (k_all <= end)
    width = max(int(inside.sum(axis=1).max()), 1)
    first = inside.argmax(axis=1)
    pick = np.minimum(first[:, None] + np.arange(width)[None, :], k_all.shape[1] - 1)
    out = np.take_along_axis(k_all, pick, axis=1)
    return np.where(np.take_along_axis(inside, pick, axis=1), out, OPEN)


def _anniversaries(clock: Clock, rows: _Rows, until: int) -> np.ndarray:
    """Billing anniversaries k = 1, 2, ... of each row's lifecycle up to past `until`, shape (rows, k)."""
    k_max = int(((max(until, clock.end) - rows.life_start) // (28 * DAY) // rows.bp).max()) + 1
    months = np.arange(1, k_max + 1)[None, :] * rows.bp[:, None]
    return add_months(clock, np.repeat(rows.life_start, k_max), months.ravel()).reshape(len(rows.acct), k_max)


# --- health ------------------------------------------------------------------------------------------------


def _health_means(rng: np.random.Generator, state: LatentState, rows: _Rows, queries: np.ndarray,
                  windows: np.ndarray) -> np.ndarray:
    """Mean health over the `windows` days before the day of each query time (`health.mean_health_before`), per
    path, shape (rows * paths, queries): the days before the as-of as they were, the later ones drawn from the AR(1)
    drift and shock dent at the as-of (NaN for `OPEN` queries)."""
    acc, m, acct = state.acc, rows.t // DAY, rows.acct
    valid = queries != OPEN
    upper = np.maximum(np.where(valid, queries, rows.t) // DAY, 1)
    lower = np.maximum(upper - windows, 0)
    known_hi = np.minimum(upper, m)
    cum = state.cum
    known = np.where(lower < known_hi, cum[known_hi, acct[:, None]] - cum[np.minimum(lower, known_hi), acct[:, None]],
                     0.0)
    a, b = np.maximum(lower - m, 0), np.maximum(upper - m, 0)  # future days [a, b) counted from the as-of's day
    drift0, dent0 = state.health_states[m]
    fixed = (known + _deterministic(acc, acct, m, a, b) + drift0[acct, None] * _geometric(_HEALTH_PHI, a, b)
             + dent0[acct, None] * _geometric(_SHOCK_PHI, a, b))
    moving = _innovations(rng, a, b, rows.paths) + _new_shocks(rng, a, b, rows.paths)
    means = (rows.per_path(fixed) + moving) / rows.per_path(upper - lower)
    return np.where(rows.per_path(valid), means, np.nan)


def _geometric(phi: float, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Σ phi^(j+1) over days j in [a, b): what a state at the as-of adds to those days' sum."""
    return phi ** (a + 1) * (1 - phi ** (b - a)) / (1 - phi)


def _deterministic(acc: pd.DataFrame, acct: np.ndarray, m: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Σ (mean health + onboarding dip) over days [a, b) after the as-of's day."""
    days = a[..., None] + np.arange(max(int((b - a).max(initial=0)), 1))
    inside = days < b[..., None]
    age = m + days - acc["created"].to_numpy()[acct][:, None, None] / DAY
    level = acc["mu"].to_numpy()[acct][:, None, None] + onboarding_dip(acc["z_ttv"].to_numpy()[acct][:, None, None],
                                                                       age)
    return np.where(inside, level, 0.0).sum(axis=-1)


def _weights(phi: float, a: np.ndarray, b: np.ndarray, day: np.ndarray) -> np.ndarray:
    """How much a unit added to the AR state on `day` adds to the sum over days [a, b): Σ phi^(j - day), j ≥ day."""
    first = np.maximum(day, a)
    return np.where(day < b, phi ** (first - day) * (1 - phi ** np.maximum(b - first, 0)) / (1 - phi), 0.0)


def _innovations(rng: np.random.Generator, a: np.ndarray, b: np.ndarray, paths: int) -> np.ndarray:
    """The health innovations' part of each window's sum, drawn exactly: jointly Gaussian across one row's windows
    (they share innovations), shape (rows * paths, queries)."""
    days = int(b.max(initial=0))
    if days == 0:
        return np.zeros((len(a) * paths, a.shape[1]))
    weights = _weights(_HEALTH_PHI, a[..., None], b[..., None], np.arange(days))  # (rows, queries, days)
    variance = _HEALTH_SD**2 * (1 - _HEALTH_PHI**2)
    cov = variance * np.einsum("rkd,rld->rkl", weights, weights) + 1e-12 * np.eye(a.shape[1])
    lower = np.linalg.cholesky(cov)
    z = rng.standard_normal((len(a), paths, a.shape[1]))
    return np.einsum("rpk,rlk->rpl", z, lower).reshape(len(a) * paths, a.shape[1])


def _new_shocks(rng: np.random.Generator, a: np.ndarray, b: np.ndarray, paths: int) -> np.ndarray:
    """The new shocks' part of each window's sum: one per day with `_SHOCK_RATE`, decaying by `_SHOCK_PHI`."""
    days = b.max(axis=1)
    count = rng.binomial(np.repeat(days, paths), _SHOCK_RATE)
    i = np.repeat(np.arange(len(count)), count)
    row = i // paths
    day = np.floor(rng.random(len(i)) * days[row]).astype(np.int64)
    size = -rng.uniform(*SHOCK_SIZE, len(i))
    out = np.zeros((len(count), a.shape[1]))
    np.add.at(out, i, size[:, None] * _weights(_SHOCK_PHI, a[row], b[row], day[:, None]))
    return out


# --- the other futures -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Future:
    """One path-row's world: the accounts' traits per path-row (value_at drawn), the champion losses, the episode
    tickets and answers (known before the as-of, drawn after it) as the hazards and as the CS team read them, and
    the lifecycle's price shock."""

    acc: pd.DataFrame
    champions: Episodes
    hazard_look: Lookups
    flag_look: Lookups
    shock_at: np.ndarray


def _future(rng: np.random.Generator, state: LatentState, rows: _Rows, end: int, queries: np.ndarray) -> _Future:
    acc = state.acc.iloc[rows.per_path(rows.acct)][["created", "stalled", "segment"]].reset_index(drop=True)
    acc["value_at"] = _first_value(rng, state, rows, queries)
    champions = _episodes(rng, state.champions, CHAMPION_LOSS, state.rates["champion_loss"], rows, end)
    pain = _episodes(rng, state.pain, SUPPORT_PAIN, state.rates["support_pain"], rows, end)
    unhappy = _episodes(rng, state.unhappy, UNHAPPY_VOICE, state.rates["unhappy_voice"], rows, end)
    tickets = _pain_tickets(rng, state, rows, pain, end)
    answers, voiced = _nps_answers(rng, state, rows, unhappy, end)
    looks = [_lookups(look, rows, tickets, answers, voiced) for look in (state.hazard_look, state.flag_look)]
    return _Future(acc=acc, champions=champions, hazard_look=looks[0], flag_look=looks[1],
                   shock_at=_shock_times(rng, state, rows))


def _first_value(rng: np.random.Generator, state: LatentState, rows: _Rows, queries: np.ndarray) -> np.ndarray:
    """First value per path-row: as it was when it came by the as-of, else drawn given it had not: never with the
    stalled accounts' share of those still waiting, else the log-normal delay past the time waited. Only how it
    compares with the query times matters, so it is set to the first query time it came by."""
    acct, t = rows.acct, rows.t
    value_at = state.acc["value_at"].to_numpy()[acct]
    waiting = value_at > t
    created = state.acc["created"].to_numpy()[acct]
    cdf = _delay_cdf(np.where(queries == OPEN, t, queries) - created[:, None])
    cdf_now = _delay_cdf(np.full(len(acct), t) - created)
    waiting_mass = _STALL_NEVER + (1 - _STALL_NEVER) * (1 - cdf_now)  # P(not come by t)
    came_by = (1 - _STALL_NEVER) * (cdf - cdf_now[:, None]) / waiting_mass[:, None]
    u = rng.random(rows.n)
    drawn = np.where(rows.per_path(came_by) > u[:, None], rows.per_path(queries), OPEN).min(axis=1, initial=OPEN)
    return np.where(rows.per_path(waiting), drawn, rows.per_path(value_at))


def _delay_cdf(seconds: np.ndarray) -> np.ndarray:
    z = (np.log(np.maximum(seconds, 1) / DAY) - np.log(_STALL_DAYS)) / STALL_SPREAD
    return 0.5 * _erfc(-z / math.sqrt(2)).astype(np.float64)


_erfc = np.frompyfunc(math.erfc, 1, 1)


def _episodes(rng: np.random.Generator, known: Episodes, spec: EpisodeSpec, rate: float, rows: _Rows,
              end: int) -> Episodes:
    """One cause's episodes per path-row: those under way at the as-of (start and severity known, length drawn
    given it lasted this long) and new ones starting in (t, end] (a Poisson process at the cause's rate)."""
    t = rows.t
    row, episode = _recent(known, rows.acct, t)
    i = (row[:, None] * rows.paths + np.arange(rows.paths)).ravel()
    start, severity = np.repeat(known.start[episode], rows.paths), np.repeat(known.severity[episode], rows.paths)
    ended = np.repeat(known.end[episode] <= t, rows.paths)
    lasted = (t - start) / DAY
    drawn = rng.uniform(np.minimum(np.maximum(spec.days[0], lasted), spec.days[1]), spec.days[1])
    length = np.where(ended, (np.repeat(known.end[episode], rows.paths) - start) / DAY, drawn)
    count = rng.poisson(rate * spec.per_year * (end - t) / (365 * DAY), rows.n)
    j = np.repeat(np.arange(rows.n), count)
    new_start = t + 1 + np.floor(rng.random(len(j)) * (end - t)).astype(np.int64)
    new_length = rng.uniform(*spec.days, len(j))
    acct = np.concatenate([i, j])
    start = np.concatenate([start, new_start])
    stop = start + np.round(np.concatenate([length, new_length]) * DAY).astype(np.int64)
    severity = np.concatenate([severity, rng.uniform(*SEVERITY, len(j))])
    order = np.lexsort((start, acct))
    return Episodes(acct=acct[order], start=start[order], end=stop[order], severity=severity[order])


def _recent(known: Episodes, acct: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (row, episode) of each row account's episodes started by t and not over before the earliest decision
    a renewal in the horizon can have (`_NOTICE_DAYS` before t): under way at t, or over with a known end."""
    first = np.searchsorted(known.acct, acct, "left")
    count = np.searchsorted(known.acct, acct, "right") - first
    row = np.repeat(np.arange(len(acct)), count)
    episode = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count) + np.repeat(first, count)
    keep = (known.start[episode] <= t) & (known.end[episode] > t - _NOTICE_DAYS * DAY)
    return row[keep], episode[keep]


def _pain_tickets(rng: np.random.Generator, state: LatentState, rows: _Rows, pain: Episodes, end: int):
    """Support-pain tickets after the as-of, per path-row (i, time): an onset ticket of each new episode, then the
    segment's weekly rate through each episode (a Poisson process, so the past says nothing of the rest)."""
    t = rows.t
    new = pain.start > t
    lo = np.maximum(pain.start, t)
    hi = np.minimum(pain.end, end)
    segment = state.acc["segment"].to_numpy()[rows.acct][pain.acct // rows.paths]
    rate = _EPISODE_TICKETS[segment] * pain.severity / (7 * DAY)
    count = rng.poisson(rate * np.maximum(hi - lo, 0))
    episode = np.repeat(np.arange(len(count)), count)
    created = lo[episode] + np.floor(rng.random(len(episode)) * (hi - lo)[episode]).astype(np.int64)
    i = np.concatenate([pain.acct[new], pain.acct[episode]])
    return i, np.concatenate([pain.start[new], created])


def _nps_answers(rng: np.random.Generator, state: LatentState, rows: _Rows, unhappy: Episodes, end: int):
    """NPS answers after the as-of, per path-row: the campaigns' answers still to come (unhappy when inside an
    unhappy-voice episode) and the unhappy-voice episodes' own detractor answers. Returns (i, time) of all, and a
    flag per answer: unhappy."""
    t, acc, paths = rows.t, state.acc, rows.paths
    phase = state.nps_phase[rows.acct]
    first = np.maximum(acc["created"].to_numpy()[rows.acct] / DAY + FIRST_CAMPAIGN_DAYS, 0)
    rate = state.profile.nps_answers * acc["n_users"].to_numpy()[rows.acct] ** NPS_USERS_POWER
    j0 = np.floor((t / DAY - 10 * NPS_DELAY_DAYS - phase) / CAMPAIGN_DAYS)
    parts = []
    for step in range(int((end - t) / DAY // CAMPAIGN_DAYS) + 3):
        day = phase + CAMPAIGN_DAYS * (j0 + step)
        held = (day >= first) & (day < state.clock.days) & (day * DAY < end)
        waited = np.maximum(t / DAY - day, 0)  # an answer still to come after waiting this long: memoryless
        count = rng.poisson(rows.per_path(np.where(held, rate * np.exp(-waited / NPS_DELAY_DAYS), 0.0)))
        i = np.repeat(np.arange(rows.n), count)
        after = np.maximum(day, t / DAY)[i // paths]
        parts.append((i, np.round((after + rng.exponential(NPS_DELAY_DAYS, len(i))) * DAY).astype(np.int64)))
    i, when = (np.concatenate([p[k] for p in parts]) for k in (0, 1))
    keep = when < end
    i, when = i[keep], when[keep]
    inside = unhappy.strongest(i, when) > 0
    vi, vwhen = _voice_answers(rng, state, rows, unhappy, end)
    return (np.concatenate([i, vi]), np.concatenate([when, vwhen])), np.concatenate([inside, np.ones(len(vi), bool)])


def _voice_answers(rng: np.random.Generator, state: LatentState, rows: _Rows, unhappy: Episodes, end: int):
    """An unhappy-voice episode's own detractor answers after the as-of: for a new one all of them (1 + Poisson),
    for one under way those still to come (the first one if none arrived yet, else with its posterior chance, and
    the extra ones still on their way)."""
    t = rows.t
    new = unhappy.start > t
    waited = np.maximum(t - unhappy.start, 0) / DAY
    pending = np.exp(-waited / VOICE_DELAY_DAYS)  # the chance an answer has not arrived yet
    acct = rows.acct[unhappy.acct // rows.paths]
    arrived = (np.searchsorted(state.voice_keys, time_keys(acct, np.full(len(acct), t)))
               - np.searchsorted(state.voice_keys, time_keys(acct, unhappy.start)))
    odds = pending * VOICE_EXTRA_NPS * (1 - pending) / np.maximum(arrived, 1)  # first pending : first arrived
    first_pending = np.where(arrived == 0, 1.0, odds / np.maximum(odds + 1 - pending, 1e-300))
    count = np.where(new, 1 + rng.poisson(VOICE_EXTRA_NPS, len(new)),
                     (rng.random(len(new)) < first_pending) + rng.poisson(VOICE_EXTRA_NPS * pending))
    episode = np.repeat(np.arange(len(count)), count)
    since = np.maximum(unhappy.start, t)[episode]
    when = since + np.round(rng.exponential(VOICE_DELAY_DAYS, len(episode)) * DAY).astype(np.int64)
    keep = when < end
    return unhappy.acct[episode][keep], when[keep]


def _lookups(look: Lookups, rows: _Rows, tickets, answers, unhappy: np.ndarray) -> Lookups:
    """Per path-row lookups: the account's keys of the `_KNOWN_DAYS` before the as-of, then the path's own."""
    def known(keys: np.ndarray):
        lo = np.searchsorted(keys, time_keys(rows.acct, np.full(len(rows.acct), rows.t - _KNOWN_DAYS * DAY)))
        hi = np.searchsorted(keys, time_keys(rows.acct, np.full(len(rows.acct), rows.t)))
        count = hi - lo
        index = np.repeat(lo - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
        seconds = (keys[index] & 0xFFFFFFFF) - (1 << 31)
        row = np.repeat(np.arange(len(rows.acct)), count)
        i = (row[:, None] * rows.paths + np.arange(rows.paths)).ravel()
        return time_keys(i, np.repeat(seconds, rows.paths))

    return Lookups(support=np.sort(np.concatenate([known(look.support), time_keys(*tickets)])),
                   nps=np.sort(np.concatenate([known(look.nps), time_keys(*answers)])),
                   unhappy=np.sort(np.concatenate([known(look.unhappy),
                                                   time_keys(answers[0][unhappy], answers[1][unhappy])])))


def _shock_times(rng: np.random.Generator, state: LatentState, rows: _Rows) -> np.ndarray:
    """The lifecycle's price shock per path-row: the one before the as-of, else one at a later renewal inside the
    history, drawn as the generator picks it (a `SHOCK_SHARE` chance per lifecycle, at one of its renewals at
    random) given none of the past renewals had it."""
    shocks, t = state.shocks, rows.t
    order = np.lexsort((shocks.at, shocks.acct))
    at = shocks.at[order]
    latest = np.append(at, OPEN)[_latest(shocks.acct[order], at, rows.acct, t)]  # OPEN when none
    had = (latest != OPEN) & (latest >= rows.life_start)
    known_at = np.where(had, latest, OPEN)
    grid = _anniversaries(state.clock, rows, state.clock.end)
    drawable = (grid >= 0) & (grid < state.clock.end)
    total, past = drawable.sum(axis=1), (drawable & (grid <= t)).sum(axis=1)
    share = min(1.0, SHOCK_SHARE * state.rates["price_shock"])
    later = total - past
    total = np.maximum(total, 1)
    chance = share * later / total / np.maximum(1 - share * past / total, 1e-12)  # 0 without later renewals
    u = rng.random(rows.n)
    hit = u < rows.per_path(chance)
    first_drawable = drawable.argmax(axis=1)
    share_of = np.where(hit, u / np.where(hit, rows.per_path(chance), 1.0), 0.0)  # uniform in [0, 1) on a hit
    pick = rows.per_path(first_drawable + past) + np.floor(share_of * rows.per_path(later)).astype(np.int64)
    pick = np.clip(pick, 0, grid.shape[1] - 1)
    drawn = np.where(hit, grid[np.repeat(np.arange(len(rows.acct)), rows.paths), pick], OPEN)
    return np.where(rows.per_path(had), rows.per_path(known_at), drawn)


# --- the CS team and the hazards ---------------------------------------------------------------------------


def _future_flag_factors(rng: np.random.Generator, state: LatentState, rows: _Rows, future: _Future,
                         flag_times: np.ndarray, health: np.ndarray, renewals: np.ndarray) -> np.ndarray:
    """The playbook factor on each renewal per path-row, shape (rows * paths, renewals): from the account's latest
    treated flag before it (known at the as-of, or one the CS team's rule raises on the path at a later month
    start, held back with `holdout_share`), within its effect window and in this lifecycle."""
    flags, t, n = state.flags, rows.t, len(rows.acct)
    seen = flags.at <= t
    index = np.searchsorted(rows.acct, flags.acct[seen])  # rows.acct is sorted (spans are)
    match = (index < n) & (rows.acct[np.minimum(index, n - 1)] == flags.acct[seen])
    used = np.zeros((n, len(PLAYBOOKS)), dtype=bool)
    used[index[match], flags.playbook[seen][match]] = True
    last = _latest(flags.acct, flags.at, rows.acct, t)   # -1 when none: the appended entry
    last_at = np.append(flags.at, np.iinfo(np.int64).min)[last]
    treated = np.flatnonzero(~flags.holdout)
    latest = _latest(flags.acct[treated], flags.at[treated], rows.acct, t)
    treated_at = np.append(flags.at[treated], OPEN)[latest]
    treated_factor = np.append(flags.factor[flags.playbook[treated]], 1.0)[latest]
    used, free_from = rows.per_path(used), rows.per_path(np.where(last_at > np.iinfo(np.int64).min,
                                                                  last_at + flags.effect_days * DAY, last_at))
    history = [(rows.per_path(treated_at), rows.per_path(treated_factor))]
    i = np.arange(rows.n)
    for j, when in enumerate(flag_times):
        now = np.full(rows.n, when)
        tenure_ok = now >= future.acc["created"].to_numpy()
        signals = flag_signals(future.acc, future.flag_look, future.champions, health[:, j], i, now)
        signals &= ~used & tenure_ok[:, None] & (free_from <= when)[:, None]
        flagged = signals.any(axis=1)
        playbook = signals.argmax(axis=1)
        used[flagged, playbook[flagged]] = True
        free_from = np.where(flagged, when + flags.effect_days * DAY, free_from)
        held = rng.random(rows.n) < state.holdout_share
        history.append((np.where(flagged & ~held, when, OPEN), flags.factor[playbook]))
    factors = np.ones((rows.n, renewals.shape[1]))
    life_start = rows.per_path(rows.life_start)
    for k in range(renewals.shape[1]):
        due = rows.per_path(renewals[:, k])
        for at, factor in history:  # in time order: a later treated flag before the renewal wins
            before = (at != OPEN) & (at < due)
            inside = before & (due <= at + flags.effect_days * DAY) & (life_start <= at)
            factors[:, k] = np.where(before, np.where(inside, factor, 1.0), factors[:, k])
    return factors


def _latest(acct: np.ndarray, at: np.ndarray, wanted: np.ndarray, t: int) -> np.ndarray:
    """Per wanted account, the position of its latest entry at or before t in (acct, at) sorted by both; -1 if
    none."""
    keys = time_keys(acct, at)
    pos = np.searchsorted(keys, time_keys(wanted, np.full(len(wanted), t)), side="right") - 1
    same = (pos >= 0) & (acct[np.maximum(pos, 0)] == wanted) if len(keys) else np.zeros(len(wanted), dtype=bool)
    return np.where(same, pos, -1)


def _hazards(rng: np.random.Generator, state: LatentState, rows: _Rows, future: _Future, i: np.ndarray,
             due: np.ndarray, health: np.ndarray) -> np.ndarray:
    """The churn probability of path-rows `i` at their renewals `due` (before any playbook), as
    `hazard.churn_hazards` computes it, with the path's health, causes and a fresh unseen draw."""
    bp = rows.bp[i // rows.paths]
    terms = cause_terms(future.acc, future.hazard_look, future.champions,
                        Renewals(acct=i, at=due, bp=bp, shock_at=future.shock_at[i]))
    base = state.profile.hazard_base
    logit = (np.where(bp == 12, base[12], base[1])
             + _HAZARD_SEGMENT[future.acc["segment"].to_numpy()[i]]
             - _HEALTH_WEIGHT * health
             + state.acc["frailty"].to_numpy()[rows.acct[i // rows.paths]]
             + rng.normal(0.0, _NOISE_SD, len(i))
             + terms.sum(axis=1))
    return sigmoid(logit)
