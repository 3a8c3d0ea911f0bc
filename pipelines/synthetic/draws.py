"""Draw primitives shared by every part of the company: a time of day in working hours, one categorical draw
per row of a probability matrix, and the logistic link that turns a logit into the probability of a draw.
"""

from __future__ import annotations

import numpy as np


def working_seconds(rng: np.random.Generator, n: int, mean_hour: float = 12.5) -> np.ndarray:
    """Seconds after midnight, spread through working hours."""
    hours = np.clip(rng.normal(mean_hour, 2.6, n), 7.5, 19.5)
    return np.round(hours * 3600).astype(np.int64)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def pick(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of `probs` (rows sum to 1)."""
    cum = np.cumsum(probs, axis=1)
    return np.minimum((rng.random(len(probs))[:, None] > cum).sum(axis=1), probs.shape[1] - 1)
