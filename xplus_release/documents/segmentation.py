"""Texts split into the sentences a translation model is sent, and put back together byte for byte.

The model was tuned on sentence pairs, so a document is translated sentence by sentence: a text is cut into
lines (paragraphs), a line loses its indentation, list marker and trailing spaces, and the rest is cut into
sentences by a maintained segmenter. Everything that is not a sentence (line breaks, blank lines, indentation,
``1.``/``-``/``•`` markers, the spaces between sentences) is a separator: never sent to the model, and put
back exactly where it was (``Segmented.join``).

Sentence boundaries come from Wikimedia's ``sentencex`` (rules per language, with fallback chains covering
~300 languages; zh/ja full-width ``。！？`` included), except Thai, which writes no sentence-final punctuation:
there PyThaiNLP's ``crfcut`` (a CRF trained on Thai text) decides. ``split_sentences`` takes DeepL's values:
``"1"`` lines and sentences, ``"nonewlines"`` sentences only (a sentence may run across a single line break;
blank lines still part paragraphs), ``"0"`` the whole text as one segment.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import sentencex

SplitSentences = Literal["1", "0", "nonewlines"]
SPLIT_SENTENCES: tuple[str, ...] = ("1", "0", "nonewlines")

# What opens a line without being words: indentation, then a bullet or an enumerator, then spaces.
_LINE_PREFIX = re.compile(r"""^[^\S\r\n]*                 # indentation
    (?:(?:[-*+•◦‣▪·–—]|\#{1,6}|>+                        # bullets, Markdown headings and quotes
       |\(?(?:\d{1,4}|[a-zA-Z]|[ivxlcIVXLC]{1,6})[.)]    # 1.  1)  (a)  iv.
      )[^\S\r\n]+)?""", re.VERBOSE)
_PARAGRAPH_BREAK = re.compile(r"(\r?\n[^\S\r\n]*){2,}|\r(?!\n)[^\S\r\n]*\r")
_LINE_BREAK = re.compile(r"\r\n|\n|\r")


@dataclass(frozen=True)
class Segmented:
    """A text as alternating separators and segments: ``parts[0]`` is a separator, then segment, separator, …
    (so ``len(parts) == 2 * len(segments) + 1``); ``"".join(parts)`` is the text."""

    parts: tuple[str, ...]

    @property
    def segments(self) -> list[str]:
        """What goes to the model: never empty, never only whitespace."""
        return list(self.parts[1::2])

    def join(self, translations: list[str]) -> str:
        """The text with each segment replaced by its translation, separators as they were.

        Raises: ValueError when ``translations`` does not have one entry per segment.
        """
        if len(translations) != len(self.parts) // 2:
            raise ValueError(f"{len(translations)} translations for {len(self.parts) // 2} segments")
        out = list(self.parts)
        out[1::2] = translations
        return "".join(out)


def segment(text: str, language: str, split_sentences: SplitSentences = "1") -> Segmented:
    """``text`` (in ``language``, a short code like ``de``) cut into segments and separators.

    Raises: ValueError for a ``split_sentences`` other than ``"1"``, ``"0"`` or ``"nonewlines"``.
    """
    if split_sentences not in SPLIT_SENTENCES:
        raise ValueError(f"split_sentences is {split_sentences!r}; use one of \"1\", \"0\", \"nonewlines\"")
    parts = [""]
    if split_sentences == "0":
        pieces = [text]
    elif split_sentences == "nonewlines":
        pieces = _between(_PARAGRAPH_BREAK, text)
    else:
        pieces = _between(_LINE_BREAK, text)
    for index, piece in enumerate(pieces):
        if index % 2:  # a break between lines or paragraphs
            parts[-1] += piece
            continue
        prefix = "" if split_sentences == "0" else _LINE_PREFIX.match(piece).group(0)
        parts[-1] += prefix
        body = piece[len(prefix):]
        for sentence in ([body] if split_sentences == "0" else sentences(body, language)):
            _add_sentence(parts, sentence)
    return Segmented(tuple(parts))


def _between(pattern: re.Pattern, text: str) -> list[str]:
    """``text`` as [piece, match, piece, match, …, piece]."""
    out, start = [], 0
    for found in pattern.finditer(text):
        out += [text[start:found.start()], found.group(0)]
        start = found.end()
    return out + [text[start:]]


def _add_sentence(parts: list[str], sentence: str) -> None:
    """Appends ``sentence``'s own words as a segment and its surrounding whitespace to the separators."""
    words = sentence.strip()
    if not words:
        parts[-1] += sentence
        return
    lead = sentence[: len(sentence) - len(sentence.lstrip())]
    parts[-1] += lead
    parts += [words, sentence[len(lead) + len(words):]]


def sentences(text: str, language: str) -> Iterator[str]:
    """``text`` cut into sentences that join back to it exactly (whitespace stays with the sentence before)."""
    if language == "th":
        yield from _thai_sentences(text)
        return
    found = sentencex.segment(language, text)
    yield from _covering(text, found)


def _thai_sentences(text: str) -> Iterator[str]:
    return _covering(text, _thai_splitter()(text))


@functools.cache
def _thai_splitter():
    """PyThaiNLP's CRF sentence splitter, imported on first Thai text (its model loads in about half a second)."""
    from pythainlp.tokenize import sent_tokenize

    return functools.partial(sent_tokenize, engine="crfcut")


def _covering(text: str, pieces) -> Iterator[str]:
    """``text`` cut where each of the segmenter's ``pieces`` starts, so that the cuts cover it whole: whatever
    a segmenter dropped (spaces) stays with the piece before, and nothing of the text is lost."""
    starts, position = [0], 0
    for piece in pieces:
        at = text.find(piece, position) if piece else -1
        if at < 0:  # a segmenter that rewrote its input: keep the rest whole rather than guess
            break
        if at > 0:
            starts.append(at)
        position = at + len(piece)
    bounds = sorted(set(starts)) + [len(text)]
    for begin, end in itertools.pairwise(bounds):
        yield text[begin:end]


@dataclass(frozen=True)
class SegmentedUnits:
    """Several units (the texts of a request, the units of a file) cut into segments, for one batch."""

    units: tuple[Segmented, ...]

    @property
    def segments(self) -> list[str]:
        """Every unit's segments, unit after unit."""
        return [s for unit in self.units for s in unit.segments]

    def join(self, translations: list[str]) -> list[str]:
        """Each unit put back together from its share of ``translations`` (one per segment, in order).

        Raises: ValueError when ``translations`` does not have one entry per segment.
        """
        total = sum(len(unit.segments) for unit in self.units)
        if len(translations) != total:
            raise ValueError(f"{len(translations)} translations for {total} segments")
        pieces = iter(translations)
        return [unit.join([next(pieces) for _ in unit.segments]) for unit in self.units]


def segment_units(units: list[str], language: str, split_sentences: SplitSentences = "1") -> SegmentedUnits:
    """Each of ``units`` cut by ``segment``. Raises: ValueError for a bad ``split_sentences``."""
    return SegmentedUnits(tuple(segment(unit, language, split_sentences) for unit in units))
