"""The translation API: ``POST /v1/translate`` and ``GET /v1/languages``, in LibreTranslate's shapes.

Request ``{"q": "text" | ["text", ...], "source": "en" | "auto", "target": "zh"}``; response
``{"translatedText": ..., "detectedLanguage": ...}`` with a string or a list matching ``q``. Every text is
one chat completion on the vLLM server with the paper's prompt (``translation_messages``), greedy, thinking
off (the server's default chat-template kwargs); a batch is sent concurrently so vLLM batches it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import httpx
from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from xplus_release.serve.availability import AlwaysReady, Engine, unavailable
from xplus_release.serve.lid import LanguageDetector
from xplus_release.serve.limits import ServeLimits
from xplus_release.serve.validation import TextError, check_text

from xplus_release.errors import UnknownLanguageError
from xplus_release.languages import ALL_LANGUAGES, Language, get_language
from xplus_release.prompts import strip_thinking, translation_messages

SUPPORTED_CODES = ", ".join(lang.code for lang in ALL_LANGUAGES)


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with ``status`` (and ``headers``, e.g. Retry-After)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: str | list[str] = Field(description="a text, or a list of texts translated in order")
    source: str = Field("auto", description="source language code (en, eng_Latn, English…) or 'auto'")
    target: str = Field(description="target language code")
    format: Literal["text"] = Field("text", description="only plain text is supported")
    stream: bool = Field(False, description="server-sent events for a single text")
    max_tokens: int | None = Field(None, ge=1, description="new tokens per text (default and ceiling: the server's)")


@dataclass(frozen=True)
class Backend:
    """Where the vLLM server listens (loopback) and what it serves."""

    root_url: str  # http://127.0.0.1:PORT
    api_key: str  # the internal key the front app sends to vLLM
    model: str  # served model name


class Translator:
    """Turns translate requests into chat completions on the backend."""

    def __init__(self, backend: Backend, client: httpx.AsyncClient, limits: ServeLimits,
                 detector: LanguageDetector | None, detector_error: str | None = None,
                 engine: Engine | None = None):
        self.backend = backend
        self.engine = engine or AlwaysReady()
        self.client = client
        self.limits = limits
        self.detector = detector
        self.detector_error = detector_error  # why ``auto`` is unavailable, when it is

    def check(self, request: TranslateRequest) -> list[str]:
        """The texts of a request, after the limits.

        Raises:
            ApiError: 413 over a limit, 422 empty or streaming a batch.
        """
        texts = [request.q] if isinstance(request.q, str) else list(request.q)
        if not texts:
            raise ApiError(422, "q is an empty list; send at least one text")
        if len(texts) > self.limits.max_batch:
            raise ApiError(413, f"{len(texts)} texts in one request; the limit is {self.limits.max_batch}, "
                                f"split the batch")
        for index, text in enumerate(texts):
            field = "q" if isinstance(request.q, str) else f"q[{index}]"
            try:
                check_text(text, field)
            except TextError as err:
                raise ApiError(422, str(err)) from None
            if not text.strip():
                raise ApiError(422, f"text {index} is empty; send non-blank text")
            if len(text) > self.limits.max_text_chars:
                raise ApiError(413, f"text {index} has {len(text)} characters; the limit is "
                                    f"{self.limits.max_text_chars}, split it")
        if request.stream and not isinstance(request.q, str):
            raise ApiError(422, "stream=true takes a single text in q, not a list")
        return texts

    def language(self, code: str, field: str) -> Language:
        """Raises: ApiError 400 naming the supported codes."""
        try:
            return get_language(code)
        except UnknownLanguageError:
            raise ApiError(400, f"{field} language {code!r} is not supported; supported: {SUPPORTED_CODES}"
                                + (" or auto" if field == "source" else "")) from None

    def detect(self, text: str) -> tuple[Language, dict]:
        """The most probable served language of ``text`` and its ``detectedLanguage`` entry, which carries
        ``"uncertain": true`` when the model preferred an unserved language or was unsure: the text is still
        translated from the best served guess, so one odd text never fails a batch.

        Raises: ApiError 503 without a LID model, 400 when the LID model knows none of the served languages.
        """
        if self.detector is None:
            raise ApiError(503, f"source=auto is unavailable on this server: {self.detector_error}; "
                                f"or pass an explicit source")
        found = self.detector.detect(text, ALL_LANGUAGES)
        if found.language is None:
            raise ApiError(400, f"the language-ID model {self.detector.path} knows none of the served languages; "
                                f"pass an explicit source, one of: {SUPPORTED_CODES}")
        detected = {"language": found.language.code, "confidence": round(found.confidence * 100, 1)}
        if found.uncertain:
            detected["uncertain"] = True
        return found.language, detected

    def max_tokens(self, request: TranslateRequest) -> int:
        return min(request.max_tokens or self.limits.max_tokens, self.limits.max_tokens)

    def payload(self, text: str, source: Language, target: Language, max_tokens: int, stream: bool) -> dict:
        payload = {"model": self.backend.model, "messages": translation_messages(text, source, target),
                   "temperature": 0.0, "max_tokens": max_tokens, "stream": stream}
        if stream:  # vLLM's count of the tokens, for the per-key usage (a delta may carry several)
            payload["stream_options"] = {"include_usage": True}
        return payload

    async def translate(self, payload: dict) -> str:
        """Raises: ApiError with vLLM's status (4xx), 503 + Retry-After when it did not answer, else 502."""
        try:
            response = await self.client.post("/v1/chat/completions", json=payload, headers=self._auth())
        except httpx.HTTPError:
            raise self.unavailable() from None
        if response.status_code != 200:
            raise ApiError(_upstream_status(response.status_code), _upstream_message(response))
        return strip_thinking(response.json()["choices"][0]["message"]["content"] or "")

    async def stream(self, payload: dict) -> AsyncIterator[str]:
        """The content deltas of one streamed completion.

        Raises: ApiError before the first delta when vLLM refuses the request.
        """
        request = self.client.build_request("POST", "/v1/chat/completions", json=payload, headers=self._auth())
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError:
            raise self.unavailable() from None
        try:
            if response.status_code != 200:
                await response.aread()
                raise ApiError(_upstream_status(response.status_code), _upstream_message(response))
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                choices = json.loads(line[6:]).get("choices") or [{}]
                delta = choices[0].get("delta", {}).get("content")
                if delta:
                    yield delta
        finally:
            await response.aclose()

    def unavailable(self) -> ApiError:
        """503 + Retry-After: vLLM went away under the request (it is restarting, or about to be)."""
        message, headers = unavailable(self.engine)
        return ApiError(503, message, headers)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.backend.api_key}"}


