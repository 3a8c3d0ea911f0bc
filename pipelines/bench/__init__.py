"""`churn bench`: the feature build, training and scoring measured on scaled synthetic warehouses."""
