"""A tiny hand-built warehouse for the KPIs, and every KPI of it computed by hand.

Events run from 2023-02-01 09:00 to 2024-03-31 12:00: the complete months are 2023-02 to 2024-03. With
grace_days 10, churn is known for every month up to 2024-02 (2024-03-01 + 10 days <= 2024-03-31); 2024-03 is pending.
The story is in 2024-01 and 2024-02; 2023 builds the trailing twelve months.

Month boundaries tested: a row ending exactly at midnight on the 1st (churner), a row starting exactly then
(midnight), a survey answered one second before and one exactly at midnight. Grace: late renews 9 days after its
end (a lapse, not churn), gone 26 days after (churn, then reactivation). Overlapping rows: steady's add-ons,
veteran's add-on. Mid-month upgrade: upgrade's new row on the 15th. A term end in the future: annual.
"""

from __future__ import annotations

import pandas as pd

from features.config import FeatureConfig, LabelConfig
from features.kpis.config import KpiConfig
from tests.conftest import ts

LABEL = LabelConfig(grace_days=10)
KPI_CONFIG = KpiConfig(gross_margin=0.75, ttv_days=[7, 30, 60])
FEATURES = FeatureConfig(value_events=["create_report"], onboarding_milestones=["setup", "invite"],
                         core_events=["create_report", "run_automation"])

ACCOUNTS = [  # (account, created_at, segment)
    ("veteran", "2021-12-01", "ENT"), ("churner", "2022-12-01", "ENT"), ("late", "2022-10-01", "ENT"),
    ("steady", "2022-11-01", "SMB"), ("upgrade", "2022-08-01", "SMB"), ("gone", "2022-09-01", "SMB"),
    ("annual", "2022-06-01", None),
    # created once the events begin: the time-to-value cohorts 2024-01 (quick, newbie, midnight) and 2024-02
    ("quick", "2024-01-02", "SMB"), ("newbie", "2024-01-05", "SMB"), ("midnight", "2024-01-20", "ENT"),
    ("trialonly", "2024-02-10", "SMB"),
]
SUBSCRIPTIONS = [  # (account, start_at, end_at, mrr, seats, is_trial)
    ("veteran", "2022-01-01", None, 100.0, 5.0, False),
    ("veteran", "2023-07-01", None, 20.0, 0.0, False),           # overlapping add-on
    ("churner", "2022-01-01", "2024-02-01", 1000.0, 50.0, False),  # ends at midnight on Feb 1: January churn
    ("late", "2023-05-01", "2024-01-25", 400.0, 20.0, False),      # starts at midnight on May 1
    ("late", "2024-02-03", None, 400.0, 20.0, False),              # 9 days later: within grace, not churn
    ("steady", "2023-06-01", None, 100.0, 5.0, False),
    ("steady", "2023-12-01", "2024-02-15", 30.0, 0.0, False),      # add-on ending mid-February
    ("steady", "2024-02-10", None, 50.0, 0.0, False),              # add-on starting mid-February
    ("upgrade", "2023-09-01", "2024-01-15", 200.0, 10.0, False),
    ("upgrade", "2024-01-15", None, 300.0, 12.0, False),           # mid-month upgrade
    ("gone", "2023-10-01", "2024-01-10", 60.0, 4.0, False),
    ("gone", "2024-02-05", None, 60.0, 4.0, False),                # 26 days later: churned, reactivated
    ("annual", "2023-07-01", "2024-06-30", 250.0, 10.0, False),    # term ends after the data: not churn
    ("quick", "2024-01-02", "2024-02-15", 40.0, 2.0, False),
    ("newbie", "2024-01-05", "2024-01-19", 0.0, 3.0, True),        # trial, converted after 14 days
    ("newbie", "2024-01-19", None, 80.0, 3.0, False),
    ("midnight", "2024-02-01", None, 500.0, 20.0, False),          # starts at midnight on Feb 1
    ("midnight", "2024-03-05", None, 100.0, 0.0, False),           # first expansion, 33 days after paying
    ("trialonly", "2024-02-10", "2024-02-24", 0.0, 2.0, True),     # a trial that never converts
]
EVENTS = [  # (account, user_id, event_at, event_name)
    ("veteran", "v1", "2023-02-01 09:00", "login"),
    ("steady", "u1", "2024-01-02 10:00", "create_report"),
    ("steady", "u1", "2024-01-03 10:00", "login"),
    ("steady", "u1", "2024-01-03 11:00", "create_report"),
    ("steady", "u2", "2024-01-03 12:00", "login"),
    ("upgrade", "u3", "2024-01-10 09:00", "create_report"),
    ("upgrade", "u3", "2024-01-10 09:30", "run_automation"),
    ("newbie", "u4", "2024-01-09 10:00", "create_report"),         # first value 4 days after sign-up
    ("quick", "u5", "2024-01-03 08:00", "create_report"),          # 1 day
    ("midnight", "u6", "2024-02-20 10:00", "create_report"),       # 31 days
    ("steady", "u1", "2024-02-29 23:59:59", "login"),
    ("veteran", "v1", "2024-03-31 12:00", "login"),
]
MILESTONES = [  # (account, milestone, achieved_at)
    ("quick", "setup", "2024-01-02 09:00"), ("quick", "invite", "2024-01-02 10:00"),
    ("quick", "invite", "2024-01-20"),                             # repeated: the first counts
    ("newbie", "setup", "2024-01-05 12:00"), ("newbie", "invite", "2024-01-12"),
    ("newbie", "other", "2024-01-06"),                             # not an onboarding milestone
    ("midnight", "setup", "2024-01-20"),                           # never invites: not onboarded
    ("steady", "invite", "2023-06-03"),
]
SURVEYS = [  # (response_id, account, responded_at, survey_type, score)
    ("r1", "steady", "2024-01-10", "NPS", 10.0), ("r2", "gone", "2024-01-11", "nps", 3.0),
    ("r3", "churner", "2024-01-12", "nps", 9.0), ("r4", "veteran", "2024-01-31 23:59:59", "nps", 7.0),
    ("r5", "midnight", "2024-02-01 00:00", "nps", 6.0),
    ("r6", "steady", "2024-01-15", "csat", 5.0), ("r7", "upgrade", "2024-01-16", "CSAT", 4.0),
    ("r8", "late", "2024-01-17", "csat", 2.0),
    ("r9", "newbie", "2024-01-20", "ces", 6.0), ("r10", "upgrade", "2024-01-21", "ces", 3.0),
]
TICKETS = [  # (ticket_id, account, created_at, resolved_at, first_contact_resolved)
    ("t1", "steady", "2024-01-03 10:00", "2024-01-03 14:00", True),     # 4 hours
    ("t2", "late", "2024-01-20", "2024-02-02", False),                  # 312 hours, resolved in February
    ("t3", "upgrade", "2024-01-28", "2024-01-30", None),                # 48 hours
    ("t4", "churner", "2024-01-29", None, None),                        # still open
]


