# Python 3.11 to 3.13: the same install, fast tests, pipeline and served prediction under
# each (scripts/test-pythons, a fresh clone of HEAD per interpreter).

# Default: one interpreter per supported minor found on this machine (scripts/find-pythons).
PYTHONS ?= $(shell scripts/find-pythons)

.PHONY: test-pythons

test-pythons: setup-runner ## Install, test-code, pipeline and a prediction under each of $(PYTHONS) (as a non-root user)
	@[ -n "$(strip $(PYTHONS))" ] || { scripts/find-pythons >/dev/null; exit 1; }
	scripts/test-pythons $(PYTHONS)
