"""The vLLM server behind the front process and the clients that reach it.

Both clients share the metered transport: the proxy's plain HTTP client forwards bytes, the translation
route's official OpenAI client sends chat completions; each counts the tokens vLLM generates for the request
that asked (``MeteredTransport``).
"""

from __future__ import annotations

import types
from dataclasses import dataclass

import httpx
import openai

from xplus_release.engines.base import DEFAULT_CONCURRENCY
from xplus_release.internals import openai_http_package
from xplus_release.serve.metering import MeteredTransport


@dataclass(frozen=True)
class Backend:
    """Where the vLLM server listens (loopback) and what it serves."""

    root_url: str  # http://127.0.0.1:PORT
    api_key: str  # the internal key the front app sends to vLLM
    model: str  # served model name


# The SDK's HTTP package (httpx2 from openai 3 on, httpx before): its client takes only its own transports.
SDK_HTTP = openai_http_package()


def pool_limits(size: int, http: types.ModuleType = httpx) -> httpx.Limits:
    """A keep-alive pool of ``size`` connections to vLLM."""
    # Idle connections are dropped before vLLM's own keep-alive timeout (uvicorn's 5 s) closes them: reusing
    # one at the moment the server closes it fails the request with "server disconnected".
    return http.Limits(max_connections=size, max_keepalive_connections=size, keepalive_expiry=2.0)


def metered_transport(pool_size: int, http: types.ModuleType = httpx) -> MeteredTransport:
    """A pool of ``pool_size`` connections to vLLM (for a client of package ``http``) that counts, for the
    per-key usage, the tokens vLLM generates for the request that asked (``MeteredTransport``)."""
    return MeteredTransport(http.AsyncHTTPTransport(limits=pool_limits(pool_size, http)), http)


POOL_SIZE = DEFAULT_CONCURRENCY  # connections to vLLM per client


def backend_client(backend: Backend, pool_size: int = POOL_SIZE) -> httpx.AsyncClient:
    """The proxy's keep-alive pool to vLLM: it forwards bytes, so a plain HTTP client. The translation route
    and the demo have theirs in the ``Translator`` (``backend_sdk_client``), counted the same way."""
    return httpx.AsyncClient(base_url=backend.root_url, transport=metered_transport(pool_size),
                             timeout=httpx.Timeout(None, connect=10.0))


def backend_sdk_client(backend: Backend, pool_size: int = POOL_SIZE) -> openai.AsyncOpenAI:
    """The official client to vLLM's OpenAI API, for the translation route and the demo.

    No retries: when vLLM is gone it is being restarted (``SupervisedServer``), and the caller should get
    503 + Retry-After at once rather than wait through a backoff meant for a flaky network. No read timeout:
    a translation's length is bounded by ``max_tokens``, and a loaded server may take minutes to finish it.
    """
    return openai.AsyncOpenAI(
        base_url=f"{backend.root_url}/v1", api_key=backend.api_key, max_retries=0,
        timeout=httpx.Timeout(None, connect=10.0),
        http_client=openai.DefaultAsyncHttpxClient(transport=metered_transport(pool_size, SDK_HTTP)))
