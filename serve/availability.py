"""While vLLM restarts: 503 with ``Retry-After`` on every route that needs the model, and on ``/health``.

The engine is anything with ``ready`` and ``retry_after_s`` (``SupervisedServer``). Routes that do not need
the model (``/v1/languages``, ``/v1/usage``, the results explorer at ``/runs``, the demo's page and assets) keep answering, so a load balancer can tell a
restarting replica (``/health`` 503) from a dead one (no answer), and a browser still gets the page.
"""

from __future__ import annotations

from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from xplus_release.serve.errors import send_json_error

# answered without vLLM
_ENGINE_FREE = ("/v1/languages", "/v1/usage", "/runs")


class Engine(Protocol):
    ready: bool
    retry_after_s: int


class AlwaysReady:
    """An engine nobody supervises (an app built around a server someone else runs)."""

    ready = True
    retry_after_s = 1


def unavailable(engine: Engine) -> tuple[str, dict[str, str]]:
    """The 503 message and headers for a request the model server cannot answer now."""
    why = "is restarting" if not engine.ready else "did not answer"
    return (f"the model server {why}; retry in {engine.retry_after_s} s",
            {"Retry-After": str(engine.retry_after_s)})


class EngineGuard:
    """Answers 503 + Retry-After itself while the engine is not ready, for the routes that need it."""

    def __init__(self, app: ASGIApp, engine: Engine, demo_path: str | None):
        self.app = app
        self.engine = engine
        self.free = _ENGINE_FREE + ((demo_path,) if demo_path else ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.engine.ready or self._engine_free(scope["path"]):
            return await self.app(scope, receive, send)
        message, headers = unavailable(self.engine)
        await send_json_error(send, 503, message, [(k.lower().encode(), v.encode()) for k, v in headers.items()])

    def _engine_free(self, path: str) -> bool:
        return path == "/" or any(path == p or path.startswith(p + "/") for p in self.free)
