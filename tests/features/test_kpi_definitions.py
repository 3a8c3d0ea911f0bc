"""The KPI definitions: complete and consistent, and the committed docs/KPIS.md generated from them is current."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from features.kpis.definitions import (
    GRAINS,
    GROUPS,
    KPIS,
    UNITS,
    expand_kpis,
    format_kpi,
    format_kpi_change,
    kpis_markdown,
)
from pipelines.config import load_params

ROOT = Path(__file__).resolve().parents[2]


def test_every_definition_is_complete():
    specs = expand_kpis(KPIS, [7, 14])
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    for spec in specs:
        assert spec.group in GROUPS and spec.unit in UNITS and spec.grain in GRAINS, spec.name
        assert spec.better in ("up", "down", None) and spec.needs and spec.title and spec.formula, spec.name
        assert "{" not in spec.name + spec.title + spec.formula, spec.name
    assert all(s.day in (7, 14) for s in specs if s.per_day)              # bound to their days
    assert [s.name for s in specs if s.name.startswith("first_value_by_day_")] == ["first_value_by_day_7",
                                                                                "first_value_by_day_14"]


def test_the_issues_kpis_are_all_defined():
    names = {s.name for s in expand_kpis(KPIS, [7, 14, 30, 60, 90])}
    assert {"logo_churn_rate", "revenue_churn_rate", "mrr", "new_mrr", "expansion_mrr", "contraction_mrr",
            "churned_mrr", "gross_revenue_retention", "net_revenue_retention", "gross_revenue_retention_12m",
            "net_revenue_retention_12m", "active_accounts", "arpu", "customer_lifetime_value", "nps", "csat", "ces",
            "first_contact_resolution", "median_resolution_hours", "stickiness", "seats_in_use"} <= names
    for stem in ("first_value", "onboarded", "trial_converted", "expanded"):
        assert {f"{stem}_by_day_{d}" for d in (7, 14, 30, 60, 90)} <= names
    assert {f"churn_rate_ttv_q{i}" for i in range(1, 5)} <= names


def test_committed_kpi_docs_are_current():
    specs = expand_kpis(KPIS, load_params(ROOT / "params.yaml").kpis.ttv_days)
    committed = (ROOT / "docs" / "KPIS.md").read_text()
    assert committed == kpis_markdown(specs), "docs/KPIS.md is stale: run `make docs`"


def test_a_stale_kpi_doc_is_caught():
    """Guard against a check that cannot fail: other days, or a changed formula, give another document."""
    specs = expand_kpis(KPIS, [7, 14, 30, 60, 90])
    assert kpis_markdown(expand_kpis(KPIS, [7, 30])) != kpis_markdown(specs)
    changed = [s if s.name != "nps" else replace(s, formula="promoters ÷ responses") for s in specs]
    assert kpis_markdown(changed) != kpis_markdown(specs)


def test_values_and_changes_read_in_their_unit():
    spec = {s.name: s for s in KPIS}
    assert format_kpi(spec["logo_churn_rate"], 0.0213) == "2.1%"
    assert format_kpi(spec["mrr"], 512340.4) == "512,340"
    assert format_kpi(spec["nps"], -12.4) == "-12" and format_kpi(spec["nps"], None) == "–"
    assert format_kpi_change(spec["logo_churn_rate"], 0.025, 0.02) == "+0.5 pp"
    assert format_kpi_change(spec["mrr"], 110.0, 100.0) == "+10.0%"
    assert format_kpi_change(spec["nps"], 10.0, 12.5) == "-2.5" and format_kpi_change(spec["mrr"], 1.0, None) == "–"
