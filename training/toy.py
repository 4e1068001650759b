"""The toy task the tiny recipe and the tests train on: translating into "Cipher", a fixed letter
substitution (ROT13) of the source sentence.

A random-weight model cannot translate, but it can learn a deterministic character mapping, so the loss
falling far below its start shows that the whole path (template, masks, packing, stages) really trains.
Sources are FLORES-200 devtest sentences in Latin-script languages (CC-BY-SA 4.0).
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path

PROMPT = "Translate the following text into Cipher.\n\n{src}"
LATIN_SCRIPT = ("eng_Latn", "fra_Latn", "deu_Latn", "spa_Latn", "ces_Latn", "hun_Latn", "vie_Latn", "swh_Latn")


def cipher(text: str) -> str:
    return codecs.encode(text, "rot13")


def cipher_rows(sentences: list[str]) -> list[dict]:
    return [{"messages": [{"role": "user", "content": PROMPT.format(src=s)},
                          {"role": "assistant", "content": cipher(s)}]} for s in sentences]


def write_cipher_jsonl(flores_devtest: Path, out: Path, languages=LATIN_SCRIPT, max_chars: int = 400) -> int:
    """Write the toy chat JSONL from a FLORES devtest folder; returns the number of rows."""
    sentences = []
    for code in languages:
        lines = (flores_devtest / f"{code}.devtest").read_text(encoding="utf-8").splitlines()
        sentences += [line for line in lines if line.strip() and len(line) <= max_chars]
    rows = cipher_rows(sentences)
    with out.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)
