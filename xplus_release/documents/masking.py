"""Masking: what the model must not rewrite becomes a numbered tag it is asked to keep, and comes back exactly.

A unit of text is built from pieces: plain text, *atoms* (a placeholder such as ``{{user}}``, a URL, an HTML
entity, an inline element that is never translated) and *pairs* (an inline element's start and end tag around
words). The model sees atoms as ``<xN/>`` and pairs as ``<gN>…</gN>`` — the inline-tag convention of XLIFF 1.2,
which translation models have seen around words. Whatever the model writes, ``Unit.render`` gives back every atom
and pair exactly once, byte-identical:

- a mask the model kept where it makes sense (once; a pair opened before it is closed, inside the same parent
  pair as in the source) stays where the model put it, so markup moves with the words it wrapped;
- a mask it dropped, duplicated, mangled or mis-nested is re-attached at the edges: a pair around its parent's
  content, an atom at the edge it was nearest to in the source. Pairs re-attached there keep their source order.

Text the model writes that looks like a mask but is not one of the unit's is removed; text of the source that
looks like a mask is itself masked as an atom, so the two can never be confused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

# what the model may write for a mask: our form, or one with spaces or another case (kept as the mask)
MASK_RE = re.compile(r"<\s*[gG]\s*(\d+)\s*>|<\s*/\s*[gG]\s*(\d+)\s*>|<\s*[xX]\s*(\d+)\s*/?\s*>")
# any other mask-like tag (</x1>, <g1/>) is removed, never left as text
LOOSE_MASK_RE = re.compile(r"<\s*/?\s*[gGxX]\s*\d+\s*/?\s*>")

# Placeholders of the common i18n and templating syntaxes, plus URLs and e-mail addresses. Order matters: the
# longest forms first ({{name}} before {name}).
PLACEHOLDER_RE = re.compile(
    r"""
      \{\{[^{}\n]*\}\}                                    # {{name}}  (Jinja, Handlebars, Mustache)
    | \$\{[^{}\n]*\}                                      # ${var}    (JS template literals, shell)
    | \{[\w.\-]*(?::[^{}\n]*)?\}                          # {name} {0} {} {name:fmt}  (Python format, ICU args)
    | %(?:\(\w+\)|\d+\$)?[-+\#0]*\d*(?:\.\d+)?[sdifFeEgGxXocr%]  # %s %d %(name)s %1$s %.2f %%  (printf)
    | (?:https?|ftp)://[^\s<>"']*[^\s<>"'.,;:!?)\]}]      # URL, trailing punctuation left to the sentence
    | www\.[^\s<>"']*[^\s<>"'.,;:!?)\]}]
    | [\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+                     # e-mail address
    | </?g\d+>|<x\d+/>                                    # source text that looks like one of our masks
    """,
    re.VERBOSE,
)
MASK_LOOKALIKE_RE = re.compile(r"</?g\d+>|<x\d+/>")

# ICU MessageFormat: the syntax of {count, plural, one {# item} other {# items}} is masked, the bodies translated
ICU_HEAD_RE = re.compile(r"\{\s*\w+\s*,\s*(?:plural|selectordinal|select)\s*,(?:\s*offset:\s*\d+)?")
ICU_SELECTOR_RE = re.compile(r"\s*(?:=\d+|[\w-]+)\s*\{")
ICU_CLOSE_RE = re.compile(r"\s*\}")

LETTER_RE = re.compile(r"[^\W\d_]")

Part = str | int  # literal text, or the index of a unit whose translation goes there (a translated attribute)


def icu_syntax_spans(text: str) -> list[tuple[int, int]]:
    """The spans of ICU plural/select syntax in ``text`` (head, selectors, braces, ``#``); bodies are not in them.

    Iterative (no recursion), so nesting depth cannot exhaust the stack; a construct that does not close is not
    ICU and gives no spans."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while (head := ICU_HEAD_RE.search(text, pos)) is not None:
        found = _scan_icu(text, head)
        if found is None:
            pos = head.end()
            continue
        spans.extend(found[0])
        pos = found[1]
    return spans


def _scan_icu(text: str, head: re.Match) -> tuple[list[tuple[int, int]], int] | None:
    spans: list[tuple[int, int]] = []
    syntax_start, i, open_args, in_body = head.start(), head.end(), 1, False
    while True:
        if not in_body:  # after a head or a body: a selector and its "{", or the "}" closing the argument
            if (m := ICU_SELECTOR_RE.match(text, i)) is not None:
                spans.append((syntax_start, m.end()))
                i, in_body = m.end(), True
            elif (m := ICU_CLOSE_RE.match(text, i)) is not None:
                spans.append((syntax_start, m.end()))
                i, open_args, in_body = m.end(), open_args - 1, True
                if open_args == 0:
                    return _merge(spans), i
            else:
                return None
        elif i >= len(text):
            return None
        elif text[i] == "#":
            spans.append((i, i + 1))
            i += 1
        elif text[i] == "{" and (nested := ICU_HEAD_RE.match(text, i)) is not None:
            syntax_start, i, open_args, in_body = i, nested.end(), open_args + 1, False
        elif text[i] == "{":  # a simple {var} inside a body: the placeholder pattern masks it
            close = text.find("}", i)
            i = len(text) if close < 0 else close + 1
        elif text[i] == "}":  # the body ends; its "}" starts the syntax up to the next selector's "{"
            syntax_start, i, in_body = i, i + 1, False
        else:
            i += 1


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def split_placeholders(text: str, placeholders: bool) -> list[tuple[bool, str]]:
    """``text`` as (is_placeholder, piece) pieces, in order; with ``placeholders`` off only mask look-alikes."""
    if not placeholders:
        return _split_by(text, [m.span() for m in MASK_LOOKALIKE_RE.finditer(text)])
    spans = icu_syntax_spans(text)
    pieces: list[tuple[bool, str]] = []
    cursor = 0
    for start, end in [*spans, (len(text), len(text))]:
        between = text[cursor:start]
        pieces.extend(_split_by(between, [m.span() for m in PLACEHOLDER_RE.finditer(between)]))
        if end > start:
            pieces.append((True, text[start:end]))
        cursor = end
    return pieces


def _split_by(text: str, spans: list[tuple[int, int]]) -> list[tuple[bool, str]]:
    pieces: list[tuple[bool, str]] = []
    cursor = 0
    for start, end in spans:
        if start > cursor:
            pieces.append((False, text[cursor:start]))
        pieces.append((True, text[start:end]))
        cursor = end
    if cursor < len(text):
        pieces.append((False, text[cursor:]))
    return pieces


@dataclass
class Mask:
    """One masked thing: ``kind`` is "atom", or "open"/"close" of the pair numbered ``pair``."""

    kind: str
    raw: list[Part]
    parent: int | None  # the pair (its number) this mask sits in, in the source; None at the unit's top level
    pair: int = 0
    near_start: bool = False  # an atom nearer the unit's start than its end (where it goes back if dropped)


@dataclass
class Unit:
    """A unit of text as the model sees it (``text``) and what puts its translation back into the document."""

    text: str
    masks: dict[int, Mask]  # atoms by their number; pairs by their number, as the open mask
    closes: dict[int, Mask]
    lead: str  # whitespace around the unit: kept as it was, never sent to the model
    trail: str
    escape: Callable[[str], str]
    scrub: re.Pattern | None  # placeholder-like text the model may not add (None: placeholders not masked)

    def items(self, translation: str) -> list[tuple[str, object]]:
        """The translation as ("text", str) / ("atom", n) / ("open", n) / ("close", n): every mask exactly once."""
        seq = _parse(translation, self)
        while bad := _misplaced(seq, self):
            seq = [item for item in seq if not (item[0] != "text" and item[1] in bad)]
        _reattach(seq, self)
        return _strip_edges(seq)

    def render(self, translation: str) -> list[Part]:
        """The document text this unit's ``translation`` becomes: escaped text and the masks' raw markup."""
        parts: list[Part] = [self.lead] if self.lead else []
        for kind, value in self.items(translation):
            if kind == "text":
                parts.append(self.escape(value))
            else:
                parts.extend((self.closes if kind == "close" else self.masks)[value].raw)
        if self.trail:
            parts.append(self.trail)
        return parts


def _parse(translation: str, unit: Unit) -> list[tuple[str, object]]:
    seq: list[tuple[str, object]] = []
    seen: set[tuple[str, int]] = set()
    cursor = 0
    for m in MASK_RE.finditer(translation):
        seq.append(("text", translation[cursor : m.start()]))
        cursor = m.end()
        kind, number = next((k, int(v)) for k, v in zip(("open", "close", "atom"), m.groups()) if v)
        mask = unit.masks.get(number)
        wanted = "atom" if kind == "atom" else "open"
        if mask is not None and mask.kind == wanted and (kind, number) not in seen:
            seen.add((kind, number))
            seq.append((kind, number))
    seq.append(("text", translation[cursor:]))
    return _adopt_literal_atoms(seq, unit, seen)


def _adopt_literal_atoms(seq: list[tuple[str, object]], unit: Unit, seen: set) -> list[tuple[str, object]]:
    """A model that wrote a lost atom's text itself (``{0}`` for ``<x4/>``) gets it counted as that atom there;
    any other placeholder-like text it invented is removed, so the count of placeholders stays the source's."""
    missing = {}
    for number, mask in unit.masks.items():
        if mask.kind == "atom" and ("atom", number) not in seen and len(mask.raw) == 1 and isinstance(
            mask.raw[0], str
        ):
            missing.setdefault(mask.raw[0], []).append(number)
    out: list[tuple[str, object]] = []
    for kind, value in seq:
        if kind != "text":
            out.append((kind, value))
            continue
        text = LOOSE_MASK_RE.sub("", str(value))
        cursor = 0
        for m in (unit.scrub.finditer(text) if unit.scrub else ()):
            out.append(("text", text[cursor : m.start()]))
            cursor = m.end()
            if missing.get(m.group()):
                out.append(("atom", missing[m.group()].pop(0)))
        out.append(("text", text[cursor:]))
    return [(k, v) for k, v in out if k != "text" or v]


def _misplaced(seq: list[tuple[str, object]], unit: Unit) -> set[int]:
    """Pairs the model did not keep whole and well nested inside the same parent as in the source."""
    bad: set[int] = set()
    stack: list[int] = []
    opened: set[int] = set()
    for kind, number in seq:
        if kind == "open":
            if (stack[-1] if stack else None) != unit.masks[number].parent:
                bad.add(number)
            stack.append(number)
            opened.add(number)
        elif kind == "close":
            if not stack or stack[-1] != number:
                bad.add(number)
                bad.update(stack[stack.index(number) :] if number in stack else ())
            else:
                stack.pop()
    bad.update(stack)
    return bad


def _reattach(seq: list[tuple[str, object]], unit: Unit) -> None:
    """Put every mask the model lost back at its parent's edges, in source order (parents before children).

    At the front, opens and atoms go after those already re-attached there; at the back, atoms go before the
    closes already re-attached there (so a re-attached pair wraps them) and after earlier atoms."""
    present = {(k, v) for k, v in seq if k != "text"}
    front: set[int] = set()  # id() of the items re-attached at a front edge / of the closes at a back edge
    back_closes: set[int] = set()
    for number in sorted(unit.masks):
        mask = unit.masks[number]
        kind = "atom" if mask.kind == "atom" else "open"
        if (kind, number) in present:
            continue
        lo, hi = _edges(seq, mask.parent)
        while lo < hi and id(seq[lo]) in front:
            lo += 1
        while hi > lo and id(seq[hi - 1]) in back_closes:
            hi -= 1
        if kind == "open":
            opening, closing = ("open", number), ("close", number)
            seq.insert(hi, closing)
            seq.insert(lo, opening)
            front.add(id(opening))
            back_closes.add(id(closing))
        else:
            atom = ("atom", number)
            seq.insert(lo if mask.near_start else hi, atom)
            if mask.near_start:
                front.add(id(atom))


def _edges(seq: list[tuple[str, object]], parent: int | None) -> tuple[int, int]:
    if parent is None:
        return 0, len(seq)
    return seq.index(("open", parent)) + 1, seq.index(("close", parent))


def _strip_edges(seq: list[tuple[str, object]]) -> list[tuple[str, object]]:
    """Whitespace at the unit's very edges belongs to ``lead``/``trail``: drop what the model put there."""
    if seq and seq[0][0] == "text":
        seq[0] = ("text", str(seq[0][1]).lstrip())
    if seq and seq[-1][0] == "text":
        seq[-1] = ("text", str(seq[-1][1]).rstrip())
    return [item for item in seq if item[0] != "text" or item[1]]


@dataclass
class Piece:
    kind: str  # "text", "atom", "open", "close"
    raw: list[Part]
    text: str = ""  # what the model sees of a text piece
    name: str = ""  # an open/close's element name: a close pairs with the open of the same name on top


@dataclass
class UnitBuilder:
    """Collects a unit's pieces in source order; ``build`` returns the Unit, or None if nothing is translatable."""

    placeholders: bool
    escape: Callable[[str], str] = str
    pieces: list[Piece] = field(default_factory=list)

    def text(self, text: str) -> None:
        for is_placeholder, piece in split_placeholders(text, self.placeholders):
            self.pieces.append(Piece("atom", [piece]) if is_placeholder else Piece("text", [piece], piece))

    def atom(self, raw: list[Part]) -> None:
        self.pieces.append(Piece("atom", raw))

    def open(self, raw: list[Part], name: str) -> None:
        self.pieces.append(Piece("open", raw, name=name))

    def close(self, raw: list[Part], name: str) -> None:
        self.pieces.append(Piece("close", raw, name=name))

    def raw(self) -> list[Part]:
        """Every piece as it was in the source (what a unit with nothing to translate passes through)."""
        return [part for piece in self.pieces for part in piece.raw]

    def translatable(self) -> bool:
        return any(piece.kind == "text" and LETTER_RE.search(piece.text) for piece in self.pieces)

    def build(self) -> Unit | None:
        if not self.translatable():
            return None
        kinds = _resolve_pairs(self.pieces)
        masks: dict[int, Mask] = {}
        closes: dict[int, Mask] = {}
        stack: list[int] = []
        chunks: list[str] = []
        total = sum(len(piece.text) for piece in self.pieces)
        done = 0
        for kind, piece in zip(kinds, self.pieces):
            number = len(masks) + 1
            parent = stack[-1] if stack else None
            if kind == "text":
                chunks.append(piece.text)
                done += len(piece.text)
            elif kind == "open":
                masks[number] = Mask("open", piece.raw, parent, pair=number)
                stack.append(number)
                chunks.append(f"<g{number}>")
            elif kind == "close":
                opened = stack.pop()
                closes[opened] = Mask("close", piece.raw, masks[opened].parent, pair=opened)
                chunks.append(f"</g{opened}>")
            else:
                masks[number] = Mask("atom", piece.raw, parent, near_start=2 * done < total)
                chunks.append(f"<x{number}/>")
        joined = "".join(chunks)
        lead = joined[: len(joined) - len(joined.lstrip())]
        trail = joined[len(joined.rstrip()) :]
        scrub = PLACEHOLDER_RE if self.placeholders else MASK_LOOKALIKE_RE
        return Unit(joined.strip(), masks, closes, lead, trail, self.escape, scrub)


def _resolve_pairs(pieces: list[Piece]) -> list[str]:
    """Each piece's kind, with opens and closes that do not pair up (unclosed, stray, crossed) made atoms."""
    kinds = [piece.kind for piece in pieces]
    stack: list[int] = []
    for index, piece in enumerate(pieces):
        if piece.kind == "open":
            stack.append(index)
        elif piece.kind == "close":
            if stack and pieces[stack[-1]].name == piece.name:
                stack.pop()
            else:
                kinds[index] = "atom"
    for index in stack:
        kinds[index] = "atom"
    return kinds
