#!/usr/bin/env bash
# Local stand-ins for the official base images, made from Debian's packages with mmdebstrap and
# `docker import`, for machines that reach Debian's mirror but no image registry (this project's
# CI). Each is built once and kept: a tag that exists is reused, so only the first run pays.
#
#   facetoface-test-base:bookworm        python3 + python3-venv: for python:3.12-slim-bookworm
#                                        (PYTHON_IMAGE) and debian:bookworm-slim (PgBouncer's base)
#   facetoface-test-postgres:bookworm    Debian's PostgreSQL 15: for postgres:16-bookworm
#   facetoface-test-prometheus:bookworm  Debian's Prometheus: for prom/prometheus
#   facetoface-test-caddy:bookworm       Debian's Caddy: for caddy
#
# One image per service, each as small as it can be: with the vfs storage driver every
# container starts with a full copy of its image.
#
# Usage: tests/deploy/base-images.sh [base|postgres|prometheus|caddy|all]   (default: all)
set -euo pipefail

PREFIX=${PREFIX:-facetoface-test}
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

# make_image TAG PACKAGES [docker-import --change ...] [-- mmdebstrap options ...]
make_image() {
  local tag=$1 packages=$2; shift 2
  local changes=() options=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do changes+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  options=("$@")
  if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag: present (cached)"
    return
  fi
  echo "$tag: building from Debian bookworm ($packages)"
  local start=$SECONDS
  # Through a file, not a pipe: `docker import` would make an (empty) image of a failed run.
  local tarball
  tarball=$(mktemp --suffix=.tar)
  trap 'rm -f "$tarball"' RETURN
  mmdebstrap --quiet --variant=minbase --include="$packages" "${slim[@]}" "${options[@]}" \
    --customize-hook="mkdir -p \"\$1/etc/ssl/certs\" && cp '$host_bundle' \"\$1$bundle_in_image\"" \
    bookworm "$tarball"
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "ENV PIP_CERT=$bundle_in_image" \
    --change 'CMD ["bash"]' \
    "${changes[@]}" "$tarball" "$tag" >/dev/null
  echo "$tag: built in $((SECONDS - start)) s"
}

std_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
for name in base postgres prometheus caddy; do
  [ "$what" = all ] || [ "$what" = "$name" ] || continue
  case $name in
    base) make_image "$PREFIX-base:bookworm" python3,python3-venv,ca-certificates ;;
    postgres)
      # Without LLVM (JIT): 100 MB less, and PostgreSQL runs without JIT when it is absent.
      make_image "$PREFIX-postgres:bookworm" postgresql-15 \
        --change "ENV PATH=/usr/lib/postgresql/15/bin:$std_path" \
        -- --essential-hook='mkdir -p "$1/etc/postgresql-common/createcluster.d" && echo "create_main_cluster = false" >"$1/etc/postgresql-common/createcluster.d/no-main-cluster.conf"' \
        --dpkgopt='path-exclude=/usr/lib/x86_64-linux-gnu/libLLVM*' \
        --dpkgopt='path-exclude=/usr/lib/postgresql/15/lib/llvmjit*' \
        --dpkgopt='path-exclude=/usr/lib/postgresql/15/lib/bitcode/*' ;;
    # The web UI's JavaScript (200 MB of time zones) is not needed for the API the test uses.
    prometheus)
      make_image "$PREFIX-prometheus:bookworm" prometheus,wget \
        -- --dpkgopt='path-exclude=/usr/share/javascript/*' --dpkgopt='path-exclude=/usr/share/nodejs/*' ;;
    caddy) make_image "$PREFIX-caddy:bookworm" caddy,wget,ca-certificates ;;
  esac
done
if ! [[ $what =~ ^(all|base|postgres|prometheus|caddy)$ ]]; then
  echo "usage: $0 [base|postgres|prometheus|caddy|all]" >&2
  exit 2
fi
