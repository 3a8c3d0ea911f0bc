"""Seeded, vectorised synthetic B2B SaaS warehouse: the contract's source tables plus the true churn hazards.

Every account carries a latent daily health (an AR(1) drift with occasional negative shocks, plus an
onboarding dip that is deeper when time to value is slow). Health drives activity, tickets, survey scores,
trial conversion, plan changes and the churn hazard. Churn is drawn only at renewals (monthly or annual
anniversaries of the paid start), and `sim_truth` keeps the exact hazard of every renewal drawn, so the
oracle's score is known.

Internally a timestamp is an int64 count of seconds since the history start (`_OPEN` means "no end"); the
returned frames get naive datetime64[us] columns (the pandas 3 default, DuckDB TIMESTAMP).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_DAY = 86_400
_OPEN = np.iinfo(np.int64).max  # no end (NaT in the frames)

_SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
_SEGMENT_SHARE = (0.62, 0.28, 0.10)
_INDUSTRIES = ("Software", "Fintech", "Healthcare", "Retail", "Manufacturing", "Education", "Media",
               "Logistics")
_REGIONS = ("North America", "EMEA", "APAC", "LATAM")
_REGION_SHARE = (0.45, 0.33, 0.15, 0.07)
_CSM_OWNERS = ("Alice Martin", "Ben Okafor", "Chloe Dubois", "Diego Alvarez", "Emma Schultz", "Farah Khan")
_NAME_HEADS = ("Blue", "Bright", "North", "Silver", "Quantum", "Apex", "Red", "Green", "Summit", "Nova",
               "Iron", "Clear", "Swift", "Pine", "Golden", "Atlas")
_NAME_TAILS = ("harbor", "peak", "river", "forge", "labs", "works", "stone", "field", "bridge", "wave",
               "grid", "path", "leaf", "point", "rock", "sky")
_NAME_SUFFIXES = ("Inc", "LLC", "GmbH", "Ltd", "Group", "Co")

_PLANS = ("Starter", "Growth", "Scale", "Enterprise", "Add-on")
_ADDON = 4  # index of "Add-on" in _PLANS
_SEAT_PRICE = np.array([15.0, 30.0, 45.0, 65.0])  # list price per seat and month, by tier
_TIER_SHARE = np.array([[0.65, 0.35, 0.0, 0.0], [0.0, 0.6, 0.4, 0.0], [0.0, 0.0, 0.45, 0.55]])
_SEATS_MEDIAN = np.array([6.0, 22.0, 60.0])
_SEATS_RANGE = np.array([[1, 30], [8, 150], [30, 300]])
_ANNUAL_SHARE = np.array([0.2, 0.5, 0.8])
_TRIAL_SHARE = np.array([0.5, 0.3, 0.1])  # about 40% overall
_TRIAL_DAYS = 14
_PRE_EXISTING_SHARE = 0.25

_HEALTH_PHI, _HEALTH_SD = 0.985, 0.5  # daily AR(1) coefficient and stationary spread
_SHOCK_PHI, _SHOCK_RATE = 0.97, 1 / 365  # shock decay per day, shocks per account-day
_HEALTH_SHIFT = np.array([-0.1, 0.05, 0.2])

_HAZARD_BASE = {1: -3.7, 12: -1.7}  # logit at a monthly / annual renewal, all else average
_HAZARD_SEGMENT = np.array([0.15, 0.0, -0.3])
_HIKE_WINDOW_DAYS = {1: 100, 12: 400}  # a price increase weighs on the renewals this soon after it
_CHANGE_RATE = {1: 0.03, 12: 0.3}  # plan change probability per renewal
_REACTIVATION_SHARE = 0.05

_TICKET_RATE = np.array([0.6, 1.5, 3.5])  # tickets per account and month at health 0, by segment
_PRIORITIES = ("low", "normal", "high", "urgent")
_MILESTONES = ("workspace_created", "first_integration", "first_report", "team_invited", "first_automation")
_MILESTONE_DAYS = np.array([0.01, 3.0, 5.0, 8.0, 20.0])  # median days after sign-up at average speed

_ACTIVE_LOGIT = -1.45  # a user's daily activity logit at health 0 (tunes the event volume)
_CORE_EVENTS = ("create_report", "run_automation", "configure_integration", "share_report", "create_project")
_CORE_WEIGHTS = (0.3, 0.2, 0.1, 0.2, 0.2)
_OTHER_EVENTS = ("view_dashboard", "search", "comment", "upload_file", "export_data", "api_call",
                 "invite_user", "update_settings", "view_billing")
_OTHER_WEIGHTS = (0.32, 0.16, 0.1, 0.08, 0.07, 0.14, 0.03, 0.05, 0.05)
_EVENT_NAMES = ("login", *_CORE_EVENTS, *_OTHER_EVENTS)
_STREAMS = ("accounts", "health", "tickets", "nps", "contracts", "addons", "users", "surveys", "events",
            "milestones")
_EVENT_SECONDS = np.array([5, 240, 90, 300, 40, 180, 45, 20, 60, 30, 40, 2, 30, 60, 30], dtype=float)


@dataclass(frozen=True)
class SimulationConfig:
    """Size, length, seed and start of the simulated history."""

    accounts: int = 2000  # accounts signing up over the period
    months: int = 24  # length of the simulated history in months
    seed: int = 7
    start: date = date(2024, 1, 1)  # first day of the history


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
    clock = _make_clock(config)
    acc = _draw_accounts(streams["accounts"], config.accounts, clock)
    health = _simulate_health(streams["health"], acc, clock)
    cum = np.vstack([np.zeros((1, len(acc))), np.cumsum(health, axis=0, dtype=np.float64)])
    candidates = _Candidates(_draw_tickets(streams["tickets"], acc, health, clock),
                             _draw_nps(streams["nps"], acc, health, clock))
    subs, truth, spans, paid_start = _simulate_contracts(streams["contracts"], acc, cum, candidates, clock)
    subs = pd.concat([subs, _addon_rows(streams["addons"], acc, spans, paid_start, clock)], ignore_index=True)
    users = _draw_users(streams["users"], acc, spans, clock)
    tickets, csat = _finish_tickets(streams["tickets"], candidates.tickets, spans, clock)
    ces = _draw_ces(streams["surveys"], acc, health, clock)
    answers = [candidates.nps.assign(kind=0), csat, ces.assign(kind=2)]
    ids = _format_ids("A", len(acc), 5)
    return {
        "accounts": _accounts_frame(acc, ids, clock),
        "subscriptions": _subscriptions_frame(subs, ids, clock),
        "events": _draw_events(streams["events"], acc, users, spans, health, clock, ids),
        "users": _users_frame(users, ids, clock),
        "tickets": _tickets_frame(tickets, ids, clock),
        "surveys": _surveys_frame(streams["surveys"], answers, users, spans, ids, clock),
        "milestones": _draw_milestones(streams["milestones"], acc, spans, clock, ids),
        "sim_truth": _truth_frame(truth, ids, clock),
    }


def compute_oracle_probabilities(
    truth: pd.DataFrame, snapshots: pd.DataFrame, horizon_days: int
) -> np.ndarray:
    """Oracle P(churn within (as_of, as_of + horizon]) for each snapshots row (columns account_id, as_of).

    Args:
        truth: `sim_truth` (account_id, renewal_at, hazard[, lifecycle_start]).
        snapshots: rows of (account_id, as_of); each account is assumed alive at its as_of.
        horizon_days: label horizon in days.

    Returns:
        One probability per snapshots row, in row order: 1 - prod(1 - hazard) over the account's renewals
        with as_of < renewal_at <= as_of + horizon (0 when there are none).
    """
    snap = pd.DataFrame({
        "account_id": snapshots["account_id"].to_numpy(),
        "as_of": pd.to_datetime(snapshots["as_of"]).to_numpy(),
        "row": np.arange(len(snapshots)),
    })
    columns = ["account_id", "renewal_at", "hazard"] + (["lifecycle_start"] if "lifecycle_start" in truth else [])
    pairs = snap.merge(truth[columns], on="account_id", how="inner")
    if "lifecycle_start" in pairs:
        # Only the lifecycle the account is in at the as-of: its latest one started by then.
        pairs = pairs[pairs["lifecycle_start"] <= pairs["as_of"]]
        current = pairs.groupby("row")["lifecycle_start"].transform("max")
        pairs = pairs[pairs["lifecycle_start"] == current]
    horizon = pd.Timedelta(days=horizon_days)
    pairs = pairs[(pairs["renewal_at"] > pairs["as_of"]) & (pairs["renewal_at"] <= pairs["as_of"] + horizon)]
    with np.errstate(divide="ignore"):
        log_survival = np.log1p(-pairs["hazard"].to_numpy(dtype=float).clip(0.0, 1.0))
    per_row = pd.Series(log_survival).groupby(pairs["row"].to_numpy()).sum()
    out = np.zeros(len(snap))
    out[per_row.index.to_numpy()] = 1.0 - np.exp(per_row.to_numpy())
    return out


# --- time --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Clock:
    origin: np.datetime64  # history start, second resolution
    end: int  # seconds from origin to the end of the history

    @property
    def days(self) -> int:
        return self.end // _DAY

    def timestamps(self, seconds: np.ndarray) -> np.ndarray:
        seconds = np.asarray(seconds, dtype=np.int64)
        is_open = seconds == _OPEN
        offset = np.where(is_open, 0, seconds).astype("timedelta64[s]")
        out = (self.origin + offset).astype("datetime64[us]")
        out[is_open] = np.datetime64("NaT")
        return out

    def weekday_factor(self, weekend: float) -> np.ndarray:
        first = (self.origin.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        return np.where((first + np.arange(self.days)) % 7 >= 5, weekend, 1.0)


def _make_clock(config: SimulationConfig) -> _Clock:
    origin = np.datetime64(config.start, "s")
    end_date = (pd.Timestamp(config.start) + pd.DateOffset(months=config.months)).date()
    return _Clock(origin=origin, end=int((np.datetime64(end_date, "s") - origin) // np.timedelta64(1, "s")))


def _working_seconds(rng: np.random.Generator, n: int, mean_hour: float = 12.5) -> np.ndarray:
    """Seconds after midnight, spread through working hours."""
    hours = np.clip(rng.normal(mean_hour, 2.6, n), 7.5, 19.5)
    return np.round(hours * 3600).astype(np.int64)


def _add_months(clock: _Clock, seconds: np.ndarray, months: np.ndarray) -> np.ndarray:
    """The same day of month and time `months` later (clamped to the month's end), in seconds since origin."""
    moment = clock.origin + np.asarray(seconds, dtype=np.int64).astype("timedelta64[s]")
    day_start = moment.astype("datetime64[D]")
    month = moment.astype("datetime64[M]")
    day_of_month = (day_start - month.astype("datetime64[D]")).astype(np.int64)
    target = month + np.asarray(months, dtype=np.int64)
    month_len = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    new_day = target.astype("datetime64[D]") + np.minimum(day_of_month, month_len - 1)
    shifted = new_day.astype("datetime64[s]") + (moment - day_start.astype("datetime64[s]"))
    return ((shifted - clock.origin) // np.timedelta64(1, "s")).astype(np.int64)


def _keys(acct: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Sortable (account, time) keys; times fit in 32 bits around the origin (about +-68 years)."""
    return (np.asarray(acct, dtype=np.int64) << 32) + (np.asarray(seconds, dtype=np.int64) + (1 << 31))


def _account_start_keys(acct: np.ndarray) -> np.ndarray:
    return _keys(acct, np.full(len(acct), -(1 << 31)))


def _inside(spans: pd.DataFrame, acct: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Whether each (account, time) falls in one of the account's alive spans [lo, hi)."""
    starts = _keys(spans["acct"].to_numpy(), spans["lo"].to_numpy())
    pos = np.searchsorted(starts, _keys(acct, seconds), side="right") - 1
    safe = np.clip(pos, 0, len(spans) - 1)
    same = spans["acct"].to_numpy()[safe] == acct
    return (pos >= 0) & same & (seconds < spans["hi"].to_numpy()[safe])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _pick(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of `probs` (rows sum to 1)."""
    cum = np.cumsum(probs, axis=1)
    return np.minimum((rng.random(len(probs))[:, None] > cum).sum(axis=1), probs.shape[1] - 1)


# --- accounts and health -----------------------------------------------------------------------------------


def _draw_accounts(rng: np.random.Generator, n: int, clock: _Clock) -> pd.DataFrame:
    """Accounts in sign-up order: ~25% exist already at the start, the rest sign up, front-loaded."""
    pre = rng.random(n) < _PRE_EXISTING_SHARE
    day = np.where(pre, -rng.uniform(_TRIAL_DAYS + 1, 730, n), clock.days * rng.beta(1.0, 1.5, n))
    created = np.floor(day).astype(np.int64) * _DAY + _working_seconds(rng, n)
    order = np.argsort(created, kind="stable")
    acc = pd.DataFrame({"created": created[order], "pre": pre[order]})
    acc["segment"] = rng.choice(3, size=n, p=_SEGMENT_SHARE)
    acc = acc.assign(**_draw_firmographics(rng, n))
    acc = acc.assign(**_draw_commercials(rng, acc["segment"].to_numpy()))
    return acc.assign(**_draw_latents(rng, acc["segment"].to_numpy(), acc["seats"].to_numpy()))


def _draw_firmographics(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    def draw(options: tuple[str, ...], p: tuple[float, ...] | None = None) -> np.ndarray:
        return np.array(options, dtype=object)[rng.choice(len(options), size=n, p=p)]

    return {
        "name": draw(_NAME_HEADS) + draw(_NAME_TAILS) + " " + draw(_NAME_SUFFIXES),
        "industry": draw(_INDUSTRIES),
        "region": draw(_REGIONS, _REGION_SHARE),
        "csm_owner": draw(_CSM_OWNERS),
    }


def _draw_commercials(rng: np.random.Generator, seg: np.ndarray) -> dict[str, np.ndarray]:
    n = len(seg)
    seats = np.exp(rng.normal(np.log(_SEATS_MEDIAN[seg]), 0.5))
    seats = np.clip(np.round(seats), _SEATS_RANGE[seg, 0], _SEATS_RANGE[seg, 1]).astype(np.int64)
    annual = rng.random(n) < _ANNUAL_SHARE[seg]
    return {
        "bp": np.where(annual, 12, 1),
        "seats": seats,
        "tier": _pick(rng, _TIER_SHARE[seg]),
        "discount": rng.uniform(0.85, 1.05, n) * np.where(annual, 0.85, 1.0),
        "trial": rng.random(n) < _TRIAL_SHARE[seg],
    }


def _draw_latents(rng: np.random.Generator, seg: np.ndarray, seats: np.ndarray) -> dict[str, np.ndarray]:
    n = len(seg)
    z_ttv = rng.normal(0.0, 1.0, n)  # standardised log time to value: > 0 is slow onboarding
    return {
        "mu": rng.normal(_HEALTH_SHIFT[seg], 0.55),
        "z_ttv": z_ttv,
        "ttv": np.exp(0.5 * z_ttv),
        "frailty": rng.normal(0.0, 0.4, n),  # churn propensity that no table shows
        "n_users": np.maximum(1, np.round(seats * rng.uniform(0.4, 0.9, n))).astype(np.int64),
    }


def _simulate_health(rng: np.random.Generator, acc: pd.DataFrame, clock: _Clock) -> np.ndarray:
    """Latent daily health, shape (days, accounts): AR(1) drift, decaying negative shocks, onboarding dip."""
    n, days = len(acc), clock.days
    innovations = rng.normal(0.0, _HEALTH_SD * np.sqrt(1 - _HEALTH_PHI**2), (days, n))
    shocks = np.zeros((days, n))
    hit = rng.random((days, n)) < _SHOCK_RATE
    shocks[hit] = -rng.uniform(0.8, 2.0, int(hit.sum()))
    drift, dent = rng.normal(0.0, _HEALTH_SD, n), np.zeros(n)
    health = np.empty((days, n), dtype=np.float32)
    for day in range(days):  # a loop over days of vector operations over accounts
        drift = _HEALTH_PHI * drift + innovations[day]
        dent = _SHOCK_PHI * dent + shocks[day]
        health[day] = drift + dent
    age = np.arange(days)[:, None] - acc["created"].to_numpy()[None, :] / _DAY
    dip = -0.4 * acc["z_ttv"].to_numpy() * np.exp(-np.clip(age, 0, None) / 120)
    return health + (acc["mu"].to_numpy() + dip).astype(np.float32)


def _health_at(health: np.ndarray, acct: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    return health[np.clip(seconds // _DAY, 0, len(health) - 1), acct]


def _mean_health_before(cum: np.ndarray, acct: np.ndarray, seconds: np.ndarray, window: int) -> np.ndarray:
    """Mean health over the `window` days before the day holding `seconds` (day 0 when there are none)."""
    upper = np.clip(np.asarray(seconds) // _DAY, 1, len(cum) - 1)
    lower = np.clip(upper - window, 0, upper - 1)
    return (cum[upper, acct] - cum[lower, acct]) / (upper - lower)


# --- tickets and surveys -----------------------------------------------------------------------------------


def _draw_tickets(
    rng: np.random.Generator, acc: pd.DataFrame, health: np.ndarray, clock: _Clock
) -> pd.DataFrame:
    """Candidate tickets over the whole history; more, more urgent and slower to close when health is low."""
    rate = _TICKET_RATE[acc["segment"].to_numpy()] / 22 * np.exp(-0.6 * health)
    day, acct = np.nonzero(rng.random(health.shape) < rate * clock.weekday_factor(0.2)[:, None])
    created = day * _DAY + _working_seconds(rng, len(day))
    keep = created > acc["created"].to_numpy()[acct]
    day, acct, created = day[keep], acct[keep], created[keep]
    h = health[day, acct].astype(np.float64)
    logits = np.array([0.5, 1.5, 0.0, -1.5]) + np.outer(h, [0.4, 0.0, -0.4, -0.8])
    priority = _pick(rng, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))
    log_hours = np.log(6.0) + np.array([0.7, 0.3, -0.2, -0.8])[priority] - 0.5 * h
    resolved = created + np.round(np.exp(log_hours + rng.normal(0, 1.1, len(h))) * 3600).astype(np.int64)
    fcr = rng.random(len(h)) < _sigmoid(0.2 + 0.6 * h - 0.4 * (priority >= 2))
    reopened = ~fcr & (rng.random(len(h)) < _sigmoid(-1.5 - 0.6 * h))
    answered = (rng.random(len(h)) < 0.35) & (resolved < clock.end)
    csat = np.clip(np.round(3.9 + 0.6 * h - 0.8 * reopened + rng.normal(0, 0.9, len(h))), 1, 5)
    return pd.DataFrame({
        "acct": acct, "created": created, "resolved": np.where(resolved < clock.end, resolved, _OPEN),
        "priority": priority, "fcr": fcr, "reopened": reopened, "csat": np.where(answered, csat, np.nan),
    })


def _draw_nps(rng: np.random.Generator, acc: pd.DataFrame, health: np.ndarray, clock: _Clock) -> pd.DataFrame:
    """Candidate NPS answers: a campaign per account about every quarter, a few of its users answer."""
    n, k = len(acc), clock.days // 91 + 2
    campaign = rng.uniform(0, 91, n)[:, None] + 91.0 * np.arange(k)[None, :]
    first = np.maximum(acc["created"].to_numpy() / _DAY + 30, 0)
    a, j = np.nonzero((campaign >= first[:, None]) & (campaign < clock.days))
    answers = rng.poisson(0.35 * acc["n_users"].to_numpy()[a] ** 0.6)
    acct = np.repeat(a, answers)
    day = np.floor(np.repeat(campaign[a, j], answers) + rng.exponential(4.0, len(acct))).astype(np.int64)
    responded = day * _DAY + _working_seconds(rng, len(acct))
    keep = responded < clock.end
    acct, responded = acct[keep], responded[keep]
    h = _health_at(health, acct, responded)
    score = np.clip(np.round(6.8 + 1.6 * h + rng.normal(0, 1.7, len(acct))), 0, 10)
    return pd.DataFrame({"acct": acct, "responded": responded, "score": score})


def _draw_ces(rng: np.random.Generator, acc: pd.DataFrame, health: np.ndarray, clock: _Clock) -> pd.DataFrame:
    """Occasional customer-effort answers (about one per account every eight months), 1-7, 7 = easy."""
    day, acct = np.nonzero(rng.random(health.shape) < 0.125 / 30)
    responded = day * _DAY + _working_seconds(rng, len(day))
    keep = responded > acc["created"].to_numpy()[acct]
    acct, responded = acct[keep], responded[keep]
    h = _health_at(health, acct, responded)
    score = np.clip(np.round(5.0 + 0.9 * h + rng.normal(0, 1.2, len(acct))), 1, 7)
    return pd.DataFrame({"acct": acct, "responded": responded, "score": score})


@dataclass
class _Lookups:
    """Sorted (account, time) keys of the tickets and NPS answers a renewal's hazard reads."""

    opened: np.ndarray
    resolved: np.ndarray
    nps_keys: np.ndarray
    nps_cumsum: np.ndarray


def _build_lookups(tickets: pd.DataFrame, nps: pd.DataFrame) -> _Lookups:
    opened = np.sort(_keys(tickets["acct"].to_numpy(), tickets["created"].to_numpy()))
    done = tickets[tickets["resolved"] != _OPEN]
    resolved = np.sort(_keys(done["acct"].to_numpy(), done["resolved"].to_numpy()))
    nps_keys = _keys(nps["acct"].to_numpy(), nps["responded"].to_numpy())
    order = np.argsort(nps_keys, kind="stable")
    nps_cumsum = np.concatenate([[0.0], np.cumsum(nps["score"].to_numpy()[order])])
    return _Lookups(opened=opened, resolved=resolved, nps_keys=nps_keys[order], nps_cumsum=nps_cumsum)


def _open_tickets(look: _Lookups, acct: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Tickets opened before `seconds` and not resolved by then (a ticket never closes before it opens)."""
    base, at = _account_start_keys(acct), _keys(acct, seconds)
    opened = np.searchsorted(look.opened, at, "left") - np.searchsorted(look.opened, base, "left")
    closed = np.searchsorted(look.resolved, at, "right") - np.searchsorted(look.resolved, base, "left")
    return opened - closed


def _recent_nps(look: _Lookups, acct: np.ndarray, seconds: np.ndarray, days: int) -> tuple[np.ndarray, ...]:
    """Mean NPS answered in the `days` before `seconds` (0 where none), and whether there was any."""
    hi = np.searchsorted(look.nps_keys, _keys(acct, seconds), "left")
    lo = np.searchsorted(look.nps_keys, _keys(acct, seconds - days * _DAY), "right")
    count = hi - lo
    mean = (look.nps_cumsum[hi] - look.nps_cumsum[lo]) / np.maximum(count, 1)
    return np.where(count > 0, mean, 0.0), count > 0


@dataclass
class _Candidates:
    """Tickets and NPS answers drawn over the whole history; those in dead time get switched off."""

    tickets: pd.DataFrame
    nps: pd.DataFrame
    live_tickets: np.ndarray = field(init=False)
    live_nps: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.live_tickets = np.ones(len(self.tickets), dtype=bool)
        self.live_nps = np.ones(len(self.nps), dtype=bool)

    def kill(self, dead_lo: np.ndarray, dead_hi: np.ndarray) -> None:
        """Switch off what each account produced in [dead_lo, dead_hi) (per-account arrays)."""
        for frame, live, column in ((self.tickets, self.live_tickets, "created"),
                                    (self.nps, self.live_nps, "responded")):
            acct, seconds = frame["acct"].to_numpy(), frame[column].to_numpy()
            live &= ~((seconds >= dead_lo[acct]) & (seconds < dead_hi[acct]))

    def lookups(self) -> _Lookups:
        return _build_lookups(self.tickets[self.live_tickets], self.nps[self.live_nps])


# --- contracts ---------------------------------------------------------------------------------------------


def _simulate_contracts(rng, acc, cum, candidates: _Candidates, clock: _Clock):
    """Trials, then paid lifecycles (churn at renewals, re-activations), and the spans accounts are alive in.

    Returns the internal subscription rows, the truth rows, the alive spans (acct, lo, hi, life; life -1 for
    accounts that never pay) sorted by account and start, and each account's first paid start (or `_OPEN`).
    """
    n = len(acc)
    trial_rows, paid_start, trial_hi = _trial_rows(rng, acc, cum, clock)
    never = np.flatnonzero(paid_start == _OPEN)
    spans = [pd.DataFrame({"acct": never, "lo": acc["created"].to_numpy()[never], "hi": trial_hi[never],
                           "life": -1})]
    candidates.kill(np.where(paid_start == _OPEN, trial_hi, _OPEN), np.full(n, clock.end))
    rows, truths = [trial_rows], [pd.DataFrame({"acct": [], "renewal": [], "hazard": [], "drawn": [],
                                                "life_start": []}, dtype=np.int64)]
    life = _first_lifecycle(acc, paid_start)
    while len(life):  # one pass per lifecycle: the first paid one, then re-activations
        sub_rows, truth, churn = _run_lifecycle(rng, acc, life, cum, candidates.lookups(), clock)
        rows.append(sub_rows)
        acct, hi = life["acct"].to_numpy(), np.where(churn == _OPEN, clock.end, churn)
        spans.append(pd.DataFrame({"acct": acct, "lo": life["lo"].to_numpy(), "hi": hi,
                                   "life": len(truths) - 1}))
        truths.append(truth)
        life, restart = _next_lifecycle(rng, acc, life, churn, clock)
        dead_lo, dead_hi = np.full(n, _OPEN), np.full(n, clock.end)
        dead_lo[acct], dead_hi[acct] = churn, np.where(restart == _OPEN, clock.end, restart)
        candidates.kill(dead_lo, dead_hi)
    spans = pd.concat(spans, ignore_index=True).sort_values(["acct", "lo"], kind="stable", ignore_index=True)
    return pd.concat(rows, ignore_index=True), pd.concat(truths, ignore_index=True), spans, paid_start


def _row_frame(acct, start, end, mrr, plan, seats, trial, bp) -> pd.DataFrame:
    n = len(acct)
    return pd.DataFrame({
        "acct": acct, "start": start, "end": end, "mrr": np.broadcast_to(np.asarray(mrr, dtype=float), n),
        "plan": np.broadcast_to(plan, n), "seats": np.broadcast_to(seats, n),
        "trial": np.broadcast_to(trial, n), "bp": np.broadcast_to(bp, n),
    })


def _trial_rows(rng, acc: pd.DataFrame, cum: np.ndarray, clock: _Clock):
    """Trial rows; each account's first paid start (`_OPEN` if it never pays); the end of its trial span."""
    n, created, trial = len(acc), acc["created"].to_numpy(), acc["trial"].to_numpy()
    trial_end = created + _TRIAL_DAYS * _DAY
    early = _mean_health_before(cum, np.arange(n), trial_end, _TRIAL_DAYS)
    convert = rng.random(n) < _sigmoid(0.7 + early - 0.5 * acc["z_ttv"].to_numpy())
    converted = acc["pre"].to_numpy() | convert  # accounts older than the history are paying at its start
    ended = trial_end < clock.end
    paid_start = np.where(trial, np.where(converted & ended, trial_end, _OPEN), created)
    trial_hi = np.where(trial & ended, trial_end, clock.end)
    idx = np.flatnonzero(trial)
    rows = _row_frame(idx, created[idx], np.where(ended, trial_end, _OPEN)[idx], 0.0,
                      acc["tier"].to_numpy()[idx], acc["seats"].to_numpy()[idx], True, 1)
    return rows, paid_start, trial_hi


def _first_lifecycle(acc: pd.DataFrame, paid_start: np.ndarray) -> pd.DataFrame:
    acct = np.flatnonzero(paid_start != _OPEN)
    life = acc.loc[acct, ["bp", "seats", "tier", "discount"]].reset_index(drop=True)
    return life.assign(acct=acct, lo=acc["created"].to_numpy()[acct], start=paid_start[acct])


def _run_lifecycle(rng, acc, life, cum, look, clock):
    """Draw churn at the renewals of one paid lifecycle; return its rows, truth rows and churn times."""
    ren = _renewal_grid(life, clock)
    valid = ren < clock.end
    drawable = valid & (ren >= 0)  # churn is drawn only inside the history
    hike_k = _draw_hikes(rng, drawable)
    hazard = _renewal_hazards(rng, acc, life, ren, drawable, hike_k, cum, look)
    hit = drawable & (rng.random(ren.shape) < np.nan_to_num(hazard))
    last = ren.shape[1]
    churn_k = np.where(hit.any(axis=1), hit.argmax(axis=1), last)
    churn = np.where(churn_k < last, ren[np.arange(len(ren)), np.minimum(churn_k, last - 1)], _OPEN)
    # Every renewal in the history keeps its hazard, also those after a churn (drawn=False): the oracle's
    # P(churn within a horizon) needs each renewal in it, or churners would look safer than survivors.
    row, k = np.nonzero(drawable)
    acct = life["acct"].to_numpy()[row]
    truth = pd.DataFrame({"acct": acct, "renewal": ren[row, k], "hazard": hazard[row, k],
                          "drawn": k <= churn_k[row], "life_start": life["start"].to_numpy()[row]})
    return _paid_rows(rng, life, ren, valid, churn_k, hike_k, cum, churn), truth, churn


def _renewal_grid(life: pd.DataFrame, clock: _Clock) -> np.ndarray:
    """Billing anniversaries (k = 1, 2, ...) of each lifecycle's paid start; shape (rows, k)."""
    start, bp = life["start"].to_numpy(), life["bp"].to_numpy()
    k_max = int(((clock.end - start) // (28 * _DAY) // bp).max()) + 1
    months = np.arange(1, k_max + 1)[None, :] * bp[:, None]
    return _add_months(clock, np.repeat(start, k_max), months.ravel()).reshape(len(life), k_max)


def _draw_hikes(rng: np.random.Generator, drawable: np.ndarray) -> np.ndarray:
    """A quarter of the accounts get a price increase at one renewal inside the history (-1 = none)."""
    choice = np.where(drawable, rng.random(drawable.shape), -1.0).argmax(axis=1)
    chosen = (rng.random(len(drawable)) < 0.25) & drawable.any(axis=1)
    return np.where(chosen, choice, -1)


def _renewal_hazards(rng, acc, life, ren, drawable, hike_k, cum, look) -> np.ndarray:
    """True churn probability at each drawable renewal (NaN elsewhere)."""
    row, k = np.nonzero(drawable)
    acct, at, bp = life["acct"].to_numpy()[row], ren[row, k], life["bp"].to_numpy()[row]
    hike_at = np.where(hike_k >= 0, ren[np.arange(len(ren)), np.maximum(hike_k, 0)], 0)[row]
    window = np.where(bp == 12, _HIKE_WINDOW_DAYS[12], _HIKE_WINDOW_DAYS[1]) * _DAY
    hiked = (hike_k[row] >= 0) & (at > hike_at) & (at - hike_at <= window)
    nps, answered = _recent_nps(look, acct, at, 120)
    logit = (
        np.where(bp == 12, _HAZARD_BASE[12], _HAZARD_BASE[1])
        + _HAZARD_SEGMENT[acc["segment"].to_numpy()[acct]]
        - 1.1 * _mean_health_before(cum, acct, at, 30)
        + 0.35 * acc["z_ttv"].to_numpy()[acct]
        + 0.3 * np.minimum(_open_tickets(look, acct, at), 4)
        - 0.2 * (nps - 7.0) * answered
        + 1.0 * hiked
        + acc["frailty"].to_numpy()[acct]
        + rng.normal(0.0, 0.5, len(row))  # irreducible: no table shows it
    )
    hazard = np.full(ren.shape, np.nan)
    hazard[row, k] = _sigmoid(logit)
    return hazard


def _paid_rows(rng, life, ren, valid, churn_k, hike_k, cum, churn) -> pd.DataFrame:
    """Contiguous rows of one lifecycle: a new row at each renewal with a plan change or a price increase."""
    n = len(life)
    acct, bp = life["acct"].to_numpy(), life["bp"].to_numpy()
    seats, tier, price = life["seats"].to_numpy().copy(), life["tier"].to_numpy().copy(), np.ones(n)
    parts = [(np.arange(n), life["start"].to_numpy(), seats, tier, price)]
    for k in range(ren.shape[1]):  # a loop over renewals of vector operations over accounts
        alive = valid[:, k] & (k < churn_k)
        change = alive & (rng.random(n) < np.where(bp == 12, _CHANGE_RATE[12], _CHANGE_RATE[1]))
        grow = rng.random(n) < _sigmoid(0.2 + 1.5 * _mean_health_before(cum, acct, ren[:, k], 30))
        seats, tier = _resize(rng, seats, tier, change, grow)
        hike = alive & (hike_k == k)
        price = np.where(hike, price * rng.uniform(1.08, 1.2, n), price)
        moved = np.flatnonzero(change | hike)
        parts.append((moved, ren[moved, k], seats[moved], tier[moved], price[moved]))
    row, start, seats, tier, price = (np.concatenate(p) for p in zip(*parts, strict=True))
    order = np.lexsort((start, row))
    row, start, seats, tier, price = row[order], start[order], seats[order], tier[order], price[order]
    last = np.append(row[1:] != row[:-1], True)
    end = np.where(last, churn[row], np.append(start[1:], 0))
    mrr = np.round(seats * _SEAT_PRICE[tier] * life["discount"].to_numpy()[row] * price, 2)
    return _row_frame(acct[row], start, end, mrr, tier, seats, False, bp[row])


def _resize(rng, seats, tier, change, grow) -> tuple[np.ndarray, np.ndarray]:
    """Upgrades add seats (sometimes a tier), downgrades remove seats (sometimes a tier)."""
    n = len(seats)
    factor = np.where(grow, rng.uniform(1.1, 1.5, n), rng.uniform(0.6, 0.9, n))
    resized = np.where(grow, np.ceil(seats * factor), np.maximum(1, np.floor(seats * factor)))
    step = np.where(grow, 1, -1) * (rng.random(n) < 0.3)
    new_tier = np.clip(tier + step, 0, 3)
    return np.where(change, resized.astype(np.int64), seats), np.where(change, new_tier, tier)


def _next_lifecycle(rng, acc, life, churn, clock):
    """About 5% of churned accounts return 60-200 days later with a fresh subscription; their lifecycle."""
    n = len(life)
    back = (churn != _OPEN) & (rng.random(n) < _REACTIVATION_SHARE)
    day = np.where(back, churn, 0) // _DAY + np.floor(rng.uniform(60, 200, n)).astype(np.int64)
    restart = day * _DAY + _working_seconds(rng, n)
    back &= restart < clock.end
    restart = np.where(back, restart, _OPEN)
    acct = life["acct"].to_numpy()[back]
    nxt = acc.loc[acct, ["bp", "seats", "tier", "discount"]].reset_index(drop=True)
    seats = np.maximum(1, np.round(nxt["seats"].to_numpy() * rng.uniform(0.5, 1.0, len(nxt))))
    return nxt.assign(seats=seats.astype(np.int64), acct=acct, lo=restart[back], start=restart[back]), restart


def _addon_rows(rng, acc, spans, paid_start, clock) -> pd.DataFrame:
    """Overlapping add-on rows (small MRR, no seats) for ~15% of paying accounts, in their first lifecycle."""
    first = spans[spans["life"] == 0]
    acct, hi = first["acct"].to_numpy(), first["hi"].to_numpy()
    n = len(acct)
    day = paid_start[acct] // _DAY + np.floor(rng.uniform(20, 400, n)).astype(np.int64)
    start = day * _DAY + _working_seconds(rng, n)
    end = _add_months(clock, start, 1 + rng.geometric(0.12, n))
    end = np.where(end < hi, end, np.where(hi == clock.end, _OPEN, hi))  # ends with the account at the latest
    base = acc["seats"].to_numpy()[acct] * _SEAT_PRICE[acc["tier"].to_numpy()[acct]]
    mrr = np.round(np.maximum(10.0, base * rng.uniform(0.05, 0.15, n)), 2)
    keep = (rng.random(n) < 0.2) & (start < hi)
    return _row_frame(acct[keep], start[keep], end[keep], mrr[keep], _ADDON, 0, False, 1)


# --- users and events --------------------------------------------------------------------------------------


def _draw_users(
    rng: np.random.Generator, acc: pd.DataFrame, spans: pd.DataFrame, clock: _Clock
) -> pd.DataFrame:
    """Users by account and arrival: an admin at sign-up, the others invited over time (slower onboarding,
    slower invites), kept only when invited while the account is alive."""
    counts = acc["n_users"].to_numpy()
    acct = np.repeat(np.arange(len(acc)), counts)
    rank = np.arange(len(acct)) - np.repeat(np.cumsum(counts) - counts, counts)
    early = rng.exponential(20.0 * acc["ttv"].to_numpy()[acct])
    delay = np.where(rng.random(len(acct)) < 0.7, early, rng.uniform(0, 540, len(acct)))
    delay = np.round(np.where(rank == 0, 0.0, delay) * _DAY).astype(np.int64)
    created = acc["created"].to_numpy()[acct] + delay
    role = np.where(rank == 0, 0, _pick(rng, np.tile([0.1, 0.7, 0.2], (len(acct), 1))))
    propensity = rng.normal(0.0, 0.8, len(acct)) + np.array([0.3, 0.0, -0.6])[role]
    users = pd.DataFrame({"acct": acct, "created": created, "role": role, "propensity": propensity})
    users = users[(created < clock.end) & _inside(spans, acct, created)]
    return users.sort_values(["acct", "created"], kind="stable", ignore_index=True)


def _pick_users(rng: np.random.Generator, users: pd.DataFrame, acct: np.ndarray, seconds: np.ndarray):
    """A random user of the account who existed at `seconds` (-1 when none did)."""
    keys = _keys(users["acct"].to_numpy(), users["created"].to_numpy())
    lo = np.searchsorted(keys, _account_start_keys(acct), "left")
    count = np.searchsorted(keys, _keys(acct, seconds), "right") - lo
    chosen = lo + np.floor(rng.random(len(acct)) * count).astype(np.int64)
    return np.where(count > 0, chosen, -1)


def _draw_events(rng, acc, users, spans, health, clock, ids) -> pd.DataFrame:
    """Product events: active user-days (health-driven), sessions in working hours, events within sessions."""
    pieces = _user_spans(users, spans)
    piece, day = _active_user_days(rng, pieces, health, clock)
    events = _session_events(rng, _sessions(rng, pieces, piece, day, health, acc))
    piece = events["piece"]
    keep = (events["at"] >= pieces["lo"].to_numpy()[piece]) & (events["at"] < pieces["hi"].to_numpy()[piece])
    order = np.flatnonzero(keep)[np.argsort(events["at"][keep], kind="stable")]
    events = {name: values[order] for name, values in events.items()}
    user = pieces["user"].to_numpy()[events["piece"]]
    sessions = int(events["session"].max(initial=0)) + 1
    return pd.DataFrame({
        "account_id": _take(ids, users["acct"].to_numpy()[user]),
        "event_at": clock.timestamps(events["at"]),
        "event_name": _take(pa.array(_EVENT_NAMES), events["code"]),
        "user_id": _take(_format_ids("U", len(users), 6), user),
        "session_id": _take(_format_ids("S", sessions, 8), events["session"]),
        "duration_s": events["duration"],
    })


def _user_spans(users: pd.DataFrame, spans: pd.DataFrame) -> pd.DataFrame:
    """Per user and alive span of its account: the [lo, hi) in which the user can act (not before day 0)."""
    pieces = users.reset_index(names="user").merge(spans[["acct", "lo", "hi"]], on="acct", sort=False)
    lo = np.maximum(np.maximum(pieces["created"].to_numpy(), pieces["lo"].to_numpy()), 0)
    pieces = pieces.assign(lo=lo)
    return pieces[pieces["hi"] > pieces["lo"]].reset_index(drop=True)


def _active_user_days(rng, pieces, health, clock) -> tuple[np.ndarray, np.ndarray]:
    """(piece, day) of each day a user is active: likelier on weekdays, for keen users, when healthy."""
    first = (pieces["lo"].to_numpy() // _DAY).astype(np.int32)
    length = ((pieces["hi"].to_numpy() - 1) // _DAY).astype(np.int32) - first + 1
    piece = np.repeat(np.arange(len(pieces), dtype=np.int32), length)
    offset = np.repeat(np.cumsum(length) - length, length).astype(np.int32)
    day = np.arange(len(piece), dtype=np.int32) - offset + first[piece]
    acct = pieces["acct"].to_numpy().astype(np.int32)[piece]
    logit = _ACTIVE_LOGIT + health[day, acct] + pieces["propensity"].to_numpy().astype(np.float32)[piece]
    chance = clock.weekday_factor(0.1).astype(np.float32)[day] / (1.0 + np.exp(-logit))
    active = rng.random(len(piece), dtype=np.float32) < chance
    return piece[active], day[active]


def _sessions(rng, pieces, piece, day, health, acc) -> dict[str, np.ndarray]:
    """One or more sessions per active user-day, starting in working hours; core use grows with onboarding."""
    count = 1 + rng.poisson(0.3, len(piece))
    piece, day = np.repeat(piece, count), np.repeat(day, count).astype(np.int64)
    acct = pieces["acct"].to_numpy()[piece]
    start = day * _DAY + _working_seconds(rng, len(piece), mean_hour=13.0)
    age = (start - acc["created"].to_numpy()[acct]) / _DAY
    onboarded = 1.0 - np.exp(-np.maximum(age, 0.0) / (10.0 * acc["ttv"].to_numpy()[acct]))
    h = health[day, acct].astype(np.float64)
    core_share = _sigmoid(-0.7 + 0.7 * h + 0.4 * (pieces["role"].to_numpy()[piece] < 2)) * onboarded
    return {"piece": piece, "start": start, "h": h, "core_share": core_share}


def _session_events(rng, sessions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A login, then a health-driven number of core and other events, one after another."""
    count = 1 + rng.poisson(np.exp(1.0 + 0.3 * sessions["h"]))
    session = np.repeat(np.arange(len(count)), count)
    first = np.cumsum(count) - count
    core = rng.random(len(session)) < sessions["core_share"][session]
    core_code = 1 + rng.choice(len(_CORE_EVENTS), size=len(session), p=_CORE_WEIGHTS)
    other_code = 1 + len(_CORE_EVENTS) + rng.choice(len(_OTHER_EVENTS), size=len(session), p=_OTHER_WEIGHTS)
    code = np.where(core, core_code, other_code).astype(np.int8)
    code[first] = 0  # "login"
    duration = np.round(_EVENT_SECONDS[code] * rng.lognormal(0.0, 0.6, len(session)), 1)
    step = duration + rng.exponential(25.0, len(session))
    elapsed = np.cumsum(step) - step
    at = sessions["start"][session] + np.round(elapsed - elapsed[first][session]).astype(np.int64)
    return {"piece": sessions["piece"][session], "session": session, "at": at, "code": code,
            "duration": duration}


# --- frames ------------------------------------------------------------------------------------------------


def _format_ids(prefix: str, n: int, width: int) -> pa.Array:
    """prefix + 1..n zero-padded to `width` digits (wider when n needs it)."""
    digits = max(width, len(str(max(n, 1))))
    numbers = pc.utf8_lpad(pc.cast(pa.array(np.arange(1, n + 1)), pa.string()), digits, "0")
    return pc.binary_join_element_wise(prefix, numbers, "")


def _take(labels: pa.Array | tuple[str, ...], codes: np.ndarray) -> pd.Series:
    """labels[codes] as a pandas str column, built in Arrow (fast for millions of rows)."""
    labels = labels if isinstance(labels, pa.Array) else pa.array(labels)
    return pd.Series(pc.take(labels, pa.array(np.asarray(codes, dtype=np.int64))), dtype="str")


def _accounts_frame(acc: pd.DataFrame, ids: pa.Array, clock: _Clock) -> pd.DataFrame:
    return pd.DataFrame({
        "account_id": _take(ids, np.arange(len(acc))),
        "created_at": clock.timestamps(acc["created"].to_numpy()),
        "name": pd.Series(acc["name"].to_numpy(), dtype="str"),
        "segment": _take(_SEGMENTS, acc["segment"].to_numpy()),
        "industry": pd.Series(acc["industry"].to_numpy(), dtype="str"),
        "region": pd.Series(acc["region"].to_numpy(), dtype="str"),
        "csm_owner": pd.Series(acc["csm_owner"].to_numpy(), dtype="str"),
    })


def _subscriptions_frame(rows: pd.DataFrame, ids: pa.Array, clock: _Clock) -> pd.DataFrame:
    rows = rows.sort_values(["acct", "start", "trial"], ascending=[True, True, False], kind="stable",
                            ignore_index=True)
    return pd.DataFrame({
        "account_id": _take(ids, rows["acct"].to_numpy()),
        "start_at": clock.timestamps(rows["start"].to_numpy()),
        "end_at": clock.timestamps(rows["end"].to_numpy()),
        "mrr": rows["mrr"].to_numpy(dtype=np.float64),
        "plan": _take(_PLANS, rows["plan"].to_numpy()),
        "seats": rows["seats"].to_numpy(dtype=np.int64),
        "is_trial": rows["trial"].to_numpy(dtype=bool),
        "billing_period_months": rows["bp"].to_numpy(dtype=np.int64),
    })


def _users_frame(users: pd.DataFrame, ids: pa.Array, clock: _Clock) -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": _take(_format_ids("U", len(users), 6), np.arange(len(users))),
        "account_id": _take(ids, users["acct"].to_numpy()),
        "created_at": clock.timestamps(users["created"].to_numpy()),
        "role": _take(("admin", "member", "viewer"), users["role"].to_numpy()),
    })


def _finish_tickets(rng, tickets: pd.DataFrame, spans: pd.DataFrame, clock: _Clock):
    """Tickets opened while the account was alive; an answered CSAT also becomes a csat survey response."""
    tickets = tickets[_inside(spans, tickets["acct"].to_numpy(), tickets["created"].to_numpy())]
    tickets = tickets.sort_values("created", kind="stable", ignore_index=True)
    acct, csat = tickets["acct"].to_numpy(), tickets["csat"].to_numpy()
    answered = ~np.isnan(csat)
    delay = np.round(rng.exponential(0.5 * _DAY, len(tickets))).astype(np.int64)
    responded = np.where(answered, tickets["resolved"].to_numpy(), 0) + delay
    answered &= (responded < clock.end) & _inside(spans, acct, responded)
    tickets = tickets.assign(csat=np.where(answered, csat, np.nan))
    responses = pd.DataFrame({"acct": acct[answered], "responded": responded[answered],
                              "score": csat[answered], "kind": 1})
    return tickets, responses


def _tickets_frame(tickets: pd.DataFrame, ids: pa.Array, clock: _Clock) -> pd.DataFrame:
    return pd.DataFrame({
        "ticket_id": _take(_format_ids("T", len(tickets), 7), np.arange(len(tickets))),
        "account_id": _take(ids, tickets["acct"].to_numpy()),
        "created_at": clock.timestamps(tickets["created"].to_numpy()),
        "resolved_at": clock.timestamps(tickets["resolved"].to_numpy()),
        "priority": _take(_PRIORITIES, tickets["priority"].to_numpy()),
        "first_contact_resolved": tickets["fcr"].to_numpy(dtype=bool),
        "reopened": tickets["reopened"].to_numpy(dtype=bool),
        "csat": tickets["csat"].to_numpy(dtype=np.float64),
    })


def _surveys_frame(rng, parts: list[pd.DataFrame], users, spans, ids, clock) -> pd.DataFrame:
    """NPS, ticket CSAT and CES answers given while the account was alive, each by a user who existed then."""
    answers = pd.concat(parts, ignore_index=True)
    acct, responded = answers["acct"].to_numpy(), answers["responded"].to_numpy()
    answers = answers.assign(user=_pick_users(rng, users, acct, responded))
    answers = answers[_inside(spans, acct, responded) & (answers["user"] >= 0).to_numpy()]
    answers = answers.sort_values("responded", kind="stable", ignore_index=True)
    return pd.DataFrame({
        "response_id": _take(_format_ids("R", len(answers), 7), np.arange(len(answers))),
        "account_id": _take(ids, answers["acct"].to_numpy()),
        "responded_at": clock.timestamps(answers["responded"].to_numpy()),
        "survey_type": _take(("nps", "csat", "ces"), answers["kind"].to_numpy()),
        "score": answers["score"].to_numpy(dtype=np.float64),
        "user_id": _take(_format_ids("U", len(users), 6), answers["user"].to_numpy()),
    })


def _draw_milestones(rng, acc, spans, clock, ids) -> pd.DataFrame:
    """Onboarding milestones reached at the account's own speed; slow accounts skip the later ones more."""
    n, m = len(acc), len(_MILESTONES)
    days = _MILESTONE_DAYS[None, :] * acc["ttv"].to_numpy()[:, None] * rng.lognormal(0.0, 0.4, (n, m))
    days[:, 0] = rng.uniform(60, 1800, n) / _DAY  # the workspace comes minutes after sign-up
    skip_logit = -3.2 + 0.8 * acc["z_ttv"].to_numpy()[:, None] + 0.4 * np.arange(m)[None, :]
    skipped = (rng.random((n, m)) < _sigmoid(skip_logit)) & (np.arange(m)[None, :] > 0)
    acct, which = np.nonzero(~skipped)
    achieved = acc["created"].to_numpy()[acct] + np.round(days[acct, which] * _DAY).astype(np.int64)
    keep = (achieved < clock.end) & _inside(spans, acct, achieved)
    return pd.DataFrame({
        "account_id": _take(ids, acct[keep]),
        "milestone": _take(_MILESTONES, which[keep]),
        "achieved_at": clock.timestamps(achieved[keep]),
    })


def _truth_frame(truth: pd.DataFrame, ids: pa.Array, clock: _Clock) -> pd.DataFrame:
    truth = truth.sort_values(["acct", "renewal"], kind="stable", ignore_index=True)
    renewal_at = clock.timestamps(truth["renewal"].to_numpy())
    return pd.DataFrame({
        "account_id": _take(ids, truth["acct"].to_numpy()),
        "month": renewal_at.astype("datetime64[M]").astype("datetime64[us]"),
        "renewal_at": renewal_at,
        "hazard": truth["hazard"].to_numpy(dtype=np.float64),
        "drawn": truth["drawn"].to_numpy(dtype=bool),
        "lifecycle_start": clock.timestamps(truth["life_start"].to_numpy()),
    })
