"""A client of any OpenAI-compatible chat endpoint (usually a vLLM server), on the official ``openai`` SDK.

Async with bounded concurrency, so a server sees enough requests in flight to batch them; the connection
pool is sized to that concurrency. The SDK retries connection errors, timeouts, 408/409/429 and 5xx
answers with its own exponential backoff; any other 4xx is the caller's mistake and fails at once.
"""

from __future__ import annotations

import asyncio

import httpx
import openai
from tqdm.auto import tqdm

from xplus_release.engines.base import DEFAULT_CONCURRENCY, ChatEngine, Generation, Messages, SamplingConfig
from xplus_release.errors import EndpointError
from xplus_release.registry import get_spec

# The SDK refuses to build a client without a key; a server started without --api-key ignores this one.
_NO_KEY = "EMPTY"


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
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float = 600.0,
        max_retries: int = 4,
    ):
        self.base_url = normalise_base_url(base_url)
        self.model_name = model
        self.api_key = api_key
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.default_template_kwargs = get_spec(model).chat_template_kwargs

    def _generate(self, conversations: list[Messages], sampling: SamplingConfig, template_kwargs: dict,
                  progress: bool) -> list[Generation]:
        return asyncio.run(self._chat_all(conversations, self.request_args(sampling, template_kwargs), progress))

    async def _chat_all(self, conversations: list[Messages], request: dict, progress: bool) -> list[Generation]:
        semaphore = asyncio.Semaphore(self.concurrency)
        bar = tqdm(total=len(conversations), desc=f"generate ({self.model_name})", disable=not progress)
        # one client per call: its connection pool belongs to this call's event loop
        async with self.async_client() as client:

            async def one(messages: Messages) -> Generation:
                async with semaphore:
                    result = await self._complete(client, messages, request)
                bar.update(1)
                return result

            try:
                return await asyncio.gather(*(one(m) for m in conversations))
            finally:
                bar.close()

    def async_client(self) -> openai.AsyncOpenAI:
        """An SDK client whose connection pool holds ``concurrency`` connections, all kept alive."""
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        return openai.AsyncOpenAI(
            base_url=self.base_url, api_key=self.api_key or _NO_KEY, timeout=self.timeout,
            max_retries=self.max_retries,
            http_client=openai.DefaultAsyncHttpxClient(limits=limits, timeout=self.timeout),
        )

    def check(self) -> list[str]:
        """The model ids the endpoint serves; fails if ``model_name`` is not among them."""
        client = openai.OpenAI(base_url=self.base_url, api_key=self.api_key or _NO_KEY, timeout=30, max_retries=0)
        try:
            served = [m.id for m in client.models.list()]
        except openai.APIConnectionError as err:
            raise EndpointError(f"endpoint {self.base_url} is unreachable ({_cause(err)}); start a server or fix --endpoint") from None
        except openai.APIStatusError as err:
            raise EndpointError(f"endpoint {self.base_url}/models answered {err.status_code}: {err.response.text[:200]}") from None
        finally:
            client.close()
        if self.model_name not in served:
            raise EndpointError(
                f"endpoint {self.base_url} serves {', '.join(served) or 'no model'}, not {self.model_name!r}; "
                "pass the served name as --model"
            )
        return served

    def describe(self) -> dict:
        return {"kind": "openai", "base_url": self.base_url, "concurrency": self.concurrency}

    def request_args(self, sampling: SamplingConfig, template_kwargs: dict | None) -> dict:
        """Keyword arguments of ``chat.completions.create`` besides the messages."""
        args: dict = {"model": self.model_name, **sampling.request_fields()}
        if template_kwargs:
            args["extra_body"] = {"chat_template_kwargs": dict(template_kwargs)}  # vLLM's extension of the API
        return args

    async def _complete(self, client: openai.AsyncOpenAI, messages: Messages, request: dict) -> Generation:
        url = f"{self.base_url}/chat/completions"
        try:
            return _to_generation(await client.chat.completions.create(messages=messages, **request))
        except openai.APIStatusError as err:
            if err.status_code < 500 and err.status_code not in (408, 409, 429):
                raise EndpointError(
                    f"endpoint {url} rejected the request ({err.status_code}): {err.response.text[:300]}"
                ) from None
            failure = f"HTTP {err.status_code}"
        except openai.APIConnectionError as err:  # timeouts too
            failure = _cause(err)
        raise EndpointError(
            f"endpoint {url} failed after {self.max_retries + 1} attempts ({failure}); "
            "check that the server is up and --endpoint is right"
        )


def normalise_base_url(url: str) -> str:
    """``http://host:8000``, ``…/`` and ``…/v1`` all mean the same OpenAI base URL ``…/v1``."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else f"{url}/v1"


def _cause(err: openai.APIConnectionError) -> str:
    """The transport error under the SDK's wrapper, e.g. ``ConnectError: [Errno 111] ...``."""
    cause = err.__cause__ or err
    return f"{type(cause).__name__}: {cause}"


def _to_generation(completion) -> Generation:
    choice = completion.choices[0]
    usage = completion.usage
    return Generation(
        text=choice.message.content or "",
        finish_reason=choice.finish_reason,
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
    )