def kpi_tables() -> dict[str, pd.DataFrame]:
    """The warehouse's source tables under their canonical names."""
    a_id, a_created, a_segment = zip(*ACCOUNTS, strict=True)
    s_id, start, end, mrr, seats, trial = zip(*SUBSCRIPTIONS, strict=True)
    e_id, user, at, name = zip(*EVENTS, strict=True)
    m_id, milestone, achieved = zip(*MILESTONES, strict=True)
    r_id, r_account, responded, kind, score = zip(*SURVEYS, strict=True)
    t_id, t_account, created, resolved, fcr = zip(*TICKETS, strict=True)
    return {
        "accounts": pd.DataFrame({"account_id": list(a_id), "created_at": ts(*a_created),
                                  "segment": pd.Series(a_segment, dtype=object)}),
        "subscriptions": pd.DataFrame({"account_id": list(s_id), "start_at": ts(*start), "end_at": ts(*end),
                                       "mrr": list(mrr), "seats": list(seats), "is_trial": list(trial)}),
        "events": pd.DataFrame({"account_id": list(e_id), "event_at": ts(*at), "event_name": list(name),
                                "user_id": list(user)}),
        "milestones": pd.DataFrame({"account_id": list(m_id), "milestone": list(milestone),
                                    "achieved_at": ts(*achieved)}),
        "surveys": pd.DataFrame({"response_id": list(r_id), "account_id": list(r_account),
                                 "responded_at": ts(*responded), "survey_type": list(kind), "score": list(score)}),
        "tickets": pd.DataFrame({"ticket_id": list(t_id), "account_id": list(t_account), "created_at": ts(*created),
                                 "resolved_at": ts(*resolved), "first_contact_resolved": pd.Series(fcr,
                                                                                                    dtype="boolean")}),
    }


