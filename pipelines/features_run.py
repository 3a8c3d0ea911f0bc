"""The features stage: snapshots, labels and features for an as-of grid, computed in the warehouse; shared by
`train`, `score` and `report`, which need the same feature frame."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

import ibis
import pandas as pd

from features.config import FeatureConfig
from features.feature_table import (
    CONTEXT_COLUMNS,
    FeatureSet,
    catalog_for,
    compute_feature_table,
    features_reading_events,
)
from features.snapshots import build_as_of_dates, build_snapshots, latest_as_of
from features.value import find_unmatched_targets
from features.vocabulary import EventVocabulary, changed_settings, find_absent_events, pick_event_vocabulary
from pipelines.config import Params
from pipelines.errors import StageError
from pipelines.progress import Progress
from pipelines.warehouse import Warehouse, check_writable, count_of, open_warehouse, open_writer
from serving.tables import FEATURES_TABLE
from serving.writeback import ROW_KEYS, WriteRefused, describe_schema_problems, rebuild_table, replace_as_of_rows


def grid_dates(params: Params, wh: Warehouse, lookback_days: int | None = None) -> list[date]:
    """The as-of grid the params and the data span give, starting `lookback_days` after the data's start (default:
    the features' longest look-back; outcomes, which build no features, start at the data).

    Raises:
        StageError: they give none (a history shorter than the features' look-back, or `snapshots.start` after the
            data); the message says which dates were asked for and what the data spans.
    """
    try:
        lookback = params.features.lookback_days if lookback_days is None else lookback_days
        return build_as_of_dates(params.snapshots, wh.data_start, wh.data_end, lookback)
    except ValueError as exc:
        raise StageError(str(exc)) from None


def check_as_of(as_of: date, wh: Warehouse, lookback_days: int) -> None:
    """Refuse an as-of the data cannot support: after the day following the newest event, before any data, or so
    early that the features' longest look-back reaches before the data (its windows would count days that have no
    data as days without activity)."""
    newest = latest_as_of(wh.data_end)
    if as_of > newest or as_of <= wh.data_start.date():
        raise StageError(f"--as-of {as_of}: outside the data (events run {wh.data_start:%Y-%m-%d} to "
                         f"{wh.data_end:%Y-%m-%d}; the latest as-of they support is {newest})")
    earliest = (wh.data_start + timedelta(days=lookback_days)).date()
    if as_of < earliest:
        raise StageError(f"--as-of {as_of}: the engagement features look back {lookback_days} days (features.windows, "
                         f"twice features.trend_window_days), to before the data's start ({wh.data_start:%Y-%m-%d}); "
                         f"the earliest as-of they support is {earliest}")


def build_feature_frame(params: Params, wh: Warehouse, as_of_dates: list[date], progress: Progress,
                        vocabulary: EventVocabulary | None = None) -> tuple[pd.DataFrame, FeatureSet]:
    """Snapshots, labels and features for the as-of dates, computed in the warehouse, one row per account and as-of.

    Args:
        vocabulary: the event names the features read (a model's, at scoring); None picks those params leave empty
            from the events before the first held-out as-of (`pick_event_vocabulary`), as training does.
    """
    with progress.stage("snapshots + labels") as info:
        grid = build_snapshots(wh.sources, as_of_dates, params.label, wh.data_end,
                               params.snapshots.include_trials).cache()
        counts = grid.aggregate(rows=grid.count(), labelled=grid.label.notnull().sum(),
                                churned=grid.label.sum()).execute().iloc[0].map(count_of)
        info["detail"] = (f"{counts.rows:,} rows, {len(as_of_dates)} as-of dates, "
                          f"{counts.labelled:,} labelled, {counts.churned:,} churned")
    # The grid is materialised once and read by every feature group. It is dropped here, while the connection is
    # open: left to garbage collection, the drop may run after the connection closed, and print an error.
    try:
        if vocabulary is None:
            vocabulary = pick_event_vocabulary(wh.sources, params.features, _picking_cutoff(params, grid, as_of_dates))
        return _features_on_grid(params, wh, grid, counts, as_of_dates, vocabulary, progress)
    finally:
        grid.release()


def grid_vocabulary(params: Params, wh: Warehouse) -> EventVocabulary | None:
    """The event names a grid run reads, for one as-of of the same table: picked on one as-of's own events, a name
    can rank otherwise than on the grid's, and the row would get other mix columns (refused as another feature set,
    however often the grid is rebuilt) or core features of other events under the same names. The names are the
    grid's, as a model's are at scoring. None when the data spans no grid (the as-of's own events pick them)."""
    try:
        dates = grid_dates(params, wh)
    except StageError:
        return None
    grid = build_snapshots(wh.sources, dates, params.label, wh.data_end, params.snapshots.include_trials)
    return pick_event_vocabulary(wh.sources, params.features, _picking_cutoff(params, grid, dates))


def _picking_cutoff(params: Params, grid: ibis.Table, as_of_dates: list[date]) -> datetime:
    """The first as-of the training holds out (validation and calibration), or the newest as-of when the grid has too
    few labelled ones: event names are picked on the events before it, so held-out data never chooses them."""
    labelled = grid.filter(grid.label.notnull()).select("as_of").distinct().execute()["as_of"]
    dates = sorted(pd.to_datetime(labelled))
    held = params.model.validation_snapshots + params.model.calibration_snapshots
    return dates[-held].to_pydatetime() if len(dates) > held else datetime.combine(max(as_of_dates), time())


def _features_on_grid(params: Params, wh: Warehouse, grid: ibis.Table, counts: pd.Series, as_of_dates: list[date],
                      vocabulary: EventVocabulary, progress: Progress) -> tuple[pd.DataFrame, FeatureSet]:
    if int(counts.rows) == 0:
        raise StageError("snapshots: no account is active at any as-of date (check sources.subscriptions)")
    config = vocabulary.apply(params.features)
    with progress.stage("features") as info:
        table, feature_set = compute_feature_table(wh.sources, grid, as_of_dates, config)
        absent = find_absent_events(wh.sources, vocabulary, datetime.combine(max(as_of_dates), time()),
                                    also=(config.login_event,))
        feature_set = replace(feature_set.without(features_reading_events(vocabulary, absent, config)),
                              vocabulary=vocabulary)
        table = table.select(*[c for c in table.columns if c in CONTEXT_COLUMNS or c in feature_set.names])
        frame = table.order_by(["as_of", "account_id"]).execute()
        frame["as_of"] = pd.to_datetime(frame["as_of"])
        # Engines sum floating-point numbers in parallel, in an order that varies between runs; rounding away the
        # last bits makes the same data give the same features (and the same models and metrics).
        numeric = frame.select_dtypes("float").columns
        frame[numeric] = frame[numeric].round(10)
        info["detail"] = f"{len(feature_set.names)} features × {len(frame):,} rows"
    if vocabulary.picked:
        progress.note(f"event names: {vocabulary.describe()}")
    if feature_set.left_out:
        progress.note("features left out: " + ", ".join(
            f"{name} (needs {', '.join(needs)})" for name, needs in feature_set.left_out.items()))
    if "onboarding_overdue_days" in feature_set.names:
        unmatched = find_unmatched_targets(wh.sources, params.features)
        if unmatched:
            progress.note(f"features.ttv_targets: no account has the segment {', '.join(map(repr, unmatched))} "
                          f"(accounts.segment, compared exactly): that target applies to no one")
    return frame, feature_set


@dataclass(frozen=True)
class FeaturesResult:
    """What `run_features` wrote: how many rows, which features, into which table."""

    rows: int
    features: list[str]
    table: str


def run_features(params: Params, as_of: date | None, progress: Progress) -> FeaturesResult:
    """Compute the feature table for the grid (or one as-of) and write it to `churn_features`."""
    check_writable(params, FEATURES_TABLE)
    with open_warehouse(params, progress, read_only=True) as wh:
        dates = [as_of] if as_of else grid_dates(params, wh)
        if as_of:
            check_as_of(as_of, wh, params.features.lookback_days)
        vocabulary = grid_vocabulary(params, wh) if as_of else None
        frame, feature_set = build_feature_frame(params, wh, dates, progress, vocabulary)
    schema = ibis.schema({"account_id": "string", "as_of": "date", "label": "int8", "mrr": "float64",
                          **{s.name: "string" if s.is_categorical else "float64" for s in feature_set.specs}})
    with progress.stage("write churn_features") as info, open_writer(params, FEATURES_TABLE) as con:
        stale = write_features(con, frame, schema, dates, single=as_of is not None)
        info["detail"] = (f"{len(frame):,} rows for {len(dates)} as-of dates"
                          + (" (rebuilt: its columns were another feature set's)" if stale else ""))
    return FeaturesResult(rows=len(frame), features=feature_set.names, table=FEATURES_TABLE)


def write_features(con: ibis.BaseBackend, frame: pd.DataFrame, schema: ibis.Schema, dates: list[date],
                   single: bool) -> bool:
    """Write the feature frame of `dates` into churn_features; return whether the table was rebuilt whole (its
    columns were another feature set's). A `single` as-of with another feature set, a table of another tool and a
    write the warehouse refuses are StageErrors; then nothing was written."""
    foreign = lacking_row_keys(con)
    if foreign:
        raise StageError(f"{FEATURES_TABLE}: lacks column(s) {', '.join(foreign)}: not a table `churn features` "
                         f"wrote (its rows are keyed by {' and '.join(ROW_KEYS)}), so it is neither rebuilt nor "
                         f"written into; rename or drop it, and `churn features` creates its own")
    stale = stale_columns(con, schema)
    if stale and single:
        raise StageError(f"{FEATURES_TABLE}: {'; '.join(stale)}: its rows were computed with other params or "
                         f"another version; run `churn features` without --as-of to rebuild it for the grid")
    try:
        if stale:
            rebuild_table(con, FEATURES_TABLE, frame, schema)
        else:
            replace_as_of_rows(con, {FEATURES_TABLE: (frame, schema)}, dates, exact_columns=True)
    except WriteRefused as exc:
        raise StageError(str(exc)) from None
    return bool(stale)


def lacking_row_keys(con: ibis.BaseBackend) -> list[str]:
    """The row keys (ROW_KEYS) an existing churn_features lacks: every version of this project wrote them, so such a
    table is another tool's, and a rebuild would drop it, rows and all. [] when there is no such table."""
    if FEATURES_TABLE not in con.list_tables():
        return []
    return [c for c in ROW_KEYS if c not in con.table(FEATURES_TABLE).columns]


def stale_columns(con: ibis.BaseBackend, schema: ibis.Schema) -> list[str]:
    """How an existing churn_features differs from the columns these params compute: the columns it lacks or holds
    with another type, and those no longer computed (a window, source or event list changed). [] when it fits."""
    if FEATURES_TABLE not in con.list_tables():
        return []
    problems = describe_schema_problems(con, FEATURES_TABLE, schema)
    extra = [c for c in con.table(FEATURES_TABLE).schema().names if c not in schema]
    return problems + ([f"holds column(s) these params do not compute: {', '.join(extra)}"] if extra else [])


def changed_feature_settings(model, params: Params) -> list[str]:
    """The `features:` settings params now give otherwise than the model was trained with, among those its features
    read (`changed_settings`); the features' needs come from the catalog under the model's own settings, whose
    feature names are the model's."""
    if not model.feature_settings:
        return []
    known = {k: v for k, v in model.feature_settings.items() if k in FeatureConfig.model_fields}
    trained = FeatureConfig.model_validate(params.features.model_dump(mode="json") | known)
    specs = {s.name: s for s in catalog_for(EventVocabulary.of_model(model.vocabulary, trained).apply(trained))}
    needs = {need if need.startswith("features.") else need.split(".")[0]
             for name in model.features if name in specs for need in specs[name].needs}
    return changed_settings(model.feature_settings, params.features, needs)


ACCOUNT_ATTRIBUTES = ("name", "segment", "industry", "region", "csm_owner")


def account_attributes(wh: Warehouse) -> pd.DataFrame:
    """One row per account with the descriptive columns the warehouse has (name, segment, CSM owner, ...)."""
    accounts = wh.sources["accounts"]
    columns = [c for c in ACCOUNT_ATTRIBUTES if c in accounts.columns]
    # Deduplicated in pandas: `distinct(on=...)` compiles to FIRST(), which PostgreSQL does not have.
    return accounts.select("account_id", *columns).execute().drop_duplicates("account_id", ignore_index=True)


def catalog_specs(params: Params, vocabulary: EventVocabulary | None = None) -> dict:
    """Catalog entries by feature name for the configured windows and event names (a model's vocabulary, or the
    params' when None)."""
    config = params.features if vocabulary is None else vocabulary.apply(params.features)
    return {spec.name: spec for spec in catalog_for(config)}
