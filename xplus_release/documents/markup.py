"""Text and HTML in, plain-text units for the model out, and the document rebuilt exactly around their translations.

``prepare(text, fmt, preserve_placeholders)`` returns a ``Prepared``: ``units`` are the texts to translate (inline
tags and placeholders masked, see ``masking``), and ``finish(translations)`` writes the document back with every
byte of markup and every placeholder as it was sent, whatever the model wrote.

HTML is read by the standard library's ``html.parser.HTMLParser`` (the tokenizer BeautifulSoup's default builder
uses): it is the parser that reports where each token starts, so everything outside the translated text — tags
with their attribute quoting, comments, entities, the doctype, whitespace between blocks — is copied from the
source slice by slice instead of being re-serialized. It is a flat tokenizer: depth costs no recursion, and the
nesting depth is counted to refuse documents nested beyond ``MAX_HTML_DEPTH``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser, attrfind_tolerant, tagfind_tolerant
from typing import Literal

from xplus_release.documents.errors import NestingTooDeepError
from xplus_release.documents.masking import Part, Unit, UnitBuilder

# Browsers' HTML parsers stop nesting at 512 levels (Blink, WebKit); a page deeper than that is not a page.
MAX_HTML_DEPTH = 512

# Phrasing elements that sit inside a sentence: masked around their words instead of splitting the text.
INLINE_ELEMENTS = frozenset({
    "a", "abbr", "acronym", "b", "bdi", "bdo", "big", "br", "cite", "code", "data", "del", "dfn", "em",
    "font", "i", "img", "ins", "kbd", "label", "mark", "q", "s", "samp", "small", "span", "strike",
    "strong", "sub", "sup", "time", "tt", "u", "var", "wbr",
})
VOID_ELEMENTS = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track",
    "wbr",
})
NEVER_TRANSLATED = frozenset({"script", "style", "code", "pre", "kbd", "samp", "var", "textarea", "svg", "math"})
TRANSLATED_ATTRIBUTES = ("alt", "title")
AMBIGUOUS_AMP_RE = re.compile(r"&(?=[#A-Za-z0-9])")
AMBIGUOUS_LT_RE = re.compile(r"<(?=[A-Za-z/!?])")
# elements a new sibling of the same name closes implicitly (<li>a<li>b): for counting depth right
SELF_CLOSING_SIBLINGS = frozenset({
    "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "thead", "tbody", "tfoot", "rt", "rp",
})


class Unquoted(int):
    """The unit of an attribute value written without quotes: quoted on output only if its translation needs it."""


UNQUOTED_VALUE_RE = re.compile(r"[^\s\"'=<>`]+")


def _value(part: int, unit_text: Callable[[int], str]) -> str:
    text = unit_text(part)
    if isinstance(part, Unquoted) and not UNQUOTED_VALUE_RE.fullmatch(text):
        return f'"{text}"'
    return text


@dataclass
class Prepared:
    """Units to translate, and the document's skeleton that ``finish`` fills with their translations."""

    units: list[str]
    skeleton: list[Part] = field(repr=False)
    unit_objects: list[Unit] = field(repr=False)

    def finish(self, translations: list[str]) -> str:
        """The document with each unit replaced by its translation (same order as ``units``)."""
        if len(translations) != len(self.units):
            raise ValueError(f"finish() got {len(translations)} translations for {len(self.units)} units")
        done: dict[int, str] = {}

        def resolve(parts: list[Part]) -> str:
            return "".join(part if isinstance(part, str) else _value(part, unit_text) for part in parts)

        def unit_text(index: int) -> str:  # attribute units are referenced from the tags of text units
            if index not in done:
                done[index] = resolve(self.unit_objects[index].render(translations[index]))
            return done[index]

        return resolve(self.skeleton)


