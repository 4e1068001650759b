"""Step 6, instruction format: each pair becomes chat JSONL ``{"messages": [user, assistant]}`` (what
``xplus-train`` reads), the user turn drawn from ``xplus_release.prompts.TRAINING_TEMPLATES``.

The template is drawn from a generator seeded by (seed, the pair's languages and texts, direction), so
the output is the same for a seed whatever the input names, sharding, worker count or engine.
"""

from __future__ import annotations

import random
from typing import Literal

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from xplus_release.config import Config
from xplus_release.languages import get_language
from xplus_release.prompts import training_messages


class InstructConfig(Config):
    section = "instruct"
    yaml_keys = True

    # forward (src->trg), reverse, both, or random (one direction per pair)
    directions: Literal["forward", "reverse", "both", "random"] = "both"
    seed: int = 0


def _rng(doc: Document, seed: int, salt: str) -> random.Random:
    # Seeding from a string hashes it with SHA-512: stable across processes, unlike hash().
    meta = doc.metadata
    return random.Random(
        f"{seed}\x1f{meta['src']}\x1f{meta['trg']}\x1f{doc.text}\x1f{meta['target']}\x1f{salt}"
    )


def _directions(doc: Document, config: InstructConfig) -> list[str]:
    if config.directions == "random":
        coin = _rng(doc, config.seed, "direction").random()
        return ["forward" if coin < 0.5 else "reverse"]
    return ["forward", "reverse"] if config.directions == "both" else [config.directions]


def format_pair(doc: Document, config: InstructConfig) -> list[Document]:
    """One chat document per direction; ``metadata["messages"]`` is what ``train.jsonl`` holds."""
    formatted, meta = [], doc.metadata
    for direction in _directions(doc, config):
        src, tgt, src_lang, tgt_lang = doc.text, meta["target"], meta["src"], meta["trg"]
        if direction == "reverse":
            src, tgt, src_lang, tgt_lang = tgt, src, tgt_lang, src_lang
        rng = _rng(doc, config.seed, direction)
        messages = training_messages(src, tgt, get_language(src_lang), get_language(tgt_lang), rng)
        chat = {"messages": messages, "direction": f"{src_lang}-{tgt_lang}", "shard": meta["shard"]}
        formatted.append(Document(text=messages[0]["content"], id=f"{doc.id}:{direction}", metadata=chat))
    return formatted


def chat_adapter(writer, doc: Document) -> dict:
    return {"messages": doc.metadata["messages"], "id": doc.id, "direction": doc.metadata["direction"]}


class InstructStep(PipelineStep):
    """Pairs in, chat documents out (one or two per pair); counts ``total`` pairs and ``forwarded`` rows."""

    name = "instruct"
    type = "xplus"

    def __init__(self, configs):
        super().__init__()
        self.configs = configs  # pair -> InstructConfig

    def run(self, data, rank: int = 0, world_size: int = 1):
        for doc in data:
            self.stat_update("total")
            with self.track_time():
                formatted = format_pair(doc, self.configs(f"{doc.metadata['src']}-{doc.metadata['trg']}"))
            self.stat_update("forwarded", value=len(formatted))
            yield from formatted
