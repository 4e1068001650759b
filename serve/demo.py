"""The Gradio translation demo: language dropdowns with auto-detect, swap, streamed output, copy, examples.

Its translations go through the translation route's ``Translator`` (the same checks, detection and
streamed chat completion on the official OpenAI client: the paper's prompt, greedy). The page and its
Gradio routes sit behind the same API key as the API (see ``gate.py``). The queue admits ``demo_concurrency`` events at once, so one slow translation does not hold
up other users, and refuses new ones past ``demo_queue_size``.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import nullcontext
from pathlib import Path

import gradio as gr
from pydantic import ValidationError

from xplus_release.documents.files import SUPPORTED_EXTENSIONS
from xplus_release.languages import ALL_LANGUAGES
from xplus_release.serve.errors import ApiError
from xplus_release.serve.file_route import translate_upload, translated_name
from xplus_release.serve.gate import KEY_HEADER
from xplus_release.serve.keys import KeyEntry
from xplus_release.serve.metering import CURRENT, Meter, Metering
from xplus_release.serve.translation import Plan, Translated, TranslateRequest, Translator, count_off_target

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
    """What the demo's events do; kept apart from the layout so it reads (and tests) on its own.

    A translation is the translation route's own: the same ``Translator`` checks the text and languages,
    detects the source and streams the completion, so the page and the API cannot drift apart.
    """

    def __init__(self, translator: Translator, metering: Metering | None = None):
        self.translator = translator
        self.limits = translator.limits
        self.metering = metering

    async def translate(self, text: str, source: str, target: str,
                        page: gr.Request | None = None) -> AsyncIterator[tuple[str, str, str]]:
        """Yields (translation so far, detected-language note, detected code or ""). With per-key limits it is
        one request of the key the page was opened with (Gradio fills ``page`` with the event's request).

        Raises: gr.Error with the route's message for whatever the route would refuse, or the key's limit.
        """
        if not text.strip():
            yield "", "", ""  # a cleared box clears the output; no error to show
            return
        try:
            request = TranslateRequest(q=text, source=source, target=target, stream=True)
        except ValidationError:  # a dropdown cleared by hand
            raise gr.Error("pick a language in both lists") from None
        key = self._key(page)
        refusal = self.metering.admit(key, len(text)) if key else None
        if refusal is not None:
            raise gr.Error(refusal.message)
        # CURRENT is bound per step by ``_metered``: Gradio may run the generator's steps in other contexts
        with self.metering.running(key, len(text), bind=False) if key else nullcontext(Meter(status=200)) as meter:
            async for update in self._translate(request, meter):
                yield update

    async def _translate(self, request: TranslateRequest, meter: Meter) -> AsyncIterator[tuple[str, str, str]]:
        try:
            plan = self.translator.plan(request)
            note, detected = _detected_note(plan)
            parts: list[str] = []
            async for piece in _metered(self.translator.stream(plan, 0), meter):
                if isinstance(piece, Translated):
                    count_off_target(int(piece.off_target), meter)
                    yield piece.text, _joined(note, _result_note(piece)), detected
                    return
                parts.append(piece)
                yield "".join(parts), note, detected
        except ApiError as err:
            meter.status = err.status
            raise gr.Error(err.message) from None

    async def translate_file(self, path: str | None, source: str, target: str,
                             page: gr.Request | None = None) -> tuple[str | None, str]:
        """(the translated file's path, a note): the file translated as ``/v1/translate_file`` does, as one
        request of the page's key, charged for the characters sent to the model.

        Raises: gr.Error with the route's message for a file the route would refuse, or the key's limit.
        """
        if not path:
            raise gr.Error("choose a file to translate")
        key = self._key(page)
        refusal = self.metering.admit(key, 0) if key else None
        if refusal is not None:
            raise gr.Error(refusal.message)
        with self.metering.running(key, 0, bind=False) if key else nullcontext(Meter(status=200)) as meter:
            try:
                name, out, job = await translate_upload(self.translator, Path(path).name, Path(path).read_bytes(),
                                                        source, target, "1", meter)
            except ApiError as err:
                meter.status = err.status
                raise gr.Error(err.message) from None
        written = Path(tempfile.mkdtemp(prefix="xplus-demo-")) / translated_name(name, target)
        written.write_bytes(out)
        cut = f" · **Cut short**: {job.truncated} sentence(s) reached the token limit" if job.truncated else ""
        return str(written), f"{job.segments} sentence(s) translated{cut}"

    def _key(self, page: gr.Request | None) -> KeyEntry | None:
        """The caller's key (the gate names it in the ``x-xplus-key`` header), when keys are metered."""
        if self.metering is None or page is None:
            return None
        return self.metering.keys.entry(page.headers.get(KEY_HEADER.decode(), ""))

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
        with gr.Tab("Text"):
            with gr.Row():
                text = gr.Textbox(label="Text", lines=8, max_length=demo_backend.limits.max_text_chars,
                                  placeholder="Type or paste text to translate")
                output = gr.Textbox(label="Translation", lines=8, interactive=False, buttons=["copy"])
            note = gr.Markdown()
            detected = gr.State("")
            go = gr.Button("Translate", variant="primary")
            gr.Examples(EXAMPLES, inputs=[text, source, target], label="Examples")
        with gr.Tab("Document"):
            with gr.Row():
                upload = gr.File(label=f"File ({' '.join(SUPPORTED_EXTENSIONS)})",
                                 file_types=list(SUPPORTED_EXTENSIONS), type="filepath")
                download = gr.File(label="Translated file", interactive=False)
            file_note = gr.Markdown()
            go_file = gr.Button("Translate the file", variant="primary")
        inputs, outputs = [text, source, target], [output, note, detected]
        go.click(demo_backend.translate, inputs, outputs, api_name="translate")
        text.submit(demo_backend.translate, inputs, outputs, api_name=False)
        go_file.click(demo_backend.translate_file, [upload, source, target], [download, file_note],
                      api_name="translate_file")
        swap.click(DemoBackend.swap, [source, target, text, output, detected], [source, target, text, output],
                   api_name=False)
    demo.queue(default_concurrency_limit=demo_backend.limits.demo_concurrency,
               max_size=demo_backend.limits.demo_queue_size)
    return demo


async def _metered(deltas: AsyncIterator, meter: Meter) -> AsyncIterator:
    """``deltas`` with the request to vLLM, which its first step sends, counted on ``meter``.

    ``MeteredTransport`` takes the meter from ``CURRENT`` when the request is sent. The variable is set and
    reset within that one step: Gradio may run the generator's later steps in other contexts.
    """
    token = CURRENT.set(meter)
    try:
        first = await anext(deltas, None)
    finally:
        CURRENT.reset(token)
    if first is None:
        return
    yield first
    async for delta in deltas:
        yield delta


def _result_note(result: Translated) -> str:
    """What the page says about a translation cut at the token cap, or not in the target language."""
    notes = []
    if result.truncated:
        notes.append(f"**Cut short**: {len(result.truncated)} sentence(s) reached the token limit")
    if result.off_target:
        notes.append("**Off target**: the output does not look like the target language")
    return " · ".join(notes)


def _joined(*notes: str) -> str:
    return " · ".join(n for n in notes if n)


def _detected_note(plan: Plan) -> tuple[str, str]:
    """The note under the output and the detected code, for an ``auto`` source ("" otherwise)."""
    if not plan.detected:
        return "", ""
    language, detected = plan.sources[0], plan.detected[0]
    doubt = ", uncertain: pick the source if this is wrong" if detected.get("uncertain") else ""
    return f"Detected: **{language.name}** ({detected['confidence']:.0f}%{doubt})", language.code
