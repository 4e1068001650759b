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

import openai
from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import BaseModel, ConfigDict, Field
from xplus_release.serve.availability import AlwaysReady, Engine, unavailable
from xplus_release.serve.backend import Backend, backend_sdk_client
from xplus_release.serve.errors import ApiError
from xplus_release.serve.lid import LanguageDetector
from xplus_release.serve.limits import ServeLimits
from xplus_release.serve.validation import TextError, check_text

from xplus_release.errors import UnknownLanguageError
from xplus_release.languages import ALL_LANGUAGES, Language, get_language
from xplus_release.prompts import strip_thinking, translation_messages

# ``chat.completions.create`` first converts every argument against the OpenAI schema, CPU the front process
# would pay on every translation (about 0.5 ms a request on our CPU machine, measured against a stand-in
# server). The body is plain JSON already, so it goes through the same client's generic ``post``: the same
# pool, key, timeouts, typed errors, response models and stream parsing.
_CHAT = "/chat/completions"
_ChunkStream = openai.AsyncStream[ChatCompletionChunk]
SUPPORTED_CODES = ", ".join(lang.code for lang in ALL_LANGUAGES)


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: str | list[str] = Field(description="a text, or a list of texts translated in order")
    source: str = Field("auto", description="source language code (en, eng_Latn, English…) or 'auto'")
    target: str = Field(description="target language code")
    format: Literal["text"] = Field("text", description="only plain text is supported")
    stream: bool = Field(False, description="server-sent events for a single text")
    max_tokens: int | None = Field(None, ge=1, description="new tokens per text (default and ceiling: the server's)")


@dataclass(frozen=True)
class Plan:
    """A checked request: its texts, each one's source language, the target, the token cap, and each text's
    ``detectedLanguage`` entry when the source was ``auto``."""

    texts: list[str]
    sources: list[Language]
    target: Language
    max_tokens: int
    detected: list[dict] | None = None


class Translator:
    """Turns translate requests into chat completions on the backend, for the route and the demo alike."""

    def __init__(self, backend: Backend, limits: ServeLimits, detector: LanguageDetector | None,
                 detector_error: str | None = None, engine: Engine | None = None,
                 client: openai.AsyncOpenAI | None = None):
        self.backend = backend
        self.engine = engine or AlwaysReady()
        self.client = client or backend_sdk_client(backend)
        self.limits = limits
        self.detector = detector
        self.detector_error = detector_error  # why ``auto`` is unavailable, when it is

    async def aclose(self) -> None:
        await self.client.close()

    def plan(self, request: TranslateRequest) -> Plan:
        """Every check of a request, before anything reaches vLLM.

        Raises:
            ApiError: 413 over a limit, 422 empty or streaming a batch, 400 an unsupported language or the
                same source and target, 503 ``auto`` without a LID model.
        """
        texts = self.check(request)
        target = self.language(request.target, "target")
        auto = request.source.strip().lower() == "auto"
        fixed = None if auto else self.language(request.source, "source")
        if fixed == target:
            raise ApiError(400, f"source and target are both {target.code}; pick a different target")
        if not auto:
            return Plan(texts, [fixed] * len(texts), target, self.max_tokens(request))
        found = [self.detect(t) for t in texts]
        return Plan(texts, [lang for lang, _ in found], target, self.max_tokens(request), [d for _, d in found])

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

    async def translate(self, plan: Plan, index: int) -> str:
        """The translation of ``plan.texts[index]``; a text detected as already in the target language comes
        back as it is (LibreTranslate does the same).

        Raises: ApiError with vLLM's status (4xx), 503 + Retry-After when it did not answer, else 502.
        """
        if plan.sources[index] == plan.target:
            return plan.texts[index]
        try:
            completion = await self.client.post(_CHAT, body=self._request(plan, index), cast_to=ChatCompletion)
        except openai.APIError as err:
            raise self._error(err) from None
        return strip_thinking(completion.choices[0].message.content or "")

    async def stream(self, plan: Plan, index: int) -> AsyncIterator[str]:
        """The content deltas of one streamed completion (the text itself when it is already in the target).

        Raises: ApiError before the first delta when vLLM refuses the request; 503 when vLLM goes away
        mid-stream.
        """
        if plan.sources[index] == plan.target:
            yield plan.texts[index]
            return
        try:
            # include_usage: vLLM's own count of the tokens for the per-key usage (a delta may carry several)
            body = {**self._request(plan, index), "stream": True, "stream_options": {"include_usage": True}}
            chunks = await self.client.post(_CHAT, body=body,
                                            cast_to=ChatCompletion, stream=True, stream_cls=_ChunkStream)
            async with chunks:
                async for chunk in chunks:
                    if chunk.choices and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content
        except openai.APIError as err:
            raise self._error(err) from None

    def unavailable(self) -> ApiError:
        """503 + Retry-After: vLLM went away under the request (it is restarting, or about to be)."""
        message, headers = unavailable(self.engine)
        return ApiError(503, message, headers)

    def _request(self, plan: Plan, index: int) -> dict:
        """The chat completion: the paper's prompt, greedy, thinking off (the server's default)."""
        messages = translation_messages(plan.texts[index], plan.sources[index], plan.target)
        return {"model": self.backend.model, "messages": messages, "temperature": 0.0,
                "max_tokens": plan.max_tokens}

    def _error(self, err: openai.APIError) -> ApiError:
        """vLLM's 4xx as it is, its 5xx (or an error event mid-stream) as 502, no answer as 503."""
        if isinstance(err, openai.APIConnectionError):  # no answer, or a stream cut off: timeouts too
            return self.unavailable()
        status = getattr(err, "status_code", 502)
        detail = err.body.get("message") if isinstance(err.body, dict) else err.body
        return ApiError(status if 400 <= status < 500 else 502,
                        f"model server: {detail}" if detail else f"the model server answered {status}")


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
        plan = translator.plan(request)
        if isinstance(request.q, list):  # sent concurrently, so vLLM batches them
            outputs = await asyncio.gather(*(translator.translate(plan, i) for i in range(len(plan.texts))))
            return JSONResponse(_body(outputs, plan.detected))
        detected = plan.detected[0] if plan.detected else None
        if request.stream:
            return await _streaming_response(translator.stream(plan, 0), detected)
        return JSONResponse(_body(await translator.translate(plan, 0), detected))

    return router


def _body(translated, detected) -> dict:
    body = {"translatedText": translated}
    if detected is not None:
        body["detectedLanguage"] = detected
    return body


async def _streaming_response(deltas: AsyncIterator[str], detected: dict | None) -> StreamingResponse:
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
        except ApiError as err:  # vLLM went away mid-stream: end the stream with why
            yield _sse({"error": err.message})
            return
        yield _sse(_body(strip_thinking("".join(parts)), detected))
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _sse(obj: dict) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"
