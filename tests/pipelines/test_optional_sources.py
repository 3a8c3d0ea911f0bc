"""A warehouse unlike the demo's: without users, tickets, surveys and milestones, and with event names nobody listed
in params, it still trains and scores.

The module trains twice on one small simulated warehouse: a model on every table (`full`), then, once the optional
tables are dropped, a `lean` model whose event names are picked from the training data. The picked names are kept in
the model: scoring reads the model's names, never picking again, and a warehouse that no longer has one of them, or
no longer has the tables a model's features read, is refused with the clear message.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from features.catalog import CHAMPIONS, SUPPORT, VOICE, WORDS, expand_catalog, mix_slugs
from features.config import FeatureConfig
from features.vocabulary import EventVocabulary
from pipelines.config import load_params
from tests.e2e import SMALL, WAREHOUSE, Project, churn
from training.registry import load_model_version

pytestmark = pytest.mark.slow
OPTIONAL = ("users", "tickets", "surveys", "milestones")
WITHOUT_OPTIONAL = {"sources": dict.fromkeys(OPTIONAL)}
PICKED = {"features.core_events": None, "features.value_events": None, "features.event_mix": {"top": 4}}


@dataclass(frozen=True)
class Trained:
    project: Project      # params.yaml: every table, model `full`
    lean: Path            # lean.yaml: without the optional tables and with picked event names, model `lean`
    refused: str          # what training on params.yaml printed once the optional tables were gone
    trained: str          # what training the lean model printed


@pytest.fixture(scope="module")
def trained(make_project) -> Trained:
    project = make_project({"mlflow": {"model_name": "full"}}, simulation=SMALL, name="optional")
    lean = project.variant("lean.yaml", WITHOUT_OPTIONAL | PICKED | {"mlflow": {"model_name": "lean"}})
    project.churn("train")
    with duckdb.connect(str(project.warehouse)) as con:
        for table in OPTIONAL:
            con.execute(f"DROP TABLE {table}")
    return Trained(project, lean, refused=project.churn("train", expect=1), trained=churn(lean, "train"))


def test_params_naming_absent_tables_are_refused_all_in_one_message_with_the_lines_to_paste(trained):
    refused = trained.refused
    assert "Traceback" not in refused
    lines = [line.strip() for line in refused.splitlines()]
    for table in OPTIONAL:
        assert f"sources.{table}.table: table '{table}' does not exist in the warehouse" in refused
    paste = next((i for i, line in enumerate(lines) if line.startswith("to run without them")), None)
    assert paste is not None, refused
    assert [line for line in lines[paste:] if line.endswith(": null")] == [f"{t}: null" for t in OPTIONAL]


def test_without_optional_tables_the_dependent_features_are_left_out_and_the_run_goes_on(trained):
    note = next(line for line in trained.trained.splitlines() if "features left out" in line)
    windows = FeatureConfig().windows_by_kind()
    # Comments and champions (users.role) go with their tables; CS touches stay (the simulated CS team logs
    # cs_actions, which is not switched off here).
    expected = {s.name for s in expand_catalog(SUPPORT + VOICE + WORDS + CHAMPIONS, windows)} | {
        "onboarding_share", "days_to_onboard"}
    left_out = {item.split(" (")[0] for item in note.split(": ", 1)[1].split(", ") if " (needs" in item}
    assert left_out == expected
    churn(trained.lean, "score")


def test_a_model_needing_tables_the_warehouse_no_longer_has_is_refused(trained):
    # The full model needs ticket and survey features this warehouse no longer has: a clear error, no scores.
    refused = churn(trained.project.variant("lean-data-full-model.yaml", WITHOUT_OPTIONAL), "score", expect=1)
    assert "model needs features the warehouse cannot provide" in refused and "open_tickets" in refused
    assert "Traceback" not in refused


def test_picked_event_names_are_kept_in_the_model_and_scoring_needs_every_one(trained, tmp_path):
    assert "event names: core events (picked from the training data)" in trained.trained
    # The training report says which names the features read and that they were picked.
    report = next(line.split("training report:", 1)[1].strip() for line in trained.trained.splitlines()
                  if "training report:" in line)
    assert "core events (picked from the training data)" in (trained.project.root / report).read_text()

    model = load_model_version(load_params(trained.lean).mlflow).model
    vocabulary = EventVocabulary.from_dict(model.vocabulary)
    assert vocabulary.picked == ("core_events", "value_events", "mix_events")
    assert len(vocabulary.core_events) == 5 and len(vocabulary.value_events) == 3 and len(vocabulary.mix_events) == 4
    assert "login" not in vocabulary.core_events + vocabulary.value_events
    assert not set(vocabulary.core_events) & set(vocabulary.value_events)
    mix = [f"mix_{kind}_{slug}" for slug in mix_slugs(list(vocabulary.mix_events)) for kind in ("share", "change")]
    assert set(mix) <= set(model.features)

    # On a copy of the warehouse (the other tests keep theirs), with the module's MLflow store.
    shutil.copy(trained.project.warehouse, tmp_path / WAREHOUSE)
    lean = Project(tmp_path, trained.lean).variant("lean.yaml", {"warehouse.url": f"duckdb://{tmp_path / WAREHOUSE}"})
    copy = Project(tmp_path, lean)
    # Params that would pick other names now do not matter: scoring computes the model's features.
    churn(copy.variant("other.yaml", {"features.event_mix": {"top": 1}}), "score")
    drivers = copy.query("SELECT DISTINCT feature FROM churn_score_drivers")["feature"]
    assert set(drivers) <= set(model.features)

    # The warehouse renames one of the model's mix events: the features that read it cannot be computed.
    gone = next(e for e in vocabulary.mix_events if e not in {"login", *vocabulary.core_events,
                                                              *vocabulary.value_events})
    with duckdb.connect(str(copy.warehouse)) as con:
        con.execute("UPDATE events SET event_name = 'renamed_event' WHERE event_name = ?", [gone])
    refused = copy.churn("score", expect=1)
    assert "model needs features the warehouse cannot provide" in refused, refused
    slug = mix_slugs(list(vocabulary.mix_events))[vocabulary.mix_events.index(gone)]
    assert f"mix_share_{slug}" in refused and "Traceback" not in refused

