"""A hand-built warehouse and score history for `churn outcomes`, with every outcome worked out by hand.

Data ends 2024-12-31 12:00 (the newest event); horizon 60 days, grace 14: a scoring is judged once as-of + 74 days
is by then, so 2024-07..10-01 are matured and 2024-11-01 is pending (known from 2025-01-14).

| account | subscriptions | churn (known) |
| --- | --- | --- |
| a1 | 2024-01-01, open | never |
| a2 | 2024-01-01 → 2024-09-15 | 2024-09-15 |
| a3 | 2024-01-01 → 2024-10-20 | 2024-10-20 |
| a4 | 2024-01-01 → 2024-08-20, again from 2024-08-25 (within grace: a late renewal) | never |
| a5 | 2024-01-01 → 2024-12-10 | 2024-12-10 (known: + 14 days ≤ data end) |
| a6 | 2024-09-10, open | never |
"""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd

from serving.experiments import assignment_rows
from serving.writeback import write_scores
from tests.conftest import ts

JUL, AUG, SEP, OCT, NOV = (date(2024, m, 1) for m in (7, 8, 9, 10, 11))
MRR = {"a1": 100.0, "a2": 200.0, "a3": 300.0, "a4": 400.0, "a5": 500.0, "a6": 600.0}
OVERRIDES = {"label": {"horizon_days": 60, "grace_days": 14},
             "sources": {"users": None, "tickets": None, "surveys": None, "milestones": None},
             "evaluation.capacity": 2}


def source_tables() -> dict[str, pd.DataFrame]:
    accounts = pd.DataFrame({"account_id": list(MRR), "created_at": ts(*["2024-01-01"] * 6)})
    subscriptions = pd.DataFrame({
        "account_id": ["a1", "a2", "a3", "a4", "a4", "a5", "a6"],
        "start_at": ts("2024-01-01", "2024-01-01", "2024-01-01", "2024-01-01", "2024-08-25", "2024-01-01",
                       "2024-09-10"),
        "end_at": ts(None, "2024-09-15", "2024-10-20", "2024-08-20", None, "2024-12-10", None),
        "mrr": [MRR[a] for a in ("a1", "a2", "a3", "a4", "a4", "a5", "a6")]})
    events = pd.DataFrame({"account_id": ["a1", "a2", "a3", "a4", "a5", "a6", "a1"],
                           "event_at": ts("2024-01-02", "2024-02-01", "2024-03-01", "2024-04-01", "2024-05-01",
                                          "2024-09-11", "2024-12-31 12:00"),
                           "event_name": "login"})
    return {"accounts": accounts, "subscriptions": subscriptions, "events": events}


def cs_actions() -> pd.DataFrame:
    """What the team logged: the workshop on a2, a4 held back (a holdout record), a call on a3 with no playbook,
    and a CS tool's own holdout of a discount call (a1 treated in July and October, a6 held back in October)."""
    return pd.DataFrame({
        "account_id": ["a2", "a4", "a3", "a1", "a6", "a1"],
        "done_at": ts("2024-08-05", "2024-08-03", "2024-09-10", "2024-10-03", "2024-10-02", "2024-07-02"),
        "playbook": ["adoption_workshop", "adoption_workshop", None, "discount_call", "discount_call",
                     "discount_call"],
        "action": ["Workshop", None, "Called the sponsor", "Discount offered", None, "Discount offered"],
        "arm": ["treatment", "Holdout", None, "treatment", "holdout", "TREATMENT"]})


# as-of → [(account, probability, tier, playbook, arm)]; a2 is scored on 10-01 though its subscription ended
# (a backfilled subscription table): the label knows nothing of it there, so that row is left out.
SCORINGS = {
    AUG: [("a1", 0.05, "low", None, None), ("a2", 0.60, "high", "adoption_workshop", "treatment"),
          ("a3", 0.30, "medium", "health_check", "holdout"), ("a4", 0.50, "high", "adoption_workshop", "holdout"),
          ("a5", 0.10, "low", None, None)],
    SEP: [("a1", 0.05, "low", None, None), ("a2", 0.70, "high", "adoption_workshop", "treatment"),
          ("a3", 0.40, "high", "adoption_workshop", "treatment"), ("a4", 0.20, "medium", "health_check", "treatment"),
          ("a5", 0.10, "low", None, None)],
    OCT: [("a1", 0.04, "low", None, None), ("a2", 0.10, "low", None, None),
          ("a3", 0.80, "high", "adoption_workshop", "treatment"), ("a4", 0.10, "low", None, None),
          ("a5", 0.20, "medium", "health_check", "holdout"), ("a6", 0.05, "low", None, None)],
    NOV: [("a1", 0.03, "low", None, None), ("a4", 0.10, "low", None, None), ("a5", 0.12, "low", None, None),
          ("a6", 0.05, "low", None, None)],
}


def scoring(as_of: date) -> pd.DataFrame:
    accounts, probabilities, tiers, playbooks, arms = zip(*SCORINGS[as_of], strict=True)
    return pd.DataFrame({
        "account_id": list(accounts), "as_of": as_of, "churn_probability": list(probabilities),
        "risk_tier": list(tiers), "risk_rank": range(1, len(accounts) + 1), "health_score": 50.0,
        "mrr": [MRR[a] for a in accounts], "top_reasons": [f"reason of {a}" for a in accounts],
        "recommended_action": None, "owner_role": None, "urgency": None, "due_by": None,
        "playbook": list(playbooks), "arm": list(arms), "renewal_date": None, "days_to_renewal": None,
        "billing_period_months": None, "previous_as_of": None, "previous_probability": None, "previous_tier": None,
        "probability_change": None, "tier_since": as_of, "days_in_tier": 0, "model_name": "churn-lightgbm",
        "model_version": "1", "scored_at": pd.Timestamp("2024-12-31")})


def write_history(con) -> None:
    """Publish the four scorings as `churn score` would (scores, drivers, assignments)."""
    for as_of in SCORINGS:
        scores = scoring(as_of)
        drivers = pd.DataFrame(columns=["account_id", "as_of", "rank", "feature", "role", "value", "contribution",
                                        "probability_points", "direction", "reason"])
        write_scores(con, scores, drivers, [as_of], assignments=assignment_rows(scores, datetime(2024, 12, 31)))
