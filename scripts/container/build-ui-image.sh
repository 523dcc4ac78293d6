#!/usr/bin/env bash
# Build the Streamlit UI's image (ui/Containerfile) from this working tree; the context is
# the repository, narrowed by .dockerignore. With podman, the base image its FROM names is
# the local stand-in (base-image.sh, cached), since no image registry is reachable here.
# Usage: build-ui-image.sh [--backend docker|podman] IMAGE_TAG
set -euo pipefail
backend=podman
if [ "${1:-}" = "--backend" ]; then
  backend=$2
  shift 2
fi
image=${1:?usage: build-ui-image.sh [--backend docker|podman] IMAGE_TAG}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."

options=()
previous=
if [ "$backend" = podman ]; then
  previous=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  "$here/base-image.sh" "$(awk 'toupper($1) == "FROM" { print $2; exit }' ui/Containerfile)" >&2
  # As for the Bento's image: pip reaches PyPI over the host's network; docker format keeps SHELL.
  options=(--network host --format docker)
fi
start=$SECONDS
"$backend" build "${options[@]}" --quiet --file ui/Containerfile --tag "$image" . >/dev/null
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$image")" ]; then
  podman rmi "$previous" >/dev/null 2>&1 || true  # the previous build of this tag, now untagged
fi
echo "image $image: built from ui/Containerfile with $backend in $((SECONDS - start)) s" >&2
