"""The translation prompt, character for character: the paper's template (BenchMAX's ``flores`` prompt)
with BenchMAX's language names (its ``LANG_DICT``), for each of the 17 languages as source and as target.

The expected strings are written out literally, not built from the template, so a change to the template,
to a language name or to the order of the parts fails here.
"""

from __future__ import annotations

import pytest

from xplus_release.languages import get_language
from xplus_release.prompts import translation_messages

# (source, target, the exact user message), each language once as source and once as target
EXPECTED = [
    ("en", "zh", "Translate the following text from English to Simplified Chinese.\n\nEnglish source:\nHello.\n\nSimplified Chinese translation:"),
    ("zh", "hu", "Translate the following text from Simplified Chinese to Hungarian.\n\nSimplified Chinese source:\nHello.\n\nHungarian translation:"),
    ("hu", "es", "Translate the following text from Hungarian to Spanish.\n\nHungarian source:\nHello.\n\nSpanish translation:"),
    ("es", "fr", "Translate the following text from Spanish to French.\n\nSpanish source:\nHello.\n\nFrench translation:"),
    ("fr", "de", "Translate the following text from French to German.\n\nFrench source:\nHello.\n\nGerman translation:"),
    ("de", "ru", "Translate the following text from German to Russian.\n\nGerman source:\nHello.\n\nRussian translation:"),
    ("ru", "ja", "Translate the following text from Russian to Japanese.\n\nRussian source:\nHello.\n\nJapanese translation:"),
    ("ja", "th", "Translate the following text from Japanese to Thai.\n\nJapanese source:\nHello.\n\nThai translation:"),
    ("th", "sw", "Translate the following text from Thai to Swahili.\n\nThai source:\nHello.\n\nSwahili translation:"),
    ("sw", "bn", "Translate the following text from Swahili to Bengali.\n\nSwahili source:\nHello.\n\nBengali translation:"),
    ("bn", "te", "Translate the following text from Bengali to Telugu.\n\nBengali source:\nHello.\n\nTelugu translation:"),
    ("te", "ar", "Translate the following text from Telugu to Arabic.\n\nTelugu source:\nHello.\n\nArabic translation:"),
    ("ar", "ko", "Translate the following text from Arabic to Korean.\n\nArabic source:\nHello.\n\nKorean translation:"),
    ("ko", "vi", "Translate the following text from Korean to Vietnamese.\n\nKorean source:\nHello.\n\nVietnamese translation:"),
    ("vi", "cs", "Translate the following text from Vietnamese to Czech.\n\nVietnamese source:\nHello.\n\nCzech translation:"),
    ("cs", "sr", "Translate the following text from Czech to Cyrillic Serbian.\n\nCzech source:\nHello.\n\nCyrillic Serbian translation:"),
    ("sr", "en", "Translate the following text from Cyrillic Serbian to English.\n\nCyrillic Serbian source:\nHello.\n\nEnglish translation:"),
]


@pytest.mark.parametrize(("src", "tgt", "expected"), EXPECTED, ids=[f"{s}-{t}" for s, t, _ in EXPECTED])
def test_translation_prompt_is_the_papers_template_with_benchmax_names(src, tgt, expected):
    messages = translation_messages("Hello.", get_language(src), get_language(tgt))
    assert messages == [{"role": "user", "content": expected}]


def test_every_paper_language_is_covered():
    from xplus_release.languages import PAPER_CODES

    assert sorted(s for s, _, _ in EXPECTED) == sorted(PAPER_CODES) == sorted(t for _, t, _ in EXPECTED)
