"""The model's lead over a baseline with a 95% interval (a bootstrap over accounts), checked against simulated truth:
where two predictors are equally good by construction, the interval holds 0 about 95% of the time."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from training.evaluate import lead_interval


def _company(rng: np.random.Generator, accounts: int, rows_per_account: int):
    """Accounts with a lasting risk seen at a few as-of dates, and two equally noisy readings of it."""
    account = np.repeat(np.arange(accounts), rows_per_account)
    risk = np.repeat(rng.normal(0, 1, accounts), rows_per_account) + rng.normal(0, 0.3, len(account))
    labels = (rng.random(len(account)) < 1 / (1 + np.exp(-(risk - 2)))).astype(int)

    def reading() -> np.ndarray:
        return 1 / (1 + np.exp(-(risk + rng.normal(0, 1, len(account)) - 2)))

    return labels, reading(), reading(), account


def test_the_estimate_is_the_difference_on_the_rows_and_positive_when_the_first_is_better():
    rng = np.random.default_rng(3)
    labels, first, _, account = _company(rng, 400, 2)
    noise = 1 / (1 + np.exp(-rng.normal(0, 1, len(labels))))
    estimate, low, high = lead_interval(labels, first, noise, account, "roc_auc", resamples=300)
    assert estimate == pytest.approx(roc_auc_score(labels, first) - roc_auc_score(labels, noise))
    assert 0 < low < estimate < high
    brier, low, high = lead_interval(labels, first, noise, account, "brier", resamples=300)
    assert brier == pytest.approx(np.mean((noise - labels) ** 2) - np.mean((first - labels) ** 2))
    assert low > 0   # the first's Brier score is lower: it leads
    assert lead_interval(labels, first, first, account, "roc_auc", resamples=50) == (0.0, 0.0, 0.0)


def test_the_weighted_roc_auc_is_sklearns_ties_and_all():
    rng = np.random.default_rng(8)
    labels, first, _, account = _company(rng, 300, 2)
    rounded = np.round(first, 2)   # many ties
    noise = rng.random(len(labels))
    weights = rng.integers(0, 4, len(labels)).astype(float)
    estimate, _, _ = lead_interval(labels, rounded, noise, account, "roc_auc", resamples=20)
    assert estimate == pytest.approx(roc_auc_score(labels, rounded) - roc_auc_score(labels, noise), abs=1e-12)
    from training.evaluate import _ranked
    assert _ranked(labels, rounded)(weights) == pytest.approx(roc_auc_score(labels, rounded, sample_weight=weights),
                                                              abs=1e-12)


def test_between_two_equally_good_predictors_the_interval_holds_zero_about_95_percent_of_the_time():
    rng = np.random.default_rng(11)
    covered = []
    for _ in range(60):
        labels, first, second, account = _company(rng, 150, 3)
        _, low, high = lead_interval(labels, first, second, account, "roc_auc", resamples=400,
                                     seed=int(rng.integers(2**31)))
        covered.append(low <= 0 <= high)
    assert 0.88 <= np.mean(covered) <= 1.0, np.mean(covered)


def test_rows_of_one_account_are_drawn_together():
    """An account's rows move together: the interval over accounts is wider than one treating rows as independent
    would be, for data where each account's rows repeat one outcome."""
    rng = np.random.default_rng(5)
    labels, first, second, account = _company(rng, 100, 1)
    repeat = 6
    clustered = lead_interval(np.repeat(labels, repeat), np.repeat(first, repeat), np.repeat(second, repeat),
                              np.repeat(account, repeat), "roc_auc", resamples=150)
    independent = lead_interval(np.repeat(labels, repeat), np.repeat(first, repeat), np.repeat(second, repeat),
                                np.arange(len(labels) * repeat), "roc_auc", resamples=150)
    assert clustered[2] - clustered[1] > 1.8 * (independent[2] - independent[1])


def test_accounts_must_align_with_the_rows():
    with pytest.raises(ValueError, match="accounts has 2 rows but labels has 3"):
        lead_interval([0, 1, 0], [0.1, 0.8, 0.3], [0.2, 0.6, 0.1], ["a", "b"], "roc_auc")
    with pytest.raises(ValueError, match="metric must be roc_auc or brier"):
        lead_interval([0, 1, 0], [0.1, 0.8, 0.3], [0.2, 0.6, 0.1], ["a", "b", "c"], "lift")
