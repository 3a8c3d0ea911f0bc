"""The tables of the managers' report, computed from the scores and drivers: the at-risk list, the headline, who
entered and left the top tier, risk by segment (plan, CSM owner), how often each signal drives risk, and the model's
validation metrics in sentences."""

from __future__ import annotations

import math

import pandas as pd

from serving.config import ReportConfig
from serving.experiments import HOLDOUT
from serving.explain import RAISES, feature_label
from serving.history import add_history
from serving.playbooks import driver_group
from serving.report.formatting import format_renewal
from serving.report.inputs import ModelFacts, ReportInputs

ATTRIBUTES = ("name", "segment", "csm_owner")
# New columns come last, so a tool reading the CSV by position keeps finding the earlier ones.
AT_RISK_COLUMNS = ["account_id", "account", "segment", "csm_owner", "mrr", "churn_probability", "risk_tier",
                   "probability_change", "expected_mrr_loss", "top_reasons", "recommended_action", "owner_role",
                   "previous_probability", "previous_tier", "tier_since", "days_in_tier",
                   "days_to_renewal", "renewal", "urgency", "due_by", "playbook", "arm", "no_action_reason"]
RISING_COLUMNS = ["account_id", "account", "segment", "mrr", "previous_probability", "churn_probability",
                  "probability_change", "previous_tier", "risk_tier", "tier_since", "days_in_tier"]


def _accounts(inputs: ReportInputs) -> pd.DataFrame:
    """The scores of the as-of with the account attributes and their history against the previous scoring."""
    attributes = inputs.attributes.copy()
    attributes["account_id"] = attributes["account_id"].astype(str)
    for column in ATTRIBUTES:
        if column not in attributes.columns:
            attributes[column] = None
    frame = _with_history(inputs).merge(attributes[["account_id", *ATTRIBUTES]], on="account_id", how="left")
    frame["account"] = frame["name"].where(frame["name"].notna(), frame["account_id"])
    frame["expected_mrr_loss"] = frame["churn_probability"] * frame["mrr"]
    # Context, shown beside the causes: when the account can leave (scores written before it have no such columns).
    for column in ("days_to_renewal", "billing_period_months", "urgency", "due_by", "playbook", "arm"):
        if column not in frame.columns:
            frame[column] = None
    frame["days_to_renewal"] = pd.to_numeric(frame["days_to_renewal"], errors="coerce").astype(float)
    due = pd.to_datetime(frame["due_by"])  # a DATE column reads back as a timestamp
    frame["due_by"] = due.dt.date.astype(object).where(due.notna(), None)
    frame["renewal"] = [format_renewal(d, p) for d, p in zip(frame["days_to_renewal"],
                                                             frame["billing_period_months"], strict=True)]
    frame["no_action_reason"] = [explain_no_action(a, p) for a, p in zip(frame["arm"], frame["playbook"],
                                                                          strict=True)]
    return frame.sort_values(["expected_mrr_loss", "account_id"], ascending=[False, True], kind="stable")


def explain_no_action(arm, playbook) -> str | None:
    """Why a listed account has no recommended action: "held back: control group of playbook X" for an account the
    holdout experiment keeps untouched on purpose (serving/experiments.py); None for every other account."""
    if arm != HOLDOUT:
        return None
    return f"held back: control group of playbook {playbook if isinstance(playbook, str) and playbook else '(unnamed)'}"


def _with_history(inputs: ReportInputs) -> pd.DataFrame:
    """The scores with HISTORY_COLUMNS against the previous scoring this page compares with.

    The previous probability and tier are that scoring's, so the page agrees with itself even where an older as-of
    was re-scored after these rows were written. The tier run is the stored one (it saw every scoring before); rows
    written before tier_since existed count it from the previous scoring instead.
    """
    scores = inputs.scores
    previous = inputs.previous_scores if inputs.previous_as_of is not None else None
    frame = add_history(scores, previous if previous is not None and len(previous) else None)
    if "tier_since" in scores.columns:
        stored = pd.Series(pd.to_datetime(scores["tier_since"]).dt.date, dtype=object, index=scores.index)
        frame["tier_since"] = stored.where(stored.notna(), frame["tier_since"])
        frame["days_in_tier"] = [(pd.Timestamp(now) - pd.Timestamp(since)).days
                                 for now, since in zip(frame["as_of"], frame["tier_since"], strict=True)]
    return frame


def _previous(inputs: ReportInputs) -> pd.DataFrame:
    if inputs.previous_scores is None:
        return pd.DataFrame(columns=["account_id", "churn_probability", "risk_tier", "mrr", "top_reasons"])
    return inputs.previous_scores