def translation_router(translator: Translator) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/languages")
    async def languages() -> list[dict]:
        """Every language the server accepts, LibreTranslate-style, plus whether the model was trained on it."""
        codes = [lang.code for lang in ALL_LANGUAGES]
        return [{"code": lang.code, "name": lang.name, "flores200": lang.flores200, "trained": lang.trained,
                 "targets": [c for c in codes if c != lang.code]} for lang in ALL_LANGUAGES]

    @router.post("/v1/translate")
    async def translate(request: TranslateRequest):
        """Translate one text or a list; ``source: auto`` detects each text's language."""
        texts = translator.check(request)
        target = translator.language(request.target, "target")
        auto = request.source.strip().lower() == "auto"
        fixed = None if auto else translator.language(request.source, "source")
        if fixed == target:
            raise ApiError(400, f"source and target are both {target.code}; pick a different target")
        sources = [translator.detect(t) if auto else (fixed, None) for t in texts]
        max_tokens = translator.max_tokens(request)
        payloads = [translator.payload(t, s, target, max_tokens, request.stream) for t, (s, _) in zip(texts, sources)]
        if request.stream:
            same = sources[0][0] == target  # auto-detected as already in the target language
            deltas = _echo_stream(texts[0]) if same else translator.stream(payloads[0])
            return await _streaming_response(translator, deltas, sources[0][1])
        # a text detected as already in the target language comes back as it is (LibreTranslate does the same)
        outputs = await asyncio.gather(*(_echo(t) if s == target else translator.translate(p)
                                         for t, (s, _), p in zip(texts, sources, payloads)))
        if isinstance(request.q, str):
            return JSONResponse(_body(outputs[0], sources[0][1]))
        detected = [d for _, d in sources] if auto else None
        return JSONResponse(_body(outputs, detected))

    return router


async def _echo(text: str) -> str:
    return text


async def _echo_stream(text: str) -> AsyncIterator[str]:
    yield text


def _body(translated, detected) -> dict:
    body = {"translatedText": translated}
    if detected is not None:
        body["detectedLanguage"] = detected
    return body


async def _streaming_response(translator: Translator, deltas: AsyncIterator[str],
                              detected: dict | None) -> StreamingResponse:
    """SSE: ``{"delta": …}`` events, then the whole cleaned translation, then ``[DONE]``.

    The first delta is awaited before the response starts, so a refused request still gets its 4xx status.
    """
    try:
        first = await anext(deltas)
    except StopAsyncIteration:
        first = ""

    async def events() -> AsyncIterator[str]:
        parts = [first]
        if first:
            yield _sse({"delta": first})
        try:
            async for delta in deltas:
                parts.append(delta)
                yield _sse({"delta": delta})
        except (ApiError, httpx.HTTPError) as err:  # vLLM went away mid-stream: end the stream with why
            yield _sse({"error": err.message if isinstance(err, ApiError) else translator.unavailable().message})
            return
        yield _sse(_body(strip_thinking("".join(parts)), detected))
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _sse(obj: dict) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _upstream_status(status: int) -> int:
    return status if 400 <= status < 500 else 502


def _upstream_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"the model server answered {response.status_code}"
    error = body.get("error", body) if isinstance(body, dict) else body
    message = error.get("message") if isinstance(error, dict) else error
    return f"model server: {message}"
