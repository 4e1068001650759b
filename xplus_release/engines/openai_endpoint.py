"""A client of any OpenAI-compatible chat endpoint (usually a vLLM server).

Async with bounded concurrency, so a server sees enough requests in flight to batch them. Connection
errors, timeouts and 5xx answers are retried with exponential backoff; a 4xx is the caller's mistake and
fails at once.
"""

from __future__ import annotations

import asyncio
import random
from typing import Sequence

import httpx
from tqdm.auto import tqdm

from xplus_release.engines.base import ChatEngine, Generation, Messages, SamplingConfig
from xplus_release.errors import EndpointError
from xplus_release.registry import get_spec

_RETRYABLE = (httpx.TransportError, httpx.TimeoutException)


class OpenAIEndpointEngine(ChatEngine):
    """Chat completions against ``base_url`` (with or without the trailing ``/v1``).

    Raises (from ``chat``/``check``):
        EndpointError: the endpoint is unreachable after the retries, answered 4xx, or does not serve
            the model.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        concurrency: int = 256,
        timeout: float = 600.0,
        max_retries: int = 4,
        backoff: float = 1.0,
    ):
        self.base_url = normalise_base_url(base_url)
        self.model_name = model
        self.api_key = api_key
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.default_template_kwargs = get_spec(model).chat_template_kwargs

    def chat(
        self,
        conversations: Sequence[Messages],
        sampling: SamplingConfig = SamplingConfig(),
        chat_template_kwargs: dict | None = None,
        progress: bool = True,
    ) -> list[Generation]:
        if not conversations:
            return []
        return asyncio.run(self.achat(conversations, sampling, chat_template_kwargs, progress))

    async def achat(
        self,
        conversations: Sequence[Messages],
        sampling: SamplingConfig = SamplingConfig(),
        chat_template_kwargs: dict | None = None,
        progress: bool = True,
    ) -> list[Generation]:
        kwargs = self.default_template_kwargs if chat_template_kwargs is None else chat_template_kwargs
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        semaphore = asyncio.Semaphore(self.concurrency)
        bar = tqdm(total=len(conversations), desc=f"generate ({self.model_name})", disable=not progress)
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits, headers=self._headers()) as client:

            async def one(messages: Messages) -> Generation:
                async with semaphore:
                    result = await self._complete(client, self._payload(messages, sampling, kwargs))
                bar.update(1)
                return result

            try:
                return await asyncio.gather(*(one(m) for m in conversations))
            finally:
                bar.close()

    def check(self) -> list[str]:
        """The model ids the endpoint serves; fails if ``model_name`` is not among them."""
        try:
            response = httpx.get(f"{self.base_url}/models", headers=self._headers(), timeout=30)
        except httpx.HTTPError as err:
            raise EndpointError(f"endpoint {self.base_url} is unreachable ({err}); start a server or fix --endpoint") from None
        if response.status_code != 200:
            raise EndpointError(f"endpoint {self.base_url}/models answered {response.status_code}: {response.text[:200]}")
        served = [m["id"] for m in response.json().get("data", [])]
        if self.model_name not in served:
            raise EndpointError(
                f"endpoint {self.base_url} serves {', '.join(served) or 'no model'}, not {self.model_name!r}; "
                "pass the served name as --model"
            )
        return served

    def describe(self) -> dict:
        return {"kind": "openai", "base_url": self.base_url, "concurrency": self.concurrency}

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _payload(self, messages: Messages, sampling: SamplingConfig, template_kwargs: dict) -> dict:
        payload = {
            "model": self.model_name,
            "messages": messages,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if sampling.seed is not None:
            payload["seed"] = sampling.seed
        if sampling.stop:
            payload["stop"] = list(sampling.stop)
        if template_kwargs:
            payload["chat_template_kwargs"] = dict(template_kwargs)  # vLLM's extension of the API
        return payload

    async def _complete(self, client: httpx.AsyncClient, payload: dict) -> Generation:
        url = f"{self.base_url}/chat/completions"
        for attempt in range(self.max_retries + 1):
            try:
                response = await client.post(url, json=payload)
            except _RETRYABLE as err:
                failure = f"{type(err).__name__}: {err}"
            else:
                if response.status_code < 400:
                    return _to_generation(response.json())
                if response.status_code < 500:
                    raise EndpointError(
                        f"endpoint {url} rejected the request ({response.status_code}): {response.text[:300]}"
                    )
                failure = f"HTTP {response.status_code}"
            if attempt < self.max_retries:
                await asyncio.sleep(self.backoff * 2**attempt * (0.5 + random.random()))
        raise EndpointError(
            f"endpoint {url} failed after {self.max_retries + 1} attempts ({failure}); "
            "check that the server is up and --endpoint is right"
        )


def normalise_base_url(url: str) -> str:
    """``http://host:8000``, ``…/`` and ``…/v1`` all mean the same OpenAI base URL ``…/v1``."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else f"{url}/v1"


def _to_generation(body: dict) -> Generation:
    choice = body["choices"][0]
    usage = body.get("usage") or {}
    return Generation(
        text=choice["message"].get("content") or "",
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
    )
