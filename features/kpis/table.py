"""The KPI table: every KPI the warehouse and the settings allow, as long rows (month, segment, kpi, value,
numerator, denominator), computed in the warehouse."""

from __future__ import annotations

from dataclasses import dataclass

import ibis.expr.types as ir

from features.config import FeatureConfig, LabelConfig
from features.kpis.config import KpiConfig
from features.kpis.definitions import KPIS, KpiSpec, expand_kpis, missing_kpi_needs
from features.kpis.experience import compute_survey_kpis, compute_ticket_kpis
from features.kpis.months import COLUMNS, KpiMonths, account_segments
from features.kpis.revenue import compute_account_months, compute_boundary_states, compute_revenue_kpis
from features.kpis.ttv import compute_ttv_kpis
from features.kpis.usage import compute_usage_kpis
from features.sources import Sources

# Settings a KPI may need, and the feature setting that must not be empty for it.
_SETTINGS = ("value_events", "onboarding_milestones", "core_events")


@dataclass(frozen=True)
class KpiSet:
    """The KPIs the warehouse can give, and those left out with what they lack."""

    specs: tuple[KpiSpec, ...]
    left_out: dict[str, list[str]]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]


def select_kpis(config: KpiConfig, features: FeatureConfig, missing_sources: list[str]) -> KpiSet:
    """Split the KPIs into those the warehouse and the settings allow and those they do not.

    A setting counts as missing (`features.value_events`, ...) when it is empty.
    """
    missing = [*missing_sources, *[f"features.{s}" for s in _SETTINGS if not getattr(features, s)]]
    keep, left_out = [], {}
    for spec in expand_kpis(KPIS, config.ttv_days):
        lacking = missing_kpi_needs(spec, missing)
        if lacking:
            left_out[spec.name] = lacking
        else:
            keep.append(spec)
    return KpiSet(specs=tuple(keep), left_out=left_out)


@dataclass(frozen=True)
class KpiInputs:
    """The per-account tables several KPI groups read; worth materialising once (`Table.cache`)."""

    states: ir.Table  # compute_boundary_states
    account_months: ir.Table  # compute_account_months


def build_kpi_inputs(sources: Sources, months: KpiMonths, label: LabelConfig,
                     states: ir.Table | None = None) -> KpiInputs:
    """The MRR and seats on every month boundary, and each account's settled months (churn and MRR movements).

    Args:
        states: the boundary states when already materialised; built here otherwise.
    """
    states = compute_boundary_states(sources, months) if states is None else states
    return KpiInputs(states=states, account_months=compute_account_months(sources, states, months, label))


def compute_kpi_table(sources: Sources, inputs: KpiInputs, months: KpiMonths, config: KpiConfig,
                      features: FeatureConfig) -> tuple[ir.Table, KpiSet]:
    """Return the KPI table expression (COLUMNS, month a midnight timestamp) and the KPI set.

    Every KPI of `KpiSet.specs` is computed per month (or sign-up month) for each segment of `config.segment_by`
    and for all accounts (segment `all`); churn KPIs for settled months only (see docs/KPIS.md).
    """
    kpi_set = select_kpis(config, features, sources.missing)
    names = set(kpi_set.names)
    segments = account_segments(sources, config.segment_by)
    parts = compute_revenue_kpis(inputs.states, inputs.account_months, months, segments, config.gross_margin)
    if "nps" in names:
        parts += compute_survey_kpis(sources, months, segments)
    if "median_resolution_hours" in names:
        parts += compute_ticket_kpis(sources, months, segments)
    parts += compute_usage_kpis(sources, inputs.states, months, segments, names, features.core_events)
    parts += compute_ttv_kpis(sources, inputs.account_months, months, segments, features, config.ttv_days, names)
    table = parts[0].union(*parts[1:], distinct=False)
    return table.select(*COLUMNS), kpi_set
