"""The feature table: every feature group joined onto the (account_id, as_of) grid, in the warehouse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import ibis.expr.types as ir

from features.catalog import ENGAGEMENT, FeatureSpec, expand_catalog, missing_needs
from features.commercial import compute_subscription_state
from features.config import FeatureConfig
from features.engagement import build_event_rollups, compute_engagement_features, rollup_span
from features.sources import Sources

# The catalog groups the feature table computes.
IMPLEMENTED = ENGAGEMENT

# Columns of the feature table that are not model features: keys, label, and context for the score tables.
CONTEXT_COLUMNS = ("account_id", "as_of", "label", "mrr")


@dataclass(frozen=True)
class FeatureSet:
    """The features a warehouse can provide, and those left out with the source they lack."""

    specs: tuple[FeatureSpec, ...]
    left_out: dict[str, list[str]]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]


def catalog_for(config: FeatureConfig) -> list[FeatureSpec]:
    """The concrete catalog for the configured windows."""
    return expand_catalog(IMPLEMENTED, config.windows_by_kind())


def select_features(config: FeatureConfig, missing_sources: list[str]) -> FeatureSet:
    """Split the catalog into the features the warehouse can provide and those it cannot."""
    keep, left_out = [], {}
    for spec in catalog_for(config):
        lacking = missing_needs(spec, missing_sources)
        if lacking:
            left_out[spec.name] = lacking
        else:
            keep.append(spec)
    return FeatureSet(specs=tuple(keep), left_out=left_out)


def compute_feature_table(sources: Sources, grid: ir.Table, as_of_dates: list[date],
                          config: FeatureConfig) -> tuple[ir.Table, FeatureSet]:
    """Return the feature table expression (context columns + available features) and the feature set.

    Every feature at as-of t reads only source rows with timestamps strictly before t.

    Args:
        grid: (account_id, as_of[, label]) rows; as_of is a midnight timestamp among `as_of_dates`.
        as_of_dates: the distinct as-of dates of the grid; they bound the event span scanned.
    """
    feature_set = select_features(config, sources.missing)
    keys = grid.select("account_id", "as_of")
    state = compute_subscription_state(sources, keys)
    since, until = rollup_span(as_of_dates, config)
    rollups = build_event_rollups(sources, config, since, until)
    engagement = compute_engagement_features(rollups, keys, state, config)
    table = (grid.left_join(state.select("account_id", "as_of", "mrr"), ["account_id", "as_of"])
             .drop("account_id_right", "as_of_right")
             .left_join(engagement, ["account_id", "as_of"]).drop("account_id_right", "as_of_right"))
    context = [c for c in CONTEXT_COLUMNS if c in table.columns]
    return table.select(*context, *feature_set.names), feature_set
