"""Event names picked at training are kept in the model: scoring reads the model's names, never picking again, and a
warehouse that no longer has one of them is refused with the clear message."""

from __future__ import annotations

import duckdb
import pytest

from features.catalog import mix_slugs
from features.vocabulary import EventVocabulary
from pipelines.config import load_params
from tests.e2e import churn
from training.registry import load_model_version

pytestmark = pytest.mark.slow


def test_picked_event_names_are_kept_in_the_model_and_scoring_needs_every_one(make_project):
    project = make_project({"features.core_events": None, "features.value_events": None,
                            "features.event_mix": {"top": 4}})
    trained = project.churn("train")
    assert "event names: core events (picked from the training data)" in trained
    # The training report says which names the features read and that they were picked.
    report = next(line.split("training report:", 1)[1].strip() for line in trained.splitlines()
                  if "training report:" in line)
    assert "core events (picked from the training data)" in (project.root / report).read_text()

    model = load_model_version(load_params(project.params).mlflow).model
    vocabulary = EventVocabulary.from_dict(model.vocabulary)
    assert vocabulary.picked == ("core_events", "value_events", "mix_events")
    assert len(vocabulary.core_events) == 5 and len(vocabulary.value_events) == 3 and len(vocabulary.mix_events) == 4
    assert "login" not in vocabulary.core_events + vocabulary.value_events
    assert not set(vocabulary.core_events) & set(vocabulary.value_events)
    mix = [f"mix_{kind}_{slug}" for slug in mix_slugs(list(vocabulary.mix_events)) for kind in ("share", "change")]
    assert set(mix) <= set(model.features)

    # Params that would pick other names now do not matter: scoring computes the model's features.
    other = project.variant("other.yaml", {"features.event_mix": {"top": 1}})
    churn(other, "score")
    drivers = project.query("SELECT DISTINCT feature FROM churn_score_drivers")["feature"]
    assert set(drivers) <= set(model.features)

    # The warehouse renames one of the model's mix events: the features that read it cannot be computed.
    gone = next(e for e in vocabulary.mix_events if e not in {"login", *vocabulary.core_events,
                                                              *vocabulary.value_events})
    with duckdb.connect(str(project.warehouse)) as con:
        con.execute("UPDATE events SET event_name = 'renamed_event' WHERE event_name = ?", [gone])
    refused = project.churn("score", expect=1)
    assert "model needs features the warehouse cannot provide" in refused, refused
    slug = mix_slugs(list(vocabulary.mix_events))[vocabulary.mix_events.index(gone)]
    assert f"mix_share_{slug}" in refused and "Traceback" not in refused
