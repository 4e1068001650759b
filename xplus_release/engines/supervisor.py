"""Keep a vLLM server up: notice its exit at once, clean up after it, restart it within a budget.

A thread blocks in ``waitid`` on the server process, so an exit (a crash, an OOM kill, vLLM shutting itself
down after its engine core died) is seen the moment it happens, not on the next request. The exited
process is left unreaped until its whole process group (vLLM's engine-core and worker processes) has been
killed, so no orphan survives it and its pid cannot be reused in between; then it is reaped, and the
server is started again on the same port after a backoff. A second thread asks ``/health`` every few
seconds: vLLM whose engine core died answers it with an error (and only then shuts itself down); a server
that fails it ``PROBE_FAILURES`` times in a row is killed, and restarted like any other exit. More than ``max_restarts`` exits within
``window_s`` and the supervisor gives up (``failed``), so that the command exits and a process supervisor
(systemd, Kubernetes) takes over instead of a restart loop.

    supervisor = SupervisedServer(VLLMServer(model), max_restarts=3)
    supervisor.on_give_up = stop_serving  # optional: called with the reason when it gives up
    supervisor.start()            # first start in the foreground: ServerStartError as before
    supervisor.ready              # False while restarting: answer 503 with Retry-After
    supervisor.stop()
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

from xplus_release.engines.server import VLLMServer
from xplus_release.errors import EngineGaveUpError, ServerStartError

log = logging.getLogger("xplus_release.engines.supervisor")

DEFAULT_MAX_RESTARTS = 3
DEFAULT_WINDOW_S = 600.0
MAX_BACKOFF_S = 30.0
PROBE_INTERVAL_S = 5.0
PROBE_FAILURES = 3  # a busy server may miss one probe; three in a row (15 s) is a dead one


@dataclass
class RestartBudget:
    """At most ``max_restarts`` restarts within any ``window_s`` seconds; backoff doubles with each recent one."""

    max_restarts: int = DEFAULT_MAX_RESTARTS
    window_s: float = DEFAULT_WINDOW_S
    clock: Callable[[], float] = time.monotonic
    _recent: deque[float] = field(default_factory=deque, init=False)

    def spend(self) -> bool:
        """Take one restart; False when the budget is spent (nothing is taken then)."""
        now = self.clock()
        while self._recent and now - self._recent[0] > self.window_s:
            self._recent.popleft()
        if len(self._recent) >= self.max_restarts:
            return False
        self._recent.append(now)
        return True

    @property
    def used(self) -> int:
        """Restarts taken within the current window."""
        return len(self._recent)

    def backoff_s(self) -> float:
        """Seconds to wait before the restart just taken: 1, 2, 4 … up to ``MAX_BACKOFF_S``."""
        return min(MAX_BACKOFF_S, 2.0 ** max(0, len(self._recent) - 1))


class SupervisedServer:
    """A ``VLLMServer`` restarted on exit within a ``RestartBudget``.

    States: ``ready`` (serving), ``restarting`` (exited; being cleaned up and started again), ``failed``
    (budget spent; ``failure`` says why), ``stopped``. ``exits`` counts the exits seen so far.

    Raises (from ``start``):
        ServerStartError: the first start failed (no restart is attempted for it).
    """

    def __init__(self, server: VLLMServer, max_restarts: int = DEFAULT_MAX_RESTARTS):
        self.server = server
        self.budget = RestartBudget(max_restarts)
        self.on_give_up: Callable[[str], None] | None = None  # called with the reason when it gives up
        self.state = "stopped"
        self.exits = 0
        self.failure: str | None = None
        self._last_start_s = 30.0
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def retry_after_s(self) -> int:
        """What a client is told to wait while the server restarts: about one start-up."""
        return max(1, math.ceil(self._last_start_s))

    def start(self) -> Self:
        self._start_once()
        self._set_state("ready")
        self._watcher = threading.Thread(target=self._watch, name="vllm-supervisor", daemon=True)
        self._watcher.start()
        threading.Thread(target=self._probe, name="vllm-health-probe", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.server.stop()
        if self._watcher is not None:
            self._watcher.join(timeout=60)
        if self.state != "failed":
            self._set_state("stopped")

    def wait_settled(self) -> None:
        """Block until the server is ready again, has given up, or was stopped."""
        with self._changed:
            self._changed.wait_for(lambda: self.state in ("ready", "failed", "stopped"))

    def raise_if_failed(self) -> None:
        """Raises: EngineGaveUpError once the budget is spent."""
        if self.state == "failed":
            raise EngineGaveUpError(self.failure)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start_once(self) -> None:
        started = time.monotonic()
        self.server.start()
        self._last_start_s = time.monotonic() - started

    def _watch(self) -> None:
        while not self._stopping.is_set():
            code = self._wait_for_exit()
            if self._stopping.is_set() or not self._restart(code):
                return

    def _probe(self) -> None:
        failures = 0
        while not self._stopping.wait(PROBE_INTERVAL_S):
            failures = failures + 1 if self.ready and not self.server.healthy() else 0
            if failures >= PROBE_FAILURES and self.ready:
                log.warning("vLLM failed %d health checks in a row; killing it to restart it", failures)
                self.server.kill_group()  # the watcher sees the exit
                failures = 0

    def _wait_for_exit(self) -> int | None:
        """Block until the server process exits; kill what it leaves behind, then reap it."""
        process = self.server.process
        with contextlib.suppress(ChildProcessError):  # already reaped (stop() got there first)
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        if not self._stopping.is_set():
            self.exits += 1
            self._set_state("restarting")  # first: requests from now on get 503 + Retry-After
        self.server.kill_group()
        return process.wait()

    def _restart(self, code: int | None) -> bool:
        """Restart until one start succeeds or the budget is spent; False when given up."""
        tail = self.server.log_tail()
        while not self._stopping.is_set():
            if not self.budget.spend():
                return self._give_up(code, tail)
            delay = self.budget.backoff_s()
            log.warning("vLLM exited (code %s); restart %d of at most %d per %.0f min in %.0fs; last lines of "
                        "its log (%s):\n%s", code, self.budget.used, self.budget.max_restarts,
                        self.budget.window_s / 60, delay, self.server.log_path, tail.rstrip())
            if self._stopping.wait(delay):
                return False
            try:
                self._start_once()
            except ServerStartError as err:
                self.server.kill_group()
                code, tail = "start failed", str(err)
                continue
            log.warning("vLLM is serving again after restart %d", self.budget.used)
            self._set_state("ready")
            return True
        return False

    def _give_up(self, code, tail: str) -> bool:
        budget = self.budget
        self.failure = (f"the vLLM server exited (code {code}) more than {budget.max_restarts} time(s) within "
                        f"{budget.window_s / 60:.0f} min (--max-restarts {budget.max_restarts}); giving up, "
                        f"see its log {self.server.log_path}")
        log.error("%s; last lines:\n%s", self.failure, tail.rstrip())
        self._set_state("failed")
        if self.on_give_up is not None:
            self.on_give_up(self.failure)
        return False

    def _set_state(self, state: str) -> None:
        with self._changed:
            self.state = state
            self._changed.notify_all()
