"""Documents through the translation route: segmentation, byte-exact reassembly, one concurrent batch,
truncation and off-target reporting, ``/v1/detect``.

The front app is ``xplus-serve``'s own (``build_app``: gate, text check, key meter, routes) served by uvicorn
on a free loopback port; its vLLM is the session's real server on xplus-tiny, reached through a recording
proxy that keeps every request, its reply, and how many were in flight at once.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from helpers.recording_proxy import RecordingProxy

from xplus_release.documents.segmentation import segment
from xplus_release.languages import get_language
from xplus_release.prompts import strip_thinking, translation_messages

KEY = "documents-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
DOCUMENT = ("  The first paragraph starts here. It has a second sentence!  \n"
            "\n"
            "1. A numbered item. With two sentences.\n"
            "   - an indented bullet\t\n"
            "\n\n"
            "Der letzte Absatz. Er endet hier.\n")


# --- segmentation, without a server ------------------------------------------------------------------------

@pytest.mark.parametrize("language,text,sentences", [
    ("zh", "今天天气很好。我们去公园散步吧！你觉得怎么样？", ["今天天气很好。", "我们去公园散步吧！", "你觉得怎么样？"]),
    ("ja", "今日は晴れです。公園に行きましょう！どう思いますか？", ["今日は晴れです。", "公園に行きましょう！", "どう思いますか？"]),
    ("th", "วันนี้อากาศดีมาก เราไปเดินเล่นที่สวนกันเถอะ คุณคิดว่าอย่างไร",
     ["วันนี้อากาศดีมาก", "เราไปเดินเล่นที่สวนกันเถอะ", "คุณคิดว่าอย่างไร"]),
    ("ar", "الطقس جميل اليوم. لنذهب إلى الحديقة! ما رأيك؟", ["الطقس جميل اليوم.", "لنذهب إلى الحديقة!", "ما رأيك؟"]),
    ("hi", "आज मौसम अच्छा है। चलो पार्क चलते हैं! तुम्हें क्या लगता है?",
     ["आज मौसम अच्छा है।", "चलो पार्क चलते हैं!", "तुम्हें क्या लगता है?"]),
    ("de", "Dr. Müller kam am 3. Mai an. Er blieb z. B. zwei Tage. Danach fuhr er heim.",
     ["Dr. Müller kam am 3. Mai an.", "Er blieb z. B. zwei Tage.", "Danach fuhr er heim."]),
])
def test_known_sentences_per_language(language, text, sentences):
    """sentencex's rules (abbreviations like ``Dr.``/``z. B.`` and ordinals kept), full-width 。！？ in zh/ja,
    the danda in hi, Arabic's ؟, and PyThaiNLP's CRF for Thai, which has no sentence-final punctuation."""
    assert segment(text, language).segments == sentences


def test_separators_are_kept_byte_for_byte_in_every_mode():
    for mode in ("1", "nonewlines", "0"):
        doc = segment(DOCUMENT, "en", mode)
        assert "".join(doc.parts) == DOCUMENT
        assert all(s.strip() == s and s for s in doc.segments)  # never empty, never padded
        marked = doc.join([f"<{i}>" for i in range(len(doc.segments))])
        assert re.sub(r"<\d+>", "", marked) == "".join(doc.parts[0::2])
    lines = segment(DOCUMENT, "en", "1")
    assert lines.parts[0] == "  " and lines.parts[-1] == "\n"
    assert "  \n\n1. " in lines.parts and "\n   - " in lines.parts and "\t\n\n\n" in lines.parts
    assert lines.segments[:2] == ["The first paragraph starts here.", "It has a second sentence!"]
    assert segment(DOCUMENT, "en", "0").segments == [DOCUMENT.strip()]


def test_nonewlines_joins_lines_but_not_paragraphs():
    text = "A sentence that runs\nacross a line. Next one.\n\nNew paragraph."
    assert segment(text, "en", "nonewlines").segments == [
        "A sentence that runs\nacross a line.", "Next one.", "New paragraph."]
    assert segment(text, "en", "1").segments == ["A sentence that runs", "across a line.", "Next one.",
                                                 "New paragraph."]


def test_whitespace_is_never_a_segment_and_a_bad_mode_is_refused():
    assert segment(" \n\t\n ", "en").segments == []
    with pytest.raises(ValueError, match='use one of "1", "0", "nonewlines"'):
        segment("Hi.", "en", "2")


# --- through the server ------------------------------------------------------------------------------------

@contextmanager
def _uvicorn(app) -> Iterator[str]:
    import uvicorn

    from xplus_release.engines.server import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def front(vllm_server, data_dir, tmp_path_factory):
    """(client, proxy): the front app with per-key metering and lid.176, vLLM behind a recording proxy."""
    from xplus_release.serve.app import build_app
    from xplus_release.serve.backend import Backend
    from xplus_release.serve.keys import KeyEntry, KeyRing, KeysFile, hash_key, save_keys
    from xplus_release.serve.lid import LanguageDetector
    from xplus_release.serve.limits import ServeLimits
    from xplus_release.serve.metering import Metering
    from xplus_release.serve.usage import UsageStore

    folder = tmp_path_factory.mktemp("documents")
    save_keys(folder / "keys.yaml", KeysFile.build({"keys": [KeyEntry(name="docs", sha256=hash_key(KEY))]}))
    ring = KeyRing(folder / "keys.yaml")
    metering = Metering(UsageStore(folder / "usage.sqlite"), ring)
    with RecordingProxy(vllm_server.base_url, vllm_server.api_key) as proxy:
        backend = Backend(proxy.base_url.removesuffix("/v1"), "unused", "xplus-tiny")
        app = build_app(backend, ServeLimits(max_tokens=48), ring, LanguageDetector(data_dir / "lid" / "lid.176.ftz"),
                        demo=False, metering=metering)
        with _uvicorn(app) as root, httpx.Client(base_url=root, headers=AUTH, timeout=300) as client:
            yield client, proxy


def _contents(proxy: RecordingProxy) -> dict[str, tuple[str, str]]:
    """For each recorded chat request: its sentence (the prompt's last line) → (reply content, finish reason)."""
    out = {}
    for body, reply in proxy.replies:
        choice = json.loads(reply)["choices"][0]
        out[body["messages"][-1]["content"]] = (choice["message"]["content"] or "", choice["finish_reason"])
    return out


def test_a_document_is_one_concurrent_batch_put_back_byte_for_byte(front):
    client, proxy = front
    proxy.take()
    proxy.hold_until_together(9)
    reply = client.post("/v1/translate", json={"q": [DOCUMENT, "Second text. Two sentences."], "source": "en",
                                               "target": "de", "max_tokens": 24})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    docs = [segment(DOCUMENT, "en"), segment("Second text. Two sentences.", "en")]
    sentences = [s for d in docs for s in d.segments]
    assert len(proxy.requests) == len(sentences) == 9
    assert proxy.max_in_flight == len(sentences)  # every sentence of every text reached vLLM at once
    en, de = get_language("en"), get_language("de")
    replies = _contents(proxy)
    for doc, translated, cut in zip(docs, body["translatedText"], body["truncated_segments"]):
        prompts = [translation_messages(s, en, de)[-1]["content"] for s in doc.segments]
        assert translated == doc.join([strip_thinking(replies[p][0]) for p in prompts])
        assert cut == [{"segment": n, "text": s} for n, (s, p) in enumerate(zip(doc.segments, prompts))
                       if replies[p][1] == "length"]
    assert body["truncated"] == [bool(c) for c in body["truncated_segments"]]


def test_truncation_is_reported_under_a_one_token_cap_and_the_default_cap_follows_length(front):
    client, proxy = front
    proxy.take()
    body = client.post("/v1/translate", json={"q": "One. Two words here.", "source": "en", "target": "fr",
                                              "max_tokens": 1}).json()
    assert body["truncated"] is True
    assert body["truncated_segments"] == [{"segment": 0, "text": "One."}, {"segment": 1, "text": "Two words here."}]
    proxy.take()
    long_sentence = "This sentence is long enough to reach the server's ceiling of tokens."
    client.post("/v1/translate", json={"q": f"Hi. {long_sentence}", "source": "en", "target": "fr"})
    caps = sorted(body["max_tokens"] for _, body in proxy.take())
    assert caps == [16 + 4 * len("Hi."), 48]  # from each sentence's length, within --max-tokens 48


def test_a_large_cap_reports_only_what_vllm_cut(front):
    client, proxy = front
    proxy.take()
    body = client.post("/v1/translate", json={"q": "Good morning. See you.", "source": "en", "target": "de",
                                              "max_tokens": 48}).json()
    reasons = [reason for _, reason in _contents(proxy).values()]
    assert body["truncated"] == ("length" in reasons)
    assert len(body["truncated_segments"]) == reasons.count("length")


def test_stream_sends_separators_in_order_and_the_flags_last(front):
    client, _ = front
    payload = {"q": "First line. Second.\n\n  Third line.", "source": "en", "target": "fr", "stream": True,
               "max_tokens": 2}
    with client.stream("POST", "/v1/translate", json=payload) as reply:
        assert reply.status_code == 200
        events = [json.loads(line[6:]) for line in reply.iter_lines()
                  if line.startswith("data: ") and line != "data: [DONE]"]
    *deltas, final = events
    assert "".join(d["delta"] for d in deltas).count("\n\n  ") == 1
    plain = client.post("/v1/translate", json={**payload, "stream": False}).json()
    assert final == plain and final["truncated"] is True and len(final["truncated_segments"]) == 3


def test_off_target_is_flagged_by_the_lid_model_and_counted_per_key(front, data_dir):
    from xplus_release.languages import ALL_LANGUAGES
    from xplus_release.serve.lid import LanguageDetector

    client, _ = front
    lid = LanguageDetector(data_dir / "lid" / "lid.176.ftz")

    def counted() -> int:
        found = re.search(r'xplus_key_off_target_total\{key="docs"\} (\d+)', client.get("/metrics").text)
        return int(found.group(1)) if found else 0

    before = counted()
    texts = ["The weather is fine today.", "Where is the station?", "Bonjour tout le monde."]
    body = client.post("/v1/translate", json={"q": texts, "source": "auto", "target": "fr"}).json()
    french = get_language("fr")
    def off(source: str, out: str) -> bool:  # a copy, or not French by the same LID model
        copy = " ".join(out.split()) == " ".join(source.split())
        return copy or (bool(out.strip()) and lid.detect(out, ALL_LANGUAGES).language != french)

    expected = [detected["language"] != "fr" and off(source, out)
                for source, out, detected in zip(texts, body["translatedText"], body["detectedLanguage"])]
    assert body["off_target"] == expected
    assert body["translatedText"][2] == texts[2] and body["off_target"][2] is False  # already French: as sent
    assert counted() - before == sum(expected)


def test_detect_answers_libretranslate_shapes(front, flores_dir):
    client, _ = front
    german = (flores_dir / "devtest" / "deu_Latn.devtest").read_text(encoding="utf-8").splitlines()[0]
    one = client.post("/v1/detect", json={"q": german})
    assert one.status_code == 200
    [found] = one.json()
    assert found["language"] == "de" and 50 < found["confidence"] <= 100
    many = client.post("/v1/detect", json={"q": [german, "今天的天气很好，我们去公园散步吧。"]}).json()
    assert [[d["language"] for d in item] for item in many] == [["de"], ["zh"]]


@pytest.mark.parametrize("path,payload,status,needle", [
    ("/v1/translate", {"q": " \n\t ", "source": "en", "target": "de"}, 422, "only whitespace"),
    ("/v1/translate", {"q": ["fine", "   "], "source": "en", "target": "de"}, 422, "text 1 is empty"),
    ("/v1/translate", {"q": "Hi.", "source": "en", "target": "de", "split_sentences": "2"}, 422, "split_sentences"),
    ("/v1/translate", {"q": "Hi.", "source": "en", "target": "de", "split_sentences": 1}, 422, "split_sentences"),
    ("/v1/detect", {"q": []}, 422, "empty list"),
    ("/v1/detect", {"q": "  "}, 422, "only whitespace"),
    ("/v1/detect", {"text": "Hi"}, 422, "q"),
])
def test_bad_document_input_is_a_json_4xx(front, path, payload, status, needle):
    client, _ = front
    reply = client.post(path, json=payload)
    assert reply.status_code == status and needle in reply.json()["error"], reply.text
    assert client.post("/v1/detect", json={"q": "Good morning, everyone."}).status_code == 200  # still serving


def test_detect_without_a_lid_model_is_503_naming_the_fix():
    from fastapi.testclient import TestClient

    from xplus_release.serve.app import build_app
    from xplus_release.serve.backend import Backend
    from xplus_release.serve.limits import ServeLimits

    app = build_app(Backend("http://127.0.0.1:9", "x", "xplus-tiny"), ServeLimits(), None, None, "no LID model",
                    demo=False)
    with TestClient(app) as client:
        reply = client.post("/v1/detect", json={"q": "Hallo"})
    assert reply.status_code == 503 and "pass an explicit source" in reply.json()["error"]


# --- HTML, placeholders and files (the documents library's masking, end to end through xplus-tiny) -----------

PAGE = ('<!DOCTYPE html><html><body><!-- note --><p class="lead">Hello <b>bold</b> world. '
        '<a href="https://example.com/a" title="A link title">Read more</a>!</p>'
        '<script>var untouched = "Do not send.";</script><pre>  kept   as is </pre>'
        '<p translate="no">Never sent either.</p><img src="x.png" alt="A picture"></body></html>')


def _tags(markup: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every element in order, with its attributes (alt and title, which are translated, by name only)."""
    from bs4 import BeautifulSoup

    return [(tag.name, [(k, "" if k in ("alt", "title") else str(v)) for k, v in tag.attrs.items()])
            for tag in BeautifulSoup(markup, "html.parser").find_all(True)]


def test_html_comes_back_with_its_markup_and_never_sends_code(front):
    client, proxy = front
    proxy.take()
    body = client.post("/v1/translate", json={"q": PAGE, "source": "en", "target": "de", "format": "html"}).json()
    out = body["translatedText"]
    assert _tags(out) == _tags(PAGE)
    for kept in ('<script>var untouched = "Do not send.";</script>', "<pre>  kept   as is </pre>",
                 '<p translate="no">Never sent either.</p>', "<!DOCTYPE html>", "<!-- note -->"):
        assert kept in out
    prompts = " ".join(b["messages"][-1]["content"] for _, b in proxy.take())
    assert "Hello" in prompts and "A link title" in prompts and "A picture" in prompts
    assert "Do not send" not in prompts and "kept   as is" not in prompts and "Never sent" not in prompts


PLACEHOLDERS = ["{{user}}", "{count}", "{0}", "%s", "%d", "%(name)s", "${var}", "https://example.com/p?q=1",
                "team@example.org"]


@pytest.mark.parametrize("preserve", [True, False])
def test_placeholders_survive_xplus_tiny_unless_turned_off(front, preserve):
    client, proxy = front
    text = ("Hello {{user}}, you have {count} new messages. Item {0} costs %s or %d. Dear %(name)s, see ${var}. "
            "Visit https://example.com/p?q=1 or write to team@example.org.")
    proxy.take()
    body = client.post("/v1/translate", json={"q": text, "source": "en", "target": "fr",
                                              "preserve_placeholders": preserve}).json()
    prompts = " ".join(b["messages"][-1]["content"] for _, b in proxy.take())
    if preserve:
        assert all(body["translatedText"].count(p) == text.count(p) for p in PLACEHOLDERS), body["translatedText"]
        assert "{{user}}" not in prompts and "<x1/>" in prompts  # masked on the way to the model
    else:
        assert "{{user}}" in prompts and "<x1/>" not in prompts


def _usage_characters(client) -> int:
    return client.get("/v1/usage").json()["total"]["characters"]


def test_translate_file_txt_and_html_keep_name_type_and_layout(front):
    client, _ = front
    text = "First paragraph. It has two sentences.\n\n  - A list item\n"
    before = _usage_characters(client)
    reply = client.post("/v1/translate_file", data={"source": "en", "target": "de"},
                        files={"file": ("notes.txt", text.encode(), "text/plain")})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    assert reply.headers["content-disposition"] == "attachment; filename*=UTF-8''notes.txt"
    out = reply.content.decode()
    assert out.count("\n") == text.count("\n") and "\n\n  - " in out and out.endswith("\n")
    sent = segment(text, "en").segments
    assert reply.headers["x-segments"] == str(len(sent))
    assert _usage_characters(client) - before == sum(len(s) for s in sent)  # charged what the model was sent
    cut = client.post("/v1/translate_file", data={"source": "en", "target": "de", "max_tokens": "1"},
                      files={"file": ("notes.txt", text.encode(), "text/plain")})
    assert cut.headers["x-truncated-segments"] == cut.headers["x-segments"] == str(len(sent))
    page = client.post("/v1/translate_file", data={"source": "auto", "target": "fr"},
                       files={"file": ("page.html", PAGE.encode(), "text/html")})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert _tags(page.content.decode()) == _tags(PAGE)


def test_translate_file_docx_keeps_runs_and_formatting(front, tmp_path):
    import io

    import docx

    client, _ = front
    source = docx.Document()
    paragraph = source.add_paragraph("Plain start. ")
    paragraph.add_run("Bold words").bold = True
    paragraph.add_run(" and ")
    paragraph.add_run("italic ones").italic = True
    table = source.add_table(rows=1, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Cell one.", "Cell two."
    buffer = io.BytesIO()
    source.save(buffer)
    reply = client.post("/v1/translate_file", data={"source": "en", "target": "de"},
                        files={"file": ("report.docx", buffer.getvalue(), "application/octet-stream")})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == ("application/vnd.openxmlformats-officedocument."
                                             "wordprocessingml.document")
    back = docx.Document(io.BytesIO(reply.content))
    runs = [(r.bold, r.italic) for r in back.paragraphs[0].runs]
    assert runs == [(r.bold, r.italic) for r in source.paragraphs[0].runs]
    assert len(back.tables) == 1 and len(back.tables[0].rows[0].cells) == 2


def _zip_bomb() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * (200 << 20))  # 200 MiB of zeros, ~200 KB on the wire
    return buffer.getvalue()


@pytest.mark.parametrize("name,data,status,needle", [
    ("notes.exe", b"MZ", 415, ".txt, .html"),
    ("empty.txt", b"", 422, "is empty"),
    ("broken.docx", b"not a zip at all", 422, "not a .docx"),
    ("bomb.docx", None, 413, "inflate"),
    ("binary.txt", b"\x00\x01\x02binary", 422, "binary"),
    ("deep.html", b"<div>" * 100_000, 422, "nested"),
])
def test_bad_files_are_a_json_4xx_and_the_server_keeps_serving(front, name, data, status, needle):
    client, _ = front
    data = _zip_bomb() if data is None else data
    reply = client.post("/v1/translate_file", data={"source": "en", "target": "de"},
                        files={"file": (name, data, "application/octet-stream")})
    assert reply.status_code == status and needle in reply.json()["error"], reply.text
    assert client.post("/v1/detect", json={"q": "Good morning, everyone."}).status_code == 200


def test_deeply_nested_html_text_is_a_422(front):
    client, _ = front
    reply = client.post("/v1/translate", json={"q": "<div>" * 900 + "Deep.", "source": "en", "target": "de",
                                               "format": "html"})  # within --max-text-chars, past 512 levels
    assert reply.status_code == 422 and "nested" in reply.json()["error"]
