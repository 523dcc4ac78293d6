#!/usr/bin/env bash
# Make a local stand-in for the base image the Bento's Dockerfile names (python:3.11-slim):
# no registry is reachable here, so debootstrap Debian bookworm (its Python is 3.11) and
# `podman import` it under that name. Cached in podman's store: nothing is done when the
# image exists and was made by this same recipe (a hash of this script and of the machine's
# extra CA certificates, kept in a label).
# Usage: base-image.sh [IMAGE_NAME]
set -euo pipefail
image=${1:-docker.io/library/python:3.11-slim}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
shopt -s nullglob
local_cas=(/usr/local/share/ca-certificates/*.crt)
recipe=$(cat "$0" "${local_cas[@]}" | sha256sum | cut -c1-16)
label=org.churnops.base-recipe

made_by=$(podman image inspect --format "{{index .Labels \"$label\"}}" "$image" 2>/dev/null || true)
old_id=$(podman image inspect --format "{{.Id}}" "$image" 2>/dev/null || true)
if [ "$made_by" = "$recipe" ]; then
  echo "base image $image: cached (recipe $recipe)"
  exit 0
fi

root=$(mktemp -d /var/tmp/churnops-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
start=$SECONDS
# What python:3.11-slim offers the Dockerfile: python, pip that may install system-wide
# (it runs `pip install uv`), ca-certificates, and apt sources for its `apt-get install`.
debootstrap --variant=minbase \
  --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
  bookworm "$root" "$mirror" >/dev/null
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security} bookworm-security main
EOF
# Trust what this machine trusts (here a TLS-intercepting egress proxy's CA; none on a stock
# machine) so that pip and uv inside `podman build` reach PyPI; uv reads SSL_CERT_FILE.
if [ ${#local_cas[@]} -gt 0 ]; then
  cp "${local_cas[@]}" "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null
fi
rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
tar -C "$root" -c . | podman import \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV LANG=C.UTF-8" \
  --change "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" \
  --change 'CMD ["python3"]' \
  --change "LABEL $label=$recipe" \
  --message "debootstrap bookworm minbase + python3 (stand-in for python:3.11-slim)" \
  --quiet - "$image" >/dev/null
[ -n "$old_id" ] && podman rmi "$old_id" >/dev/null 2>&1 || true
echo "base image $image: built in $((SECONDS - start)) s (recipe $recipe)"
