"""The languages Qwen3-XPlus was trained and evaluated on, and every code they go by.

A language is known by its short code (``sw``), its English name as prompts use it (``Swahili``), its
FLORES-200 code (``swh_Latn``, also the NLLB LID label), its FLORES-101 code (``swh``) and its fastText
lid.176 label (``sw``). ``get_language`` accepts any of them, case-insensitively, with or without a
``__label__`` prefix.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from xplus_release.errors import ConfigError, UnknownLanguageError


@dataclass(frozen=True)
class Language:
    code: str  # short code used across the package (ISO 639-1 where one exists)
    name: str  # English name, as written into prompts
    flores200: str  # FLORES-200 code, also the label of the NLLB fastText LID model
    flores101: str  # FLORES-101 file code
    lid176: str  # label of fastText's lid.176 model
    trained: bool  # one of the 17 languages of the paper's training data

    @property
    def all_codes(self) -> tuple[str, ...]:
        return (self.code, self.name, self.flores200, self.flores101, self.lid176)


def _lang(code, name, flores200, flores101, lid176, trained=True) -> Language:
    return Language(code, name, flores200, flores101, lid176, trained)


# Order is the paper's (§4.1); it is also the row/column order of every direction grid.
PAPER_LANGUAGES: tuple[Language, ...] = (
    _lang("en", "English", "eng_Latn", "eng", "en"),
    _lang("zh", "Simplified Chinese", "zho_Hans", "zho_simpl", "zh"),
    _lang("hu", "Hungarian", "hun_Latn", "hun", "hu"),
    _lang("es", "Spanish", "spa_Latn", "spa", "es"),
    _lang("fr", "French", "fra_Latn", "fra", "fr"),
    _lang("de", "German", "deu_Latn", "deu", "de"),
    _lang("ru", "Russian", "rus_Cyrl", "rus", "ru"),
    _lang("ja", "Japanese", "jpn_Jpan", "jpn", "ja"),
    _lang("th", "Thai", "tha_Thai", "tha", "th"),
    _lang("sw", "Swahili", "swh_Latn", "swh", "sw"),
    _lang("bn", "Bengali", "ben_Beng", "ben", "bn"),
    _lang("te", "Telugu", "tel_Telu", "tel", "te"),
    _lang("ar", "Arabic", "arb_Arab", "ara", "ar"),
    _lang("ko", "Korean", "kor_Hang", "kor", "ko"),
    _lang("vi", "Vietnamese", "vie_Latn", "vie", "vi"),
    _lang("cs", "Czech", "ces_Latn", "ces", "cs"),
    _lang("sr", "Cyrillic Serbian", "srp_Cyrl", "srp", "sr"),
)

# Languages outside the training set, for generalisation tests like the paper's §5.3.
EXTRA_LANGUAGES: tuple[Language, ...] = (
    _lang("id", "Indonesian", "ind_Latn", "ind", "id", False),
    _lang("it", "Italian", "ita_Latn", "ita", "it", False),
    _lang("pt", "Portuguese", "por_Latn", "por", "pt", False),
    _lang("tr", "Turkish", "tur_Latn", "tur", "tr", False),
    _lang("hi", "Hindi", "hin_Deva", "hin", "hi", False),
    _lang("uk", "Ukrainian", "ukr_Cyrl", "ukr", "uk", False),
    _lang("pl", "Polish", "pol_Latn", "pol", "pl", False),
    _lang("nl", "Dutch", "nld_Latn", "nld", "nl", False),
    _lang("fa", "Persian", "pes_Arab", "fas", "fa", False),
    _lang("ta", "Tamil", "tam_Taml", "tam", "ta", False),
    _lang("ur", "Urdu", "urd_Arab", "urd", "ur", False),
    _lang("el", "Greek", "ell_Grek", "ell", "el", False),
)

ALL_LANGUAGES: tuple[Language, ...] = PAPER_LANGUAGES + EXTRA_LANGUAGES
PAPER_CODES: tuple[str, ...] = tuple(lang.code for lang in PAPER_LANGUAGES)


def _build_index() -> dict[str, Language]:
    index: dict[str, Language] = {}
    for lang in ALL_LANGUAGES:
        for key in lang.all_codes:
            index.setdefault(key.lower(), lang)
    return index


_INDEX = _build_index()


def get_language(code: str) -> Language:
    """Look a language up by any of its codes or its English name.

    Raises:
        UnknownLanguageError: the code is unknown; the message lists close matches.
    """
    key = code.strip().removeprefix("__label__").lower()
    if key in _INDEX:
        return _INDEX[key]
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
    codes = [lang.code for lang in langs]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise ConfigError(f"language listed twice: {', '.join(duplicates)}; list each once")
    return langs
