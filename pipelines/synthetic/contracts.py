"""Contracts: what each account pays for over time. A trial converts (or not) on its early health; a paid lifecycle
renews at monthly or annual anniversaries of its paid start, where churn is drawn with the true hazard of `hazard`
(and each cause's term in it is kept; a playbook the CS team ran scales it, `cs_team`), and upgrades (more likely
when health is good) and price shocks (a price increase answered with fewer seats, the only contractions, drawn from
the price_shock stream) split it into contiguous subscription rows; about 5% of churned accounts come back later for
a new lifecycle; some paying accounts buy an overlapping add-on. Returns the alive spans the other tables are kept
inside and the price shocks that happened, and builds the `subscriptions` and `sim_truth` output frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.synthetic.accounts import TRIAL_DAYS
from pipelines.synthetic.causes import Episodes, Shocks
from pipelines.synthetic.clock import DAY, OPEN, Clock, add_months
from pipelines.synthetic.config import CAUSES
from pipelines.synthetic.cs_team import Flags
from pipelines.synthetic.draws import sigmoid, working_seconds
from pipelines.synthetic.frames import take
from pipelines.synthetic.hazard import SHOCK_WINDOW_DAYS, Candidates, Lookups, Renewals, churn_hazards, true_cause
from pipelines.synthetic.health import mean_health_before
from pipelines.synthetic.profiles import Profile

_ADDON = 4  # index of the add-on in a profile's plans (0-3 are the tiers)
_CHANGE_RATE = {1: 0.03, 12: 0.3}  # probability per renewal of a plan review, an upgrade when health is good
_REACTIVATION_SHARE = 0.05
SHOCK_SHARE = 0.2  # share of lifecycles with a price shock at one renewal, at rate multiplier 1


@dataclass(frozen=True)
class Pressures:
    """What weighs on renewals besides health: the champion-loss episodes, the price_shock stream with its
    rate multiplier (the live episode tickets and answers come from the candidates), the CS team's flags
    (a treated account's playbook scales its churn probability), and the company's profile (its base hazard by
    billing period and its seat prices)."""

    champions: Episodes
    shock_rng: np.random.Generator
    shock_rate: float
    flags: Flags
    profile: Profile


def simulate_contracts(rng, acc: pd.DataFrame, cum: np.ndarray, candidates: Candidates, pressures: Pressures,
                       clock: Clock):
    """Trials, then paid lifecycles (churn at renewals, re-activations), and the spans accounts are alive in.

    Returns the internal subscription rows, the truth rows, the alive spans (acct, lo, hi, life; life -1 for
    accounts that never pay) sorted by account and start, each account's first paid start (or `OPEN`), and the
    price shocks that happened.
    """
    n = len(acc)
    trial_rows, paid_start, trial_hi = _trial_rows(rng, acc, cum, clock)
    never = np.flatnonzero(paid_start == OPEN)
    spans = [pd.DataFrame({"acct": never, "lo": acc["created"].to_numpy()[never], "hi": trial_hi[never],
                           "life": -1})]
    candidates.kill(np.where(paid_start == OPEN, trial_hi, OPEN), np.full(n, clock.end))
    rows, truths, shocks = [trial_rows], [_empty_truth()], [Shocks(*[np.array([], dtype=np.int64)] * 3)]
    life = _first_lifecycle(acc, paid_start)
    while len(life):  # one pass per lifecycle: the first paid one, then re-activations
        sub_rows, truth, churn, shock = _run_lifecycle(rng, acc, life, cum, candidates.lookups(), pressures, clock)
        rows.append(sub_rows)
        shocks.append(shock)
        acct, hi = life["acct"].to_numpy(), np.where(churn == OPEN, clock.end, churn)
        spans.append(pd.DataFrame({"acct": acct, "lo": life["lo"].to_numpy(), "hi": hi,
                                   "life": len(truths) - 1}))
        truths.append(truth)
        life, restart = _next_lifecycle(rng, acc, life, churn, clock)
        dead_lo, dead_hi = np.full(n, OPEN), np.full(n, clock.end)
        dead_lo[acct], dead_hi[acct] = churn, np.where(restart == OPEN, clock.end, restart)
        candidates.kill(dead_lo, dead_hi)
    spans = pd.concat(spans, ignore_index=True).sort_values(["acct", "lo"], kind="stable", ignore_index=True)
    shocks = Shocks(*(np.concatenate([getattr(s, name) for s in shocks]) for name in ("acct", "at", "until")))
    return pd.concat(rows, ignore_index=True), pd.concat(truths, ignore_index=True), spans, paid_start, shocks


def _empty_truth() -> pd.DataFrame:
    columns = ["acct", "renewal", "hazard", "drawn", "life_start", "playbook_factor", *CAUSES]
    floats = {"hazard", "playbook_factor", *CAUSES}
    return pd.DataFrame({name: np.array([], dtype=np.float64 if name in floats else np.int64)
                         for name in columns})


# --- subscription rows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Terms:
    """What subscription rows sell; a scalar applies to every row."""

    plan: np.ndarray | int  # index into the profile's plans
    seats: np.ndarray | int
    trial: bool
    bp: np.ndarray | int  # billing period in months


def _row_frame(acct, start, end, mrr, terms: _Terms) -> pd.DataFrame:
    n = len(acct)
    return pd.DataFrame({
        "acct": acct, "start": start, "end": end, "mrr": np.broadcast_to(np.asarray(mrr, dtype=float), n),
        "plan": np.broadcast_to(terms.plan, n), "seats": np.broadcast_to(terms.seats, n),
        "trial": np.broadcast_to(terms.trial, n), "bp": np.broadcast_to(terms.bp, n),
    })


# --- trials and lifecycles ---------------------------------------------------------------------------------


def _trial_rows(rng, acc: pd.DataFrame, cum: np.ndarray, clock: Clock):
    """Trial rows; each account's first paid start (`OPEN` if it never pays); the end of its trial span."""
    n, created, trial = len(acc), acc["created"].to_numpy(), acc["trial"].to_numpy()
    trial_end = created + TRIAL_DAYS * DAY
    early = mean_health_before(cum, np.arange(n), trial_end, TRIAL_DAYS)
    convert = rng.random(n) < sigmoid(0.7 + early - 0.5 * acc["z_ttv"].to_numpy())
    converted = acc["pre"].to_numpy() | convert  # accounts older than the history are paying at its start
    ended = trial_end < clock.end
    paid_start = np.where(trial, np.where(converted & ended, trial_end, OPEN), created)
    trial_hi = np.where(trial & ended, trial_end, clock.end)
    idx = np.flatnonzero(trial)
    terms = _Terms(plan=acc["tier"].to_numpy()[idx], seats=acc["seats"].to_numpy()[idx], trial=True, bp=1)
    rows = _row_frame(idx, created[idx], np.where(ended, trial_end, OPEN)[idx], 0.0, terms)
    return rows, paid_start, trial_hi


def _first_lifecycle(acc: pd.DataFrame, paid_start: np.ndarray) -> pd.DataFrame:
    acct = np.flatnonzero(paid_start != OPEN)
    life = acc.loc[acct, ["bp", "seats", "tier", "discount"]].reset_index(drop=True)
    return life.assign(acct=acct, lo=acc["created"].to_numpy()[acct], start=paid_start[acct])


def _run_lifecycle(rng, acc, life, cum, look: Lookups, pressures: Pressures, clock: Clock):
    """Draw churn at the renewals of one paid lifecycle; return its rows, truth rows, churn times and shocks."""
    grid = _draw_renewals(pressures, life, clock)
    hazard, terms = _renewal_hazards(rng, acc, life, grid, cum, look, pressures)
    row, k = np.nonzero(grid.drawable)
    factor = pressures.flags.hazard_factors(life["acct"].to_numpy()[row], grid.at[row, k],
                                            life["start"].to_numpy()[row])
    hazard[row, k] *= factor
    hit = grid.drawable & (rng.random(grid.at.shape) < np.nan_to_num(hazard))
    churn = _first_churn(hit, grid.at)
    # Every renewal in the history keeps its hazard, also those after a churn (drawn=False): the oracle's
    # P(churn within a horizon) needs each renewal in it, or churners would look safer than survivors.
    acct = life["acct"].to_numpy()[row]
    truth = pd.DataFrame({"acct": acct, "renewal": grid.at[row, k], "hazard": hazard[row, k],
                          "drawn": k <= churn.k[row], "life_start": life["start"].to_numpy()[row],
                          "playbook_factor": factor,
                          **dict(zip(CAUSES, terms.T, strict=True))})
    seat_price = np.array(pressures.profile.seat_price)
    return _paid_rows(rng, life, grid, churn, cum, seat_price), truth, churn.at, _shocks(life, grid, churn)


def _next_lifecycle(rng, acc, life, churn, clock):
    """About 5% of churned accounts return 60-200 days later with a fresh subscription; their lifecycle."""
    n = len(life)
    back = (churn != OPEN) & (rng.random(n) < _REACTIVATION_SHARE)
    day = np.where(back, churn, 0) // DAY + np.floor(rng.uniform(60, 200, n)).astype(np.int64)
    restart = day * DAY + working_seconds(rng, n)
    back &= restart < clock.end
    restart = np.where(back, restart, OPEN)
    acct = life["acct"].to_numpy()[back]
    nxt = acc.loc[acct, ["bp", "seats", "tier", "discount"]].reset_index(drop=True)
    seats = np.maximum(1, np.round(nxt["seats"].to_numpy() * rng.uniform(0.5, 1.0, len(nxt))))
    return nxt.assign(seats=seats.astype(np.int64), acct=acct, lo=restart[back], start=restart[back]), restart


# --- renewals ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RenewalGrid:
    """The renewals of one lifecycle pass, shape (lifecycle rows, k): billing anniversaries k = 1, 2, ..."""

    at: np.ndarray  # seconds since the origin
    valid: np.ndarray  # before the history's end
    drawable: np.ndarray  # valid and not before the history's start: churn is drawn only there
    shock_k: np.ndarray  # per lifecycle row, the renewal with a price shock (-1 = none)
    shock_price: np.ndarray  # per lifecycle row, the price factor of its shock
    shock_seats: np.ndarray  # per lifecycle row, the seat factor of its shock


@dataclass(frozen=True)
class _Churn:
    """Where each lifecycle row churned: the renewal's index (the grid's width when never) and time (`OPEN`)."""

    k: np.ndarray
    at: np.ndarray


def _draw_renewals(pressures: Pressures, life: pd.DataFrame, clock: Clock) -> _RenewalGrid:
    ren = _renewal_grid(life, clock)
    valid = ren < clock.end
    drawable = valid & (ren >= 0)  # churn is drawn only inside the history
    return _RenewalGrid(at=ren, valid=valid, drawable=drawable,
                        **_draw_shocks(pressures.shock_rng, drawable, pressures.shock_rate))


def _renewal_grid(life: pd.DataFrame, clock: Clock) -> np.ndarray:
    """Billing anniversaries (k = 1, 2, ...) of each lifecycle's paid start; shape (rows, k)."""
    start, bp = life["start"].to_numpy(), life["bp"].to_numpy()
    k_max = int(((clock.end - start) // (28 * DAY) // bp).max()) + 1
    months = np.arange(1, k_max + 1)[None, :] * bp[:, None]
    return add_months(clock, np.repeat(start, k_max), months.ravel()).reshape(len(life), k_max)


def _draw_shocks(rng: np.random.Generator, drawable: np.ndarray, rate: float) -> dict[str, np.ndarray]:
    """A quarter of the lifecycles (x the rate multiplier) get a price shock at one renewal inside the history:
    the price per seat rises 8-20% and the account cuts its seats to 55-85% (shock_k -1 = none)."""
    n = len(drawable)
    choice = np.where(drawable, rng.random(drawable.shape), -1.0).argmax(axis=1)
    chosen = (rng.random(n) < min(1.0, SHOCK_SHARE * rate)) & drawable.any(axis=1)
    return {"shock_k": np.where(chosen, choice, -1), "shock_price": rng.uniform(1.08, 1.2, n),
            "shock_seats": rng.uniform(0.55, 0.85, n)}


def _shock_times(grid: _RenewalGrid) -> np.ndarray:
    return np.where(grid.shock_k >= 0, grid.at[np.arange(len(grid.at)), np.maximum(grid.shock_k, 0)], OPEN)


def _renewal_hazards(rng, acc, life, grid: _RenewalGrid, cum, look: Lookups, pressures: Pressures):
    """True churn probability at each drawable renewal (NaN elsewhere), and the cause terms of each drawable
    renewal in `np.nonzero(grid.drawable)` order."""
    row, k = np.nonzero(grid.drawable)
    due = Renewals(acct=life["acct"].to_numpy()[row], at=grid.at[row, k], bp=life["bp"].to_numpy()[row],
                   shock_at=_shock_times(grid)[row])
    hazard = np.full(grid.at.shape, np.nan)
    hazard[row, k], terms = churn_hazards(rng, acc, cum, look, pressures.champions, due,
                                          pressures.profile.hazard_base)
    return hazard, terms


def _shocks(life: pd.DataFrame, grid: _RenewalGrid, churn: _Churn) -> Shocks:
    """The price shocks that happened: at a renewal inside the history the lifecycle was still alive at."""
    k = np.maximum(grid.shock_k, 0)
    happened = (grid.shock_k >= 0) & grid.valid[np.arange(len(k)), k] & (grid.shock_k < churn.k)
    at = _shock_times(grid)[happened]
    window = np.where(life["bp"].to_numpy()[happened] == 12, SHOCK_WINDOW_DAYS[12], SHOCK_WINDOW_DAYS[1]) * DAY
    return Shocks(acct=life["acct"].to_numpy()[happened], at=at, until=at + window)


def _first_churn(hit: np.ndarray, ren: np.ndarray) -> _Churn:
    last = ren.shape[1]
    churn_k = np.where(hit.any(axis=1), hit.argmax(axis=1), last)
    churn = np.where(churn_k < last, ren[np.arange(len(ren)), np.minimum(churn_k, last - 1)], OPEN)
    return _Churn(k=churn_k, at=churn)


def _paid_rows(rng, life: pd.DataFrame, grid: _RenewalGrid, churn: _Churn, cum: np.ndarray,
               seat_price: np.ndarray) -> pd.DataFrame:
    """Contiguous rows of one lifecycle: a new row at each renewal with an upgrade or a price shock."""
    n = len(life)
    acct, bp = life["acct"].to_numpy(), life["bp"].to_numpy()
    seats, tier, price = life["seats"].to_numpy().copy(), life["tier"].to_numpy().copy(), np.ones(n)
    parts = [(np.arange(n), life["start"].to_numpy(), seats, tier, price)]
    for k in range(grid.at.shape[1]):  # a loop over renewals of vector operations over accounts
        alive = grid.valid[:, k] & (k < churn.k)
        change = alive & (rng.random(n) < np.where(bp == 12, _CHANGE_RATE[12], _CHANGE_RATE[1]))
        grow = rng.random(n) < sigmoid(0.2 + 1.5 * mean_health_before(cum, acct, grid.at[:, k], 30))
        seats, tier = _upgrade(rng, seats, tier, change & grow)
        hike = alive & (grid.shock_k == k)
        price = np.where(hike, price * grid.shock_price, price)
        seats = np.where(hike, np.maximum(1, np.floor(seats * grid.shock_seats)).astype(np.int64), seats)
        moved = np.flatnonzero((change & grow) | hike)
        parts.append((moved, grid.at[moved, k], seats[moved], tier[moved], price[moved]))
    row, start, seats, tier, price = (np.concatenate(p) for p in zip(*parts, strict=True))
    order = np.lexsort((start, row))
    row, start, seats, tier, price = row[order], start[order], seats[order], tier[order], price[order]
    last = np.append(row[1:] != row[:-1], True)
    end = np.where(last, churn.at[row], np.append(start[1:], 0))
    mrr = np.round(seats * seat_price[tier] * life["discount"].to_numpy()[row] * price, 2)
    return _row_frame(acct[row], start, end, mrr, _Terms(plan=tier, seats=seats, trial=False, bp=bp[row]))


def _upgrade(rng, seats, tier, up) -> tuple[np.ndarray, np.ndarray]:
    """Upgrades add seats (sometimes a tier). Contractions come only from price shocks (a churn cause)."""
    n = len(seats)
    resized = np.ceil(seats * rng.uniform(1.1, 1.5, n)).astype(np.int64)
    new_tier = np.clip(tier + (rng.random(n) < 0.3), 0, 3)
    return np.where(up, resized, seats), np.where(up, new_tier, tier)


# --- add-ons and output frames -----------------------------------------------------------------------------


def addon_rows(rng, acc, spans, paid_start, clock, profile: Profile) -> pd.DataFrame:
    """Overlapping add-on rows (small MRR, no seats) for a share of paying accounts (`profile.addon_share` of
    those whose add-on starts before they leave: ~15% in the demo), in their first lifecycle, kept until the account
    churns (a contraction is a price shock's signal, so no add-on is dropped before)."""
    first = spans[spans["life"] == 0]
    acct, hi = first["acct"].to_numpy(), first["hi"].to_numpy()
    n = len(acct)
    day = paid_start[acct] // DAY + np.floor(rng.uniform(20, 400, n)).astype(np.int64)
    start = day * DAY + working_seconds(rng, n)
    end = np.where(hi == clock.end, OPEN, hi)  # ends with the account
    base = acc["seats"].to_numpy()[acct] * np.array(profile.seat_price)[acc["tier"].to_numpy()[acct]]
    mrr = np.round(np.maximum(10.0, base * rng.uniform(0.05, 0.15, n)), 2)
    keep = (rng.random(n) < profile.addon_share) & (start < hi)
    bp = acc["bp"].to_numpy()[acct][keep] if profile.addon_on_plan_terms else 1
    return _row_frame(acct[keep], start[keep], end[keep], mrr[keep], _Terms(plan=_ADDON, seats=0, trial=False, bp=bp))


def term_ends(rows: pd.DataFrame, clock: Clock) -> pd.DataFrame:
    """The rows with the term end a billing system records: each open paid row (trials stay as they are) ends at
    its first billing anniversary after the history, a date in the future of the data (never churn before it has
    passed); a real warehouse's active contracts look like this."""
    open_paid = (rows["end"].to_numpy() == OPEN) & ~rows["trial"].to_numpy(dtype=bool)
    start, bp = rows["start"].to_numpy()[open_paid], rows["bp"].to_numpy()[open_paid]
    periods = np.maximum((clock.end - start) // (31 * DAY) // bp, 0)  # a lower bound on the periods elapsed
    end = add_months(clock, start, periods * bp)
    while (late := end <= clock.end).any():  # one more period until past the history (a few passes)
        periods = np.where(late, periods + 1, periods)
        end = np.where(late, add_months(clock, start, periods * bp), end)
    ends = rows["end"].to_numpy().copy()
    ends[open_paid] = end
    return rows.assign(end=ends)


def subscriptions_frame(rows: pd.DataFrame, ids: pa.Array, clock: Clock, plans: tuple[str, ...]) -> pd.DataFrame:
    """The `subscriptions` table: per account by start, a trial before the paid row starting with it; plans named
    as the profile names them."""
    rows = rows.sort_values(["acct", "start", "trial"], ascending=[True, True, False], kind="stable",
                            ignore_index=True)
    return pd.DataFrame({
        "account_id": take(ids, rows["acct"].to_numpy()),
        "start_at": clock.timestamps(rows["start"].to_numpy()),
        "end_at": clock.timestamps(rows["end"].to_numpy()),
        "mrr": rows["mrr"].to_numpy(dtype=np.float64),
        "plan": take(plans, rows["plan"].to_numpy()),
        "seats": rows["seats"].to_numpy(dtype=np.int64),
        "is_trial": rows["trial"].to_numpy(dtype=bool),
        "billing_period_months": rows["bp"].to_numpy(dtype=np.int64),
    })


def truth_frame(truth: pd.DataFrame, ids: pa.Array, clock: Clock) -> pd.DataFrame:
    """The `sim_truth` table: every renewal of every paid lifecycle inside the history with its true hazard, each
    cause's term in the hazard's logit (0 when idle) and the renewal's true cause (`hazard.true_cause`)."""
    truth = truth.sort_values(["acct", "renewal"], kind="stable", ignore_index=True)
    renewal_at = clock.timestamps(truth["renewal"].to_numpy())
    terms = truth[list(CAUSES)].to_numpy(dtype=np.float64)
    return pd.DataFrame({
        "account_id": take(ids, truth["acct"].to_numpy()),
        "month": renewal_at.astype("datetime64[M]").astype("datetime64[us]"),
        "renewal_at": renewal_at,
        "hazard": truth["hazard"].to_numpy(dtype=np.float64),
        "drawn": truth["drawn"].to_numpy(dtype=bool),
        "lifecycle_start": clock.timestamps(truth["life_start"].to_numpy()),
        "playbook_factor": truth["playbook_factor"].to_numpy(dtype=np.float64),
        **{name: terms[:, i] for i, name in enumerate(CAUSES)},
        "cause": pd.Series(true_cause(terms), dtype="str"),
    })
