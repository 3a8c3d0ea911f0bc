"""The feature table: every feature group joined onto the (account_id, as_of) grid, in the warehouse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import ibis.expr.types as ir

from features.catalog import (
    CATALOG,
    CORE_EVENT_FEATURES,
    LAST_COMMENT,
    LOGIN_EVENT_FEATURES,
    MIX_CHANGE,
    MIX_SHARE,
    VALUE_EVENT_FEATURES,
    FeatureSpec,
    expand_catalog,
    missing_needs,
    mix_slugs,
    mix_specs,
)
from features.champions import compute_champion_features
from features.commercial import compute_commercial_features, compute_subscription_state
from features.config import FeatureConfig
from features.engagement import build_event_rollups, compute_engagement_features
from features.joins import KEYS, left_join_all
from features.realised import compute_realised_features
from features.sources import Sources
from features.support import compute_support_features
from features.touches import compute_touch_features
from features.value import compute_value_features
from features.vocabulary import EventVocabulary
from features.voice import compute_voice_features
from features.words import compute_words_features

# The groups computed per table beside engagement, and the source table each one needs.
_GROUPS = ((None, compute_commercial_features), (None, compute_value_features),
           ("tickets", compute_support_features), ("surveys", compute_voice_features))

# Columns of the feature table that are not model features: keys, label, and context for the score tables and
# their reasons (the latest survey comment, quoted where its sentiment drives risk).
CONTEXT_COLUMNS = ("account_id", "as_of", "label", "mrr", LAST_COMMENT)


@dataclass(frozen=True)
class FeatureSet:
    """The features a warehouse can provide, and those left out with the source they lack."""

    specs: tuple[FeatureSpec, ...]
    left_out: dict[str, list[str]]
    # The event names the features read, and which were picked automatically (kept in the model).
    vocabulary: EventVocabulary = EventVocabulary()

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    def without(self, lacking: dict[str, list[str]]) -> FeatureSet:
        """The set with the features of `lacking` (name → what they lack) left out too."""
        return FeatureSet(specs=tuple(s for s in self.specs if s.name not in lacking), left_out=self.left_out | {
            name: needs for name, needs in lacking.items() if name in self.names}, vocabulary=self.vocabulary)


def _bound(bases: tuple[str, ...], windows: list[int]) -> list[str]:
    return sorted({base.format(window=w) for base in bases for w in windows})


def features_reading_events(vocabulary: EventVocabulary, absent: list[str], config: FeatureConfig) -> dict:
    """The features that read one of the `absent` event names (name → the events they lack): the login event's
    logins per user, a core event's breadth and adoption features, a value event's time-to-value features, a mix
    event's share and its change."""
    lacking: dict[str, list[str]] = {}

    def add(names, event):
        for name in names:
            lacking.setdefault(name, []).append(f"event '{event}'")

    if config.login_event in absent:   # counted as 0 for every account: set features.login_event
        add(_bound(LOGIN_EVENT_FEATURES, config.windows), config.login_event)
    for event in absent:
        if event in vocabulary.core_events:
            add(_bound(CORE_EVENT_FEATURES, config.windows), event)
        if event in vocabulary.value_events:
            add(_bound(VALUE_EVENT_FEATURES, config.windows), event)
    for event, slug in zip(vocabulary.mix_events, mix_slugs(list(vocabulary.mix_events)), strict=True):
        if event in absent:
            add([f"{MIX_SHARE}{slug}", f"{MIX_CHANGE}{slug}"], event)
    return lacking


def catalog_for(config: FeatureConfig) -> list[FeatureSpec]:
    """The concrete catalog for the configured windows and the mix's event names (none until they are picked)."""
    return expand_catalog(CATALOG, config.windows_by_kind()) + mix_specs(config.event_mix.events or [],
                                                                          config.trend_window_days)


def select_features(config: FeatureConfig, missing_sources: list[str]) -> FeatureSet:
    """Split the catalog into the features the warehouse can provide and those it cannot."""
    keep, left_out = [], {}
    for spec in catalog_for(config):
        lacking = missing_needs(spec, missing_sources + config.unset_needs())
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
    # What the CS team did (cs_actions) is read only as touches: when, and whether it was a holdout (no action).
    sources = sources.for_features()
    feature_set = select_features(config, sources.missing)
    keys = grid.select("account_id", "as_of")
    rollups = build_event_rollups(sources, config, as_of_dates)
    accounts = sources["accounts"].select("account_id", "created_at")
    state = compute_subscription_state(sources, keys).left_join(accounts, "account_id").drop("account_id_right")
    parts = [compute_engagement_features(rollups, keys, state, config)]
    parts += [compute(sources, keys, config) for table, compute in _GROUPS if table is None or sources.has(table)]
    signals = (compute_realised_features(sources, keys, config, as_of_dates),
               compute_champion_features(sources, keys, config, as_of_dates) if sources.has("users") else None,
               compute_words_features(sources, keys, config, as_of_dates) if sources.has("surveys") else None,
               compute_touch_features(sources, keys, config) if sources.has("cs_actions") else None)
    parts += [part for part in signals if part is not None]
    shared = set(grid.columns)
    trimmed = []
    for part in parts:   # a column two groups compute (e.g. mrr) is read from the first one
        trimmed.append(part.drop(*[c for c in part.columns if c in shared and c not in KEYS]))
        shared |= set(part.columns)
    table = left_join_all(grid, trimmed)
    context = [c for c in CONTEXT_COLUMNS if c in shared]
    return table.select(*context, *[n for n in feature_set.names if n not in context]), feature_set