MONTHS = [f"{y}-{m:02d}-01" for y, m in [(2023, m) for m in range(2, 13)] + [(2024, 1), (2024, 2), (2024, 3)]]
SETTLED = MONTHS[:-1]
# Each complete month's end state (the 1st of the next month), worked out row by row above:
# MRR of the paid rows in force and how many accounts have one, and their seats.
MRR_AT_END = [1100, 1100, 1500, 1600, 1870, 1870, 2070, 2130, 2130, 2160, 2160, 1420, 1860, 1960]
ACTIVE_AT_END = [2, 2, 3, 4, 5, 5, 6, 7, 7, 7, 7, 7, 8, 8]
ACTIVE_ON_FIRST = [2, 2, 2, 3, 4, 5, 5, 6, 7, 7, 7, 7, 7]          # settled months
MRR_ON_FIRST = [1100, 1100, 1100, 1500, 1600, 1870, 1870, 2070, 2130, 2130, 2160, 2160, 1420]
CHURNED = [0] * 11 + [2, 1]                                         # 2024-01: churner, gone; 2024-02: quick
MOVEMENTS = {  # settled month → (new, reactivation, expansion, contraction, churned MRR)
    "2023-04-01": (400, 0, 0, 0, 0),        # late starts at midnight on May 1: in April's end state
    "2023-05-01": (100, 0, 0, 0, 0),        # steady
    "2023-06-01": (250, 0, 20, 0, 0),       # annual; veteran's add-on
    "2023-08-01": (200, 0, 0, 0, 0),        # upgrade
    "2023-09-01": (60, 0, 0, 0, 0),         # gone
    "2023-11-01": (0, 0, 30, 0, 0),         # steady's first add-on
    # quick 40 + newbie 80 (after its trial) + midnight 500 (starts at midnight on Feb 1); upgrade +100;
    # late lapses (−400, renewed within grace); churner −1000 and gone −60 churn.
    "2024-01-01": (620, 0, 100, 400, 1060),
    # gone is back (reactivation 60); late returns (+400) and steady nets +20 (+50 − 30); quick churns (−40).
    "2024-02-01": (0, 60, 420, 0, 40),
}
SEATS = {"2023-02-01": (1, 55)}  # seats in use: (Σ min(users, seats), Σ seats) where users were active
# Time-to-value cohorts (sign-up month → milestone → per day (reached, observed), median days, reached).
COHORTS = {
    "2024-01-01": {"first_value": ({7: (2, 3), 30: (2, 3), 60: (3, 3)}, 4.0, 3),        # 1, 4, 31 days
                   "onboarded": ({7: (2, 3), 30: (2, 3), 60: (2, 3)}, 3.5, 2),          # 0, 7 days; midnight never
                   "trial_converted": ({7: (0, 1), 30: (1, 1), 60: (1, 1)}, 14.0, 1),   # newbie 14 days
                   # quick (no expansion, observed 89 days), newbie (72), midnight (33 days, observed 59)
                   "expanded": ({7: (0, 3), 30: (0, 3), 60: (0, 2)}, 33.0, 1)},
    "2024-02-01": {"first_value": ({7: (0, 1), 30: (0, 1)}, None, 0),                   # trialonly, 50 days seen
                   "onboarded": ({7: (0, 1), 30: (0, 1)}, None, 0),
                   "trial_converted": ({7: (0, 1), 30: (0, 1)}, None, 0)},
}
MEDIANS = {"first_value": "to_first_value", "onboarded": "to_onboard", "trial_converted": "trial_to_paid",
           "expanded": "to_first_expansion"}


def expected_all() -> dict[tuple[str, str], tuple]:
    """(month, kpi) → (value, numerator, denominator) for segment `all`, every row of the table, by hand."""
    rows: dict[tuple[str, str], tuple] = {}
    for month, mrr, active in zip(MONTHS, MRR_AT_END, ACTIVE_AT_END, strict=True):
        rows[(month, "mrr")] = (mrr, mrr, None)
        rows[(month, "active_accounts")] = (active, active, None)
        rows[(month, "arpu")] = (mrr / active, mrr, active)
    window_churned, window_active = [], []
    for i, month in enumerate(SETTLED):
        opening, active, churned = MRR_ON_FIRST[i], ACTIVE_ON_FIRST[i], CHURNED[i]
        new, back, grown, shrunk, lost = MOVEMENTS.get(month, (0, 0, 0, 0, 0))
        kept = opening - shrunk - lost
        rows |= {(month, "logo_churn_rate"): (churned / active, churned, active),
                 (month, "revenue_churn_rate"): (lost / opening, lost, opening),
                 (month, "gross_revenue_retention"): (kept / opening, kept, opening),
                 (month, "net_revenue_retention"): ((kept + grown) / opening, kept + grown, opening),
                 **{(month, name): (value, value, None) for name, value in zip(
                     ("new_mrr", "reactivation_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr"),
                     (new, back, grown, shrunk, lost), strict=True)}}
        window_churned, window_active = [*window_churned, churned][-12:], [*window_active, active][-12:]
        rate = sum(window_churned) / sum(window_active)
        rows[(month, "logo_churn_rate_12m")] = (rate, sum(window_churned), sum(window_active))
        margin = MRR_AT_END[i] / ACTIVE_AT_END[i] * 0.75
        rows[(month, "customer_lifetime_value")] = (margin / rate if rate else None, margin, rate)
    # Paying 12 months before: churner 1000 (gone by now) and veteran 100 (120 with its add-on).
    for month in ("2024-01-01", "2024-02-01"):
        rows[(month, "net_revenue_retention_12m")] = (120 / 1100, 120, 1100)
        rows[(month, "gross_revenue_retention_12m")] = (100 / 1100, 100, 1100)
    rows |= _experience() | _usage() | _ttv()
    return rows


