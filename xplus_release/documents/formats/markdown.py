"""Markdown (``.md``): markdown-it-py finds the text; everything else is copied from the source.

markdown-it-py (CommonMark, plus GFM tables) parses the file; each inline token (a paragraph, a heading, a list
item's text, a table cell) is one unit, found in the source through the token's line map. Code blocks, fenced
code, HTML blocks, front matter, link reference definitions, list markers, quote markers, indentation and blank
lines are never sent to the model and come back byte for byte. Inside a unit, Markdown's inline syntax is masked:
emphasis delimiters and link brackets as pairs around their words, code spans, images, autolinks, inline HTML and
backslash escapes as atoms (an image's alt text is not translated).
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from xplus_release.documents.files import UnitBatch, decode_text
from xplus_release.documents.masking import Unit, UnitBuilder

INLINE_SYNTAX_RE = re.compile(
    r"""
      (?P<code>(`+)[^`](?:.*?[^`])?\2(?!`))                # code span
    | (?P<image>!\[[^\]\n]*\]\([^)\n]*\))                  # image: kept whole
    | (?P<auto><[A-Za-z][\w+.-]*:[^\s<>]*>|<[^\s<>@]+@[^\s<>]+>)  # autolink
    | (?P<html></?[A-Za-z][^<>]*>)                          # inline HTML
    | (?P<escape>\\[!-/:-@\[-`{-~])                         # backslash escape
    | (?P<link_open>\[)
    | (?P<link_close>\]\([^)\n]*\)|\]\[[^\]\n]*\]|\])
    | (?P<delim>\*{1,3}|~~|(?<!\w)_{1,3}|_{1,3}(?!\w))     # emphasis, strike-through
    """,
    re.VERBOSE,
)


def translate_markdown(data: bytes, batch: UnitBatch, filename: str) -> bytes:
    text, encoding = decode_text(data, filename)
    spans = inline_spans(text)
    units = [_unit(content) for _, _, _, content in spans]
    kept = [(span, unit) for span, unit in zip(spans, units) if unit is not None]
    (translated,) = batch.translate([[unit.text for _, unit in kept]])
    out, cursor = [], 0
    for ((start, end, prefix, _), unit), translation in zip(kept, translated):
        rendered = "".join(str(part) for part in unit.render(translation))
        out += [text[cursor:start], rendered.replace("\n", "\n" + prefix)]
        cursor = end
    out.append(text[cursor:])
    return "".join(out).encode(encoding)


def inline_spans(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, continuation prefix, content) of each inline token in ``text``: the unit of a paragraph runs
    over its lines, whose prefixes (quote markers, list indentation) are left out of it and put back."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    cursor_in_line: dict[int, int] = {}
    spans = []
    for token in MarkdownIt("commonmark").enable("table").parse(text):
        if token.type != "inline" or not token.map or not token.content:
            continue
        found = _locate(token.content.split("\n"), token.map[0], lines, cursor_in_line)
        if found is None:  # not found as written (a rare construct): left untranslated rather than guessed
            continue
        first, last_line, last_end, prefix = found
        spans.append((starts[token.map[0]] + first, starts[last_line] + last_end, prefix, token.content))
    return spans


def _locate(content_lines: list[str], first_line: int, lines: list[str], cursor_in_line: dict[int, int]):
    positions = []
    for offset, content in enumerate(content_lines):
        number = first_line + offset
        if number >= len(lines):
            return None
        position = lines[number].find(content, cursor_in_line.get(number, 0))
        if position < 0:
            return None
        positions.append(position)
        cursor_in_line[number] = position + len(content)
    last = first_line + len(content_lines) - 1
    prefix = lines[first_line + 1][: positions[1]] if len(positions) > 1 else ""
    if len(positions) > 1 and any(lines[first_line + i][:p] != prefix for i, p in enumerate(positions[1:], 1)):
        return None  # continuation lines with different prefixes: their layout cannot be rebuilt from one
    return positions[0], last, positions[-1] + len(content_lines[-1]), prefix


def _unit(text: str) -> Unit | None:
    builder = UnitBuilder(placeholders=True)
    cursor = 0
    for m in INLINE_SYNTAX_RE.finditer(text):
        builder.text(text[cursor : m.start()])
        kind = m.lastgroup
        if kind == "link_open":
            builder.open([m.group()], "link")
        elif kind == "link_close":
            builder.close([m.group()], "link")
        elif kind == "delim":
            _delimiter(builder, m.group())
        else:
            builder.atom([m.group()])
        cursor = m.end()
    builder.text(text[cursor:])
    return builder.build()


def _delimiter(builder: UnitBuilder, delimiter: str) -> None:
    """The second of two equal delimiters closes the first (``**bold**``); unpaired ones become atoms."""
    open_names = [piece.name for piece in builder.pieces if piece.kind == "open"]
    closed = sum(1 for piece in builder.pieces if piece.kind == "close" and piece.name == delimiter)
    if open_names.count(delimiter) > closed:
        builder.close([delimiter], delimiter)
    else:
        builder.open([delimiter], delimiter)
