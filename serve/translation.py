"""The translation API: ``POST /v1/translate``, ``POST /v1/detect`` and ``GET /v1/languages``, in
LibreTranslate's shapes.

Request ``{"q": "text" | ["text", ...], "source": "en" | "auto", "target": "zh"}``; response
``{"translatedText": ..., "detectedLanguage": ..., "truncated": ..., "truncated_segments": ...,
"off_target": ...}``, each a value or a list matching ``q``. Every text is cut into sentences
(``xplus_release.documents.segmentation``, DeepL's ``split_sentences``); every sentence of every text of a
request is one chat completion on the vLLM server with the paper's prompt (``translation_messages``), greedy,
thinking off (the server's default chat-template kwargs), all sent at once so vLLM batches them; the
translations are put back between the original separators byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import openai
from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import BaseModel, ConfigDict, Field

from xplus_release.documents.errors import DocumentError
from xplus_release.documents.markup import Prepared, prepare
from xplus_release.documents.segmentation import SegmentedUnits, SplitSentences, segment_units
from xplus_release.errors import UnknownLanguageError
from xplus_release.languages import ALL_LANGUAGES, Language, get_language
from xplus_release.prompts import strip_thinking, translation_messages
from xplus_release.serve.availability import AlwaysReady, Engine, unavailable
from xplus_release.serve.backend import POOL_SIZE, Backend, backend_sdk_client
from xplus_release.serve.errors import ApiError
from xplus_release.serve.lid import LanguageDetector
from xplus_release.serve.limits import ServeLimits
from xplus_release.serve.metering import CURRENT
from xplus_release.serve.usage import OFF_TARGET
from xplus_release.serve.validation import TextError, check_text

# ``chat.completions.create`` first converts every argument against the OpenAI schema, CPU the front process
# would pay on every translation (about 0.5 ms a request on our CPU machine, measured against a stand-in
# server). The body is plain JSON already, so it goes through the same client's generic ``post``: the same
# pool, key, timeouts, typed errors, response models and stream parsing.
_CHAT = "/chat/completions"
_ChunkStream = openai.AsyncStream[ChatCompletionChunk]
SUPPORTED_CODES = ", ".join(lang.code for lang in ALL_LANGUAGES)
# The default cap of a sentence: room for a translation several times longer in tokens than the sentence is in
# characters (a CJK character may take 3 byte-level tokens), never above the server's ceiling.
TOKENS_PER_CHARACTER, TOKENS_BASE = 4, 16


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: str | list[str] = Field(description="a text, or a list of texts translated in order")
    source: str = Field("auto", description="source language code (en, eng_Latn, English…) or 'auto'")
    target: str = Field(description="target language code")
    format: Literal["text", "html"] = Field("text", description=(
        "'html': only the text is translated, every tag, attribute, comment and entity comes back as sent"))
    preserve_placeholders: bool = Field(True, description=(
        "{{name}}, {0}, %s, ${var}, URLs, e-mail addresses… come back byte-identical, whatever the model writes"))
    split_sentences: SplitSentences = Field("1", description=(
        "DeepL's values: '1' lines and sentences, 'nonewlines' sentences only, '0' each text whole"))
    stream: bool = Field(False, description="server-sent events for a single text")
    max_tokens: int | None = Field(None, ge=1, description=(
        "new tokens per sentence (default: from the sentence's length; ceiling: the server's)"))


class DetectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: str | list[str] = Field(description="a text, or a list of texts")


@dataclass(frozen=True)
class Document:
    """One text: its markup and placeholders set aside (``prepared``; None: the units are the text, as a file's
    format library hands them over, masked already), its units of text cut into sentences."""

    prepared: Prepared | None
    units: SegmentedUnits

    @property
    def segments(self) -> list[str]:
        return self.units.segments

    def finish(self, translations: list[str]) -> tuple[str, list[str]]:
        """The translated text, and its units' translations (one per segment in ``translations``)."""
        units = self.units.join(translations)
        return (self.prepared.finish(units) if self.prepared else "".join(units)), units

    def source_words(self) -> str:
        """The units as sent to the segmenter, for the copy check."""
        return "\n".join("".join(unit.parts) for unit in self.units.units)