def build_at_risk(inputs: ReportInputs, config: ReportConfig) -> pd.DataFrame:
    """The at-risk list: accounts of the listed tiers (default: the top tier), by expected MRR loss, highest first.

    Columns: AT_RISK_COLUMNS; probability_change and previous_probability are in probability units like
    churn_probability (NaN when the account was not in the previous scoring).
    """
    tiers = config.at_risk_tiers or [inputs.top_tier]
    frame = _accounts(inputs)
    listed = frame[frame["risk_tier"].isin(tiers)].head(config.max_accounts)[AT_RISK_COLUMNS].reset_index(drop=True)
    return _plain_text(listed, ["account", "segment", "csm_owner", "top_reasons", "recommended_action", "owner_role",
                                "previous_tier", "renewal", "urgency", "due_by", "playbook", "arm",
                                "no_action_reason"])


def _plain_text(frame: pd.DataFrame, text: list[str]) -> pd.DataFrame:
    frame[text] = frame[text].astype(object).where(frame[text].notna(), None)
    return frame


def build_rising_fast(inputs: ReportInputs, config: ReportConfig) -> pd.DataFrame:
    """The accounts whose churn probability rose most since the previous scoring (at most `config.rising_fast`,
    largest rise first; only rises, only accounts in both scorings).

    Columns: RISING_COLUMNS, probabilities and their change in probability units, and `why`: the account's risk
    reasons new since the previous scoring (else all of them). Empty without a previous scoring.
    """
    frame = _accounts(inputs)
    rising = frame[frame["probability_change"] > 0].sort_values(["probability_change", "account_id"],
                                                                 ascending=[False, True], kind="stable")
    listed = rising.head(config.rising_fast)[RISING_COLUMNS].reset_index(drop=True)
    now_reasons, then_reasons = _risk_reasons(inputs.drivers), _risk_reasons(inputs.previous_drivers)
    listed["why"] = [_new_reasons(a, now_reasons, then_reasons) for a in listed["account_id"]]
    return _plain_text(listed, ["account", "segment", "previous_tier"])


def _mrr_at_risk(scores: pd.DataFrame) -> float:
    return float((scores["churn_probability"] * scores["mrr"]).sum()) if len(scores) else 0.0


def build_headline(inputs: ReportInputs) -> dict:
    """Accounts scored, accounts and MRR per tier, MRR at risk (Σ probability × MRR) and their previous values."""
    scores, previous = inputs.scores, _previous(inputs)
    now, before = _mrr_at_risk(scores), _mrr_at_risk(previous)
    tiers = [{"tier": t, "accounts": int((scores["risk_tier"] == t).sum()),
              "previous": int((previous["risk_tier"] == t).sum()) if inputs.previous_as_of else None,
              "mrr": float(scores.loc[scores["risk_tier"] == t, "mrr"].sum())} for t in inputs.tier_names]
    has_previous = inputs.previous_as_of is not None and len(previous) > 0
    return {"accounts": len(scores), "previous_accounts": len(previous) if has_previous else None,
            "tiers": tiers, "mrr": float(scores["mrr"].sum()), "mrr_at_risk": now,
            "previous_mrr_at_risk": before if has_previous else None,
            "mrr_at_risk_change": now - before if has_previous else None,
            "mrr_at_risk_change_share": (now - before) / before if has_previous and before else None}


def _risk_reasons(drivers: pd.DataFrame | None) -> dict[str, dict[str, str]]:
    """account → {feature: reason} of its risk drivers."""
    if drivers is None or drivers.empty:
        return {}
    risk = drivers[drivers["direction"] == RAISES].sort_values(["account_id", "rank"])
    out: dict[str, dict[str, str]] = {}
    for account, feature, reason in zip(risk["account_id"], risk["feature"], risk["reason"], strict=True):
        out.setdefault(account, {})[feature] = reason
    return out


def _protective(drivers: pd.DataFrame) -> dict[str, str]:
    helping = drivers[drivers["direction"] != RAISES].sort_values(["account_id", "rank"])
    return helping.groupby("account_id")["reason"].first().to_dict()


def build_tier_changes(inputs: ReportInputs) -> tuple[list[dict], list[dict]]:
    """Accounts that entered and left the top tier since the previous scoring, each with why in words."""
    if inputs.previous_as_of is None:
        return [], []
    top, frame = inputs.top_tier, _accounts(inputs)
    previous = _previous(inputs).set_index("account_id")
    now_reasons, then_reasons = _risk_reasons(inputs.drivers), _risk_reasons(inputs.previous_drivers)
    entered = []
    for row in frame[(frame["risk_tier"] == top) & (frame["previous_tier"] != top)].itertuples():
        entered.append({"account": row.account, "account_id": row.account_id, "mrr": row.mrr,
                        "before": row.previous_probability, "now": row.churn_probability,
                        "was": row.previous_tier if isinstance(row.previous_tier, str) else "not scored",
                        "why": _new_reasons(row.account_id, now_reasons, then_reasons)})
    return entered, _left_top_tier(inputs, frame, previous, now_reasons, then_reasons)


def _new_reasons(account_id: str, now_reasons: dict, then_reasons: dict) -> list[str]:
    """The account's risk reasons that are new since the previous scoring (else all of them), each sentence once."""
    now, then = now_reasons.get(account_id, {}), then_reasons.get(account_id, {})
    return list(dict.fromkeys([r for f, r in now.items() if f not in then] or now.values()))


