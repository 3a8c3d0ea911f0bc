"""The closed loop in the managers' report: "Do our playbooks work?" (each playbook's effect against its holdout, in a
plain sentence, with its interval drawn) and "What we missed" (churns never in the top tier before they left, and the
lead time of the flagged ones), from the tables `churn outcomes` writes; when they are missing or nothing has matured
yet, one sentence saying what to run and when the outcomes will be known."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd

from serving.effects import ALL, HARMS, INTENT_TO_TREAT, PER_PROTOCOL, WORKS
from serving.report.formatting import format_money, format_percent
from serving.report.inputs import LoopFacts

MISSED_SHOWN = 25  # missed churns listed in the page, largest churned MRR first; churn_missed has them all
RUN = "run `churn outcomes` (make outcomes)"


def _nan(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def format_pp(value: float, sign: bool = True) -> str:
    """A difference of rates (0–1 units) in percentage points with a real minus sign: "−9.0", "+3.2"."""
    text = f"{100 * value:+.1f}" if sign else f"{100 * value:.1f}"
    return text.replace("-", "−")


def describe_effect(row, min_arm_accounts: int) -> str:
    """One plain sentence for a row of churn_playbook_effects: its verdict, the churn rates of both arms and the
    difference with its interval, e.g. "works: churn 18.0% vs 27.0% held back, −9.0 pp (−15.0 to −3.0)"."""
    if not row.holdout or not row.treated:
        return f"no evidence yet: no {'held-back' if not row.holdout else 'treated'} accounts"
    rates = (f"churn {format_percent(row.treated_churn_rate, 1)} vs {format_percent(row.holdout_churn_rate, 1)} "
             "held back")
    if min(row.treated, row.holdout) < min_arm_accounts:
        few = "held-back" if row.holdout < min_arm_accounts else "treated"
        count = min(row.treated, row.holdout)
        return f"no evidence yet: too few {few} accounts ({count:,} of the {min_arm_accounts} needed); {rates} so far"
    difference = f"{format_pp(row.absolute_difference)} pp"
    if not _nan(row.absolute_low):
        difference += f" ({format_pp(row.absolute_low)} to {format_pp(row.absolute_high)})"
    if row.verdict == WORKS:
        return f"works: {rates}, {difference}"
    if row.verdict == HARMS:
        return f"harms: {rates}, {difference}"
    return f"no evidence: {rates}, {difference}; the interval holds no difference too"


def _chart_scale(rows: pd.DataFrame, truth: pd.DataFrame | None = None) -> tuple[float, float]:
    """The shared axis of the interval charts, in rate units: every interval, 0 and any true difference (on a
    simulated warehouse), with a little room."""
    parts = [rows["absolute_low"], rows["absolute_high"], rows["absolute_difference"]]
    if truth is not None:
        parts.append(truth["true_difference"].reindex(rows["playbook"]).reset_index(drop=True))
    values = pd.concat(parts).dropna()
    low, high = min(0.0, float(values.min())) if len(values) else -0.1, max(0.0, float(values.max())) if len(
        values) else 0.1
    pad = max(0.01, 0.08 * (high - low))
    return low - pad, high + pad


def _chart(row, low: float, high: float) -> dict | None:
    """Where the interval, the estimate and zero sit on the shared axis, in % of its width."""
    if _nan(row.absolute_low) or _nan(row.absolute_difference):
        return None
    def at(value: float) -> float:
        return round(100 * (value - low) / (high - low), 2)
    return {"from": at(row.absolute_low), "width": max(0.5, at(row.absolute_high) - at(row.absolute_low)),
            "point": at(row.absolute_difference), "zero": at(0.0)}


def _effect_rows(frame: pd.DataFrame, facts: LoopFacts, low: float, high: float) -> list[dict]:
    rows = []
    for row in frame.sort_values("playbook", kind="stable").itertuples():
        rows.append({"row": row, "sentence": describe_effect(row, facts.min_arm_accounts),
                     "verdict": row.verdict if min(row.treated, row.holdout) >= facts.min_arm_accounts
                     else "no evidence", "chart": _chart(row, low, high),
                     "truth": _truth(row, facts.true_effects, low, high)})
    return rows


def _truth(row, truth: pd.DataFrame | None, low: float, high: float) -> dict | None:
    """On a simulated warehouse: the playbook's true difference of churn rates (treated − untreated, rate units),
    where it sits on the chart's axis, and whether the interval holds it."""
    if (truth is None or row.playbook not in truth.index or _nan(truth.at[row.playbook, "true_difference"])
            or _nan(truth.at[row.playbook, "true_effect"])):
        return None
    difference = float(truth.at[row.playbook, "true_difference"])
    covered = None if _nan(row.absolute_low) else bool(row.absolute_low <= difference <= row.absolute_high)
    return {"difference": difference, "effect": float(truth.at[row.playbook, "true_effect"]),
            "hazard_effect": float(truth.at[row.playbook, "hazard_effect"]), "inside": covered,
            "at": round(100 * (min(max(difference, low), high) - low) / (high - low), 2)}


def _pooled(effects: pd.DataFrame, analysis: str) -> pd.DataFrame:
    return effects[(effects["analysis"] == analysis) & (effects["tier"] == ALL) & (effects["window"] == ALL)]


def _days(values) -> str:
    shown = [f"{d}" for d in values[:3]]
    return ", ".join(shown) + (f" and {len(values) - 3} more" if len(values) > 3 else "")


