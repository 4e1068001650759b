"""The Gradio translation demo: language dropdowns with auto-detect, swap, streamed output, copy, examples.

Its backend calls go to the vLLM server through the official OpenAI client (streamed chat completions,
the paper's prompt, greedy). The page and its Gradio routes sit behind the same API key as the API (see
``gate.py``). The queue admits ``demo_concurrency`` events at once, so one slow translation does not hold
up other users, and refuses new ones past ``demo_queue_size``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import gradio as gr
from openai import AsyncOpenAI
from xplus_release.serve.gate import KEY_HEADER
from xplus_release.serve.limits import ServeLimits
from xplus_release.serve.metering import Meter, Metering
from xplus_release.serve.translation import ApiError, Backend, Translator

from xplus_release.languages import ALL_LANGUAGES, get_language
from xplus_release.prompts import strip_thinking, translation_messages

AUTO = "auto"
EXAMPLES = [  # (text, source, target)
    ["The library opens at nine and closes at six on weekdays.", AUTO, "zh"],
    ["今天的天气很好，我们去公园散步吧。", AUTO, "en"],
    ["Der Zug nach Berlin hat zwanzig Minuten Verspätung.", "de", "fr"],
    ["¿Dónde está la estación de tren más cercana?", AUTO, "ja"],
    ["Сегодня вечером мы идём в театр.", "ru", "sw"],
    ["Habari za asubuhi, rafiki yangu.", AUTO, "ar"],
    ["Nous avons besoin de plus de temps pour finir le projet.", "fr", "ko"],
]


def language_choices(with_auto: bool) -> list[tuple[str, str]]:
    choices = [(f"{lang.name} ({lang.code})", lang.code) for lang in ALL_LANGUAGES]
    return ([("Detect language", AUTO)] if with_auto else []) + choices


class DemoBackend:
    """What the demo's events do; kept apart from the layout so it reads (and tests) on its own."""

    def __init__(self, translator: Translator, backend: Backend, limits: ServeLimits,
                 metering: Metering | None = None):
        self.translator = translator
        self.backend = backend
        self.limits = limits
        self.metering = metering
        self.client = AsyncOpenAI(base_url=f"{backend.root_url}/v1", api_key=backend.api_key, max_retries=0)

    async def translate(self, text: str, source: str, target: str,
                        request: gr.Request | None = None) -> AsyncIterator[tuple[str, str, str]]:
        """Yields (translation so far, detected-language note, detected code or ""); with per-key limits, as
        one request of the key the page was opened with (Gradio fills ``request``)."""
        if not text.strip():
            yield "", "", ""
            return
        key = self._key(request)
        if key is None:
            async for update in self._translate(text, source, target, Meter()):
                yield update
            return
        refusal = self.metering.admit(key, len(text))
        if refusal is not None:
            raise gr.Error(refusal.message)
        meter = Meter(status=200)
        try:
            async for update in self._translate(text, source, target, meter):
                yield update
        except BaseException as err:
            meter.status = 400 if isinstance(err, gr.Error) else 500
            raise
        finally:
            self.metering.finish(key, len(text), meter)

    def _key(self, request: gr.Request | None):
        """The caller's key entry (the gate names it in the ``x-xplus-key`` header), when keys are metered."""
        if self.metering is None or request is None:
            return None
        return self.metering.keys.entry(request.headers.get(KEY_HEADER.decode(), ""))

    async def _translate(self, text: str, source: str, target: str, meter: Meter):
        try:
            src, note, detected = self._source(text, source)
            tgt = get_language(target)
        except (ApiError, LookupError) as err:
            raise gr.Error(getattr(err, "message", str(err))) from None
        if src == tgt:
            raise gr.Error(f"source and target are both {tgt.name}; pick another target")
        if len(text) > self.limits.max_text_chars:
            raise gr.Error(f"the text has {len(text)} characters; the limit is {self.limits.max_text_chars}")
        stream = await self.client.chat.completions.create(
            model=self.backend.model, messages=translation_messages(text, src, tgt), temperature=0.0,
            max_tokens=self.limits.max_tokens, stream=True, stream_options={"include_usage": True})
        parts: list[str] = []
        async for chunk in stream:
            if chunk.usage:
                meter.tokens += chunk.usage.completion_tokens
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
                yield "".join(parts), note, detected
        yield strip_thinking("".join(parts)), note, detected

    def _source(self, text: str, source: str):
        if source != AUTO:
            return get_language(source), "", ""
        language, detected = self.translator.detect(text)
        doubt = ", uncertain: pick the source if this is wrong" if detected.get("uncertain") else ""
        return language, f"Detected: **{language.name}** ({detected['confidence']:.0f}%{doubt})", language.code

    @staticmethod
    def swap(source: str, target: str, text: str, output: str, detected: str):
        """Target becomes source and the translation becomes the input; an auto source uses what was detected
        (or stays auto when nothing was detected yet)."""
        if source == AUTO and not detected:
            return AUTO, target, output or text, text if output else output
        return target, detected if source == AUTO else source, output or text, text if output else output


def build_demo(demo_backend: DemoBackend, model_name: str) -> gr.Blocks:
    with gr.Blocks(title="Qwen3-XPlus translation") as demo:
        gr.Markdown(f"## Qwen3-XPlus translation\nModel: `{model_name}` · the paper's prompt, greedy decoding")
        with gr.Row(equal_height=True):
            source = gr.Dropdown(language_choices(True), value=AUTO, label="From", filterable=True, scale=4)
            swap = gr.Button("⇄ Swap", scale=1, min_width=80)
            target = gr.Dropdown(language_choices(False), value="zh", label="To", filterable=True, scale=4)
        with gr.Row():
            text = gr.Textbox(label="Text", lines=8, max_length=demo_backend.limits.max_text_chars,
                              placeholder="Type or paste text to translate")
            output = gr.Textbox(label="Translation", lines=8, interactive=False, buttons=["copy"])
        note = gr.Markdown()
        detected = gr.State("")
        go = gr.Button("Translate", variant="primary")
        gr.Examples(EXAMPLES, inputs=[text, source, target], label="Examples")
        inputs, outputs = [text, source, target], [output, note, detected]
        go.click(demo_backend.translate, inputs, outputs, api_name="translate")
        text.submit(demo_backend.translate, inputs, outputs, api_name=False)
        swap.click(DemoBackend.swap, [source, target, text, output, detected], [source, target, text, output],
                   api_name=False)
    demo.queue(default_concurrency_limit=demo_backend.limits.demo_concurrency,
               max_size=demo_backend.limits.demo_queue_size)
    return demo
