"""The names of the tables and views the project writes to the warehouse, in one place.

Their columns are in serving/writeback.py (the `*_SCHEMA`s) and the README's table of outputs; this module imports
nothing, so that params validation can name them without loading Ibis.
"""

FEATURES_TABLE = "churn_features"                       # churn features: one row per account and as-of
SCORES_TABLE, DRIVERS_TABLE = "churn_scores", "churn_score_drivers"   # churn score
LATEST_VIEW = "churn_scores_latest"                      # each account's newest score
ASSIGNMENTS_TABLE = "churn_playbook_assignments"         # churn score, with experiments on: each account's arm
DRIFT_TABLE = "churn_drift"                              # churn score: the checks run before publishing
KPIS_TABLE, KPIS_LATEST_VIEW = "churn_kpis", "churn_kpis_latest"   # churn kpis
OUTCOMES_TABLE, PERFORMANCE_TABLE = "churn_outcomes", "churn_model_performance"   # churn outcomes
EFFECTS_TABLE, MISSED_TABLE = "churn_playbook_effects", "churn_missed"            # churn outcomes
