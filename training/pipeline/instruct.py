"""Step 6, instruction format: each pair becomes chat JSONL ``{"messages": [user, assistant]}`` (what
``xplus-train`` reads), the user turn drawn from ``xplus_release.prompts.TRAINING_TEMPLATES``.

The template is drawn from a generator seeded by (seed, the pair's languages and texts, direction), so
the output is the same for a seed whatever the input names, sharding, worker count or engine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterable, Iterator

from xplus_release.languages import get_language
from xplus_release.prompts import training_messages

DIRECTIONS = ("forward", "reverse", "both", "random")


@dataclass
class InstructConfig:
    directions: str = "both"  # forward (src->trg), reverse, both, or random (one direction per pair)
    seed: int = 0

    def __post_init__(self):
        if self.directions not in DIRECTIONS:
            raise ValueError(f"directions must be one of {', '.join(DIRECTIONS)}, not {self.directions!r}")


def _rng(record: dict, seed: int, salt: str) -> random.Random:
    # Seeding from a string hashes it with SHA-512: stable across processes, unlike hash().
    return random.Random(
        f"{seed}\x1f{record['src']}\x1f{record['trg']}\x1f{record['src_line']}\x1f{record['tgt_line']}\x1f{salt}"
    )


def _directions(record: dict, config: InstructConfig) -> list[str]:
    if config.directions == "random":
        coin = _rng(record, config.seed, "direction").random()
        return ["forward" if coin < 0.5 else "reverse"]
    return ["forward", "reverse"] if config.directions == "both" else [config.directions]


def format_pairs(records: Iterable[dict], config: InstructConfig) -> Iterator[dict]:
    for record in records:
        for direction in _directions(record, config):
            src, tgt = (record["src_line"], record["tgt_line"])
            src_lang, tgt_lang = record["src"], record["trg"]
            if direction == "reverse":
                src, tgt, src_lang, tgt_lang = tgt, src, tgt_lang, src_lang
            rng = _rng(record, config.seed, direction)
            messages = training_messages(src, tgt, get_language(src_lang), get_language(tgt_lang), rng)
            yield {
                "messages": messages,
                "id": f"{record['id']}:{direction}",
                "direction": f"{src_lang}-{tgt_lang}",
            }
