"""The ASGI middleware in front of every route: access log, API key, body size.

The key is one ``--api-key`` or any enabled key of an ``--api-keys`` file (``keys.KeyRing``); the caller's
key entry goes down to the layers below in the scope (``KEY_SCOPE``), where its limits apply.

Pure ASGI (no ``BaseHTTPMiddleware``) so that streamed responses pass through untouched and the cost per
request stays in microseconds.

vLLM's own ``--api-key`` guards only the ``/v1``, ``/v2``, ``/inference`` and ``/cohere`` prefixes
(``vllm.entrypoints.serve.middleware.authenticate.GUARDED_PREFIX``): ``/health``, ``/metrics``,
``/tokenize``, ``/version`` stay open. This gate guards every path, the demo included.

Browsers cannot send a bearer header when they open a page, so the demo page also accepts the key once as
``?api_key=KEY`` (or through the small form it shows without one): the gate answers with a redirect that
sets an HttpOnly cookie carrying an HMAC of the key, and the page's own calls send that cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xplus_release.serve.errors import send_json_error
from xplus_release.serve.keys import KeyEntry, KeyRing, SingleKey

access_log = logging.getLogger("xplus_release.serve.access")
COOKIE = "xplus_session"
KEY_HEADER = b"x-xplus-key"
KEY_SCOPE = "xplus.key"  # the caller's KeyEntry, for the layers below (the per-key limits)
Keys = KeyRing | SingleKey


class Gate:
    """Access log + authentication + request-body limit for every HTTP and WebSocket request."""

    def __init__(self, app: ASGIApp, keys: Keys | None, max_body_bytes: int, demo_path: str | None,
                 path_limits: dict[str, tuple[int, str]] | None = None):
        """``path_limits``: path → (body limit, the flag that raises it) for routes that take more than JSON."""
        self.app = app
        self.keys = keys
        self.max_body_bytes = max_body_bytes
        self.path_limits = path_limits or {}
        self.demo_path = demo_path
        self._secret = secrets.token_bytes(32)  # cookies die with the process; a restart asks for the key again

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {"code": 0}

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "websocket.accept":
                status["code"] = 101
            await send(message)

        try:
            await self._handle(scope, receive, send_logged, status)
        finally:
            self._log(scope, status["code"], started, status.get("key"))

    async def _handle(self, scope: Scope, receive: Receive, send: Send, status: dict) -> None:
        headers = Headers(scope=scope)
        if self.keys is not None:
            key = self._authorised(headers)
            if key is None:
                return await self._refuse(scope, headers, send)
            scope = _with_key(scope, key)
            status["key"] = key.name
        limit, flag = self.path_limits.get(scope["path"], (self.max_body_bytes, "--max-body-bytes"))
        too_large = f"request body over {limit} bytes; send less (or raise {flag})"
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await send_json_error(send, 413, too_large)
        await _BodyLimit(limit, too_large, receive, send).run(self.app, scope)

    def _authorised(self, headers: Headers) -> KeyEntry | None:
        """The caller's enabled key, from the bearer token or the demo's session cookie."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:
            return self.keys.find(token)
        cookie = SimpleCookie(headers.get("cookie", "")).get(COOKIE)
        if cookie is None:
            return None
        name, _, _ = cookie.value.rpartition(".")
        key = self.keys.entry(name)  # a revoked key's cookie stops working with it
        return key if key is not None and hmac.compare_digest(cookie.value, self._session_token(key)) else None

    def _session_token(self, key: KeyEntry) -> str:
        """``NAME.HMAC``: names the key for the demo's limits, proves the key was shown, never holds it."""
        mac = hmac.new(self._secret, f"{key.name}:{key.sha256}".encode(), hashlib.sha256).hexdigest()
        return f"{key.name}.{mac}"

    async def _refuse(self, scope: Scope, headers: Headers, send: Send) -> None:
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        if self._is_demo_page(scope):
            query = dict(parse_qsl(scope.get("query_string", b"").decode()))
            key = self.keys.find(query["api_key"]) if "api_key" in query else None
            if key is not None:
                return await self._login_redirect(scope, query, key, send)
            if "text/html" in headers.get("accept", ""):
                return await _html(send, 401, _LOGIN_FORM)
        await send_json_error(send, 401, "missing or wrong API key; send the header 'Authorization: Bearer KEY'")

    def _is_demo_page(self, scope: Scope) -> bool:
        return bool(self.demo_path) and scope["method"] == "GET" and scope["path"].rstrip("/") == self.demo_path

    async def _login_redirect(self, scope: Scope, query: dict, key: KeyEntry, send: Send) -> None:
        query.pop("api_key")
        location = scope["path"] + ("?" + urlencode(query) if query else "")
        cookie = f"{COOKIE}={self._session_token(key)}; HttpOnly; SameSite=Strict; Path=/"
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", location.encode()), (b"set-cookie", cookie.encode()),
                                (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    def _log(self, scope: Scope, status: int, started: float, key_name: str | None) -> None:
        client = scope.get("client") or ("-", 0)
        method = scope.get("method", "WS")
        elapsed_ms = (time.perf_counter() - started) * 1000
        # the path only: a query string may carry ?api_key=
        access_log.info('%s "%s %s" %s %.1fms key=%s', client[0], method, scope["path"], status or "-", elapsed_ms,
                        key_name or "-")


def _with_key(scope: Scope, key: KeyEntry) -> Scope:
    """The scope with the caller's key for the layers below, and its name as the ``x-xplus-key`` header for the
    demo's event handlers (Gradio hands them the request's headers, not its scope); a client's own
    ``x-xplus-key`` header is dropped."""
    headers = [(k, v) for k, v in scope["headers"] if k != KEY_HEADER]
    headers.append((KEY_HEADER, key.name.encode()))
    return {**scope, "headers": headers, KEY_SCOPE: key}


class _BodyLimit:
    """Counts a body sent without Content-Length; past the limit it answers 413 itself, tells the app the
    client left, and drops whatever the app still sends (frameworks swallow exceptions raised from receive).
    """

    def __init__(self, limit: int, error: str, receive: Receive, send: Send):
        self.limit, self.error, self._receive, self._send = limit, error, receive, send
        self.seen = 0
        self.refused = False
        self.started = False

    async def run(self, app: ASGIApp, scope: Scope) -> None:
        try:
            await app(scope, self.receive, self.send)
        except Exception:
            if not self.refused:
                raise

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit and not self.started:
                self.refused = True
                await send_json_error(self._send, 413, self.error)
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if not self.refused:
            self.started = self.started or message["type"] == "http.response.start"
            await self._send(message)


async def _html(send: Send, status: int, page: str) -> None:
    data = page.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/html; charset=utf-8"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


_LOGIN_FORM = """<!doctype html><html><head><meta charset="utf-8"><title>Qwen3-XPlus translation demo</title>
</head><body style="font-family:sans-serif;max-width:28em;margin:4em auto">
<h2>Qwen3-XPlus translation demo</h2><p>This server needs its API key.</p>
<form method="get"><input name="api_key" type="password" placeholder="API key" autofocus>
<button type="submit">Open the demo</button></form></body></html>"""
