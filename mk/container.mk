# Container: the Bento's image, built and run with podman where no Docker engine runs
# (docs/container.md). podman reads scripts/container/containers.conf (runc, no ulimits).

TEST_SETUP += setup-container setup-image-registry

IMAGE ?= churnops-service:dev
UI_IMAGE ?= churnops-ui:dev
export UI_IMAGE
# CD builds with docker (it pushes with docker); where no Docker daemon answers, podman.
CONTAINER_BACKEND ?= $(shell docker info >/dev/null 2>&1 && echo docker || echo podman)
CONTAINER_ENV := CONTAINERS_CONF=$(CURDIR)/scripts/container/containers.conf

.PHONY: setup-container setup-image-registry base-image container-test image ui-image push-image

setup-container: install ## Where no Docker daemon answers: podman, runc and debootstrap for the container test
	if [ "$(CONTAINER_BACKEND)" = docker ]; then echo "setup-container: docker answers, nothing to install"; \
	else scripts/apt-install podman runc containernetworking-plugins iptables debootstrap debian-archive-keyring; fi

base-image: setup-container ## Local stand-in for the Bento's base image (python:3.11-slim), cached
	$(CONTAINER_ENV) scripts/container/base-image.sh

setup-image-registry: ## The OCI registry the container test pushes to and pulls from (docker-registry, htpasswd)
	scripts/apt-install docker-registry apache2-utils

container-test: data setup-container setup-image-registry ## Build, push, pull by digest and run both images as k8s/ does
	$(CONTAINER_ENV) $(PY) -m pytest -q tests/e2e/test_container.py

image: install ## Build the Bento and its image $(IMAGE) with docker, else podman
	$(CONTAINER_ENV) scripts/container/build-image.sh --backend $(CONTAINER_BACKEND) "$$IMAGE"

ui-image: install ## Build the Streamlit UI's image $(UI_IMAGE) (ui/Containerfile) with docker, else podman
	$(CONTAINER_ENV) scripts/container/build-ui-image.sh --backend $(CONTAINER_BACKEND) "$$UI_IMAGE"

push-image: ## CD: push $(IMAGE) and write the digest the registry answered to $GITHUB_OUTPUT
	digest=$$($(CONTAINER_ENV) scripts/container/push-image.sh --backend $(CONTAINER_BACKEND) "$$IMAGE"); \
	  echo "digest=$$digest" | tee -a "$${GITHUB_OUTPUT:-/dev/stdout}"
