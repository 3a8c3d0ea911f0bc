"""Data validation: Great Expectations suites built from the contract, the feature catalog and the score schema."""