def describe_waiting(facts: LoopFacts | None) -> str:
    """The sentence standing in for the loop's sections when `churn outcomes` has nothing to show: what to run, and
    when the outcome of the pending scorings is known."""
    if facts is None:
        return f"Outcomes were not read for this report: {RUN} once a scoring's horizon and grace have passed."
    unjudged = [d for d in facts.matured if facts.judged is None or d not in facts.judged]
    if unjudged:
        return (f"{len(unjudged)} scoring(s) have matured ({_days(unjudged)}) and are not judged yet: {RUN} to read "
                "back what happened, then this report again.")
    if facts.pending:
        as_of, known = facts.pending[0]
        later = f"; {len(facts.pending) - 1} later scoring(s) follow" if len(facts.pending) > 1 else ""
        return (f"No scoring has an outcome yet: the earliest pending one, as of {as_of}, is known once the data "
                f"reaches {known} (horizon plus grace after it){later}. Then {RUN}.")
    return f"No scoring has been judged yet: {RUN}."


def build_playbook_section(facts: LoopFacts | None) -> dict:
    """What "Do our playbooks work?" shows: one row per playbook (intent to treat, every tier and matured scoring
    pooled) with its sentence and interval chart, the per-protocol rows (biased, labelled so), the window, the notes
    on newly matured or pending scorings, and `message` instead of the tables when there is nothing to show."""
    out = {"rows": [], "per_protocol": [], "window": None, "notes": [], "message": None,
           "confidence": facts.confidence if facts else 0.95}
    effects = facts.effects if facts is not None else None
    if effects is None or effects.empty:
        out["message"] = describe_waiting(facts)
        if effects is not None and facts.judged and not _unjudged(facts):
            out["message"] = (f"No playbook held accounts back in the judged scorings ({_days(facts.judged)}): with "
                              "scoring.experiments.enabled, each playbook keeps a random control group, and its "
                              "effect is known once the scorings that assigned it mature.")
            out["notes"] = _freshness(facts)
        return out
    itt = _pooled(effects, INTENT_TO_TREAT)
    out["scale"] = _chart_scale(itt, facts.true_effects)
    out["simulated"] = facts.true_effects is not None
    out["rows"] = _effect_rows(itt, facts, *out["scale"])
    protocol = _pooled(effects, PER_PROTOCOL)
    if len(protocol):
        out["per_protocol"] = _effect_rows(protocol, facts, *_chart_scale(protocol))
        out["caveat"] = str(protocol["caveat"].dropna().iloc[0]) if protocol["caveat"].notna().any() else ""
    starts, ends = pd.to_datetime(itt["window_start"]), pd.to_datetime(itt["window_end"])
    if len(itt):
        out["window"] = (f"{starts.min():%Y-%m-%d}", f"{ends.max():%Y-%m-%d}")
    out["notes"] = _freshness(facts)
    return out


def _unjudged(facts: LoopFacts) -> list[date]:
    return [d for d in facts.matured if facts.judged is not None and d not in facts.judged]


def _freshness(facts: LoopFacts) -> list[str]:
    notes = []
    unjudged = _unjudged(facts)
    if unjudged:
        notes.append(f"{len(unjudged)} more scoring(s) have matured since `churn outcomes` ran ({_days(unjudged)}): "
                     f"{RUN} again to include them.")
    if facts.pending:
        as_of, known = facts.pending[0]
        notes.append(f"{len(facts.pending)} scoring(s) still pending: the next, as of {as_of}, is known once the "
                     f"data reaches {known}.")
    return notes


def build_missed_section(facts: LoopFacts | None, attributes: pd.DataFrame, top_tier: str) -> dict:
    """What "What we missed" shows: the churns never in `top_tier` in the horizon before (largest churned MRR first,
    at most MISSED_SHOWN, with the account's name where known), a summary sentence with the median lead time of the
    flagged ones, or `message` when there is nothing to show."""
    out = {"rows": [], "summary": None, "hidden": 0, "message": None}
    missed = facts.missed if facts is not None else None
    if missed is None:
        out["message"] = describe_waiting(facts)
        return out
    if missed.empty:
        out["message"] = ("No account churned within the horizon of a scoring yet." if facts.judged
                          else describe_waiting(facts))
        return out
    flags = missed["missed"].astype(bool)
    lost, caught = missed[flags], missed[~flags]
    lead = pd.to_numeric(caught["lead_days"], errors="coerce").dropna()
    summary = (f"Of {len(missed):,} churn(s) within the horizon of a scoring, {len(lost):,} "
               f"({format_money(lost['churned_mrr'].sum())} MRR) were never in the {top_tier} tier before they left.")
    if len(lead):
        summary += (f" The {len(caught):,} flagged one(s) were first flagged a median of {lead.median():,.0f} days "
                    f"before they churned ({lead.min():,.0f} to {lead.max():,.0f}).")
    out["summary"] = summary
    names = _names(attributes)
    listed = lost.sort_values(["churned_mrr", "account_id"], ascending=[False, True], kind="stable")
    out["rows"] = [{"account": names.get(r.account_id) or r.account_id, "account_id": r.account_id,
                    "named": bool(names.get(r.account_id)), "row": r,
                    "reasons": [x for x in str(r.top_reasons).split("; ") if x] if isinstance(r.top_reasons, str)
                    else []} for r in listed.head(MISSED_SHOWN).itertuples()]
    out["hidden"] = max(0, len(listed) - MISSED_SHOWN)
    return out


def _names(attributes: pd.DataFrame) -> dict[str, str]:
    if "name" not in attributes.columns:
        return {}
    named = attributes[attributes["name"].notna()]
    return dict(zip(named["account_id"].astype(str), named["name"].astype(str), strict=True))
