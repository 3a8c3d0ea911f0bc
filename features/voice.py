"""Voice-of-customer features from survey responses (NPS, CSAT, CES), computed in the warehouse.

Every feature at as-of t reads only responses with `responded_at` before t (`features.pit`). "The latest response
before t" is the last one per account (or user) ordered by time, then response id (`latest_before`).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.catalog import VOICE, producible
from features.config import FeatureConfig
from features.joins import left_join_all
from features.pit import days_before, days_between, latest_before, rows_within
from features.sources import Sources

# NPS scores below this are detractors (0–6); from PASSIVE_FROM to below PROMOTER_FROM passives (7–8).
PASSIVE_FROM, PROMOTER_FROM = 7, 9


def _surveys(sources: Sources) -> ir.Table:
    s = sources["surveys"]
    user = s.user_id if sources.has("surveys", "user_id") else ibis.null("string")
    return s.select("response_id", "account_id", "responded_at", "score",
                    survey_type=s.survey_type.lower(), user_id=user)


def _nps_category(score: ir.Value) -> ir.Value:
    return ibis.cases((score >= PROMOTER_FROM, "promoter"), (score >= PASSIVE_FROM, "passive"),
                      (score < PASSIVE_FROM, "detractor"), else_=ibis.null("string"))


def _last_nps(surveys: ir.Table, grid: ir.Table) -> ir.Table:
    nps = surveys.filter(surveys.survey_type == "nps")
    order = ibis.window(group_by="account_id", order_by=["responded_at", "response_id"])
    nps = nps.mutate(previous=nps.score.lag().over(order))
    j = latest_before(grid, nps, "responded_at", ties=["response_id"])
    return j.select("account_id", "as_of", last_nps=j.score, last_nps_category=_nps_category(j.score),
                    nps_change=j.score - j.previous)


def _detractor_share(surveys: ir.Table, grid: ir.Table, window: int) -> ir.Table:
    # One row per user who answered NPS in the window: the user's latest answer before the as-of lies in it.
    nps = surveys.filter((surveys.survey_type == "nps") & surveys.user_id.notnull())
    j = latest_before(grid, nps, "responded_at", ties=["response_id"], per=["user_id"])
    j = j.filter(j.responded_at >= days_before(j.as_of, window))
    share = j.count(where=j.score < PASSIVE_FROM).cast("float64") / j.count()
    return j.group_by(["account_id", "as_of"]).aggregate(**{f"detractor_share_{window}d": share})


def _window_metrics(surveys: ir.Table, grid: ir.Table, window: int) -> ir.Table:
    j = rows_within(grid, surveys, "responded_at", window)
    return j.group_by(["account_id", "as_of"]).aggregate(**{
        f"csat_avg_{window}d": j.score.mean(where=j.survey_type == "csat"),
        f"ces_avg_{window}d": j.score.mean(where=j.survey_type == "ces"),
        f"survey_responses_{window}d": j.count(),
    })


def _last_response(surveys: ir.Table, grid: ir.Table) -> ir.Table:
    j = latest_before(grid, surveys, "responded_at", ties=["response_id"])
    return j.select("account_id", "as_of", days_since_last_response=days_between(j.as_of, j.responded_at))


def compute_voice_features(sources: Sources, grid: ir.Table, config: FeatureConfig) -> ir.Table:
    """Return one row per grid (account_id, as_of) with the survey features of the catalog the warehouse allows.

    Response counts are 0 without responses; scores, averages, shares and days since the last response are NULL
    with nothing to compute them from. `detractor_share_*` needs `surveys.user_id` and is left out without it.

    Args:
        sources: canonical sources; the `surveys` table must be present.
        grid: (account_id, as_of) rows, as_of a midnight timestamp.
    """
    surveys, keys, w = _surveys(sources), grid.select("account_id", "as_of"), config.survey_window_days
    j = left_join_all(keys, (_last_nps(surveys, keys), _detractor_share(surveys, keys, w),
                             _window_metrics(surveys, keys, w), _last_response(surveys, keys)))
    specs = producible(VOICE, config.windows_by_kind(), sources.missing)
    out = {}
    for s in specs:
        value = j[s.name].fill_null(0) if s.unit == "count" else j[s.name]
        out[s.name] = value if s.is_categorical else value.cast("float64")
    return j.select("account_id", "as_of", **out)