def prepare(text: str, fmt: Literal["text", "html"], preserve_placeholders: bool, *,
            max_depth: int = MAX_HTML_DEPTH) -> Prepared:
    """Split ``text`` into units to translate; ``fmt`` is "text" (one unit) or "html" (parsed, see module doc).

    Raises ``NestingTooDeepError`` (422) for HTML nested deeper than ``max_depth`` elements."""
    if fmt == "html":
        return _HtmlSplitter(text, preserve_placeholders, max_depth).split()
    if fmt != "text":
        raise ValueError(f"unknown format {fmt!r}: use 'text' or 'html'")
    collector = _Collector()
    builder = UnitBuilder(preserve_placeholders)
    builder.text(text)
    collector.flush(builder)
    return collector.prepared()


@dataclass
class RunsPrepared:
    """A paragraph made of formatted runs (docx, pptx): at most one unit, each run's text a pair around its words."""

    units: list[str]
    run_texts: list[str]
    unit: Unit | None

    def finish(self, translations: list[str]) -> list[str]:
        """The new text of each run: the words the model kept inside a run's pair go to that run; words outside
        every pair go to the run before them (the first run at the start); placeholders stay with their run."""
        if self.unit is None:
            return list(self.run_texts)
        texts = [text if not text.strip() else "" for text in self.run_texts]  # whitespace-only runs stay
        run_of = {number: int(mask.raw[0]) for number, mask in self.unit.masks.items() if mask.kind == "open"}
        stack: list[int] = []
        current = next(i for i, text in enumerate(self.run_texts) if text.strip())
        for kind, value in self.unit.items(translations[0]):
            if kind == "open":
                stack.append(run_of[value])
                current = stack[-1]
            elif kind == "close":
                stack.pop()
            else:
                target = stack[0] if stack else current  # pairs re-attached nest: the outermost is the first run
                texts[target] += value if kind == "text" else str(self.unit.masks[value].raw[0])
        return _restore_run_edges(texts, self.run_texts)


def prepare_runs(run_texts: list[str], preserve_placeholders: bool) -> RunsPrepared:
    """One unit for a paragraph of runs: each run with text is a pair ``<gN>…</gN>`` so its formatting stays
    around its words; a paragraph of one run is sent as plain text. Runs of whitespace only are not sent (they
    stay, keeping words apart), nor are empty ones."""
    builder = UnitBuilder(preserve_placeholders)
    with_text = [i for i, text in enumerate(run_texts) if text.strip()]
    for index in with_text:
        if len(with_text) > 1:
            builder.open([str(index)], "run")
        builder.text(run_texts[index])
        if len(with_text) > 1:
            builder.close([str(index)], "run")
    unit = builder.build()
    return RunsPrepared([unit.text] if unit else [], list(run_texts), unit)


def _restore_run_edges(texts: list[str], originals: list[str]) -> list[str]:
    """The whitespace a run began or ended with (between runs, at the paragraph's edges) is put back."""
    restored = []
    for new, old in zip(texts, originals):
        if new and old.strip():
            lead = old[: len(old) - len(old.lstrip())]
            trail = old[len(old.rstrip()) :]
            new = lead + new.strip() + trail
        restored.append(new)
    return restored


class _Collector:
    """The skeleton of a document and its units, built as units are flushed in document order."""

    def __init__(self) -> None:
        self.skeleton: list[Part] = []
        self.units: list[Unit] = []

    def add_unit(self, builder: UnitBuilder) -> list[Part]:
        """The parts standing for ``builder``'s text: its unit's number, or its raw pieces if nothing to say."""
        unit = builder.build()
        if unit is None:
            return builder.raw()
        self.units.append(unit)
        return [len(self.units) - 1]

    def flush(self, builder: UnitBuilder) -> None:
        self.skeleton.extend(self.add_unit(builder))
        builder.pieces.clear()

    def prepared(self) -> Prepared:
        return Prepared([unit.text for unit in self.units], self.skeleton, self.units)


