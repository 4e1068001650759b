"""``xplus-eval all`` survives its vLLM server dying: restart and resume within --max-restarts, then exit 1.

One real run of ``all`` (its own vLLM server, ``--max-restarts 1``) over the count suite of
tests/evalsuite_test_suites.py, which generates one item per request: the server is SIGKILLed after two
items (restarted; the suite resumes), then again after four (budget spent: one error line, exit 1, the four
kept). A last run against the session's server generates only the two that are missing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from xplus_release.evalsuite.cli import main

pytestmark = pytest.mark.slow

TESTS = Path(__file__).parent
SCRIPT = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); from xplus_release.evalsuite.base import SUITES, SuiteSpec;"
          "SUITES['count'] = SuiteSpec('evalsuite_test_suites:CountSuite');"
          "from xplus_release.evalsuite.cli import main; sys.exit(main(sys.argv[1:]))")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _vllm_child(pid: int) -> psutil.Process:
    children = [p for p in psutil.Process(pid).children()
                if "vllm.entrypoints.openai.api_server" in " ".join(p.cmdline())]
    assert len(children) == 1, children
    return children[0]


def _kill_vllm_after(proc: subprocess.Popen, echo: Path, items: int, timeout: float = 600) -> int:
    """SIGKILL the run's vLLM server once ``items`` are on disk; return the pid it had."""
    deadline = time.monotonic() + timeout
    while len(_lines(echo)) < items:
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before the kill"
        time.sleep(0.2)
    vllm = _vllm_child(proc.pid)
    vllm.send_signal(signal.SIGKILL)
    return vllm.pid


def test_all_restarts_its_server_resumes_and_gives_up_past_the_budget(vllm_server, tmp_path, monkeypatch):
    out = tmp_path / "run"
    echo = out / "generations" / "count" / "echo.jsonl"
    args = ["all", "--model", "xplus-tiny", "--suites", "count", "-o", str(out), "--no-progress",
            "--max-restarts", "1"]
    log = tmp_path / "all.log"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT, *args], stderr=stderr, start_new_session=True,
                                env={**os.environ, "COUNT_SUITE_DELAY": "3"})
    try:
        first = _kill_vllm_after(proc, echo, 2)
        second = _kill_vllm_after(proc, echo, 4)  # only reached if the first kill was survived
        assert first != second
        assert proc.wait(300) == 1
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    err = log.read_text()
    assert "the vLLM server exited during suite count; resuming" in err
    assert err.strip().splitlines()[-1].startswith("error: the vLLM server exited")
    assert "--max-restarts 1" in err.strip().splitlines()[-1] and "Traceback" not in err
    kept = _lines(echo)
    assert 4 <= len(kept) < 6 and len({r["item_id"] for r in kept}) == len(kept)  # kept, none twice
    assert not psutil.pid_exists(second)

    # resume against a running server: only the missing items are generated
    monkeypatch.syspath_prepend(str(TESTS))
    from xplus_release.evalsuite.base import SUITES, SuiteSpec

    monkeypatch.setitem(SUITES, "count", SuiteSpec("evalsuite_test_suites:CountSuite"))
    code = main(["all", "--model", "xplus-tiny", "--endpoint", vllm_server.base_url, "--api-key", "test-key",
                 "--suites", "count", "-o", str(out), "--no-progress"])
    assert code == 0
    assert json.loads((out / "scores.json").read_text())["count"] == {"items": 6,
                                                                       "generated_this_run": 6 - len(kept)}
    assert sorted(r["item_id"] for r in _lines(echo)) == [f"item-{i}" for i in range(6)]
