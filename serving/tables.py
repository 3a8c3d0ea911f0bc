"""The names of the tables and views the pipeline's stages write to the warehouse, in one place.

`churn simulate` writes the source tables and its truth (`sim_*`) besides these (pipelines/simulate_run.py), and
validation stages its frames in temporary tables. The columns: the `*_SCHEMA`s of serving/writeback.py, the drift
table's in pipelines/scoring_run.py, the feature table's from the params (features/catalog.py); the README's table of
outputs describes them all. This module imports nothing, so that params validation can name them without Ibis.
"""

FEATURES_TABLE = "churn_features"                       # churn features: one row per account and as-of
SCORES_TABLE, DRIVERS_TABLE = "churn_scores", "churn_score_drivers"   # churn score
LATEST_VIEW = "churn_scores_latest"                      # each account's newest score
ASSIGNMENTS_TABLE = "churn_playbook_assignments"         # churn score, with experiments on: each account's arm
DRIFT_TABLE = "churn_drift"                              # churn score: the checks run before publishing
KPIS_TABLE, KPIS_LATEST_VIEW = "churn_kpis", "churn_kpis_latest"   # churn kpis
OUTCOMES_TABLE, PERFORMANCE_TABLE = "churn_outcomes", "churn_model_performance"   # churn outcomes
EFFECTS_TABLE, MISSED_TABLE = "churn_playbook_effects", "churn_missed"            # churn outcomes

OUTPUT_TABLES = (FEATURES_TABLE, SCORES_TABLE, DRIVERS_TABLE, ASSIGNMENTS_TABLE, DRIFT_TABLE, KPIS_TABLE,
                 OUTCOMES_TABLE, PERFORMANCE_TABLE, EFFECTS_TABLE, MISSED_TABLE)
OUTPUT_VIEWS = (LATEST_VIEW, KPIS_LATEST_VIEW)
