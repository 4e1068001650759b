"""Per-key limits and usage on the model routes: the ``KeyMeter`` ASGI layer and the token count of vLLM's
answers.

``KeyMeter`` sits after the text check (which leaves the parsed JSON body in the scope) and before the
routes. Every POST outside the demo and the results explorer reaches the model, so every one is metered:
it takes a request token, as many character tokens as its prompt has (``prompt_characters``) and a
concurrency slot of the caller's key, or gets 429 with ``Retry-After``; when it is done one usage record
is written. The demo's translations are metered by the demo itself (``Metering.running`` in
``demo.DemoBackend``), with the key the page was opened with.

Generated tokens are counted where the answers come back from vLLM: ``MeteredTransport`` wraps the pool
that the proxy and the translation route share and reads each chat/completions answer as it streams past,
adding its ``usage.completion_tokens`` (or, for a stream without ``stream_options.include_usage``, its
number of non-empty deltas: vLLM sends one per decoding step) to the ``Meter`` of the request that asked,
found through a context variable.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import types
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xplus_release.serve.errors import send_json_error
from xplus_release.serve.gate import KEY_SCOPE
from xplus_release.serve.keys import KeyEntry, KeyRing
from xplus_release.serve.ratelimit import KeyLimiter, Refusal
from xplus_release.serve.usage import UsageStore
from xplus_release.serve.validation import JSON_SCOPE

GENERATION_PATHS = ("/v1/chat/completions", "/v1/completions")
MAX_JSON_ANSWER = 16 << 20  # answers larger than this are not parsed for their usage


@dataclass
class Meter:
    """What one client request cost; the context variable ``CURRENT`` points at it while it runs."""

    tokens: int = 0
    status: int = 0
    characters: int = 0  # input counted while the request ran (a file's text, known once the file is read)
    extra: dict[str, int] = field(default_factory=dict)  # more usage counters, e.g. ``usage.OFF_TARGET``


CURRENT: contextvars.ContextVar[Meter | None] = contextvars.ContextVar("xplus_meter", default=None)


class Metering:
    """The limiter and the usage store, shared by ``KeyMeter``, the demo, ``/v1/usage`` and ``/metrics``."""

    def __init__(self, usage: UsageStore, keys: KeyRing, limiter: KeyLimiter | None = None):
        self.usage = usage
        self.keys = keys
        self.limiter = limiter or KeyLimiter()
        self._names: set[str] = set()

    def admit(self, key: KeyEntry, characters: int) -> Refusal | None:
        self._names.add(key.name)
        refusal = self.limiter.admit(key.name, key.limits, characters)
        if refusal is not None:
            self.usage.record(key.name, refusal.status)
        return refusal

    def finish(self, key: KeyEntry, characters: int, meter: Meter) -> None:
        self.limiter.release(key.name)
        self.limiter.charge(key.name, key.limits, meter.characters)
        self.usage.record(key.name, meter.status, characters + meter.characters, meter.tokens, meter.extra)

    @contextlib.contextmanager
    def running(self, key: KeyEntry, characters: int, bind: bool = True) -> Iterator[Meter]:
        """Count a request admitted by ``admit`` while its body runs; ``bind``: ``CURRENT`` is set to its meter
        meanwhile (a caller whose body spans several contexts, like a Gradio generator, sets it itself)."""
        meter = Meter(status=200)
        token = CURRENT.set(meter) if bind else None
        try:
            yield meter
        except BaseException:
            meter.status = meter.status if meter.status >= 400 else 500
            raise
        finally:
            if token is not None:
                CURRENT.reset(token)
            self.finish(key, characters, meter)

    def in_flight(self) -> dict[str, int]:
        return {name: self.limiter.in_flight(name) for name in self._names}


class KeyMeter:
    """Limits and usage per key for every POST that reaches the model (see the module docstring)."""

    def __init__(self, app: ASGIApp, metering: Metering, unmetered: tuple[str, ...]):
        self.app = app
        self.metering = metering
        self.unmetered = unmetered

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key: KeyEntry | None = scope.get(KEY_SCOPE)
        if scope["type"] != "http" or key is None or not self._metered(scope):
            return await self.app(scope, receive, send)
        characters = prompt_characters(scope["path"], scope.get(JSON_SCOPE))
        refusal = self.metering.admit(key, characters)
        if refusal is not None:
            headers = [(b"retry-after", str(refusal.retry_after_s).encode())] if refusal.retry_after_s else []
            return await send_json_error(send, refusal.status, refusal.message, headers)
        with self.metering.running(key, characters) as meter:

            async def send_counted(message: Message) -> None:
                if message["type"] == "http.response.start":
                    meter.status = message["status"]
                await send(message)

            await self.app(scope, receive, send_counted)

    def _metered(self, scope: Scope) -> bool:
        path = scope["path"]
        return scope["method"] == "POST" and not any(path == p or path.startswith(p + "/") for p in self.unmetered)


def prompt_characters(path: str, body) -> int:
    """Characters of input: the texts of ``/v1/translate``, the message contents of a chat, the prompt of a
    completion; 0 for other routes (they still count as requests)."""
    if not isinstance(body, dict):
        return 0
    if path == "/v1/translate":
        return _text_length(body.get("q"))
    if path == "/v1/chat/completions":
        messages = body.get("messages")
        return sum(_text_length(m.get("content")) for m in messages if isinstance(m, dict)) \
            if isinstance(messages, list) else 0
    if path == "/v1/completions":
        return _text_length(body.get("prompt"))
    return 0


def _text_length(value) -> int:
    """Characters of a string, a list of strings, or OpenAI content parts (``{"type": "text", "text": …}``)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(len(v) if isinstance(v, str) else _text_length(v.get("text")) if isinstance(v, dict) else 0
                   for v in value)
    return 0


