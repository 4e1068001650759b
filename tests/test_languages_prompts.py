"""Languages and prompts: lookups by every code, the paper's prompt, output clean-up."""

import random

import pytest

from xplus_release.errors import ConfigError, UnknownLanguageError
from xplus_release.languages import PAPER_CODES, PAPER_LANGUAGES, get_language, parse_language_list
from xplus_release.prompts import (
    EVAL_PROMPT,
    TRAINING_TEMPLATES,
    postprocess_translation,
    prompt_hash,
    strip_thinking,
    training_messages,
    translation_messages,
)


def test_the_papers_17_languages_in_order():
    assert PAPER_CODES == ("en", "zh", "hu", "es", "fr", "de", "ru", "ja", "th", "sw", "bn", "te", "ar", "ko",
                           "vi", "cs", "sr")


@pytest.mark.parametrize("code", ["sr", "srp_Cyrl", "srp", "__label__srp_Cyrl", "__label__sr", "Cyrillic Serbian",
                                  "SRP_CYRL"])
def test_lookup_by_any_code(code):
    assert get_language(code).code == "sr"


def test_codes_are_unambiguous():
    for lang in PAPER_LANGUAGES:
        for code in lang.all_codes:
            assert get_language(code) == lang


def test_unknown_code_suggests_close_matches():
    with pytest.raises(UnknownLanguageError) as err:
        get_language("zho_Hant")
    message = str(err.value)
    assert "zho_hans" in message and "\n" not in message


def test_language_list_parsing():
    assert [lang.code for lang in parse_language_list("en,zho_Hans, swh")] == ["en", "zh", "sw"]
    assert len(parse_language_list("all")) == 17
    with pytest.raises(ConfigError, match="listed twice"):
        parse_language_list("en,eng_Latn")
    with pytest.raises(UnknownLanguageError):
        parse_language_list("en,klingon")


def test_eval_prompt_is_the_papers():
    messages = translation_messages("Hallo Welt", get_language("de"), get_language("zh"))
    assert messages == [{"role": "user", "content": (
        "Translate the following text from German to Simplified Chinese.\n\n"
        "German source:\nHallo Welt\n\nSimplified Chinese translation:")}]
    assert EVAL_PROMPT in TRAINING_TEMPLATES


def test_training_templates_are_deterministic_for_a_seed():
    en, fr = get_language("en"), get_language("fr")
    rng_a, rng_b = random.Random(7), random.Random(7)
    first = [training_messages("a b", "c d", en, fr, rng_a) for _ in range(20)]
    again = [training_messages("a b", "c d", en, fr, rng_b) for _ in range(20)]
    assert first == again
    assert len({m[0]["content"] for m in first}) > 3  # diverse, not one phrasing
    assert all("{" not in m[0]["content"] and "a b" in m[0]["content"] for m in first)
    assert all(m[1] == {"role": "assistant", "content": "c d"} for m in first)
    assert all("{src}" in t and "{tgt_lang}" in t for t in TRAINING_TEMPLATES)


def test_thinking_is_stripped_closed_or_not():
    assert strip_thinking("<think>\nhmm\n</think>\n\nBonjour") == "Bonjour"
    assert strip_thinking("Bonjour <think>unfinished reasoning") == "Bonjour"
    assert strip_thinking("<think></think>A<think>x</think>B") == "AB"


def test_postprocess_keeps_first_line_for_sentence_level_sets():
    raw = "<think>\n\n</think>\n\n  Bonjour le monde.\nNote: this is informal."
    assert postprocess_translation(raw) == "Bonjour le monde."
    assert postprocess_translation(raw, sentence_level=False) == "Bonjour le monde.\nNote: this is informal."
    assert postprocess_translation("<think>only thoughts</think>") == ""


def test_prompt_hash_depends_on_messages_and_template_kwargs():
    m = [{"role": "user", "content": "x"}]
    assert prompt_hash(m) == prompt_hash([{"content": "x", "role": "user"}])
    assert prompt_hash(m) != prompt_hash([{"role": "user", "content": "y"}])
    assert prompt_hash(m, {"enable_thinking": False}) != prompt_hash(m, {"enable_thinking": True})
