"""Managed-environment workers: output comes back, failures carry the log tail, a hung worker is stopped.

The environment here is a ready-made one whose python is this interpreter (creating a real venv costs
minutes of pip); the worker is a real script run as a real process group, exactly as COMET's and
OpenCompass's workers are.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from xplus_release.managed_env import ManagedEnv, ManagedEnvError

HUNG_WORKER = """
import argparse, subprocess, sys, time
p = argparse.ArgumentParser(); p.add_argument("--input"); p.add_argument("--output"); p.add_argument("--pid-file")
a = p.parse_args()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(a.pid_file, "w").write(str(child.pid))
while True:  # a worker that keeps logging and never finishes (a hung scorer)
    print("still working", file=sys.stderr, flush=True)
    time.sleep(0.2)
"""

ECHO_WORKER = """
import argparse, json, sys
p = argparse.ArgumentParser(); p.add_argument("--input"); p.add_argument("--output"); p.add_argument("--fail")
a = p.parse_args()
if a.fail:
    print("first line", file=sys.stderr); print("the real cause", file=sys.stderr); sys.exit(3)
rows = [json.loads(line) for line in open(a.input)]
with open(a.output, "w") as out:
    for row in rows:
        out.write(json.dumps({"n": row["n"] * 2}) + "\\n")
"""


@pytest.fixture
def ready_env(tmp_path, monkeypatch) -> ManagedEnv:
    monkeypatch.setenv("XPLUS_CACHE", str(tmp_path / "cache"))
    env = ManagedEnv("probe", ("nothing==0",))
    (env.path / "bin").mkdir(parents=True)
    (env.path / "bin" / "python").symlink_to(sys.executable)
    (env.path / ".complete").write_text("nothing==0\n")
    return env


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"


def test_worker_rows_round_trip(ready_env, tmp_path):
    script = tmp_path / "echo.py"
    script.write_text(ECHO_WORKER)
    assert ready_env.run_worker(script, [{"n": 1}, {"n": 21}]) == [{"n": 2}, {"n": 42}]


def test_failing_worker_error_carries_its_last_lines(ready_env, tmp_path):
    script = tmp_path / "echo.py"
    script.write_text(ECHO_WORKER)
    with pytest.raises(ManagedEnvError, match=r"exit 3\)[\s\S]*the real cause"):
        ready_env.run_worker(script, [{"n": 1}], ["--fail", "1"])


def test_hung_worker_is_stopped_by_its_timeout_with_its_children(ready_env, tmp_path):
    script = tmp_path / "hung.py"
    script.write_text(HUNG_WORKER)
    pid_file = tmp_path / "child.pid"
    started = time.monotonic()
    with pytest.raises(ManagedEnvError, match=r"timed out after 3s and was stopped; raise --score-timeout"):
        ready_env.run_worker(script, [], ["--pid-file", str(pid_file)], timeout=3, timeout_setting="--score-timeout")
    assert time.monotonic() - started < 30  # the timeout fired; before the fix this never returned
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild)  # the whole process group went, not only the worker


SHARED_LOOP_WORKER = """
from jsonl_worker import run_jsonl_worker

def handle(rows, args):
    return [{"text": row["text"] * args.times} for row in rows]

if __name__ == "__main__":
    run_jsonl_worker(handle, "repeats texts", lambda parser: parser.add_argument("--times", type=int))
"""


def test_worker_on_the_shared_request_loop_finds_it_and_keeps_text_as_is(ready_env, tmp_path):
    """A worker script imports ``jsonl_worker`` from the folder ``run_worker`` puts on its path, even though
    this package is not installed in the environment; non-ASCII text and worker options come through."""
    script = tmp_path / "repeat.py"
    script.write_text(SHARED_LOOP_WORKER)
    rows = ready_env.run_worker(script, [{"text": "日本語 "}, {"text": "Grüße"}], ["--times", "2"])
    assert rows == [{"text": "日本語 日本語 "}, {"text": "GrüßeGrüße"}]
