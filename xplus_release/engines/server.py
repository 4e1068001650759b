"""Start, watch and stop a vLLM OpenAI-compatible server as a subprocess.

The server is started as ``python -m vllm.entrypoints.openai.api_server`` rather than the ``vllm``
console script, which the CPU build's metadata breaks. Qwen3 thinking is off by default through
``--default-chat-template-kwargs``; a request's own ``chat_template_kwargs`` still wins.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx

from xplus_release.engines.base import platform_engine_args
from xplus_release.errors import ServerStartError
from xplus_release.registry import ResolvedModel

# The server listens on loopback only: whatever is public (xplus-serve) runs in front of it.
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@dataclass(eq=False)
class VLLMServer:
    """A vLLM server for one model, on loopback. Use as a context manager, or ``start()`` / ``stop()``.

    ``port`` defaults to a free one, ``log_path`` to a new temporary file.

    Raises (from ``start``):
        ServerStartError: the process exited, or ``/health`` did not answer within ``startup_timeout``;
            the message ends with the server's last log lines.
    """

    model: ResolvedModel
    port: int | None = None
    api_key: str | None = field(default=None, repr=False)
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    extra_args: Sequence[str] = ()
    log_path: str | Path | None = None
    startup_timeout: float = 900.0
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.port = self.port or free_port()
        self.log_path = Path(self.log_path or tempfile.mkstemp(prefix="vllm-server-", suffix=".log")[1])

    @property
    def root_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``http://127.0.0.1:port/v1``."""
        return f"{self.root_url}/v1"

    def command(self) -> list[str]:
        spec = self.model.spec
        cmd = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", self.model.path,
            "--served-model-name", spec.name,
            "--host", LOOPBACK,
            "--port", str(self.port),
            "--dtype", spec.dtype,
            "--tensor-parallel-size", str(self.tensor_parallel_size),
            "--data-parallel-size", str(self.data_parallel_size),
            # one log line per request costs real time at evaluation scale (275k requests for a full
            # FLORES grid); xplus-serve writes its own access log in front of this server
            "--disable-uvicorn-access-log",
        ]
        if spec.max_model_len:
            cmd += ["--max-model-len", str(spec.max_model_len)]
        cmd += engine_args_to_cli({**platform_engine_args(), **spec.engine_args})
        if spec.chat_template_kwargs:
            cmd += ["--default-chat-template-kwargs", json.dumps(spec.chat_template_kwargs)]
        return [*cmd, *self.extra_args]

    def describe(self) -> dict:
        return {"kind": "vllm-server", "command": self.command()[3:], "base_url": self.base_url}

    def start(self) -> Self:
        env = dict(os.environ)
        if self.api_key:
            env["VLLM_API_KEY"] = self.api_key  # not on the command line, where `ps` would show it
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self._wait_healthy()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (vLLM finishes in-flight requests), then SIGKILL after ``timeout`` seconds; then whatever
        of its process group outlived it (engine-core or worker processes)."""
        if self.process is None:
            return
        if self.process.poll() is None:  # else it died on its own: its engine core may still be running
            os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        self.kill_group()
        self.process.wait()

    def kill_group(self) -> None:
        """SIGKILL every process left in the server's process group (the server leads it)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing left
            os.killpg(self.process.pid, signal.SIGKILL)

    def healthy(self, timeout: float = 10.0) -> bool:
        """``/health`` answered 200 within ``timeout`` seconds."""
        try:
            return httpx.get(f"{self.root_url}/health", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return "".join(deque(handle, maxlen=lines))
        except OSError:
            return ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise ServerStartError(
                    f"vLLM server exited with code {code} before it was healthy (log: {self.log_path}); "
                    f"last lines:\n{self.log_tail()}"
                )
            if self.healthy(timeout=2.0):
                return
            time.sleep(1.0)
        self.stop()
        raise ServerStartError(
            f"vLLM server not healthy after {self.startup_timeout:.0f}s (log: {self.log_path}); raise "
            f"--startup-timeout or check the log; last lines:\n{self.log_tail()}"
        )


def engine_args_to_cli(engine_args: dict) -> list[str]:
    """``{"enforce_eager": True, "max_num_seqs": 8}`` -> ``["--enforce-eager", "--max-num-seqs", "8"]``."""
    args: list[str] = []
    for key, value in engine_args.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value not in (False, None):
            args += [flag, json.dumps(value) if isinstance(value, (dict, list)) else str(value)]
    return args
