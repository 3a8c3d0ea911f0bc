"""The feature table compiles to the SQL of the engines the README names but CI cannot reach.

Snowflake, BigQuery and Databricks need accounts this machine does not have, so their runs are not tested; what is
tested is that Ibis can put every feature of the catalog, over every source table, into their dialects (a feature
an engine's compiler cannot express fails here, not on a customer's warehouse).
"""

from __future__ import annotations

from datetime import date, datetime

import ibis
import pytest
from ibis.common.exceptions import OperationNotDefinedError

from features.config import FeatureConfig, LabelConfig
from features.feature_table import compute_feature_table
from features.snapshots import build_snapshots
from features.sources import load_sources
from pipelines.synthetic.config import SimulationConfig
from pipelines.synthetic.generate import generate_warehouse

AS_OFS = [date(2024, 4, 1), date(2024, 5, 1)]
CONFIG = FeatureConfig(core_events=["create_report", "run_automation"], value_events=["create_report"],
                       onboarding_milestones=["kickoff", "first_report"],
                       outcome_events={"won": ["win_deal"], "lost": ["lose_deal"]})


@pytest.fixture(scope="module")
def feature_table(tmp_path_factory):
    con = ibis.duckdb.connect(str(tmp_path_factory.mktemp("dialects") / "warehouse.duckdb"), threads=1)
    for name, frame in generate_warehouse(SimulationConfig(accounts=30, months=6, seed=3,
                                                           start=date(2024, 1, 1))).items():
        if name == "events":  # the optional column the generator leaves out: its path must compile too
            frame = frame.assign(event_count=1)
        con.create_table(name, frame)   # cs_actions included (the simulated CS team): touch features compile too
    sources = load_sources(con, {})
    assert not sources.missing
    grid = build_snapshots(sources, AS_OFS, LabelConfig(), datetime(2024, 7, 1), include_trials=False)
    table, feature_set = compute_feature_table(sources, grid, AS_OFS, CONFIG)
    yield table, feature_set
    con.disconnect()


# Ibis has no exact MEDIAN for BigQuery (only APPROX_QUANTILES), and two features are medians
# (core_adoption_median_days, median_resolution_hours_{window}d): BigQuery is not supported yet (README says so).
# Strict: the day it compiles, this fails and the README must change.
BIGQUERY_HAS_NO_MEDIAN = pytest.mark.xfail(raises=OperationNotDefinedError, strict=True,
                                           reason="ibis compiles no exact median for BigQuery")


@pytest.mark.parametrize("dialect", ["snowflake", "databricks", pytest.param("bigquery", marks=BIGQUERY_HAS_NO_MEDIAN)])
def test_every_feature_compiles_to_the_engines_sql(feature_table, dialect):
    table, feature_set = feature_table
    sql = str(ibis.to_sql(table, dialect=dialect))
    assert not feature_set.left_out and len(feature_set.names) > 100   # every catalog feature, none left out
    for source in ("events", "subscriptions", "tickets", "surveys", "milestones", "users", "cs_actions"):
        assert source in sql, source
    for name in feature_set.names:
        assert name in sql, name
