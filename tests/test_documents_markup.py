"""Text and HTML through ``xplus_release.documents.markup``: markup and placeholders come back exactly.

The "models" here are deterministic stand-ins for ``translate_units``, not xplus-tiny: the guarantees are about
*any* model output (one that keeps the masks and moves words, one that loses or mangles every mask, one that
writes garbage with invented and misnested masks), and a stand-in states exactly which case a test covers. The
real model path is tested end to end by the server tests of ``/v1/translate`` and ``/v1/translate_file``.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from bs4 import BeautifulSoup, Comment, Doctype

from xplus_release.documents.errors import DocumentError, NestingTooDeepError
from xplus_release.documents.markup import prepare, prepare_runs
from xplus_release.documents.masking import MASK_RE

MASK_OR_WORD = re.compile(r"(<[^<>]*>)|([^\W\d_]+)")


def reverse_words(units: list[str]) -> list[str]:
    """Keeps every mask where it is and writes each word backwards: a model that keeps the placeholders."""
    return [MASK_OR_WORD.sub(lambda m: m.group(1) or m.group(2)[::-1], unit) for unit in units]


def drop_masks(units: list[str]) -> list[str]:
    """Loses every mask: a model that translates the words and ignores the tags."""
    return [MASK_RE.sub("", unit).upper() for unit in units]


def garbage(units: list[str]) -> list[str]:
    """Noise with invented, duplicated, misnested and half-remembered masks and placeholders."""
    noise = "</g1> zzz <g7><x2/><x2/> <g1> {{other}} %s <X 3 /> </g2> http://bad.example qq <g2>"
    return [noise for _ in units]


def keep_and_move(units: list[str]) -> list[str]:
    """Keeps the masks but moves the unit's first pair to the end: a model reordering words with their tags."""
    out = []
    for unit in units:
        pair = re.search(r"<g(\d+)>.*?</g\1>", unit)
        out.append(unit if pair is None else unit.replace(pair.group(), "") + " " + pair.group())
    return out


STAND_INS = [reverse_words, drop_masks, garbage, keep_and_move]

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Release notes</title>
<style>p { color: red; } /* Do not translate */</style>
<script>var greeting = "Hello world";</script></head>
<body class='main'>
<!-- navigation: keep me -->
<h1 id=top>Welcome to <em>our</em> release</h1>
<p>Hello <b>big <i>bright</i> world</b>, meet {{user}} &amp; friends&nbsp;today &#169; 2026.</p>
<p title="More details here">Read <a href="https://example.com/docs?a=1&amp;b=2" title="The docs">the docs</a>
or run <code>pip install xplus</code> now.<br>Then <span class="notranslate">Qwen3-XPlus</span> starts.</p>
<pre>  keep    this
   exactly </pre>
