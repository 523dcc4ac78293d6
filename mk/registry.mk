# Registry and data intake: the `churnops` commands that CT, CD and the PR report run.
# They read MLFLOW_TRACKING_URI (default: the local SQLite store mlflow.db).

SOURCE ?=
SCENARIO ?= none
DATE ?=
BASE ?= main
REPORT_DIR ?= build/report
PR ?=
PLOTS_URL ?=

# To the recipes as environment, never as command text.
export SOURCE SCENARIO DATE BASE REPORT_DIR PR PLOTS_URL

TEST_SETUP += setup-registry

.PHONY: ingest data-rebuild register promote mlflow-access pr-report setup-registry test-registry

setup-registry: install ## PostgreSQL, for the team's tracking server that the registry tests start
	scripts/apt-install postgresql

ingest: data ## Append the newly labeled customers from params.yaml's ingest.source (SOURCE= overrides; DATE=YYYY-MM-DD; a drill: SCENARIO=price_rise|contract_mix) and `dvc add` them
	$(VENV)/bin/churnops ingest --scenario "$$SCENARIO" $${SOURCE:+--source "$$SOURCE"} $${DATE:+--date "$$DATE"}

data-rebuild: install ## Without the DVC remote: rebuild the base and synthetic snapshots data.dvc records
	$(VENV)/bin/churnops ingest --rebuild
	$(PY) -m dvc status data.dvc

register: install ## Register models/model.onnx in MLflow as the challenger, tagged with its lineage (and DIGEST, its image)
	$(VENV)/bin/churnops register $${DIGEST:+--image-digest "$$DIGEST"}

promote: install ## Move the MLflow champion alias to the model in models/ (refused unless its gate passed)
	$(VENV)/bin/churnops promote

mlflow-access: install ## As the tracking server's admin: the CI and CD identities and their grants (docs/setup.md)
	$(VENV)/bin/churnops mlflow-access

pr-report: install ## The report against BASE (default main) in $(REPORT_DIR)/, plots as HTML; PR=N posts it as the bot's comment
	$(VENV)/bin/churnops report --base "$$BASE" --out "$$REPORT_DIR/report.md" --plots-dir "$$REPORT_DIR/plots" \
	  $${PLOTS_URL:+--plots-url "$$PLOTS_URL"} $${PR:+--post "$$PR"}
	[ -z "$${GITHUB_STEP_SUMMARY:-}" ] || cat "$$REPORT_DIR/report.md" >> "$$GITHUB_STEP_SUMMARY"

test-registry: setup-registry ## Tests of ingest, registry, access, rollback, set-image, report (the team's mlflow server, git, dvc)
	$(PY) -m pytest -q tests/code/test_ingest.py tests/e2e/registry