class MeteredTransport(httpx.AsyncBaseTransport):
    """Counts generated tokens in vLLM's answers on the generation routes for the ``Meter`` in ``CURRENT``.

    ``http`` is the HTTP package of the client it serves: ``httpx`` for the proxy, the OpenAI SDK's own
    (``httpx2`` from openai 3 on) for the translation route; their APIs are the same, their classes are not.
    """

    def __init__(self, inner, http: types.ModuleType = httpx):
        self.inner = inner
        self.http = http

    async def handle_async_request(self, request):
        response = await self.inner.handle_async_request(request)
        meter = CURRENT.get()
        if meter is None or request.url.path not in GENERATION_PATHS or response.status_code != 200 \
                or response.headers.get("content-encoding"):
            return response
        sse = response.headers.get("content-type", "").startswith("text/event-stream")
        counter = _StreamCounter(meter) if sse else _JsonCounter(meter)
        stream = _counting_stream_class(self.http.AsyncByteStream)(response.stream, counter)
        return self.http.Response(response.status_code, headers=response.headers, extensions=response.extensions,
                                  stream=stream)

    async def aclose(self) -> None:
        await self.inner.aclose()


@functools.cache
def _counting_stream_class(base: type) -> type:
    """A byte stream of ``base``'s package that feeds a counter as the body passes."""

    class CountingStream(base):
        def __init__(self, inner, counter):
            self.inner, self.counter = inner, counter

        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for chunk in self.inner:
                self.counter.feed(chunk)
                yield chunk

        async def aclose(self) -> None:
            self.counter.close()
            await self.inner.aclose()

    return CountingStream


class _JsonCounter:
    def __init__(self, meter: Meter):
        self.meter, self.parts, self.size, self.closed = meter, [], 0, False

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size <= MAX_JSON_ANSWER:
            self.parts.append(chunk)

    def close(self) -> None:
        if self.closed or self.size > MAX_JSON_ANSWER:
            return
        self.closed = True
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            self.meter.tokens += int(json.loads(b"".join(self.parts))["usage"]["completion_tokens"])


class _StreamCounter:
    """Server-sent events: the usage event's count when there is one, else the events with new text."""

    def __init__(self, meter: Meter):
        self.meter, self.rest, self.deltas, self.reported, self.closed = meter, b"", 0, None, False

    def feed(self, chunk: bytes) -> None:
        lines = (self.rest + chunk).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            if line.startswith(b"data: {"):
                self._event(line[6:])

    def _event(self, data: bytes) -> None:
        with contextlib.suppress(ValueError, AttributeError, TypeError, IndexError):
            event = json.loads(data)
            if event.get("usage"):
                self.reported = int(event["usage"]["completion_tokens"])
            choice = (event.get("choices") or [{}])[0]
            if (choice.get("delta") or {}).get("content") or choice.get("text"):
                self.deltas += 1

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.meter.tokens += self.reported if self.reported is not None else self.deltas
