#!/usr/bin/env bash
# Build the Bento's container image: build the Bento (`churnops bento`: models/ and src/),
# then `bentoml containerize` it. With podman, the base image its Dockerfile names is made
# locally first (base-image.sh, cached), since no image registry is reachable here.
# Usage: build-image.sh [--backend docker|podman] IMAGE_TAG   (prints the Bento's tag last)
set -euo pipefail
backend=podman
if [ "${1:-}" = "--backend" ]; then
  backend=$2
  shift 2
fi
image=${1:?usage: build-image.sh [--backend docker|podman] IMAGE_TAG}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."  # the repository: bentofile.yaml, src/, models/
bentoml_home=${BENTOML_HOME:-$HOME/bentoml}

bento=$(churnops bento)
dockerfile="$bentoml_home/bentos/${bento%%:*}/${bento#*:}/env/docker/Dockerfile"
base=$(awk 'toupper($1) == "FROM" { print $2; exit }' "$dockerfile")

options=()
previous=
if [ "$backend" = podman ]; then
  previous=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  # Fully qualify the short name as podman's short-name aliases do (python -> docker.io/library).
  first=${base%%/*}
  if [ "$first" = "$base" ]; then
    base=docker.io/library/$base
  elif [[ "$first" != *.* && "$first" != *:* && "$first" != localhost ]]; then
    base=docker.io/$base
  fi
  "$here/base-image.sh" "$base" >&2
  # network=host: pip inside the build reaches PyPI (no CNI network is needed to build);
  # format=docker: keeps the Dockerfile's SHELL (bash -o pipefail), which OCI format drops.
  options=(--opt network=host --opt format=docker)
fi

# bentoml 1.4.40 refuses a dockerfile_template outside the working directory, and its
# build context is a temporary folder (bentoml/BentoML#5566): keep that folder under it.
mkdir -p build
tmp=$(mktemp -d "$PWD/build/container-context.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
TMPDIR=$tmp bentoml containerize "$bento" --backend "$backend" "${options[@]}" --image-tag "$image" \
  >"$tmp.log" 2>&1 || { tail -n 40 "$tmp.log" >&2; rm -f "$tmp.log"; exit 1; }
rm -f "$tmp.log"
# The previous build of this tag is now untagged: drop it (it fails, harmlessly, if in use).
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$image")" ]; then
  podman rmi "$previous" >/dev/null 2>&1 || true
fi
echo "image $image: built from $bento with $backend in $((SECONDS - start)) s" >&2
echo "$bento"
