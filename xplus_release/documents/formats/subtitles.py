"""Subtitles: ``.srt`` through the ``srt`` library's cue pattern, ``.vtt`` through ``webvtt-py``.

Only cue text is translated; numbering, timings, cue settings, NOTE/STYLE/REGION blocks and line endings are
copied from the source. A cue whose timing line the library does not read (a broken timestamp) is left exactly
as it was, text included: it is not "fixed", and nothing around it moves. Styling tags inside cue text
(``<i>``, ``<b>``, ``<v Name>``, ``<c.class>``, inline timestamps, SSA ``{\\an8}``) are masked like placeholders.
"""

from __future__ import annotations

import re

import srt
import webvtt
from webvtt.errors import MalformedFileError
from webvtt.vtt import WebVTTCueBlock

from xplus_release.documents.errors import CorruptDocumentError
from xplus_release.documents.files import UnitBatch, decode_text
from xplus_release.documents.masking import Unit, UnitBuilder

CUE_MARKUP_RE = re.compile(r"</?[A-Za-z][^<>\n]*>|<\d[\d:.]*>|\{\\[^{}\n]*\}")
BLOCK_BREAK_RE = re.compile(r"\r?\n(?:[ \t]*\r?\n)+")


def cue_unit(text: str) -> Unit | None:
    """The unit of one cue's text (styling tags and placeholders masked); None if it has nothing to say."""
    builder = UnitBuilder(placeholders=True)
    cursor = 0
    for m in CUE_MARKUP_RE.finditer(text):
        builder.text(text[cursor : m.start()])
        builder.atom([m.group()])
        cursor = m.end()
    builder.text(text[cursor:])
    return builder.build()


def translate_spans(text: str, spans: list[tuple[int, int]], batch: UnitBatch) -> str:
    """``text`` with each (start, end) span of cue text replaced by its translation; the rest copied."""
    units = [cue_unit(text[start:end]) for start, end in spans]
    kept = [(span, unit) for span, unit in zip(spans, units) if unit is not None]
    (translated,) = batch.translate([[unit.text for _, unit in kept]])
    out, cursor = [], 0
    for ((start, end), unit), translation in zip(kept, translated):
        out += [text[cursor:start], "".join(str(part) for part in unit.render(translation))]
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def translate_srt(data: bytes, batch: UnitBatch, filename: str) -> bytes:
    text, encoding = decode_text(data, filename)
    spans = [m.span(5) for m in srt.SRT_REGEX.finditer(text)]  # group 5: the cue's content
    if not spans:
        raise CorruptDocumentError(
            f"{filename!r} has no subtitle cue (number, 'HH:MM:SS,mmm --> HH:MM:SS,mmm', text): "
            "send an SRT file, or the text under .txt"
        )
    return translate_spans(text, spans, batch).encode(encoding)


def translate_vtt(data: bytes, batch: UnitBatch, filename: str) -> bytes:
    text, encoding = decode_text(data, filename)
    try:
        webvtt.from_string(text)
    except MalformedFileError as err:
        raise CorruptDocumentError(
            f"{filename!r} is not WebVTT ({err}): a .vtt file starts with the line 'WEBVTT'"
        ) from None
    return translate_spans(text, _vtt_payload_spans(text), batch).encode(encoding)


def _vtt_payload_spans(text: str) -> list[tuple[int, int]]:
    """The spans of cue payloads: the lines after the timing line of each block ``webvtt-py`` takes for a cue."""
    spans = []
    start = 0
    for block_end, next_start in [m.span() for m in BLOCK_BREAK_RE.finditer(text)] + [(len(text), len(text))]:
        block = text[start:block_end]
        lines = block.splitlines()
        if lines and WebVTTCueBlock.is_valid(lines):
            timing = next(i for i, line in enumerate(lines) if "-->" in line)
            offset = sum(len(line) for line in block.splitlines(keepends=True)[: timing + 1])
            if start + offset < block_end:
                spans.append((start + offset, block_end))
        start = next_start
    return spans
