"""Pass-through of every other route to the vLLM server on its loopback port.

The request body is read whole (the gate has bounded it), the response is streamed back chunk by chunk as
vLLM writes it (SSE of ``stream: true`` completions included). A client that disconnects cancels the
upstream request, so vLLM stops generating for it. When vLLM goes away under a request (it crashed and is
being restarted), the client gets 503 with Retry-After; a response already streaming ends cleanly, an
event stream with a last ``data: {"error": …}`` event, instead of a reset connection.
"""

from __future__ import annotations

import json

import anyio
import httpx
from starlette.types import Receive, Scope, Send

from xplus_release.serve.availability import Engine, unavailable
from xplus_release.serve.backend import Backend
from xplus_release.serve.errors import error_body, send_json_error
from xplus_release.serve.metering import CURRENT, GENERATION_PATHS
from xplus_release.serve.validation import JSON_SCOPE, read_body

# Per-connection headers (RFC 9110 §7.6.1) and those the proxy sets itself.
_DROP_REQUEST = {b"host", b"authorization", b"content-length", b"connection", b"keep-alive", b"cookie",
                 b"transfer-encoding", b"upgrade", b"te", b"proxy-authorization", b"x-xplus-key"}
_DROP_RESPONSE = {"connection", "keep-alive", "transfer-encoding", "upgrade"}


class VLLMProxy:
    """An ASGI app forwarding HTTP requests to ``backend`` with the internal key."""

    def __init__(self, backend: Backend, client: httpx.AsyncClient, engine: Engine):
        self.backend = backend
        self.client = client
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        if body is None:
            return  # the client left (or the gate refused the body) before it was complete
        body, hide_usage = with_stream_usage(scope, body)
        request = self.client.build_request(
            scope["method"], scope["path"], params=scope.get("query_string", b"").decode() or None,
            headers=self._headers(scope), content=body)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError:
            message, headers = unavailable(self.engine)
            return await send_json_error(send, 503, message, [(k.lower().encode(), v.encode())
                                                              for k, v in headers.items()])
        try:
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(k.encode(), v.encode()) for k, v in response.headers.multi_items()
                                    if k.lower() not in _DROP_RESPONSE]})
            try:
                await _pump_until_disconnect(response, receive, send, _UsageEventFilter() if hide_usage else None)
            except* httpx.HTTPError:  # raised inside the pump's task group, so wrapped in a group
                await _end_cut_stream(response, send, unavailable(self.engine)[0])
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()

    def _headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        headers = [(k, v) for k, v in scope["headers"] if k not in _DROP_REQUEST]
        headers.append((b"authorization", f"Bearer {self.backend.api_key}".encode()))
        return headers


async def _pump_until_disconnect(response: httpx.Response, receive: Receive, send: Send,
                                 events: _UsageEventFilter | None) -> None:
    async with anyio.create_task_group() as group:

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(watch_disconnect)
        async for chunk in response.aiter_raw():
            chunk = events.feed(chunk) if events else chunk
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": events.rest if events else b""})
        group.cancel_scope.cancel()


def with_stream_usage(scope: Scope, body: bytes) -> tuple[bytes, bool]:
    """A metered stream asks vLLM for its usage event, so its tokens are counted exactly rather than guessed
    from the chunks (a chunk can carry several tokens); the client that did not ask for it does not get it
    (``_UsageEventFilter``). Returns the body to send and whether to hide that event."""
    document = scope.get(JSON_SCOPE)
    if CURRENT.get() is None or scope["path"] not in GENERATION_PATHS or not isinstance(document, dict) \
            or document.get("stream") is not True:
        return body, False
    options = document.get("stream_options")
    if options is not None and (not isinstance(options, dict) or options.get("include_usage")):
        return body, False
    document = {**document, "stream_options": {**(options or {}), "include_usage": True}}
    return json.dumps(document, ensure_ascii=False).encode(), True


class _UsageEventFilter:
    """Passes server-sent events whole, except vLLM's usage-only event (``"choices":[]`` with ``usage``)."""

    def __init__(self):
        self.rest = b""

    def feed(self, chunk: bytes) -> bytes:
        *events, self.rest = (self.rest + chunk).split(b"\n\n")
        return b"".join(event + b"\n\n" for event in events
                        if not (b'"choices":[]' in event and b'"usage":' in event))


async def _end_cut_stream(response: httpx.Response, send: Send, message: str) -> None:
    """vLLM stopped mid-response: close the body properly, telling an event-stream client why."""
    tail = b""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        tail = b"data: " + error_body(message) + b"\n\n"
    await send({"type": "http.response.body", "body": tail})
