"""The catalog: complete, consistent, and the committed docs generated from it are current."""

from __future__ import annotations

from pathlib import Path

from features.catalog import CATALOG, GROUPS, ROLES, UNITS, WINDOW_KINDS, catalog_markdown, render_reason
from features.config import FeatureConfig
from features.feature_table import catalog_for
from pipelines.config import load_params

ROOT = Path(__file__).resolve().parents[2]


def test_every_entry_is_complete():
    names = [spec.name for spec in CATALOG]
    assert len(names) == len(set(names))
    for spec in CATALOG:
        assert spec.group in GROUPS and spec.unit in UNITS and spec.direction in {"up", "down", "mixed"}
        assert spec.window_kind in (None, *WINDOW_KINDS)
        assert ("{window}" in spec.name) == (spec.window_kind not in (None, "trend")), spec.name
        assert spec.description and spec.reason and spec.needs


def test_reasons_never_show_a_raw_feature_name():
    for spec in catalog_for(FeatureConfig()):
        sentence = render_reason(spec, "Growth" if spec.is_categorical else 0.42)
        assert "_" not in sentence and "{" not in sentence, sentence  # no snake_case identifier, no placeholder


def test_committed_feature_docs_are_current():
    specs = catalog_for(load_params(ROOT / "params.yaml").features)
    committed = (ROOT / "docs" / "FEATURES.md").read_text()
    assert committed == catalog_markdown(specs), "docs/FEATURES.md is stale: run `make docs`"


def test_context_is_timing_and_who_and_everything_else_is_a_cause():
    assert {s.role for s in CATALOG} <= set(ROLES)
    context = {s.name for s in CATALOG if s.role == "context"}
    assert context == {"days_to_renewal", "billing_period_months", "tenure_days", "plan", "mrr", "seats", "in_trial"}
    # What a CS team can change stays a cause: contraction, price increases, seat use, time to value, tickets,
    # answers, usage.
    causes = {s.name for s in CATALOG if s.role == "cause"}
    assert {"mrr_change_90d", "downgrades_365d", "price_increases_365d", "seat_utilisation_{window}d",
            "days_to_first_value", "open_high_priority_tickets", "last_nps", "active_users_trend"} <= causes