def _experience() -> dict:
    return {
        # January: promoters 10 and 9, detractor 3, passive 7 (a second before midnight); February: the 6 at midnight.
        ("2024-01-01", "nps"): (100 * 1 / 4, 1, 4), ("2024-02-01", "nps"): (100 * -1 / 1, -1, 1),
        ("2024-01-01", "csat"): (2 / 3, 2, 3), ("2024-01-01", "ces"): (9 / 2, 9, 2),
        # January resolves t1 (4 h, first contact) and t3 (48 h, unknown); February t2 (312 h, not first contact).
        ("2024-01-01", "median_resolution_hours"): (26.0, None, 2),
        ("2024-02-01", "median_resolution_hours"): (312.0, None, 1),
        ("2024-01-01", "first_contact_resolution"): (1.0, 1, 1),
        ("2024-02-01", "first_contact_resolution"): (0.0, 0, 1),
    }


def _usage() -> dict:
    rows = {
        # users active: 2023-02 v1 (1 day of 28); 2024-01 u1 (2 days), u2, u3, u4, u5 (1 each) of 31;
        # 2024-02 u1, u6 (1 day each) of 29; 2024-03 v1 (1 day of 31).
        ("2023-02-01", "stickiness"): (1 / 28 / 1, 1 / 28, 1), ("2024-01-01", "stickiness"): (6 / 31 / 5, 6 / 31, 5),
        ("2024-02-01", "stickiness"): (2 / 29 / 2, 2 / 29, 2), ("2024-03-01", "stickiness"): (1 / 31 / 1, 1 / 31, 1),
    }
    # Seats at each month's end, and users active in the month capped by their account's seats.
    seats = [55, 55, 75, 80, 90, 90, 100, 104, 104, 104, 104, 57, 79, 79]
    used = {"2023-02-01": 1, "2024-01-01": 5, "2024-02-01": 2, "2024-03-01": 1}
    # Core features (create_report, run_automation) used in the month per account active at its end.
    core = {"2024-01-01": 5, "2024-02-01": 1}
    for month, total, active in zip(MONTHS, seats, ACTIVE_AT_END, strict=True):
        rows[(month, "seats_in_use")] = (used.get(month, 0) / total, used.get(month, 0), total)
        rows[(month, "core_feature_share")] = (core.get(month, 0) / (2 * active), core.get(month, 0), 2 * active)
    return rows


def _ttv() -> dict:
    rows = {}
    for cohort, milestones in COHORTS.items():
        for stem, (curve, median, reached) in milestones.items():
            for day, (hit, seen) in curve.items():
                rows[(cohort, f"{stem}_by_day_{day}")] = (hit / seen, hit, seen)
            if reached:
                rows[(cohort, f"median_days_{MEDIANS[stem]}")] = (median, None, reached)
    # February 2024 (trailing months 2023-03 to 2024-02): quick (1 day to value) churned, newbie (4) and
    # midnight (31) did not; trialonly was never active. In January the three were not active on any 1st yet.
    rows |= {("2024-02-01", "churn_rate_ttv_q1"): (1.0, 1, 1), ("2024-02-01", "churn_rate_ttv_q2"): (0.0, 0, 1),
             ("2024-02-01", "churn_rate_ttv_q3"): (0.0, 0, 1)}
    return rows


def expected_smb() -> dict[tuple[str, str], tuple]:
    """A selection for segment SMB (steady, upgrade, gone, quick, newbie, trialonly), by hand."""
    return {
        ("2024-01-01", "logo_churn_rate"): (1 / 3, 1, 3),                  # gone, of steady, upgrade, gone
        ("2024-02-01", "logo_churn_rate"): (1 / 4, 1, 4),                  # quick, of steady, upgrade, newbie, quick
        ("2024-01-01", "mrr"): (550, 550, None), ("2024-02-01", "mrr"): (590, 590, None),
        ("2024-01-01", "new_mrr"): (120, 120, None), ("2024-02-01", "reactivation_mrr"): (60, 60, None),
        ("2024-02-01", "net_revenue_retention"): (530 / 550, 530, 550),    # 550 + 20 − 40
        ("2024-01-01", "nps"): (0.0, 0, 2), ("2024-01-01", "csat"): (1.0, 2, 2),
        ("2024-02-01", "churn_rate_ttv_q1"): (1.0, 1, 1), ("2024-02-01", "churn_rate_ttv_q2"): (0.0, 0, 1),
        ("2024-01-01", "first_value_by_day_7"): (1.0, 2, 2),
        ("2024-01-01", "median_days_to_first_value"): (2.5, None, 2),
    }
