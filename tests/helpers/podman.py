"""podman for the container tests: this machine's options for it, one call with a readable failure, and the
xplus-serve CPU image built once per test session (``tests/conftest.py``'s ``serve_image``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def podman_flags() -> list[str]:
    """``scripts/container/podman-flags``: the options every podman build and run needs here."""
    lines = (ROOT / "scripts" / "container" / "podman-flags").read_text().splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def require_podman() -> None:
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed; run: bash scripts/install.sh (as root it installs podman, runc "
                    "and debootstrap; otherwise it prints the apt-get command)")


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["podman", *args], check=False, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def inspect(name: str) -> dict:
    return json.loads(podman("container", "inspect", name).stdout)[0]


def logs(name: str) -> str:
    result = podman("logs", name, check=False)
    return (result.stdout + result.stderr)[-6000:]


def build_serve_image() -> str:
    """``bash scripts/build_image.sh cpu`` under a tag of its own; the caller removes it."""
    require_podman()
    tag = f"localhost/xplus-serve-test:{uuid.uuid4().hex[:8]}"
    build = subprocess.run(["bash", "scripts/build_image.sh", "cpu", tag], cwd=ROOT, check=False,
                           capture_output=True, text=True, timeout=3000)
    assert build.returncode == 0, f"image build failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}"
    return tag