def _left_top_tier(inputs: ReportInputs, frame: pd.DataFrame, previous: pd.DataFrame, now_reasons: dict,
                   then_reasons: dict) -> list[dict]:
    top = inputs.top_tier
    current = frame.set_index("account_id")
    helping = _protective(inputs.drivers)
    names = inputs.attributes.astype({"account_id": str}).set_index("account_id")
    left = []
    for account_id, row in previous[previous["risk_tier"] == top].iterrows():
        if account_id in current.index and current.at[account_id, "risk_tier"] == top:
            continue
        scored = account_id in current.index
        gone = [r for f, r in then_reasons.get(account_id, {}).items() if f not in now_reasons.get(account_id, {})]
        why = ([f"No longer a risk: {r}" for r in gone] + ([f"Now helping: {helping[account_id]}"]
                                                          if account_id in helping else [])) if scored else [
            "Not scored at this as-of: no active subscription (churned, ended or paused)"]
        name = names["name"].get(account_id) if "name" in names.columns else None
        left.append({"account": name if isinstance(name, str) else account_id, "account_id": account_id,
                     "mrr": row["mrr"], "before": row["churn_probability"],
                     "now": current.at[account_id, "churn_probability"] if scored else None,
                     "is": current.at[account_id, "risk_tier"] if scored else "not scored", "why": why})
    return sorted(left, key=lambda r: -r["mrr"] * r["before"])


def _breakdown_source(inputs: ReportInputs, column: str) -> pd.Series | None:
    for frame in (inputs.attributes.astype({"account_id": str}).set_index("account_id"),
                  inputs.portfolio.values if inputs.portfolio is not None else None):
        if frame is not None and column in frame.columns and frame[column].notna().any():
            return frame[column]
    return None


def build_breakdowns(inputs: ReportInputs, config: ReportConfig) -> dict[str, pd.DataFrame]:
    """Risk by each breakdown column the data has (segment, plan, CSM owner): accounts, top-tier accounts, MRR,
    MRR at risk and its share of the group's MRR, ordered by MRR at risk."""
    scores = inputs.scores.set_index("account_id")
    out = {}
    for column in config.breakdowns:
        source = _breakdown_source(inputs, column)
        if source is None:
            continue
        frame = scores.assign(group=source.reindex(scores.index).fillna("(unknown)").astype(str),
                              at_risk=scores["churn_probability"] * scores["mrr"],
                              top=scores["risk_tier"] == inputs.top_tier)
        table = frame.groupby("group").agg(accounts=("mrr", "size"), top_tier=("top", "sum"), mrr=("mrr", "sum"),
                                           mrr_at_risk=("at_risk", "sum"),
                                           mean_probability=("churn_probability", "mean"))
        table["share_at_risk"] = table["mrr_at_risk"] / table["mrr"].where(table["mrr"] > 0)
        out[column] = table.sort_values("mrr_at_risk", ascending=False).reset_index()
    return out


def build_reason_counts(inputs: ReportInputs, accounts: pd.Series, top: int = 10) -> list[dict]:
    """How often each signal is among the risk drivers of the listed accounts (most frequent first)."""
    risk = inputs.drivers[(inputs.drivers["direction"] == RAISES) & inputs.drivers["account_id"].isin(accounts)]
    counts = risk.groupby("feature").agg(accounts=("account_id", "nunique"), points=("probability_points", "mean"))
    counts = counts.sort_values(["accounts", "points"], ascending=False).head(top)
    return [{"label": feature_label(inputs.specs[f]) if f in inputs.specs else "Other signal",
             "group": driver_group(inputs.specs[f].group) if f in inputs.specs else "",
             "accounts": int(r.accounts), "points": r.points} for f, r in counts.iterrows()]


def describe_quality(model: ModelFacts | None) -> list[str]:
    """The champion's validation metrics in sentences a manager can read (those the run logged)."""
    metrics = (model.metrics.get("lightgbm") or {}) if model else {}
    known = {k: v for k, v in metrics.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}
    sentences = []
    if "roc_auc" in known:
        sentences.append(f"On the validation period, a churner got a higher score than a staying account "
                         f"{known['roc_auc']:.0%} of the time (ROC-AUC {known['roc_auc']:.2f}; 0.5 is chance).")
    if "top_decile_lift" in known:
        sentences.append(f"The riskiest 10% of accounts churned {known['top_decile_lift']:.1f}× as often as the "
                         "average.")
    if {"recall_at_capacity", "mrr_captured_at_capacity"} <= set(known) and model.capacity:
        sentences.append(f"Working the {model.capacity} riskiest accounts of each as-of reached "
                         f"{known['recall_at_capacity']:.0%} of the churners and "
                         f"{known['mrr_captured_at_capacity']:.0%} of the churned MRR.")
    return sentences

