# Churn prediction: every stage of the pipeline as a target. `make` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
CHURN := $(VENV)/bin/churn
PARAMS ?= params.yaml
# Test files run in parallel, one worker per core (a file's tests stay together and share its fixtures).
TEST_WORKERS ?= auto

.PHONY: help setup demo simulate validate features kpis train score outcomes report docs test bench evaluate lint clean

## help: list the targets
help:
	@grep -E '^## ' $(MAKEFILE_LIST) | sed -E 's/^## ([a-z]+): /\1\t/' | awk -F '\t' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[dev,postgres]"
	touch $(STAMP)

# Debian's Chromium renders the managers' report in the tests; installed once when missing (needs root or sudo-less CI).
$(VENV)/.chromium: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	@command -v chromium >/dev/null 2>&1 && touch $@ || echo "chromium could not be installed: the report's browser test will say so and skip"

## setup: create .venv and install the project with its dev extras (other targets do this when needed)
setup: $(STAMP)

## demo: simulate a warehouse, train, score the latest as-of, compute the KPIs, judge the playbooks, report, print a summary
demo: $(STAMP)
	$(CHURN) --params $(PARAMS) demo

## simulate: fill the warehouse with the synthetic company of params.yaml `simulate:`
simulate: $(STAMP)
	$(CHURN) --params $(PARAMS) simulate

## validate: validate the source tables (Great Expectations; a self-contained page in reports/validation/)
validate: $(STAMP)
	$(CHURN) --params $(PARAMS) validate

## features: compute the feature table for the as-of grid and write churn_features
features: $(STAMP)
	$(CHURN) --params $(PARAMS) features

## kpis: compute the customer-success KPIs per month and segment in the warehouse and write churn_kpis
kpis: $(STAMP)
	$(CHURN) --params $(PARAMS) kpis

## train: train, track in MLflow, register, gate the champion alias
train: $(STAMP)
	$(CHURN) --params $(PARAMS) train

## score: score the latest as-of with the champion and write churn_scores
score: $(STAMP)
	$(CHURN) --params $(PARAMS) score

## outcomes: judge the scorings whose horizon has passed: outcomes, model in the wild, playbook effects, missed churns
outcomes: $(STAMP)
	$(CHURN) --params $(PARAMS) outcomes

## report: write the CS managers' report for the newest scored as-of (reports/churn_report_<as_of>.html + .md/.csv)
report: $(STAMP)
	$(CHURN) --params $(PARAMS) report

## docs: regenerate docs/FEATURES.md from the feature catalog and docs/KPIS.md from the KPI definitions
docs: $(STAMP)
	$(CHURN) --params $(PARAMS) features --markdown docs/FEATURES.md
	$(CHURN) --params $(PARAMS) kpis --markdown docs/KPIS.md

# The `spark` extra (pyspark) for the Spark integration test; the demo does not need it.
$(VENV)/.spark: $(STAMP)
	$(VENV)/bin/pip install --quiet -e ".[dev,postgres,spark]"
	touch $@

## test: run the test suite (tests marked postgres need CHURN_TEST_POSTGRES_URL; .ci/run starts a server)
test: $(STAMP) $(VENV)/.chromium $(VENV)/.spark
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

## bench: benchmark feature build (beside pandas), training and scoring on scaled warehouses (params `bench:`)
bench: $(STAMP)
	$(CHURN) --params $(PARAMS) bench

## evaluate: simulate and train every company profile (demo, self_serve, enterprise; params `evaluate:`) in temporary folders, print one table
evaluate: $(STAMP)
	$(CHURN) --params $(PARAMS) evaluate --profiles

## lint: ruff over the code and tests
lint: $(STAMP)
	$(VENV)/bin/ruff check .

## clean: remove the demo warehouse, MLflow store and reports (keeps .venv)
clean:
	rm -rf data reports mlruns mlruns.db
