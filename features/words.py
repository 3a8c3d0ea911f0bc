"""Voice in words: the sentiment of survey comments (`surveys.comment`).

Sentiment is scored in Python by VADER (vaderSentiment), a rule-based scorer whose lexicon ships inside the package:
nothing is downloaded at run time, and the same words always get the same score. Comments are few (one per survey
answer at most), so they are scored in a pre-pass over the survey rows before the newest as-of, and the scores go
back to the engine as a small table joined on response_id; the features then read them under the point-in-time
rule like any survey column (`features.pit`). A comment's score depends on its own words only, so a comment at or
after an as-of changes nothing at it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from functools import cache

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from features.catalog import LAST_COMMENT, NEGATIVE_AT, WORDS, FeatureSpec, producible
from features.config import FeatureConfig
from features.joins import left_join_all
from features.pit import latest_before, rows_within
from features.sources import Sources

_KEYS = ["account_id", "as_of"]


@cache
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # reads its bundled lexicon files

    return SentimentIntensityAnalyzer()


def score_sentiment(comments: Iterable) -> np.ndarray:
    """Return each comment's compound sentiment, -1 (negative) to 1 (positive); NaN for an empty or non-text one."""
    out = []
    for text in comments:
        ok = isinstance(text, str) and text.strip()
        out.append(_analyzer().polarity_scores(text)["compound"] if ok else np.nan)
    return np.asarray(out, dtype=float)


def _scored_comments(sources: Sources, as_of_dates: list[date]) -> ir.Table:
    """(account_id, response_id, responded_at, comment, sentiment) of the commented answers before the newest as-of."""
    s = sources["surveys"]
    s = s.filter(s.comment.notnull(), s.responded_at < ibis.timestamp(max(as_of_dates)))
    rows = s.select("response_id", "comment").execute()
    scores = pd.DataFrame({"response_id": rows["response_id"].astype(str).to_numpy(),
                           "sentiment": score_sentiment(rows["comment"])}).dropna(subset=["sentiment"])
    scored = ibis.memtable(scores.drop_duplicates("response_id"),
                           schema=ibis.schema({"response_id": "string", "sentiment": "float64"}))
    return s.join(scored, "response_id").select("account_id", "response_id", "responded_at", "comment", "sentiment")


def words_specs(sources: Sources, config: FeatureConfig) -> list[FeatureSpec]:
    """The comment features this warehouse can provide (they need surveys.comment)."""
    return producible(WORDS, config.windows_by_kind(), sources.missing + config.unset_needs())


def compute_words_features(sources: Sources, grid: ir.Table, config: FeatureConfig,
                           as_of_dates: list[date]) -> ir.Table | None:
    """Return one row per grid (account_id, as_of) with the comment features and the latest comment's words
    (`last_comment`, not a model feature: the reason quotes it), or None without `surveys.comment`.

    The negative share is NULL without a comment in the window, the latest sentiment NULL without any comment.

    Args:
        grid: (account_id, as_of) rows, as_of a midnight timestamp among `as_of_dates`.
        config: survey_window_days is the window of the negative share.
    """
    specs = words_specs(sources, config)
    if not specs:
        return None
    keys, w = grid.select(*_KEYS), config.survey_window_days
    comments = _scored_comments(sources, as_of_dates)
    j = rows_within(keys, comments, "responded_at", w)
    share = j.group_by(_KEYS).aggregate(
        share=j.count(where=j.sentiment <= NEGATIVE_AT).cast("float64") / j.count())
    last = latest_before(keys, comments, "responded_at", ties=["response_id"])
    last = last.select(*_KEYS, "sentiment", "comment")
    out = left_join_all(keys, (share, last))
    values = {f"negative_comment_share_{w}d": out.share, "last_comment_sentiment": out.sentiment}
    return out.select(*_KEYS, **{s.name: values[s.name] for s in specs}, **{LAST_COMMENT: out.comment})
