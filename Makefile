# The two commands of the README:
#   make run    install (first time) and run all three projects end to end: dvc repro, offline
#   make test   install (first time) and run the test suite (what CI runs)
VENV ?= .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# For the programs make starts itself (dvc, mlflow ui), which read these before any code of the
# project runs; the project's commands set them from pipelines/core/settings.py (ENVIRONMENT_DEFAULTS).
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PYTHONDONTWRITEBYTECODE :=

.PHONY: help setup run test test-slow bench ui sweep demo

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12

setup:  ## create .venv and install the pinned dependencies (once per change of pyproject.toml)
	@bash scripts/setup.sh

run: setup  ## run every project end to end: dvc repro, then one line per project
	dvc repro
	@python -m pipelines summary

# Test files run on parallel workers (one per core, at most 4), each file whole on one worker in
# its own order: a module's tests share fixtures (a Prefect server, a tiny repro) and run in order.
# Most of the time goes to `dvc repro` subprocesses, which keep every core busy: a worker more than
# cores, or the longest files started together, only makes each test slower. A failing test or no
# test collected still makes pytest, and so make, exit non-zero.
TEST_WORKERS ?= auto

test: setup  ## the test suite, as CI runs it (installs headless Chromium for the browser tests when it can)
	@bash scripts/browser.sh
	python -m pytest -m "not slow and not gpu" -n $(TEST_WORKERS) --maxprocesses=4 --dist loadfile --durations=25

test-slow: setup  ## the tests marked slow
	python -m pytest -m slow

bench: setup  ## the benchmarks; results in benchmarks/results/ and benchmarks/RESULTS.md
	python -m benchmarks.run

# A sweep of the classification demo's learning rate and width, 8 TPE trials; any project, keys and
# ranges work the same way (docs/sweeps.md).
SWEEP ?= -S 'finetune.learning_rate=loguniform(1e-4,3e-3)' -S 'model.hidden_size=choice(64,128)' --trials 8
sweep: setup  ## a TPE sweep of the classification demo (SWEEP= sets its options)
	python -m pipelines sweep classification $(SWEEP) --sampler tpe --apply best

demo: setup  ## the demo page on http://127.0.0.1:7860: try every project's model, read its results
	python -m pipelines demo

ui: setup  ## the MLflow UI on http://127.0.0.1:5000
	mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000
