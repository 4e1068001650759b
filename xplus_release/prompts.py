"""Prompts: the paper's evaluation prompt, the training instruction templates, output post-processing.

The evaluation prompt is one user message; Qwen3's thinking is switched off through the chat template
(``enable_thinking=False``), and whatever ``<think>…</think>`` a model still writes is stripped before
scoring.
"""

from __future__ import annotations

import random
import re

from xplus_release.languages import Language
from xplus_release.storage import json_hash

EVAL_PROMPT = (
    "Translate the following text from {src_lang} to {tgt_lang}.\n\n"
    "{src_lang} source:\n{src}\n\n"
    "{tgt_lang} translation:"
)

# Diverse instructions for training data (the paper wraps each pair in varied templates so the model does
# not overfit one phrasing). Every template has {src_lang}, {tgt_lang} and {src}.
TRAINING_TEMPLATES: tuple[str, ...] = (
    EVAL_PROMPT,
    "Translate this {src_lang} text into {tgt_lang}:\n{src}",
    "Please translate the following sentence from {src_lang} into {tgt_lang}.\n\n{src}",
    "{src}\n\nTranslate the text above into {tgt_lang}.",
    "What is the {tgt_lang} translation of this {src_lang} sentence?\n{src}",
    "Render the following {src_lang} text in {tgt_lang}, keeping its meaning and tone.\n\n{src}",
    "{src_lang}: {src}\n{tgt_lang}:",
    "Translate from {src_lang} to {tgt_lang}. Reply with the translation only.\n\n{src}",
    "Can you help me translate this into {tgt_lang}?\n\n{src}",
    "Convert the following {src_lang} passage into fluent {tgt_lang}.\n{src}",
    "I need this {src_lang} text in {tgt_lang}, please:\n\n\"{src}\"",
    "Source ({src_lang}): {src}\nTranslation ({tgt_lang}):",
)

# a think block up to its first </think>, or, left open, to the end of the text
_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL)


def translation_prompt(src: str, src_lang: Language, tgt_lang: Language, template: str = EVAL_PROMPT) -> str:
    return template.format(src_lang=src_lang.name, tgt_lang=tgt_lang.name, src=src)


def translation_messages(src: str, src_lang: Language, tgt_lang: Language) -> list[dict[str, str]]:
    """The chat messages of the evaluation prompt: one user turn."""
    return [{"role": "user", "content": translation_prompt(src, src_lang, tgt_lang)}]


def training_messages(
    src: str, tgt: str, src_lang: Language, tgt_lang: Language, rng: random.Random
) -> list[dict[str, str]]:
    """A user/assistant pair for one parallel sentence pair, in a template drawn from ``rng``."""
    prompt = translation_prompt(src, src_lang, tgt_lang, rng.choice(TRAINING_TEMPLATES))
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": tgt}]


def strip_thinking(text: str) -> str:
    """Remove closed ``<think>…</think>`` blocks, and an unclosed ``<think>`` with everything after it."""
    return _THINK.sub("", text).strip()


def postprocess_translation(text: str, sentence_level: bool = True) -> str:
    """Clean a model's output for scoring: strip thinking; for sentence-level sets keep the first line.

    A model that adds notes after the translation would otherwise be scored on them too.
    """
    text = strip_thinking(text)
    if sentence_level:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        text = lines[0] if lines else ""
    return text


def prompt_hash(messages: list[dict[str, str]], chat_template_kwargs: dict | None = None) -> str:
    """A short stable hash of what the model is asked, used to key stored generations."""
    return json_hash({"m": messages, "k": chat_template_kwargs or {}})
