"""Batch scoring: probabilities, tiers, ranks, reasons and recommended actions for every account active at an as-of."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from operator import itemgetter

import numpy as np
import pandas as pd

from features.catalog import FeatureSpec
from serving.config import ScoringConfig
from serving.experiments import assign_arms, hold_out_actions
from serving.explain import (
    RAISES,
    Benchmarks,
    ExplainContext,
    explain_predictions,
    probability_points,
    rank_drivers,
)
from serving.playbooks import dominant_groups, recommend_actions
from training.health import HealthScore
from training.train import TrainedModel

DRIVER_COLUMNS = ["account_id", "as_of", "rank", "feature", "role", "value", "contribution", "probability_points",
                  "direction", "reason"]


@dataclass(frozen=True)
class ScoredModel:
    """The model to score with and the provenance written on every row."""

    model: TrainedModel
    name: str
    version: str


@dataclass(frozen=True)
class ScoringContext:
    """What scoring needs beside the model and the rows: the catalog, the scoring config, and what the health
    score and the reasons are computed against.

    Attributes:
        specs: catalog entries by feature name, for the reasons in words and the playbook groups.
        config: tiers, reasons per account and playbooks.
        health: the rule-based health score (churn_scores.health_score), as fitted with the model; None: none.
        benchmarks: what retained accounts look like (`compute_benchmarks` on the training data), quoted beside
            each reason; without them the reasons carry no comparison.
        attributes: account attributes (account_id and the benchmarks' `by` column, e.g. segment), so each
            account is compared with retained accounts of its own segment; else with all retained accounts.
    """

    specs: dict[str, FeatureSpec]
    config: ScoringConfig
    health: HealthScore | None = None
    benchmarks: Benchmarks | None = None
    attributes: pd.DataFrame | None = None

    def explain_context(self) -> ExplainContext:
        """The part of it that picks drivers and puts them in words."""
        return ExplainContext(self.specs, self.config.top_reasons, self.config.protective_factors, self.benchmarks)


def tier_thresholds(config: ScoringConfig, base_rate: float | None) -> dict[str, float]:
    """Probability thresholds per tier: as given (`tiers_by: probability`), or each lift × the training churn rate,
    capped below 1 (`tiers_by: lift`).

    Raises:
        ValueError: tiers by lift without a base rate (a model trained before it was saved).
    """
    if config.tiers_by == "probability":
        return dict(config.tiers)
    if base_rate is None:
        raise ValueError("scoring.tiers_by: lift needs the training churn rate, which this model does not carry "
                         "(retrain it, or set scoring.tiers_by: probability)")
    return {name: min(lift * base_rate, 0.99) for name, lift in config.lift.items()}


def assign_tiers(probabilities: np.ndarray, config: ScoringConfig, ranks: np.ndarray | None = None,
                 base_rate: float | None = None) -> np.ndarray:
    """Name each account's tier.

    By probability or lift: the highest tier whose threshold it reaches (`tier_thresholds`). By capacity: the tier
    of the smallest top N its risk rank (1 = riskiest of its as-of) falls in. Else the lowest tier.

    Args:
        ranks: risk rank of each account within its as-of; by capacity without ranks, all rows are one as-of.
        base_rate: the model's training churn rate (tiers by lift).
    """
    probabilities = np.asarray(probabilities, dtype=float)
    tiers = np.full(len(probabilities), config.lowest_tier, dtype=object)
    if config.tiers_by != "capacity":
        for name, threshold in sorted(tier_thresholds(config, base_rate).items(), key=lambda kv: kv[1]):
            tiers[probabilities >= threshold] = name
        return tiers
    if ranks is None:
        ranks = pd.Series(probabilities).rank(method="first", ascending=False).to_numpy()
    for name, count in sorted(config.capacity.items(), key=lambda kv: -kv[1]):
        tiers[np.asarray(ranks) <= count] = name
    return tiers


def rank_and_tier(probabilities: np.ndarray, as_ofs, config: ScoringConfig,
                  base_rate: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each row's risk rank within its as-of (1 = riskiest; ties by row order) and its tier (`assign_tiers`)."""
    ranks = pd.Series(probabilities).groupby(np.asarray(as_ofs)).rank(method="first", ascending=False)
    ranks = ranks.astype("int64").to_numpy()
    return ranks, assign_tiers(probabilities, config, ranks, base_rate)


def describe_tiers(config: ScoringConfig, base_rate: float | None) -> str:
    """How the tiers were drawn, in one sentence for the report."""
    if config.tiers_by == "capacity":
        parts = [f"{name}: the {count:,} riskiest accounts" for name, count in
                 sorted(config.capacity.items(), key=lambda kv: kv[1])]
        return f"Tiers by capacity (risk rank within the as-of): {'; '.join(parts)}; {config.lowest_tier}: the rest."
    if config.tiers_by == "lift" and base_rate is None:
        parts = [f"{name}: at least {lift:g}× the training churn rate" for name, lift in
                 sorted(config.lift.items(), key=lambda kv: -kv[1])]
        return f"Tiers by lift: {'; '.join(parts)}; {config.lowest_tier}: below."
    thresholds = sorted(tier_thresholds(config, base_rate).items(), key=lambda kv: -kv[1])
    if config.tiers_by == "lift":
        parts = [f"{name}: churn probability from {t:.1%} ({config.lift[name]:g}× the rate)" for name, t in thresholds]
        return (f"Tiers by lift over the model's training churn rate of {base_rate:.1%}: {'; '.join(parts)}; "
                f"{config.lowest_tier}: below.")
    parts = [f"{name}: churn probability from {t:.0%}" for name, t in thresholds]
    return f"Tiers by fixed probability: {'; '.join(parts)}; {config.lowest_tier}: below."


def check_features_available(model: TrainedModel, table: pd.DataFrame) -> None:
    """Raise ValueError naming the features the model needs that the feature table lacks."""
    lacking = [f for f in model.features if f not in table.columns]
    if lacking:
        raise ValueError(f"model needs features the warehouse cannot provide: {', '.join(lacking)} "
                         "(retrain on this warehouse, or map the sources these features need)")


def check_features_described(model: TrainedModel, specs: dict[str, FeatureSpec]) -> None:
    """Raise ValueError naming the model's features the catalog does not describe: without a role, group and
    sentence, such a feature could be neither a reason nor context."""
    unknown = [f for f in model.features if f not in specs]
    if unknown:
        raise ValueError(f"model uses features the feature catalog does not describe: {', '.join(unknown)} "
                         "(retrain with this version's catalog)")


def _attribute(table: pd.DataFrame, name: str | None, attributes: pd.DataFrame | None) -> pd.Series | None:
    """Each row's value of an account attribute (e.g. segment): from the table, else from `attributes`."""
    if name is None:
        return None
    if name in table.columns:
        return table[name]
    if attributes is not None and name in attributes.columns:
        by_account = attributes.assign(account_id=attributes["account_id"].astype(str)).drop_duplicates("account_id")
        return table["account_id"].astype(str).map(by_account.set_index("account_id")[name])
    return None


def _segments(table: pd.DataFrame, benchmarks: Benchmarks | None,
              attributes: pd.DataFrame | None) -> pd.Series | None:
    """Each row's value of the attribute the benchmarks are split by."""
    return None if benchmarks is None else _attribute(table, benchmarks.by, attributes)


def health_scores(table: pd.DataFrame, context: ScoringContext) -> np.ndarray:
    """churn_scores.health_score: the model's health score with each account's segment thresholds (NaN without
    one)."""
    if context.health is None:
        return np.full(len(table), np.nan)
    segments = _attribute(table, context.health.segment_by, context.attributes)
    return context.health.score(table, segments).to_numpy()


def _explain(scored: ScoredModel, table: pd.DataFrame, context: ScoringContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    contributions = explain_predictions(scored.model, table)
    segments = _segments(table, context.benchmarks, context.attributes)
    drivers = rank_drivers(contributions, table, context.explain_context(), segments,
                           probability_points(contributions, scored.model.calibrator))
    return contributions, drivers


def _joined_reasons(drivers: pd.DataFrame) -> pd.Series:
    """Each row's risk reasons in rank order, joined by "; ", each sentence once (two features can say the same
    thing, e.g. "No sessions in the last 7 days"). `drivers` is sorted by row, then rank."""
    joined = {row: "; ".join(dict.fromkeys(reason for _, reason in group))
              for row, group in groupby(zip(drivers["row"].to_numpy(), drivers["reason"].to_numpy(), strict=True),
                                        key=itemgetter(0))}
    return pd.Series(joined, dtype=object)


def renewal_timing(table: pd.DataFrame) -> pd.DataFrame:
    """The context a CS team plans around, one row per table row: renewal_date, days_to_renewal and
    billing_period_months (missing where the warehouse does not say)."""
    days = pd.to_numeric(table["days_to_renewal"], errors="coerce") if "days_to_renewal" in table else (
        pd.Series(np.nan, index=table.index))
    period = pd.to_numeric(table["billing_period_months"], errors="coerce") if "billing_period_months" in table else (
        pd.Series(np.nan, index=table.index))
    as_of = pd.to_datetime(table["as_of"]).dt.normalize()
    renewal = (as_of + pd.to_timedelta(days, unit="D")).dt.date
    return pd.DataFrame({"renewal_date": renewal.where(days.notna(), None).astype(object),
                         "days_to_renewal": days.round().astype("Int64"),
                         "billing_period_months": period.round().astype("Int64")})


def score_accounts(scored: ScoredModel, table: pd.DataFrame, context: ScoringContext,
                   scored_at: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every row of the feature table; return (churn_scores rows, churn_score_drivers rows).

    Each account a playbook matches carries the playbook's id and, with `config.experiments` enabled, its arm
    (serving/experiments.py): held-back accounts get no action, owner, urgency or due date.

    Args:
        table: feature table rows (account_id, as_of, mrr, features) for one or more as-of dates.
        context: the catalog, scoring config, health score components, benchmarks and account attributes.
        scored_at: the scoring time written on every row.
    """
    check_features_available(scored.model, table)
    check_features_described(scored.model, context.specs)
    table = table.reset_index(drop=True)
    probability = scored.model.predict(table)
    contributions, drivers = _explain(scored, table, context)
    # Two features can say the same thing ("No sessions in the last 7 days"): each sentence once.
    reasons = _joined_reasons(drivers[(drivers["direction"] == RAISES) & (drivers["role"] == "cause")])
    ranks, tiers = rank_and_tier(probability, table["as_of"].to_numpy(), context.config,
                                 scored.model.base_rate)
    as_ofs = pd.to_datetime(table["as_of"]).dt.date
    timing = renewal_timing(table)
    actions = recommend_actions(tiers, dominant_groups(contributions, context.specs), timing["days_to_renewal"],
                                as_ofs.to_numpy(), context.config.playbooks, timing["billing_period_months"])
    arms = assign_arms(table["account_id"].astype(str).to_numpy(), actions["playbook"].to_numpy(),
                       as_ofs.to_numpy(), context.config.experiments)
    actions = hold_out_actions(actions, arms)
    scores = pd.DataFrame({
        "account_id": table["account_id"].astype(str),
        "as_of": as_ofs,
        "churn_probability": probability,
        "risk_tier": tiers,
        "risk_rank": ranks,
        "health_score": health_scores(table, context),
        "mrr": table["mrr"].astype(float),
        "top_reasons": reasons.reindex(range(len(table))).fillna("").to_numpy(),
        "recommended_action": actions["recommended_action"].to_numpy(),
        "owner_role": actions["owner_role"].to_numpy(),
        "urgency": actions["urgency"].to_numpy(),
        "due_by": actions["due_by"].to_numpy(),
        "playbook": actions["playbook"].to_numpy(),
        "arm": arms,
        **{column: timing[column].to_numpy() for column in timing.columns},
        "model_name": scored.name,
        "model_version": scored.version,
        "scored_at": pd.Timestamp(scored_at),
    })
    drivers = drivers.assign(account_id=scores["account_id"].to_numpy()[drivers["row"]],
                             as_of=scores["as_of"].to_numpy()[drivers["row"]])
    return scores, drivers[DRIVER_COLUMNS]
