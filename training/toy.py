"""The toy task the tiny recipe and the tests train on: translating into "Cipher", a fixed letter
substitution (ROT13) of the source sentence.

A random-weight model cannot translate, but it can learn a deterministic character mapping, so the loss
falling far below its start shows that the whole path (template, masks, packing, stages) really trains.
The source sentences are the caller's (the tests use FLORES-200 lines, CC-BY-SA 4.0).
"""

from __future__ import annotations

import codecs

PROMPT = "Translate the following text into Cipher.\n\n{src}"


def cipher(text: str) -> str:
    return codecs.encode(text, "rot13")


def cipher_rows(sentences: list[str]) -> list[dict]:
    return [{"messages": [{"role": "user", "content": PROMPT.format(src=s)},
                          {"role": "assistant", "content": cipher(s)}]} for s in sentences]
