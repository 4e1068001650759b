"""A real ``redis-server`` (Debian's package) on a free loopback port, for the tests of ``--state redis://``.

It keeps an append-only file synced on every write, so a SIGKILLed server restarted on the same folder and
port comes back with every count it had acknowledged (as a deployment that keeps its counts runs it).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from xplus_release.engines.server import free_port


class RedisServer:
    def __init__(self, folder: Path):
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is missing; install Debian's redis-server (bash scripts/install.sh does)")
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                   "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no"]
        with open(self.folder / "redis.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    pytest.fail(f"redis-server did not start:\n{(self.folder / 'redis.log').read_text()[-2000:]}")
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last save (the append-only file has every acknowledged write)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)
