"""xplus-serve heals when vLLM dies, and gives up cleanly past its restart budget.

One real ``xplus-serve --max-restarts 1`` (vLLM on CPU with xplus-tiny): the vLLM server process is
SIGKILLed with a stream in flight; the stream ends cleanly, the model routes and /health answer 503 with
Retry-After, the old process group leaves no orphan and no zombie, and after the restart /v1/translate
answers 200. Then vLLM's engine core is SIGKILLed: the budget is spent and xplus-serve exits 1, leaving
no vLLM process behind. The tests run in order on one server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from xplus_release.engines.server import free_port

pytestmark = pytest.mark.slow

KEY = "faults-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
START_TIMEOUT = 600


class Served:
    def __init__(self, process: subprocess.Popen, port: int, log: Path):
        self.process, self.port, self.log = process, port, log
        self.root = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(base_url=self.root, headers=AUTH, timeout=120)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def vllm(self) -> psutil.Process:
        """The vLLM server process (the front process's only child that runs vLLM's API server)."""
        children = [p for p in psutil.Process(self.process.pid).children()
                    if p.status() != psutil.STATUS_ZOMBIE
                    and "vllm.entrypoints.openai.api_server" in " ".join(p.cmdline())]
        assert len(children) == 1, children
        return children[0]

    def wait_status(self, path: str, status: int, timeout: float) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_text()[-3000:]
            try:
                reply = self.client.get(path, timeout=5)
                if reply.status_code == status:
                    return reply
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        pytest.fail(f"{path} never answered {status} within {timeout}s:\n{self.log_text()[-3000:]}")


@pytest.fixture(scope="module")
def served(tmp_path_factory, data_dir) -> Served:
    port = free_port()
    log = tmp_path_factory.mktemp("xplus-serve-faults") / "serve.log"
    cmd = [sys.executable, "-m", "xplus_release.serve.cli", "--model", "xplus-tiny", "--port", str(port),
           "--api-key", KEY, "--lid-model", str(data_dir / "lid" / "lid.176.ftz"), "--no-demo",
           "--max-tokens", "8", "--max-restarts", "1", "--startup-timeout", str(START_TIMEOUT),
           "--vllm-log", str(log.with_name("vllm.log"))]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    server = Served(process, port, log)
    try:
        server.wait_status("/health", 200, START_TIMEOUT)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        server.client.close()


def _group_members(pgid: int) -> list[psutil.Process]:
    """Live processes of a process group (a killed orphan's zombie waits for init to reap it: not alive)."""
    members = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != pgid and os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (psutil.Error, ProcessLookupError):
            pass
    return members


def _zombie_children(pid: int) -> list[psutil.Process]:
    return [c for c in psutil.Process(pid).children() if c.status() == psutil.STATUS_ZOMBIE]


def _wait_gone(pgid: int, timeout: float = 30) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return _group_members(pgid)


def _stream_in_background(served: Served) -> dict:
    """A long streamed completion, read on a thread; records how it ended."""
    result: dict = {"events": [], "started": threading.Event()}

    def read() -> None:
        body = {"model": "xplus-tiny", "max_tokens": 1500, "ignore_eos": True, "stream": True,
                "messages": [{"role": "user", "content": "Tell me a story."}]}
        try:
            with httpx.stream("POST", served.root + "/v1/chat/completions", json=body, headers=AUTH,
                              timeout=120) as reply:
                result["status"] = reply.status_code
                for line in reply.iter_lines():
                    if line.startswith("data: "):
                        result["events"].append(line[6:])
                        result["started"].set()
            result["ended"] = "cleanly"
        except httpx.HTTPError as err:
            result["ended"] = f"{type(err).__name__}: {err}"
        result["started"].set()

    result["thread"] = threading.Thread(target=read, daemon=True)
    result["thread"].start()
    return result


def test_killed_vllm_is_reaped_answered_503_and_restarted(served):
    vllm = served.vllm()
    old_group = vllm.pid
    assert _group_members(old_group), "vLLM's engine core should share its process group"
    stream = _stream_in_background(served)
    assert stream["started"].wait(120) and stream.get("status") == 200

    vllm.send_signal(signal.SIGKILL)
    health = served.wait_status("/health", 503, 30)
    assert int(health.headers["retry-after"]) >= 1 and list(health.json()) == ["error"]
    deadline = time.monotonic() + 10  # the supervisor's thread may need a moment on a loaded machine
    while "restarting" not in health.json()["error"] and time.monotonic() < deadline:
        health = served.wait_status("/health", 503, 5)
    assert "the model server is restarting; retry in" in health.json()["error"]
    translate = served.client.post("/v1/translate", json={"q": "Good morning.", "source": "en", "target": "de"})
    assert translate.status_code == 503 and int(translate.headers["retry-after"]) >= 1
    assert "restarting" in translate.json()["error"]
    assert served.client.get("/v1/languages").status_code == 200  # needs no model

    stream["thread"].join(60)
    assert stream["ended"] == "cleanly", stream["ended"]  # no reset: the body was closed properly
    assert "error" in json.loads(stream["events"][-1])  # and its last event says why it stopped
    assert _wait_gone(old_group) == []  # the engine core did not outlive its server
    assert _zombie_children(served.process.pid) == []

    served.wait_status("/health", 200, START_TIMEOUT)
    reply = served.client.post("/v1/translate", json={"q": "Good morning.", "source": "en", "target": "de"})
    assert reply.status_code == 200 and isinstance(reply.json()["translatedText"], str)
    assert served.vllm().pid != old_group
    assert "restart 1 of at most 1" in served.log_text()


def test_past_the_budget_it_exits_1_and_leaves_nothing_behind(served):
    """Keep last. The engine core dies this time; vLLM notices, the budget (1) is spent, xplus-serve exits."""
    vllm = served.vllm()
    group = vllm.pid
    engine_cores = _group_members(group)
    assert engine_cores
    for proc in engine_cores:
        proc.send_signal(signal.SIGKILL)
    assert served.process.wait(120) == 1  # the health probe notices within seconds, then the budget is spent
    assert _wait_gone(group) == [] and not psutil.pid_exists(group)
    log = served.log_text()
    assert "error: the vLLM server exited" in log and "--max-restarts 1" in log
    assert "Traceback" not in log