@dataclass(frozen=True)
class Plan:
    """A checked request: its texts as documents of segments, each one's source language, the target, the
    caller's token cap (None: derived per segment), and each text's ``detectedLanguage`` entry for ``auto``."""

    texts: list[str]
    sources: list[Language]
    target: Language
    max_tokens: int | None
    documents: list[Document]
    detected: list[dict] | None = None

    def translated(self, index: int) -> bool:
        """Whether text ``index`` goes to the model (one already in the target language comes back as it is)."""
        return self.sources[index] != self.target


@dataclass(frozen=True)
class Translated:
    """One text's translation, which of its segments stopped at the token cap, and whether it is off target."""

    text: str
    truncated: list[dict]  # {"segment": index among the text's segments, "text": that source segment}
    off_target: bool
    units: list[str] | None = None  # the units' translations (None: the text was not translated)


@dataclass(frozen=True)
class _Done:
    """The end of one streamed segment: whether it stopped at the token cap."""

    truncated: bool


class Translator:
    """Turns translate requests into chat completions on the backend, for the route and the demo alike."""

    def __init__(self, backend: Backend, limits: ServeLimits, detector: LanguageDetector | None,
                 detector_error: str | None = None, engine: Engine | None = None,
                 client: openai.AsyncOpenAI | None = None):
        self.backend = backend
        self.engine = engine or AlwaysReady()
        self.client = client or backend_sdk_client(backend)
        # Sentences past the pool's size wait here rather than in the HTTP pool, whose queue costs CPU per
        # waiting request on every release (a 16-document burst is 640 sentences)
        self._slots = asyncio.Semaphore(POOL_SIZE)
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
        texts = self.check(request.q)
        if request.stream and not isinstance(request.q, str):
            raise ApiError(422, "stream=true takes a single text in q, not a list")
        if request.stream and request.format != "text":
            raise ApiError(422, "stream=true takes format text; send HTML without stream")
        target = self.language(request.target, "target")
        auto = request.source.strip().lower() == "auto"
        fixed = None if auto else self.language(request.source, "source")
        if fixed == target:
            raise ApiError(400, f"source and target are both {target.code}; pick a different target")
        try:  # markup and placeholders set aside first: detection reads the words only
            prepared = [prepare(text, request.format, request.preserve_placeholders,
                                max_depth=self.limits.max_html_depth) for text in texts]
        except DocumentError as err:
            raise ApiError(err.status, str(err)) from None
        found = [(fixed, None)] * len(texts) if not auto else [self.detect("\n".join(p.units) or t)
                                                                for p, t in zip(prepared, texts)]
        sources = [lang for lang, _ in found]
        documents = [Document(p, segment_units(p.units, lang.code, request.split_sentences))
                     for p, lang in zip(prepared, sources)]
        cap = min(request.max_tokens, self.limits.max_tokens) if request.max_tokens else None
        return Plan(texts, sources, target, cap, documents, [d for _, d in found] if auto else None)

    def check(self, q: str | list[str]) -> list[str]:
        """The texts of ``q``, after the limits.

        Raises:
            ApiError: 413 over a limit, 422 an empty list, an empty or whitespace-only text.
        """
        texts = [q] if isinstance(q, str) else list(q)
        if not texts:
            raise ApiError(422, "q is an empty list; send at least one text")
        if len(texts) > self.limits.max_batch:
            raise ApiError(413, f"{len(texts)} texts in one request; the limit is {self.limits.max_batch}, "
                                f"split the batch")
        for index, text in enumerate(texts):
            try:
                check_text(text, "q" if isinstance(q, str) else f"q[{index}]")
            except TextError as err:
                raise ApiError(422, str(err)) from None
            if not text.strip():
                raise ApiError(422, f"text {index} is empty or only whitespace; send text to translate")
            if len(text) > self.limits.max_text_chars:
                raise ApiError(413, f"text {index} has {len(text)} characters; the limit is "
                                    f"{self.limits.max_text_chars}, split it")
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
            raise ApiError(503, f"language detection (source=auto, /v1/detect) is unavailable on this server: "
                                f"{self.detector_error}; pass an explicit source")
        found = self.detector.detect(text, ALL_LANGUAGES)
        if found.language is None:
            raise ApiError(400, f"the language-ID model {self.detector.path} knows none of the served languages; "
                                f"pass an explicit source, one of: {SUPPORTED_CODES}")
        detected = {"language": found.language.code, "confidence": round(found.confidence * 100, 1)}
        if found.uncertain:
            detected["uncertain"] = True
        return found.language, detected

    def segment_cap(self, plan: Plan, sentence: str) -> int:
        """New tokens one sentence may take: the caller's cap, else one from its length; never over the ceiling."""
        return min(plan.max_tokens or TOKENS_BASE + TOKENS_PER_CHARACTER * len(sentence), self.limits.max_tokens)

    async def translate_all(self, plan: Plan) -> list[Translated]:
        """Every text of ``plan``: all their segments go to vLLM at once (one concurrent batch).

        Raises: ApiError with vLLM's status (4xx), 503 + Retry-After when it did not answer, else 502.
        """
        jobs = [(i, s) for i, doc in enumerate(plan.documents) if plan.translated(i) for s in doc.segments]
        outputs = iter(await asyncio.gather(*(self.complete(plan, i, s) for i, s in jobs)))
        results = []
        for index, doc in enumerate(plan.documents):
            done = [next(outputs) for _ in doc.segments] if plan.translated(index) else []
            results.append(self.result(plan, index, [text for text, _ in done], [cut for _, cut in done]))
        return results

    def result(self, plan: Plan, index: int, translations: list[str], cut: list[bool]) -> Translated:
        """Text ``index`` put back together from its segments' translations (none: it was not translated)."""
        if not plan.translated(index):
            return Translated(plan.texts[index], [], False)
        doc = plan.documents[index]
        text, units = doc.finish(translations)
        truncated = [{"segment": n, "text": s} for n, (s, c) in enumerate(zip(doc.segments, cut)) if c]
        return Translated(text, truncated, self.off_target(doc.source_words(), "\n".join(units), plan.target),
                          units)

    def off_target(self, source: str, translation: str, target: Language) -> bool:
        """A translation that copies its source, or that the LID model places in another language."""
        if " ".join(translation.split()) == " ".join(source.split()):
            return True
        if self.detector is None or not translation.strip():
            return False
        found = self.detector.detect(translation, ALL_LANGUAGES)
        return found.language != target

    async def complete(self, plan: Plan, index: int, sentence: str) -> tuple[str, bool]:
        """One segment's translation and whether it stopped at the token cap.

        Raises: ApiError with vLLM's status (4xx), 503 + Retry-After when it did not answer, else 502.
        """
        try:
            async with self._slots:
                completion = await self.client.post(_CHAT, body=self._request(plan, index, sentence),
                                                    cast_to=ChatCompletion)
        except openai.APIError as err:
            raise self._error(err) from None
        choice = completion.choices[0]
        return strip_thinking(choice.message.content or ""), choice.finish_reason == "length"

    async def stream(self, plan: Plan, index: int = 0) -> AsyncIterator[str | Translated]:
        """The text's translation as content deltas and separators in order, then its ``Translated``.

        Every segment streams from vLLM at once; the deltas of a later segment wait in a queue until the
        segments before it are done. Raises: ApiError before the first delta when vLLM refuses the request;
        503 when vLLM goes away mid-stream.
        """
        if not plan.translated(index):
            yield plan.texts[index]
            yield self.result(plan, index, [], [])
            return
        doc = plan.documents[index]
        queues = [asyncio.Queue() for _ in doc.segments]
        pumps = [asyncio.create_task(self._pump(plan, index, s, q)) for s, q in zip(doc.segments, queues)]
        try:
            translations, cut = [], []
            for unit in doc.units.units:
                for number in range(len(unit.segments)):
                    queue = queues[len(translations)]
                    parts, item = [], await queue.get()
                    if unit.parts[2 * number]:
                        yield unit.parts[2 * number]
                    while not isinstance(item, _Done):
                        if isinstance(item, ApiError):
                            raise item
                        parts.append(item)
                        yield item
                        item = await queue.get()
                    translations.append(strip_thinking("".join(parts)))
                    cut.append(item.truncated)
                if unit.parts[-1]:
                    yield unit.parts[-1]
            yield self.result(plan, index, translations, cut)
        finally:
            for pump in pumps:
                pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pumps, return_exceptions=True)

    async def _pump(self, plan: Plan, index: int, sentence: str, queue: asyncio.Queue) -> None:
        """One segment's streamed completion into ``queue``: deltas, then ``_Done`` (or the ApiError)."""
        # include_usage: vLLM's own count of the tokens for the per-key usage (a delta may carry several)
        body = {**self._request(plan, index, sentence), "stream": True, "stream_options": {"include_usage": True}}
        finish = None
        try:
            async with self._slots:
                chunks = await self.client.post(_CHAT, body=body,
                                                cast_to=ChatCompletion, stream=True, stream_cls=_ChunkStream)
                async with chunks:
                    async for chunk in chunks:
                        choice = chunk.choices[0] if chunk.choices else None
                        if choice and choice.delta.content:
                            queue.put_nowait(choice.delta.content)
                        if choice and choice.finish_reason:
                            finish = choice.finish_reason
        except openai.APIError as err:
            queue.put_nowait(self._error(err))
            return
        queue.put_nowait(_Done(finish == "length"))

    def unavailable(self) -> ApiError:
        """503 + Retry-After: vLLM went away under the request (it is restarting, or about to be)."""
        message, headers = unavailable(self.engine)
        return ApiError(503, message, headers)

    def _request(self, plan: Plan, index: int, sentence: str) -> dict:
        """The chat completion: the paper's prompt, greedy, thinking off (the server's default)."""
        messages = translation_messages(sentence, plan.sources[index], plan.target)
        return {"model": self.backend.model, "messages": messages, "temperature": 0.0,
                "max_tokens": self.segment_cap(plan, sentence)}

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
        if request.stream:
            return await _streaming_response(translator.stream(plan, 0), plan)
        results = await translator.translate_all(plan)
        count_off_target(sum(r.off_target for r in results))
        return JSONResponse(response_body(results, plan, single=isinstance(request.q, str)))

    @router.post("/v1/detect")
    async def detect(request: DetectRequest):
        """LibreTranslate's ``/detect``: ``[{"language", "confidence"}]`` for a text, a list of those for a list."""
        found = [[translator.detect(text)[1]] for text in translator.check(request.q)]
        return found[0] if isinstance(request.q, str) else found

    return router


