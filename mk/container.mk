# Container: the Bento's image, built and run with podman where no Docker engine runs
# (docs/container.md). podman reads scripts/container/containers.conf (runc, no ulimits).

TEST_SETUP += setup-container

IMAGE ?= churnops-service:dev
# CD builds with docker (it pushes with docker); where no Docker daemon answers, podman.
CONTAINER_BACKEND ?= $(shell docker info >/dev/null 2>&1 && echo docker || echo podman)
CONTAINER_ENV := CONTAINERS_CONF=$(CURDIR)/scripts/container/containers.conf

.PHONY: setup-container base-image container-test image

setup-container: install ## Where no Docker daemon answers: podman, runc and debootstrap for the container test
	if [ "$(CONTAINER_BACKEND)" = docker ]; then echo "setup-container: docker answers, nothing to install"; \
	else scripts/apt-install podman runc containernetworking-plugins iptables debootstrap debian-archive-keyring; fi

base-image: setup-container ## Local stand-in for the Bento's base image (python:3.11-slim), cached
	$(CONTAINER_ENV) scripts/container/base-image.sh

container-test: data setup-container ## Build the Bento's image, run it as k8s/ does: ready, predict, metrics, SIGTERM
	$(CONTAINER_ENV) $(PY) -m pytest -q tests/e2e/test_container.py

image: install ## Build the Bento and its image $(IMAGE) with docker, else podman
	$(CONTAINER_ENV) scripts/container/build-image.sh --backend $(CONTAINER_BACKEND) "$$IMAGE"
