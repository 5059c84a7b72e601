#!/usr/bin/env bash
# Local stand-ins for the official base images, made from Debian's packages with mmdebstrap and
# `docker import`, for machines that reach Debian's mirror but no image registry (this project's
# CI). Each is built once and kept: a tag that exists is reused, so only the first run pays.
#
#   facetoface-test-base:bookworm      python3 + python3-venv: stands in for python:3.12-slim-bookworm
#                                      (PYTHON_IMAGE) and debian:bookworm-slim (the PgBouncer image)
#   facetoface-test-services:bookworm  PostgreSQL, Prometheus and Caddy from Debian: stands in for the
#                                      official postgres, prom/prometheus and caddy images
#
# Usage: tests/deploy/base-images.sh [base|services|all]   (default: all)
set -euo pipefail

BASE_TAG=${BASE_TAG:-facetoface-test-base:bookworm}
SERVICES_TAG=${SERVICES_TAG:-facetoface-test-services:bookworm}
what=${1:-all}

# pip on this machine verifies HTTPS with the machine's own CA bundle (`pip config list`'s cert);
# a base image that runs pip here must carry the same bundle, or nothing installs.
host_bundle=$(pip3 config get global.cert 2>/dev/null || true)
host_bundle=${host_bundle:-/etc/ssl/certs/ca-certificates.crt}
bundle_in_image=/etc/ssl/certs/host-ca-bundle.crt

# Documentation, manuals and translations are never read in a container; leaving them out
# makes every image (and, with the vfs storage driver, every layer copy) smaller.
slim=(--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
      --dpkgopt='path-exclude=/usr/share/info/*')

make_image() {  # tag, packages, extra docker-import --change arguments...
  local tag=$1 packages=$2; shift 2
  if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag: present (cached)"
    return
  fi
  echo "$tag: building from Debian bookworm ($packages)"
  local start=$SECONDS
  mmdebstrap --quiet --variant=minbase --include="$packages" "${slim[@]}" \
    --essential-hook='mkdir -p "$1/etc/postgresql-common/createcluster.d" && echo "create_main_cluster = false" > "$1/etc/postgresql-common/createcluster.d/no-main-cluster.conf"' \
    --customize-hook="cp '$host_bundle' \"\$1$bundle_in_image\"" \
    bookworm - |
    docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change "ENV PIP_CERT=$bundle_in_image" \
      --change 'CMD ["bash"]' \
      "$@" - "$tag" >/dev/null
  echo "$tag: built in $((SECONDS - start)) s"
}

case $what in
  base | all) make_image "$BASE_TAG" python3,python3-venv,ca-certificates ;;&
  services | all)
    make_image "$SERVICES_TAG" postgresql-15,postgresql-client-15,prometheus,caddy,wget,ca-certificates \
      --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' ;;
  base) ;;
  *) echo "usage: $0 [base|services|all]" >&2; exit 2 ;;
esac