class _Tokens(HTMLParser):
    """Records every token with the offset where it starts; ``raw`` slices come from consecutive offsets."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=False)
        self.source = source
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self.events: list[tuple[str, int, object]] = []

    def _at(self, kind: str, data: object) -> None:
        line, column = self.getpos()
        self.events.append((kind, self.line_starts[line - 1] + column, data))

    def handle_starttag(self, tag, attrs):
        self._at("start", (tag, attrs, False))

    def handle_startendtag(self, tag, attrs):
        self._at("start", (tag, attrs, True))

    def handle_endtag(self, tag):
        self._at("end", tag)

    def handle_data(self, data):
        self._at("text", data)

    def handle_entityref(self, name):
        self._at("entity", name)

    def handle_charref(self, name):
        self._at("entity", name)

    def handle_comment(self, data):
        self._at("other", data)

    def handle_decl(self, decl):
        self._at("other", decl)

    def handle_pi(self, data):
        self._at("other", data)

    def unknown_decl(self, data):
        self._at("other", data)

    def slices(self) -> list[tuple[str, str, object]]:
        """(kind, raw source text, data) for every token; the raw texts joined are the source."""
        self.feed(self.source)
        self.close()
        starts = [start for _, start, _ in self.events] + [len(self.source)]
        out = [("other", self.source[: starts[0]], None)] if starts[0] > 0 else []
        for (kind, start, data), end in zip(self.events, starts[1:]):
            if kind == "text" and out and out[-1][0] == "text":  # the parser hands "<" of a non-tag apart
                kind, start = "text", start - len(out.pop()[1])
            out.append((kind, self.source[start:end], data))
        return out


class _HtmlSplitter:
    """Walks the tokens: block tags end a unit, inline tags become pairs, untranslated elements atoms."""

    def __init__(self, source: str, placeholders: bool, max_depth: int) -> None:
        self.source = source
        self.max_depth = max_depth
        self.placeholders = placeholders
        self.collector = _Collector()
        self.builder = UnitBuilder(placeholders, escape=escape_text)
        self.open_elements: list[str] = []  # for the depth limit
        self.skipped: list[str] = []  # raw text of the untranslated element being read
        self.skip_stack: list[str] = []

    def split(self) -> Prepared:
        for kind, raw, data in _Tokens(self.source).slices():
            if self.skip_stack:
                self._skip(kind, raw, data)
            elif kind == "start":
                self._start(raw, *data)
            elif kind == "end":
                self._end(raw, data)
            elif kind == "text" and (AMBIGUOUS_AMP_RE.search(raw) or AMBIGUOUS_LT_RE.search(raw)):
                self._literal(raw)  # what the parser left unparsed (an unclosed tag at the end): kept as is
            elif kind == "text":
                self.builder.text(raw)
            else:  # entities, comments, doctype, processing instructions: kept byte for byte
                self.builder.atom([raw])
        if self.skipped:  # an element never closed runs to the end: nothing may be re-attached inside it
            self._literal("".join(self.skipped))
        self.collector.flush(self.builder)
        return self.collector.prepared()

    def _literal(self, raw: str) -> None:
        self.collector.flush(self.builder)
        self.collector.skeleton.append(raw)

    def _start(self, raw: str, tag: str, attrs: list, self_closing: bool) -> None:
        void = self_closing or tag in VOID_ELEMENTS
        if not void:
            self._push(tag)
        if _untranslated(tag, attrs):
            if void:
                self.builder.atom([raw])
            else:
                self.skip_stack, self.skipped = [tag], [raw]
            return
        parts = self._tag_parts(raw, attrs)
        if tag in INLINE_ELEMENTS:
            (self.builder.atom(parts) if void else self.builder.open(parts, tag))
        else:
            self.collector.flush(self.builder)
            self.collector.skeleton.extend(parts)

    def _end(self, raw: str, tag: str) -> None:
        self._pop(tag)
        if tag in INLINE_ELEMENTS:
            self.builder.close([raw], tag)
        else:
            self.collector.flush(self.builder)
            self.collector.skeleton.append(raw)

    def _skip(self, kind: str, raw: str, data: object) -> None:
        """Inside script, style, code, pre, translate="no" or class="notranslate": collect, never translate."""
        self.skipped.append(raw)
        if kind == "start" and not (data[2] or data[0] in VOID_ELEMENTS):
            self._push(data[0])
            self.skip_stack.append(data[0])
        elif kind == "end":
            self._pop(data)
            if data in self.skip_stack:
                del self.skip_stack[len(self.skip_stack) - 1 - self.skip_stack[::-1].index(data) :]
            if not self.skip_stack:
                self._end_skip(data)

    def _end_skip(self, root: str) -> None:
        raw = "".join(self.skipped)
        self.skipped = []
        if root in INLINE_ELEMENTS:
            self.builder.atom([raw])
        else:
            self._literal(raw)

    def _push(self, tag: str) -> None:
        if tag in SELF_CLOSING_SIBLINGS and tag in self.open_elements[-3:]:
            self._pop(tag)
        self.open_elements.append(tag)
        if len(self.open_elements) > self.max_depth:
            raise NestingTooDeepError(
                f"HTML nested more than {self.max_depth} elements deep: send the page as a browser would "
                "render it (flatten the nesting), or as plain text"
            )

    def _pop(self, tag: str) -> None:
        if tag in self.open_elements:
            del self.open_elements[len(self.open_elements) - 1 - self.open_elements[::-1].index(tag) :]

    def _tag_parts(self, raw: str, attrs: list) -> list[Part]:
        """The start tag as parts: its raw text, with the values of alt/title replaced by units."""
        wanted = {name for name, value in attrs if name in TRANSLATED_ATTRIBUTES and value}
        if not wanted:
            return [raw]
        parts: list[Part] = []
        cursor = 0
        for name, start, end, quote in _attribute_values(raw):
            if name not in wanted:
                continue
            wanted.discard(name)  # the first of duplicated attributes is the one HTML uses
            builder = UnitBuilder(self.placeholders, escape=lambda s: html.escape(s, quote=True))
            builder.text(html.unescape(raw[start:end]))
            unit_parts = self.collector.add_unit(builder)
            if unit_parts and isinstance(unit_parts[0], int):
                parts.extend([raw[cursor:start], unit_parts[0] if quote else Unquoted(unit_parts[0])])
                cursor = end
        parts.append(raw[cursor:])
        return parts


def escape_text(text: str) -> str:
    """Model text made safe as HTML text: "&" and "<" escaped where they could start a reference or a tag (the
    HTML standard's rule), so text without markup characters comes back exactly as the source wrote it."""
    return AMBIGUOUS_LT_RE.sub("&lt;", AMBIGUOUS_AMP_RE.sub("&amp;", text))


def _attribute_values(raw: str) -> list[tuple[str, int, int, bool]]:
    """(name, value start, value end, quoted) of a start tag's attributes, tokenized as ``HTMLParser`` does."""
    found = []
    k = tagfind_tolerant.match(raw, 1).end()
    while k < len(raw) and (m := attrfind_tolerant.match(raw, k)) is not None and m.end() > k:
        if m.group(3) is not None and m.group(2):
            value = m.group(3)
            quoted = value[:1] in "'\"" and len(value) >= 2 and value[-1:] == value[:1]
            start, end = m.span(3)
            found.append((m.group(1).lower(), start + quoted, end - quoted, quoted))
        k = m.end()
    return found


def _untranslated(tag: str, attrs: list) -> bool:
    """script, style, code, pre...; any element with translate="no" (HTML's own switch) or class="notranslate"."""
    values = dict(attrs)
    classes = (values.get("class") or "").split()
    return tag in NEVER_TRANSLATED or (values.get("translate") or "").strip().lower() == "no" or (
        "notranslate" in classes
    )
