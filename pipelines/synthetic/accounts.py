"""Accounts: who signs up and when (a share exist before the history starts, the rest sign up front-loaded), with
their firmographics (name, segment, industry, region, CS owner), commercial terms (seats, plan tier, billing
period, discount, whether they start on a trial) and latent traits (drawn in `health`), and the `accounts` output
frame; the shares and sizes are the company `Profile`'s. What happens to the accounts' subscriptions afterwards
lives in `contracts`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.synthetic.clock import DAY, Clock
from pipelines.synthetic.draws import pick, working_seconds
from pipelines.synthetic.frames import take
from pipelines.synthetic.health import draw_latents
from pipelines.synthetic.profiles import Profile

TRIAL_DAYS = 14

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

_TIER_SHARE = np.array([[0.65, 0.35, 0.0, 0.0], [0.0, 0.6, 0.4, 0.0], [0.0, 0.0, 0.45, 0.55]])  # by segment


def draw_accounts(rng: np.random.Generator, n: int, clock: Clock, profile: Profile) -> pd.DataFrame:
    """Accounts in sign-up order: a share (the profile's, 25% in the demo) exist already at the start, the rest
    sign up, front-loaded."""
    pre = rng.random(n) < profile.pre_existing_share
    day = np.where(pre, -rng.uniform(TRIAL_DAYS + 1, profile.pre_existing_days, n),
                   clock.days * rng.beta(1.0, 1.5, n))
    created = np.floor(day).astype(np.int64) * DAY + working_seconds(rng, n)
    order = np.argsort(created, kind="stable")
    acc = pd.DataFrame({"created": created[order], "pre": pre[order]})
    acc["segment"] = rng.choice(3, size=n, p=profile.segment_share)
    acc = acc.assign(**_draw_firmographics(rng, n))
    acc = acc.assign(**_draw_commercials(rng, acc["segment"].to_numpy(), profile))
    return acc.assign(**draw_latents(rng, acc["segment"].to_numpy(), acc["seats"].to_numpy()))


def _draw_firmographics(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    def draw(options: tuple[str, ...], p: tuple[float, ...] | None = None) -> np.ndarray:
        return np.array(options, dtype=object)[rng.choice(len(options), size=n, p=p)]

    return {
        "name": draw(_NAME_HEADS) + draw(_NAME_TAILS) + " " + draw(_NAME_SUFFIXES),
        "industry": draw(_INDUSTRIES),
        "region": draw(_REGIONS, _REGION_SHARE),
        "csm_owner": draw(_CSM_OWNERS),
    }


def _draw_commercials(rng: np.random.Generator, seg: np.ndarray, profile: Profile) -> dict[str, np.ndarray]:
    n, seats_range = len(seg), np.array(profile.seats_range)
    seats = np.exp(rng.normal(np.log(np.array(profile.seats_median)[seg]), 0.5))
    seats = np.clip(np.round(seats), seats_range[seg, 0], seats_range[seg, 1]).astype(np.int64)
    annual = rng.random(n) < np.array(profile.annual_share)[seg]
    return {
        "bp": np.where(annual, 12, 1),
        "seats": seats,
        "tier": pick(rng, _TIER_SHARE[seg]),
        "discount": rng.uniform(0.85, 1.05, n) * np.where(annual, 0.85, 1.0),
        "trial": rng.random(n) < np.array(profile.trial_share)[seg],
    }


def accounts_frame(acc: pd.DataFrame, ids: pa.Array, clock: Clock, profile: Profile) -> pd.DataFrame:
    """The `accounts` table (segments named as the profile names them)."""
    return pd.DataFrame({
        "account_id": take(ids, np.arange(len(acc))),
        "created_at": clock.timestamps(acc["created"].to_numpy()),
        "name": pd.Series(acc["name"].to_numpy(), dtype="str"),
        "segment": take(profile.segments, acc["segment"].to_numpy()),
        "industry": pd.Series(acc["industry"].to_numpy(), dtype="str"),
        "region": pd.Series(acc["region"].to_numpy(), dtype="str"),
        "csm_owner": pd.Series(acc["csm_owner"].to_numpy(), dtype="str"),
    })
