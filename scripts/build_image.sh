#!/usr/bin/env bash
# Build the xplus-serve container image with podman.
#   bash scripts/build_image.sh cpu [TAG]   CPU image (default tag xplus-serve:cpu)
#   bash scripts/build_image.sh gpu [TAG]   GPU image on vllm/vllm-openai (default tag xplus-serve:gpu); needs
#                                           a registry that serves that base image (GPU_BASE_IMAGE=...)
#   bash scripts/build_image.sh redis|haproxy [TAG]   Redis / HAProxy for compose.replicas.yaml from the same
#                                           Debian base with Debian's packages (default tag
#                                           localhost/xplus-redis:bookworm, localhost/xplus-haproxy:bookworm)
# The cpu target's base is Debian bookworm made here with debootstrap (no registry needed), imported once
# as localhost/xplus-base:bookworm and kept as a tarball in the cache, so later builds skip that step;
# CPU_BASE_IMAGE=docker.io/library/debian:bookworm-slim uses the registry's image instead.
# Settings from the environment: PIP_INDEX_URL / PIP_EXTRA_INDEX_URL (an index mirror), PIP_FIND_LINKS (a
# wheel folder: torch's CPU build is taken from there when it holds one), PIP_CERT or SSL_CERT_FILE (a CA
# bundle for a TLS-intercepting proxy), DEBIAN_MIRROR, XPLUS_PODMAN_FLAGS (replaces the podman options in
# scripts/container/podman-flags), XPLUS_CACHE / XDG_CACHE_HOME (where the base tarball is kept).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-}"
case "$target" in cpu|gpu) tag="${2:-xplus-serve:$target}" ;;
  redis|haproxy) tag="${2:-localhost/xplus-$target:bookworm}" ;;
  *) echo "usage: bash scripts/build_image.sh cpu|gpu|redis|haproxy [TAG]" >&2; exit 2 ;;
esac
base_image=localhost/xplus-base:bookworm
cache="${XPLUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xplus-release}/container"

need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "error: $1 is not installed; run: bash scripts/install.sh (as root it installs podman, runc and debootstrap)" >&2
  exit 1
}

podman_flags() {
  if [ -n "${XPLUS_PODMAN_FLAGS:-}" ]; then echo "$XPLUS_PODMAN_FLAGS"; return; fi
  grep -v '^#' scripts/container/podman-flags
}

# Debian bookworm (minbase) as a local image: from the cached tarball, or debootstrapped into it first.
# A lock keeps two builds from debootstrapping into the same place at once.
ensure_base() {
  podman image exists "$base_image" && return 0
  mkdir -p "$cache"
  exec 9>"$cache/base.lock"
  flock 9
  podman image exists "$base_image" && return 0
  local tarball="$cache/debian-bookworm-minbase.tar"
  if [ ! -s "$tarball" ]; then
    need debootstrap
    local rootfs
    rootfs="$(mktemp -d "$cache/rootfs.XXXXXX")"
    echo "debootstrap: Debian bookworm (minbase) into $rootfs" >&2
    debootstrap --variant=minbase bookworm "$rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >&2
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf "$rootfs"
  fi
  podman import --quiet "$tarball" "$base_image" >/dev/null
  flock -u 9
}

# --build-arg / --volume options that carry the host's pip settings into the build
pip_build_options() {
  [ -n "${PIP_INDEX_URL:-}" ] && echo "--build-arg=PIP_INDEX=$PIP_INDEX_URL"
  [ -n "${PIP_EXTRA_INDEX_URL:-}" ] && echo "--build-arg=PIP_EXTRA_INDEX=$PIP_EXTRA_INDEX_URL"
  local ca="${PIP_CERT:-${SSL_CERT_FILE:-}}"
  if [ -n "$ca" ] && [ -f "$ca" ]; then
    echo "--volume=$ca:/run/host-ca.crt:ro"
    echo "--build-arg=CA_BUNDLE=/run/host-ca.crt"
  fi
  local wheels="${PIP_FIND_LINKS:-}"
  if [ -n "$wheels" ] && [ -d "$wheels" ]; then
    echo "--volume=$wheels:/run/wheels:ro"
    echo "--build-arg=FIND_LINKS=/run/wheels"
    if compgen -G "$wheels/torch-2.13.0+cpu-*.whl" >/dev/null; then echo "--build-arg=TORCH_INDEX="; fi
  fi
  return 0
}

need podman
mapfile -t flags < <(podman_flags)
if [ "$target" = redis ] || [ "$target" = haproxy ]; then
  ensure_base
  echo "podman build --target $target -t $tag (Debian's $target on $base_image)" >&2
  exec podman build "${flags[@]}" --format docker --layers --target "$target" --tag "$tag" \
    "--build-arg=BASE_IMAGE=$base_image" --file scripts/container/services.Containerfile scripts/container
fi
mapfile -t pip_options < <(pip_build_options)
base_args=()
if [ "$target" = cpu ]; then
  if [ -n "${CPU_BASE_IMAGE:-}" ]; then
    base_args=("--build-arg=CPU_BASE_IMAGE=$CPU_BASE_IMAGE")
  else
    ensure_base
    base_args=("--build-arg=CPU_BASE_IMAGE=$base_image")
  fi
elif [ -n "${GPU_BASE_IMAGE:-}" ]; then
  base_args=("--build-arg=GPU_BASE_IMAGE=$GPU_BASE_IMAGE")
fi
echo "podman build --target $target -t $tag" >&2
podman build "${flags[@]}" --format docker --layers --target "$target" --tag "$tag" \
  "${base_args[@]}" "${pip_options[@]}" --file Containerfile .
