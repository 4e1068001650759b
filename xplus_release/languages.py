"""The languages Qwen3-XPlus was trained and evaluated on, and every code they go by.

A language is known by its short code (``sw``), its English name as prompts use it (``Swahili``), its
FLORES-200 code (``swh_Latn``, also the NLLB LID label) and its FLORES-101 code (``swh``); fastText's
lid.176 labels are the short codes. ``get_language`` accepts any of them, case-insensitively, with or
without a ``__label__`` prefix.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass

from xplus_release.errors import ConfigError, UnknownLanguageError


@dataclass(frozen=True)
class Language:
    code: str  # short code used across the package (ISO 639-1 where one exists)
    name: str  # English name, as written into prompts
    flores200: str  # FLORES-200 code, also the label of the NLLB fastText LID model
    flores101: str  # FLORES-101 file code
    trained: bool = True  # one of the 17 languages of the paper's training data

    @property
    def all_codes(self) -> tuple[str, ...]:
        return (self.code, self.name, self.flores200, self.flores101)


# Order is the paper's (§4.1); it is also the row/column order of every direction grid.
PAPER_LANGUAGES: tuple[Language, ...] = (
    Language("en", "English", "eng_Latn", "eng"),
    Language("zh", "Simplified Chinese", "zho_Hans", "zho_simpl"),
    Language("hu", "Hungarian", "hun_Latn", "hun"),
    Language("es", "Spanish", "spa_Latn", "spa"),
    Language("fr", "French", "fra_Latn", "fra"),
    Language("de", "German", "deu_Latn", "deu"),
    Language("ru", "Russian", "rus_Cyrl", "rus"),
    Language("ja", "Japanese", "jpn_Jpan", "jpn"),
    Language("th", "Thai", "tha_Thai", "tha"),
    Language("sw", "Swahili", "swh_Latn", "swh"),
    Language("bn", "Bengali", "ben_Beng", "ben"),
    Language("te", "Telugu", "tel_Telu", "tel"),
    Language("ar", "Arabic", "arb_Arab", "ara"),
    Language("ko", "Korean", "kor_Hang", "kor"),
    Language("vi", "Vietnamese", "vie_Latn", "vie"),
    Language("cs", "Czech", "ces_Latn", "ces"),
    Language("sr", "Cyrillic Serbian", "srp_Cyrl", "srp"),
)

# Languages outside the training set, for generalisation tests like the paper's §5.3.
EXTRA_LANGUAGES: tuple[Language, ...] = (
    Language("id", "Indonesian", "ind_Latn", "ind", False),
    Language("it", "Italian", "ita_Latn", "ita", False),
    Language("pt", "Portuguese", "por_Latn", "por", False),
    Language("tr", "Turkish", "tur_Latn", "tur", False),
    Language("hi", "Hindi", "hin_Deva", "hin", False),
    Language("uk", "Ukrainian", "ukr_Cyrl", "ukr", False),
    Language("pl", "Polish", "pol_Latn", "pol", False),
    Language("nl", "Dutch", "nld_Latn", "nld", False),
    Language("fa", "Persian", "pes_Arab", "fas", False),
    Language("ta", "Tamil", "tam_Taml", "tam", False),
    Language("ur", "Urdu", "urd_Arab", "urd", False),
    Language("el", "Greek", "ell_Grek", "ell", False),
)

ALL_LANGUAGES: tuple[Language, ...] = PAPER_LANGUAGES + EXTRA_LANGUAGES
PAPER_CODES: tuple[str, ...] = tuple(lang.code for lang in PAPER_LANGUAGES)
_INDEX = {key.lower(): lang for lang in ALL_LANGUAGES for key in lang.all_codes}


def find_language(code: str) -> Language | None:
    """The language of any of its codes, its English name or a fastText label (``__label__eng_Latn``,
    ``__label__en``); None for one the package does not know (most of a LID model's labels)."""
    return _INDEX.get(code.strip().removeprefix("__label__").lower())


def get_language(code: str) -> Language:
    """Look a language up by any of its codes or its English name.

    Raises:
        UnknownLanguageError: the code is unknown; the message lists close matches.
    """
    language = find_language(code)
    if language is not None:
        return language
    key = code.strip().removeprefix("__label__").lower()
    close = difflib.get_close_matches(key, _INDEX.keys(), n=4, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownLanguageError(
        f"unknown language {code!r}.{hint} Known codes: {', '.join(lang.code for lang in ALL_LANGUAGES)}"
    )


def parse_language_list(spec: str | list[str] | None) -> list[Language]:
    """Parse ``"en,zh,sw"`` (or a list, or ``None``/``"all"`` = the paper's 17) into languages, in order.

    Raises:
        UnknownLanguageError: any item is unknown.
        ConfigError: a language is listed twice.
    """
    if spec is None or spec == "all" or spec == ["all"]:
        return list(PAPER_LANGUAGES)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    langs = [get_language(item) for item in items if item.strip()]
    duplicates = sorted(code for code, n in Counter(lang.code for lang in langs).items() if n > 1)
    if duplicates:
        raise ConfigError(f"language listed twice: {', '.join(duplicates)}; list each once")
    return langs
