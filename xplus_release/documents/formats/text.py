"""Plain text (``.txt``: one unit per paragraph) and HTML (``.html``: see ``markup``)."""

from __future__ import annotations

import re

from xplus_release.documents.files import UnitBatch, decode_text
from xplus_release.documents.markup import prepare

# paragraphs are separated by blank lines; the separators are kept byte for byte
PARAGRAPH_BREAK_RE = re.compile(r"(\r?\n[ \t]*(?:\r?\n[ \t]*)+)")


def translate_txt(data: bytes, batch: UnitBatch, filename: str) -> bytes:
    text, encoding = decode_text(data, filename)
    pieces = PARAGRAPH_BREAK_RE.split(text)
    prepared = [prepare(piece, "text", True) for piece in pieces[::2]]
    translated = batch.translate([p.units for p in prepared])
    pieces[::2] = [p.finish(t) for p, t in zip(prepared, translated)]
    return "".join(pieces).encode(encoding)


def translate_html(data: bytes, batch: UnitBatch, filename: str) -> bytes:
    text, encoding = decode_text(data, filename)
    prepared = prepare(text, "html", True, max_depth=batch.limits.max_html_depth)
    (translated,) = batch.translate([prepared.units])
    return prepared.finish(translated).encode(encoding)
