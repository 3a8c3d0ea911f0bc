"""The synthetic B2B SaaS company behind `churn simulate` and `make demo`, with its true hazards (the oracle)."""
