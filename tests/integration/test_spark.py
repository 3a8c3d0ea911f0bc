"""The feature table computed on Spark (Ibis's PySpark backend, a local session) equals DuckDB's on the same data.

The simulated warehouse is written once into a DuckDB file and once into Spark tables (Parquet under a temporary
spark.sql.warehouse.dir); the same feature code then runs on each engine.
"""

from __future__ import annotations

import ibis
import pytest
import yaml
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.simulate_run import SOURCE_TABLES
from pipelines.synthetic.config import SimulationConfig
from pipelines.synthetic.generate import generate_warehouse
from pipelines.warehouse import connect_warehouse, prepare_backend, write_tables
from tests.integration.conftest import assert_same_features, features_of, small_params, yaml_params

pyspark_sql = pytest.importorskip(
    "pyspark.sql", reason="pyspark is not installed; the Spark test needs the `spark` extra: pip install -e '.[spark]'")

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    """A local Spark session bound to the loopback interface, with its warehouse and scratch space in a temp folder."""
    root = tmp_path_factory.mktemp("spark")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        session = (
            pyspark_sql.SparkSession.builder.master("local[2]").appName("churn-integration-test")
            .config("spark.sql.warehouse.dir", str(root / "warehouse"))
            .config("spark.local.dir", str(root / "scratch"))
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.session.timeZone", "UTC")  # naive timestamps in, the same naive timestamps out
            .config("spark.sql.shuffle.partitions", "2")  # a small warehouse on a small machine
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        try:
            yield session
        finally:
            session.stop()


@pytest.fixture(scope="module")
def warehouses(spark, tmp_path_factory):
    """Params for the small warehouse in a DuckDB file, with the same source tables also written to Spark."""
    root = tmp_path_factory.mktemp("warehouses")
    params = small_params(f"duckdb://{root}/warehouse.duckdb", root / "mlruns")
    sim = params.simulate
    frames = generate_warehouse(SimulationConfig(accounts=sim.accounts, months=sim.months, seed=sim.seed,
                                                 start=sim.start))
    con = connect_warehouse(params.warehouse.url, params.warehouse.threads, create=True)
    try:
        write_tables(con, frames)
    finally:
        con.disconnect()
    for name in SOURCE_TABLES:
        spark.createDataFrame(frames[name]).write.mode("overwrite").saveAsTable(name)
        spark.table(name).cache()
    return params


def test_spark_computes_the_same_feature_table_as_duckdb(spark, warehouses):
    con = connect_warehouse(warehouses.warehouse.url, warehouses.warehouse.threads)
    try:
        expected = features_of(con, warehouses)
    finally:
        con.disconnect()
    actual = features_of(prepare_backend(ibis.pyspark.connect(spark)), warehouses)

    assert len(expected) > 500 and expected.label.notna().any() and expected.label.isna().any()
    # Spark hands timestamps to pandas in nanoseconds, DuckDB in microseconds: the same instants.
    actual["as_of"] = actual["as_of"].astype(expected["as_of"].dtype)
    assert_same_features(actual, expected)


def test_the_url_pyspark_uses_the_running_session_and_leaves_it_running(spark, warehouses, tmp_path):
    """`warehouse.url: pyspark://` attaches to the process's Spark session, as on a cluster; a stage's disconnect
    must not stop it, or the next stage (and a Databricks notebook) loses it.

    Validation runs there on every table, with tickets mapped to an empty copy: Spark gives a SUM over no rows as
    NaN (not None, as DuckDB), and validation stopped on "cannot convert float NaN to integer"; now the empty table
    is its one error, and every other table passes."""
    spark.table("tickets").limit(0).write.mode("overwrite").saveAsTable("tickets_empty")
    settings = yaml_params("pyspark://", tmp_path / "mlruns")
    settings["sources"]["tickets"] = {"table": "tickets_empty"}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(settings))
    result = CliRunner().invoke(app, ["--params", str(params), "validate"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit | None), \
        result.output + repr(result.exception)
    assert result.output.strip().splitlines()[-1] == (
        "error: validation: 1 error-level failure(s): tickets not_empty (at least one row) fails on 1: 0 rows; "
        "tickets is optional: without such data yet, put `tickets: null` under `sources:` in your params file (in "
        "place of its entry, if any) to run without it")
    # The stage has disconnected: the session still answers, as the next stage (or the notebook) needs it to
    # (a stopped session raises here).
    assert spark.table("accounts").count() == warehouses.simulate.accounts