def count_off_target(count: int, meter=None) -> None:
    """Adds ``count`` off-target texts to the caller's usage (the meter of the running request)."""
    meter = meter or CURRENT.get()
    if meter is not None and count:
        meter.extra[OFF_TARGET] = meter.extra.get(OFF_TARGET, 0) + count


def response_body(results: list[Translated], plan: Plan, single: bool) -> dict:
    """The JSON answer: each field a value for a single text, a list matching ``q`` for a list."""
    def shaped(values: list):
        return values[0] if single else values

    body = {"translatedText": shaped([r.text for r in results])}
    if plan.detected is not None:
        body["detectedLanguage"] = shaped(plan.detected)
    body["truncated"] = shaped([bool(r.truncated) for r in results])
    body["truncated_segments"] = shaped([r.truncated for r in results])
    body["off_target"] = shaped([r.off_target for r in results])
    return body


async def _streaming_response(pieces: AsyncIterator[str | Translated], plan: Plan) -> StreamingResponse:
    """SSE: ``{"delta": …}`` events, then the whole answer as ``response_body`` writes it, then ``[DONE]``.

    The first delta is awaited before the response starts, so a refused request still gets its 4xx status.
    """
    first = await anext(pieces)

    async def events() -> AsyncIterator[str]:
        item = first
        try:
            while not isinstance(item, Translated):
                yield _sse({"delta": item})
                item = await anext(pieces)
        except ApiError as err:  # vLLM went away mid-stream: end the stream with why
            yield _sse({"error": err.message})
            return
        finally:
            await pieces.aclose()
        count_off_target(int(item.off_target))
        yield _sse(response_body([item], plan, single=True))
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _sse(obj: dict) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"
