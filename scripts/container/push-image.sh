#!/usr/bin/env bash
# Push IMAGE (REGISTRY/REPOSITORY:TAG) and print the digest the registry stored it under,
# taken from the push itself (podman's --digestfile, docker's "digest:" line), never from a
# local inspect, which can name another manifest than the one pushed. Credentials are the
# engine's login (docker login, podman login / REGISTRY_AUTH_FILE).
# Usage: push-image.sh [--backend docker|podman] IMAGE
set -euo pipefail
backend=podman
if [ "${1:-}" = "--backend" ]; then
  backend=$2
  shift 2
fi
image=${1:?usage: push-image.sh [--backend docker|podman] IMAGE}

if [ "$backend" = podman ]; then
  digestfile=$(mktemp)
  trap 'rm -f "$digestfile"' EXIT
  podman push --quiet --digestfile "$digestfile" "$image" >&2
  digest=$(cat "$digestfile")
else
  # docker push ends with "TAG: digest: sha256:<hex> size: N", the registry's answer.
  digest=$(docker push "$image" | tee /dev/stderr | sed -nE 's/.*digest: (sha256:[0-9a-f]{64}).*/\1/p' | tail -n 1)
fi
if ! [[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]]; then
  echo "push-image: pushing $image gave no digest" >&2
  exit 1
fi
echo "$digest"
