"""``xplus-serve`` started as a user starts it: a command line that must stop on its own, or a server kept
for a test module (vLLM on CPU with xplus-tiny behind the front app)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from xplus_release.engines.server import free_port


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "xplus_release.serve.cli", *args]


def run_serve(*args: str, port: int | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """A command line that stops before serving (bad input): its exit status and output."""
    command = serve_command("--port", str(port or free_port()), *args)
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


class Served:
    """A running ``xplus-serve``: its process, its log, and a client that sends the API key."""

    def __init__(self, process: subprocess.Popen, port: int, log: Path, key: str):
        self.process, self.port, self.log = process, port, log
        self.root = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(base_url=self.root, headers={"Authorization": f"Bearer {key}"}, timeout=120)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_status(self, path: str, status: int, timeout: float) -> httpx.Response:
        """Poll ``path`` until it answers ``status``; fails the test (with the log) if the server exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"xplus-serve exited with {self.process.returncode}:\n{self.log_text()[-3000:]}")
            try:
                reply = self.client.get(path, timeout=5)
                if reply.status_code == status:
                    return reply
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        pytest.fail(f"{path} never answered {status} within {timeout}s:\n{self.log_text()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM, as a process supervisor stops it; killed if it does not finish within 90 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.client.close()


@contextlib.contextmanager
def started_serve(folder: Path, key: str, *args: str, startup_timeout: float = 600) -> Iterator[Served]:
    """``xplus-serve --model xplus-tiny --api-key KEY ARGS`` until /health answers 200; stopped afterwards.
    Its log and vLLM's are ``serve.log`` and ``vllm.log`` in ``folder``."""
    port, log = free_port(), folder / "serve.log"
    command = serve_command("--model", "xplus-tiny", "--port", str(port), "--api-key", key,
                            "--startup-timeout", str(startup_timeout), "--vllm-log", str(folder / "vllm.log"), *args)
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = Served(process, port, log, key)
    try:
        server.wait_status("/health", 200, startup_timeout)
        yield server
    finally:
        server.stop()
