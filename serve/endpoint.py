"""``xplus-serve --endpoint URL``: the front in front of a vLLM server someone else runs.

No vLLM is started. The served model id comes from the endpoint's ``/v1/models``. A thread asks that route
every ``PROBE_INTERVAL_S``; while it does not answer, the model routes get 503 with Retry-After (the same
``EngineGuard`` that covers a restart of a managed vLLM), and the front heals on the first answer. A
request that fails to connect in between is answered 503 the same way by the proxy and the translation
route.
"""

from __future__ import annotations

import logging
import threading
import time

import httpx
from pydantic import Field

from xplus_release.config import Config
from xplus_release.errors import ConfigError

log = logging.getLogger("xplus_release.serve")
PROBE_INTERVAL_S = 1.0
PROBE_TIMEOUT_S = 5.0


class EndpointOptions(Config):
    """An OpenAI-compatible vLLM server to front instead of starting one; each is an ``xplus-serve`` flag."""

    section = "endpoint"
    endpoint: str | None = Field(None, description=(
        "front this running OpenAI-compatible vLLM server (e.g. http://vllm:8000) instead of starting one; the "
        "model is the one its /v1/models lists; --model, --vllm-* and the restart flags then do not apply"),
        json_schema_extra={"metavar": "URL"})
    endpoint_api_key: str | None = Field(None, description=(
        "the key the --endpoint server wants (its own --api-key; default: $XPLUS_ENDPOINT_API_KEY)"),
        json_schema_extra={"metavar": "KEY"})

    def root_url(self) -> str:
        """``http://host:port`` (a trailing ``/v1`` given by habit is dropped).

        Raises: ConfigError for a URL that is not http(s)."""
        url = (self.endpoint or "").rstrip("/").removesuffix("/v1")
        if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1]) == 0:
            raise ConfigError(f"--endpoint {self.endpoint!r} is not an http(s) URL; pass e.g. http://127.0.0.1:8000")
        return url


def _key_from_environment(options: EndpointOptions) -> str | None:
    import os

    return options.endpoint_api_key if options.endpoint_api_key is not None else \
        os.environ.get("XPLUS_ENDPOINT_API_KEY")


class EndpointWatch:
    """The ``Engine`` of an endpoint nobody here supervises: ``ready`` while its ``/v1/models`` answers."""

    def __init__(self, root_url: str, api_key: str | None):
        self.root_url = root_url
        self.api_key = api_key
        self.ready = True
        self.retry_after_s = max(1, round(PROBE_INTERVAL_S * 2))
        self.model: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def of(cls, options: EndpointOptions) -> EndpointWatch:
        return cls(options.root_url(), _key_from_environment(options))

    def served_model(self, timeout_s: float) -> str:
        """The first model id the endpoint lists, waiting up to ``timeout_s`` for it to answer.

        Raises: ConfigError when it never answers, refuses the key, or lists no model."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                reply = self._models()
            except httpx.HTTPError as err:
                if time.monotonic() >= deadline:
                    raise ConfigError(f"--endpoint {self.root_url} does not answer ({err}); start it or fix the "
                                      f"URL") from None
                time.sleep(PROBE_INTERVAL_S)
                continue
            if reply.status_code in (401, 403):
                raise ConfigError(f"--endpoint {self.root_url} refused the key ({reply.status_code}); pass its key "
                                  f"with --endpoint-api-key or $XPLUS_ENDPOINT_API_KEY")
            models = [m.get("id") for m in reply.json().get("data", [])] if reply.status_code == 200 else []
            if not models:
                raise ConfigError(f"--endpoint {self.root_url}/v1/models answered {reply.status_code} with no model; "
                                  f"is it an OpenAI-compatible vLLM server?")
            self.model = models[0]
            return self.model

    def start(self) -> EndpointWatch:
        self._thread = threading.Thread(target=self._probe, name="endpoint-probe", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(PROBE_TIMEOUT_S + 1)

    def _models(self) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.get(f"{self.root_url}/v1/models", headers=headers, timeout=PROBE_TIMEOUT_S)

    def _probe(self) -> None:
        while not self._stop.wait(PROBE_INTERVAL_S):
            try:
                ok = self._models().status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok != self.ready:
                self.ready = ok
                if ok:
                    log.info("the model server %s answers again", self.root_url)
                else:
                    log.error("the model server %s does not answer; model routes answer 503 until it does",
                              self.root_url)
