"""Step 2, clean: remove invalid characters, normalise Unicode and punctuation spacing, drop empty pairs.

Removed everywhere: control characters (C0/C1 except tab and newlines, which become spaces), unpaired
surrogates (from ``\\ud800`` JSON escapes or surrogate-escaped bytes), U+FFFD replacement characters,
the byte-order mark and invisible separators (U+200B zero-width space, U+2060 word joiner, U+00AD soft
hyphen, U+180E). U+200C/U+200D (ZWNJ/ZWJ) change how Arabic and Indic scripts render and join emoji, so
they are kept for ar bn te hi ta ur fa and removed elsewhere.

Normalisation: NFC by default (never changes how text reads). NFKC is an option; it folds full-width
punctuation, which Chinese and Japanese use on purpose, so it is never applied to zh/ja even when asked.
Punctuation spacing: runs of ASCII whitespace become one space (thin, no-break and ideographic spaces
are typography, e.g. French ``6\u2009000``, and are kept); for space-delimited languages a space before
``, . ) ] }`` and after ``( [ {`` is removed, and before ``; : ! ?`` too except in French, whose
typography puts a (narrow) space there. zh/ja/th spacing is left alone (Thai spaces are meaningful).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from xplus_release.config import Config
from xplus_release.training.pipeline.records import PairStats
from xplus_release.training.pipeline.tokens import CHARACTER_LANGUAGES

JOINER_LANGUAGES = frozenset({"ar", "bn", "te", "hi", "ta", "ur", "fa"})
_INVISIBLE = "\ufeff\u200b\u2060\u00ad\u180e"
_JOINERS = "\u200c\u200d"
_CONTROL = "".join(chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)] if chr(c) not in "\t\n\r")
_INVALID = re.compile(f"[{re.escape(_CONTROL + _INVISIBLE)}\ufffd\ud800-\udfff]")
_INVALID_WITH_JOINERS = re.compile(f"[{re.escape(_CONTROL + _INVISIBLE + _JOINERS)}\ufffd\ud800-\udfff]")
_SPACES = re.compile(r"[ \t\n\r\f\v]+")  # thin/no-break/ideographic spaces are typography: kept
_SPACE_BEFORE_CLOSING = re.compile(r" ([,.)\]}])")
_SPACE_BEFORE_HIGH = re.compile(r" ([;:!?])")
_SPACE_AFTER_OPENING = re.compile(r"([(\[{]) ")


class CleanConfig(Config):
    section = "clean"
    yaml_keys = True

    normalization: Literal["NFC", "NFKC", "none"] = "NFC"
    fix_punctuation_spacing: bool = True


def clean_text(text: str, lang: str, config: CleanConfig) -> tuple[str, int]:
    """The cleaned text and how many invalid characters were removed."""
    pattern = _INVALID if lang in JOINER_LANGUAGES else _INVALID_WITH_JOINERS
    text, removed = pattern.subn("", text)
    form = config.normalization
    if form == "NFKC" and lang in ("zh", "ja"):
        form = "NFC"
    if form != "none":
        text = unicodedata.normalize(form, text)
    text = _SPACES.sub(" ", text).strip()
    if config.fix_punctuation_spacing and lang not in CHARACTER_LANGUAGES:
        text = _SPACE_BEFORE_CLOSING.sub(r"\1", text)
        text = _SPACE_AFTER_OPENING.sub(r"\1", text)
        if lang != "fr":
            text = _SPACE_BEFORE_HIGH.sub(r"\1", text)
    return text, removed


class CleanFilter(PairStats, BaseFilter):
    """Cleans both sides in place; drops ``empty_source`` / ``empty_target``. Counts
    ``invalid_characters_removed`` and ``pairs_modified``."""

    name = "clean"

    def __init__(self, configs, exclusion_writer=None):
        super().__init__(exclusion_writer, batch_size=1024)
        self.configs = configs  # pair -> CleanConfig

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        meta = doc.metadata
        config = self.configs(f"{meta['src']}-{meta['trg']}")
        src, removed_src = clean_text(doc.text, meta["src"], config)
        tgt, removed_tgt = clean_text(meta["target"], meta["trg"], config)
        if removed_src + removed_tgt:
            self.stat_update("invalid_characters_removed", value=removed_src + removed_tgt)
        if src != doc.text or tgt != meta["target"]:
            self.stat_update("pairs_modified")
        doc.text, meta["target"] = src, tgt
        if not src:
            return False, "empty_source"
        return (False, "empty_target") if not tgt else True
