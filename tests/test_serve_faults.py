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
import threading
import time

import httpx
import psutil
import pytest
from helpers.serve import Served, started_serve

pytestmark = pytest.mark.slow

KEY = "faults-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
START_TIMEOUT = 600


def _vllm(served: Served) -> psutil.Process:
    """The vLLM server process (the front process's only child that runs vLLM's API server)."""
    children = [p for p in psutil.Process(served.process.pid).children()
                if p.status() != psutil.STATUS_ZOMBIE and "vllm.entrypoints.openai.api_server" in " ".join(p.cmdline())]
    assert len(children) == 1, children
    return children[0]


@pytest.fixture(scope="module")
def served(tmp_path_factory, data_dir) -> Served:
    with started_serve(tmp_path_factory.mktemp("xplus-serve-faults"), KEY, "--lid-model",
                       str(data_dir / "lid" / "lid.176.ftz"), "--no-demo", "--max-tokens", "8", "--max-restarts", "1",
                       startup_timeout=START_TIMEOUT) as server:
        yield server


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
    vllm = _vllm(served)
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
    assert _vllm(served).pid != old_group
    assert "restart 1 of at most 1" in served.log_text()


def test_past_the_budget_it_exits_1_and_leaves_nothing_behind(served):
    """Keep last. The engine core dies this time; vLLM notices, the budget (1) is spent, xplus-serve exits."""
    vllm = _vllm(served)
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
