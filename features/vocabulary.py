"""The event vocabulary the features read: the core events, the value events and the event names of the mix.

A warehouse's event names are its own, and its data team may not know which of them are "core". Whatever params.yaml
leaves empty is picked from the events before a cut-off (at training, the first held-out as-of, so only training data
chooses), kept in the model, and read back from it at scoring: the names are never re-picked there, so a model gets
the features it was trained on, or a clear error when the warehouse no longer has one of its events.

The automatic rules:
- core events: the `core_events_top` names used by the most accounts, the login event left out (what nearly every
  account does is what the product is for);
- value events: the `value_events_top` names used by the most accounts after the core ones (the deeper actions not
  every account reaches: reaching one is the first value the time-to-value features time);
- mix events: the `event_mix.top` names with the most events (login included: a mix turning to logins alone is a sign).
Ties go by name, so the same data picks the same names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import ibis
import pandas as pd

from features.config import FeatureConfig
from features.sources import Sources

KINDS = ("core_events", "value_events", "mix_events")


@dataclass(frozen=True)
class EventVocabulary:
    """The event names of each kind, and which kinds were picked automatically (the others come from params)."""

    core_events: tuple[str, ...] = ()
    value_events: tuple[str, ...] = ()
    mix_events: tuple[str, ...] = ()
    picked: tuple[str, ...] = ()

    @classmethod
    def from_params(cls, config: FeatureConfig) -> EventVocabulary:
        """The names params.yaml gives, nothing picked (a model trained before the vocabulary was recorded)."""
        return cls(tuple(config.core_events), tuple(config.value_events), tuple(config.event_mix.events or ()))

    @classmethod
    def of_model(cls, recorded: dict, config: FeatureConfig) -> EventVocabulary:
        """A model's recorded vocabulary, or for a model trained before it was recorded, the params' names."""
        return cls.from_dict(recorded) if recorded else cls.from_params(config)

    @classmethod
    def from_dict(cls, data: dict) -> EventVocabulary:
        return cls(*(tuple(data.get(kind, ())) for kind in KINDS), picked=tuple(data.get("picked", ())))

    def to_dict(self) -> dict:
        return {kind: list(getattr(self, kind)) for kind in KINDS} | {"picked": list(self.picked)}

    @property
    def names(self) -> set[str]:
        """Every event name the features read."""
        return {*self.core_events, *self.value_events, *self.mix_events}

    def apply(self, config: FeatureConfig) -> FeatureConfig:
        """The feature settings with these names in place of the params' (empty ones included)."""
        mix = config.event_mix.model_copy(update={"events": list(self.mix_events)})
        return config.model_copy(update={"core_events": list(self.core_events),
                                         "value_events": list(self.value_events), "event_mix": mix})

    def describe(self) -> str:
        """One line per kind: the names and where they came from."""
        labels = {"core_events": "core events", "value_events": "value events", "mix_events": "event mix"}
        return "; ".join(f"{labels[kind]} ({'picked from the training data' if kind in self.picked else 'params'}): "
                         f"{', '.join(getattr(self, kind)) or 'none'}" for kind in KINDS)


# Settings that only pick event names at training: scoring reads the model's names (`EventVocabulary`), whatever they
# say now.
_PICKING = {"core_events", "value_events", "core_events_top", "value_events_top", "event_mix"}
# Settings that only some features read, by what those features need (a table, or the setting itself): a model
# without such features does not care about them. The others shape the event features every model has.
_READ_BY = {"support_window_days": "tickets", "high_priorities": "tickets", "survey_window_days": "surveys",
            "onboarding_milestones": "milestones", "admin_roles": "users", "admin_active_days": "users",
            "admin_lost_days": "users", "touch_window_days": "cs_actions",
            "outcome_events": "features.outcome_events", "outcome_window_days": "features.outcome_events",
            "login_event": "features.login_event"}
# List settings compared as sets, and these two without regard to case, as the features read them.
_CASELESS = {"high_priorities", "admin_roles"}


def feature_settings(config: FeatureConfig) -> dict[str, object]:
    """The `features:` settings that define what each feature means, as JSON values; the event names and how they
    are picked are left to the vocabulary."""
    return {key: value for key, value in config.model_dump(mode="json").items() if key not in _PICKING}


def changed_settings(trained: dict[str, object], config: FeatureConfig, needs: set[str]) -> list[str]:
    """How `config` differs from the settings a model was trained with (`feature_settings`), one
    `features.KEY: trained with X, params say Y` per setting that one of its features reads.

    Args:
        needs: what the model's features read: their tables (`tickets`) and settings (`features.outcome_events`).
            A setting the model did not record (newer than it) is not compared; a model that recorded none
            (trained before they were recorded) gives [].
    """
    now = feature_settings(config)
    return [f"features.{key}: trained with {json.dumps(value)}, params say {json.dumps(now.get(key))}"
            for key, value in sorted(trained.items())
            if (key not in _READ_BY or _READ_BY[key] in needs) and _normal(key, value) != _normal(key, now.get(key))]


def _normal(key: str, value):
    if isinstance(value, list):
        return sorted({str(v).lower() if key in _CASELESS else v for v in value}, key=repr)
    if isinstance(value, dict):
        return {k: _normal(key, v) for k, v in value.items()}
    return value


def count_event_names(sources: Sources, until: datetime) -> pd.DataFrame:
    """(event_name, events, accounts) over the events before `until`, computed in the warehouse."""
    events = sources["events"]
    events = events.filter(events.event_at < ibis.timestamp(until))
    n = events.event_count.fill_null(1) if sources.has("events", "event_count") else ibis.literal(1)
    counts = events.mutate(n=n.cast("int64")).group_by("event_name").aggregate(
        events=ibis._.n.sum(), accounts=ibis._.account_id.nunique())
    return counts.execute()


def _top(counts: pd.DataFrame, by: str, n: int, leave_out: set[str]) -> tuple[str, ...]:
    ranked = counts[~counts.event_name.isin(leave_out) & counts.event_name.notna()]
    ranked = ranked.sort_values([by, "event_name"], ascending=[False, True], kind="stable")
    return tuple(ranked.event_name.head(n))


def pick_event_vocabulary(sources: Sources, config: FeatureConfig, until: datetime) -> EventVocabulary:
    """The params' event names, with those left empty picked from the events before `until` (module docstring)."""
    given = EventVocabulary.from_params(config)
    wanted = [kind for kind, empty in zip(KINDS, (not config.core_events, not config.value_events,
                                                  config.event_mix.events is None), strict=True) if empty]
    if not wanted:
        return given
    counts = count_event_names(sources, until)
    core = given.core_events or _top(counts, "accounts", config.core_events_top, {config.login_event})
    value = given.value_events or _top(counts, "accounts", config.value_events_top, {config.login_event, *core})
    mix = _top(counts, "events", config.event_mix.top, set()) if "mix_events" in wanted else given.mix_events
    return EventVocabulary(core, value, mix, picked=tuple(wanted))


def find_absent_events(sources: Sources, vocabulary: EventVocabulary, until: datetime,
                       also: tuple[str, ...] = ()) -> list[str]:
    """The vocabulary's event names, and `also` (the login event), that no event before `until` has (a renamed or
    retired event, another vocabulary's name), sorted."""
    names = sorted({*vocabulary.names, *also})
    if not names:
        return []
    events = sources["events"]
    found = events.filter(events.event_name.isin(names), events.event_at < ibis.timestamp(until))
    present = set(found.select("event_name").distinct().execute()["event_name"])
    return [name for name in names if name not in present]
