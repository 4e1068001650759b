"""Headless Chromium for the browser tests (Debian's ``chromium``; CI installs it in ``.ci/run``)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

import pytest


def chromium(*args: str, window: str = "1280,900", budget_ms: int = 15000,
             timeout: float = 120) -> subprocess.CompletedProcess:
    """Run headless Chromium with a throwaway profile and no background traffic; fails the test without it."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium (see .ci/run)")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--window-size={window}", f"--virtual-time-budget={budget_ms}", *args],
            capture_output=True, text=True, timeout=timeout, check=False)