<div translate="no">Brand <b>Name</b> stays</div>
<img src="cat.png" alt="A sleeping cat">
<ul><li>first item<li>second <strong>item</strong></ul>
<table><tr><td>cell one</td><td>   </td></tr></table>
</body></html>
"""

UNTRANSLATED = [
    "<style>p { color: red; } /* Do not translate */</style>",
    '<script>var greeting = "Hello world";</script>',
    "<!-- navigation: keep me -->",
    "<code>pip install xplus</code>",
    '<span class="notranslate">Qwen3-XPlus</span>',
    "<pre>  keep    this\n   exactly </pre>",
    '<div translate="no">Brand <b>Name</b> stays</div>',
    "<!DOCTYPE html>",
]


def tag_sequence(markup: str) -> list[tuple]:
    """Every element, comment and doctype in document order, with its attributes minus the translated ones."""
    soup = BeautifulSoup(markup, "html.parser")
    sequence = []
    for node in soup.descendants:
        if isinstance(node, Doctype | Comment):
            sequence.append((type(node).__name__, str(node)))
        elif getattr(node, "name", None):
            attrs = {k: v for k, v in node.attrs.items() if k not in ("alt", "title")}
            sequence.append((node.name, tuple(sorted((k, str(v)) for k, v in attrs.items()))))
    return sequence


def test_identity_translation_gives_the_page_back_byte_for_byte():
    prepared = prepare(PAGE, "html", True)
    assert prepared.finish(prepared.units) == PAGE


@pytest.mark.parametrize("model", STAND_INS, ids=lambda f: f.__name__)
def test_html_markup_survives_any_model_output(model):
    prepared = prepare(PAGE, "html", True)
    out = prepared.finish(model(prepared.units))
    assert tag_sequence(out) == tag_sequence(PAGE) or model is keep_and_move
    assert Counter(tag_sequence(out)) == Counter(tag_sequence(PAGE))  # moved, never added or lost
    for block in UNTRANSLATED:
        assert out.count(block) == PAGE.count(block) == 1, block
    for entity in ("&amp;", "&nbsp;", "&#169;", "&amp;b=2"):
        assert out.count(entity) == PAGE.count(entity), entity
    assert out.count("{{user}}") == 1


def test_only_text_and_alt_title_are_sent_and_never_the_untranslated_elements():
    units = prepare(PAGE, "html", True).units
    joined = "\n".join(units)
    for secret in ("color: red", "Hello world", "pip install", "Qwen3-XPlus", "keep    this", "Brand",
                   "navigation", "DOCTYPE", "cat.png", "example.com/docs"):
        assert secret not in joined
    for visible in ("Release notes", "A sleeping cat", "The docs", "More details here", "cell one"):
        assert visible in units
    assert all(unit.strip() for unit in units)  # the whitespace-only cell is not a unit


def test_inline_elements_stay_around_their_words_when_the_model_keeps_them():
    prepared = prepare("<p>Hello <b>big <i>bright</i> world</b>, friends.</p>", "html", True)
    assert prepared.units == ["Hello <g1>big <g2>bright</g2> world</g1>, friends."]
    out = prepared.finish(["Hallo <g1>große <g2>helle</g2> Welt</g1>, Freunde."])
    assert out == "<p>Hallo <b>große <i>helle</i> Welt</b>, Freunde.</p>"
    moved = prepared.finish(["Freunde, <g1>große <g2>helle</g2> Welt</g1> hallo."])
    assert moved == "<p>Freunde, <b>große <i>helle</i> Welt</b> hallo.</p>"


def test_lost_or_misnested_inline_elements_are_reattached_at_the_segment_edges():
    prepared = prepare("<p>Hello <b>big <i>bright</i> world</b>, friends.</p>", "html", True)
    assert prepared.finish(["Hallo große helle Welt"]) == "<p><b><i>Hallo große helle Welt</i></b></p>"
    # </g1> before </g2>: misnested, so the pair the model broke goes back around its parent's content
    crossed = prepared.finish(["Hallo <g1>große <g2>helle</g1> Welt</g2>"])
    assert crossed == "<p><b><i>Hallo große helle Welt</i></b></p>"
    # the inner pair kept, its parent lost: the parent goes around everything, the child stays put
    inner = prepared.finish(["Hallo <g2>helle</g2> Welt"])
    assert tag_sequence(inner) == tag_sequence("<p><b><i></i></b></p>")


def test_model_text_is_escaped_so_it_cannot_inject_markup():
    prepared = prepare("<p>Say hi</p>", "html", True)
    out = prepared.finish(["<script>alert(1)</script> & bye &copy;"])
    assert out == "<p>&lt;script>alert(1)&lt;/script> & bye &amp;copy;</p>"
    assert BeautifulSoup(out, "html.parser").p.get_text() == "<script>alert(1)</script> & bye &copy;"


def test_alt_and_title_are_translated_with_their_quoting_kept():
    page = "<img src=a.png alt=Cat><a title='Go home' href=x>Home</a><abbr title=\"Tooltip\">TT</abbr>"
    prepared = prepare(page, "html", True)
    out = prepared.finish(reverse_words(prepared.units))
    assert out == "<img src=a.png alt=taC><a title='oG emoh' href=x>emoH</a><abbr title=\"pitlooT\">TT</abbr>"
    spaced = prepared.finish(["Two words" if u == "Cat" else u for u in prepared.units])
    assert 'alt="Two words"' in spaced  # an unquoted value quoted only when its translation needs it


PLACEHOLDERS = [
    "{{user_name}}", "{{ count }}", "{name}", "{0}", "{}", "%s", "%d", "%(name)s", "%1$s", "%.2f", "${var}",
    "https://example.com/path?q=1", "www.example.org", "support@example.com", "<g5>", "<x9/>",
]


@pytest.mark.parametrize("model", STAND_INS, ids=lambda f: f.__name__)
def test_every_placeholder_form_comes_back_byte_identical_and_once(model):
    text = "Dear " + ", then ".join(f"see {p} here" for p in PLACEHOLDERS) + "."
    prepared = prepare(text, "text", True)
    out = prepared.finish(model(prepared.units))
    for placeholder in PLACEHOLDERS:
        assert out.count(placeholder) == text.count(placeholder), (placeholder, out)
    for placeholder in PLACEHOLDERS[:-2]:
        assert placeholder not in prepared.units[0]


def test_icu_plural_syntax_is_masked_and_its_bodies_translated():
    text = "You have {count, plural, =0 {no messages} one {# message} other {# messages from {sender}}}."
    prepared = prepare(text, "text", True)
    (unit,) = prepared.units
    assert "plural" not in unit and "#" not in unit and "{sender}" not in unit
    assert "messages" in unit
    out = prepared.finish(reverse_words(prepared.units))
    assert out == "uoY evah {count, plural, =0 {on segassem} one {# egassem} other {# segassem morf {sender}}}."
    lost = prepared.finish(["Sie haben Nachrichten."])
    for piece in ("{count, plural, =0 {", "} one {", "} other {", "{sender}", "#"):
        assert lost.count(piece) == text.count(piece), piece


def test_placeholders_are_sent_as_written_when_preservation_is_off():
    prepared = prepare("Hi {{user}}, mail a@b.org", "text", False)
    assert prepared.units == ["Hi {{user}}, mail a@b.org"]
    assert prepared.finish(["Salut {{utilisateur}}"]) == "Salut {{utilisateur}}"


def test_text_keeps_its_edges_and_whitespace_only_text_has_no_unit():
    prepared = prepare("\n  Hello world.  \n", "text", True)
    assert prepared.units == ["Hello world."]
    assert prepared.finish(["  Hallo Welt.\n"]) == "\n  Hallo Welt.  \n"
    blank = prepare(" \n\t ", "text", True)
    assert blank.units == [] and blank.finish([]) == " \n\t "
    with pytest.raises(ValueError, match="2 translations for 1 units"):
        prepared.finish(["a", "b"])


def test_html_nested_100000_deep_is_a_clean_422_not_a_recursion_error():
    with pytest.raises(NestingTooDeepError) as caught:
        prepare("<div>" * 100_000 + "deep" + "</div>" * 100_000, "html", True)
    assert isinstance(caught.value, DocumentError) and caught.value.status == 422
    assert "512" in str(caught.value)
    # 1,000 list items that never close their <li> are siblings, not nesting
    prepare("<ul>" + "<li>item" * 1000 + "</ul>", "html", True)


def test_malformed_html_keeps_every_byte():
    page = "<p>Open <b>bold <i>crossed</b> text</i> and <span>unclosed</p><p>Stray </em> end & more"
    prepared = prepare(page, "html", True)
    assert prepared.finish(prepared.units) == page
    out = prepared.finish(garbage(prepared.units))
    for tag in ("<b>", "</b>", "<i>", "</i>", "<span>", "</em>", "<p>", "</p>"):
        assert out.count(tag) == page.count(tag), tag


def test_runs_keep_their_words_and_lost_pairs_fall_back_to_the_first_run():
    runs = prepare_runs(["Hello ", "bold", " world {0}"], True)
    assert runs.units == ["<g1>Hello </g1><g2>bold</g2><g3> world <x4/></g3>"]
    assert runs.finish(["<g1>Hallo </g1><g2>fett</g2><g3> Welt <x4/></g3>"]) == ["Hallo ", "fett", " Welt {0}"]
    assert runs.finish(["Hallo fett Welt"]) == ["Hallo fett Welt{0} ", "", ""]
    single = prepare_runs(["", "Only run {x}"], True)
    assert single.units == ["Only run <x1/>"] and single.finish(["Einziger"]) == ["", "Einziger{x}"]
    spaced = prepare_runs(["Big", " ", "world"], True)  # the space run keeps the words apart, unsent
    assert spaced.units == ["<g1>Big</g1><g2>world</g2>"]
    assert spaced.finish(["<g1>Große</g1><g2>Welt</g2>"]) == ["Große", " ", "Welt"]


FRAGMENTS = [
    "<p>", "</p>", "<b>", "</b>", "<i>", "</i>", "Hello", " world ", "&amp;", "&", "<", ">", "<!-- c -->", "<!--",
    "<![CDATA[x]]>", "<br>", "<img alt='a cat' src=x>", '<a title="t t" href=y>', "</a>", "<script>", "</script>",
    "<code>", "</code>", "{{x}}", "%s", "https://a.b/c", "\n", "<div translate=no>", "</div>", "<span>", "</span>",
    "<p attr='x", "</", "<?pi?>", "<!DOCTYPE html>", "&#x41;", "&nbsp", "<ul><li>", "é", "<title>", "</title>",
    "<x1/>", "<g2>",
]


def test_random_tag_soup_round_trips_exactly_and_keeps_every_token_under_any_model():
    """Seeded random fragments, well-formed or not: identity gives the bytes back, and whatever the stand-in
    writes, every tag, comment and entity of the source is in the output as often as in the source (the only
    new references are the model's own "&" and "<" escaped)."""
    import random

    from xplus_release.documents.markup import _Tokens

    def tokens(markup: str) -> Counter:
        found = Counter()
        for kind, raw, data in _Tokens(markup).slices():
            if kind == "start":
                found[(data[0], tuple(kv for kv in data[1] if kv[0] not in ("alt", "title")))] += 1
            elif kind in ("end", "other") or (kind == "entity" and raw.endswith(";")):
                found[raw] += 1
        return found

    rng = random.Random(7)
    for _ in range(300):
        page = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 25)))
        prepared = prepare(page, "html", True)
        assert prepared.finish(prepared.units) == page
        for model in STAND_INS:
            out, source = tokens(prepared.finish(model(prepared.units))), tokens(page)
            assert not source - out, (model.__name__, page)
            assert set(out - source) <= {"&amp;", "&lt;"}, (model.__name__, page)  # the model's text, escaped


def test_a_lost_placeholder_written_out_by_the_model_counts_where_it_stands():
    prepared = prepare("Hello {name}, you have %d new messages", "text", True)
    assert prepared.units == ["Hello <x1/>, you have <x2/> new messages"]
    # the model wrote {name} itself and invented {other}: {name} is kept there, {other} removed, %d re-attached
    assert prepared.finish(["Hallo {name}, {other} neue Nachrichten"]) == "Hallo {name},  neue Nachrichten%d"
