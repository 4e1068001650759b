"""Language-specific tokenisation for the length rules and the SimHash features of the dedup step.

The rule, for every language the package knows (``xplus_release.languages``):

- **zh, ja, th** (scripts written without spaces between words): a token is one character. Thai does put
  spaces between phrases; they are ignored like every space.
- **every other language** (en hu es fr de ru sw bn te ar ko vi cs sr and the extra id it pt tr hi uk pl nl
  fa ta ur el): a token is a whitespace-separated word. Korean counts as space-delimited (eojeol).
- Before splitting, text is case-folded and every Unicode punctuation character (categories P*) is
  deleted, so "word," and "word" are one token and a pair that differs only in punctuation yields the
  same tokens. Combining marks (Indic vowel signs) are kept inside their word.

An unknown language code falls back to words. SimHash features are the tokens themselves for
space-delimited languages and overlapping character bigrams for zh, ja, th (single characters are too
common to tell sentences apart).
"""

from __future__ import annotations

import itertools
import unicodedata

CHARACTER_LANGUAGES = frozenset({"zh", "ja", "th"})

# Punctuation lives in the first two planes; scanning them once costs ~50 ms per process.
PUNCTUATION_TABLE = {cp: None for cp in range(0x20000) if unicodedata.category(chr(cp)).startswith("P")}


def tokenize(text: str, lang: str) -> list[str]:
    """Tokens of ``text`` under the rule above (``lang`` is a short code such as ``"zh"``)."""
    bare = text.casefold().translate(PUNCTUATION_TABLE)
    if lang in CHARACTER_LANGUAGES:
        return [ch for ch in bare if not ch.isspace()]
    return bare.split()


def simhash_features(tokens: list[str], lang: str) -> list[str]:
    if lang in CHARACTER_LANGUAGES and len(tokens) > 1:
        return [a + b for a, b in itertools.pairwise(tokens)]
    return tokens
