"""The parts of xplus-serve's fault handling that need no server: body checks, detection, restart budget."""

from __future__ import annotations

import pytest

from xplus_release.engines.supervisor import MAX_BACKOFF_S, RestartBudget
from xplus_release.languages import ALL_LANGUAGES
from xplus_release.serve.validation import MAX_DEPTH, TextError, check_json_body


@pytest.mark.parametrize("body,needle", [
    (b'{"q": "a\\ud800b"}', "q contains a lone surrogate (U+D800) at position 1"),
    (b'{"q": ["ok", "x\\u0000"]}', "q[1] contains a NUL character"),
    (b'{"messages": [{"content": "fine"}, {"content": "\\udfff"}]}', "messages[1].content contains a lone surrogate"),
    (b'{"a\\ud800": 1}', "a key of body contains a lone surrogate"),
    (b'{"q": "\xc3\x28"}', "not valid UTF-8 (byte 7)"),
    (b"[" * 10_000, "nested deeper than"),
    (b"[" * (MAX_DEPTH + 2) + b"]" * (MAX_DEPTH + 2), f"nested deeper than {MAX_DEPTH} levels"),
    (b'{"q": "Hi", ', "not valid JSON"),
])
def test_bad_bodies_name_the_field(body, needle):
    with pytest.raises(TextError) as err:
        check_json_body(body)
    assert needle in str(err.value)
    str(err.value).encode("utf-8")  # the message itself is always encodable


def test_good_bodies_pass():
    check_json_body('{"q": ["Grüße 👋", "日本語", "a\\nb"], "nested": [[[{"x": "\\ud83d\\ude00"}]]]}'.encode())
    check_json_body(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)


def test_restart_budget_counts_within_the_window_and_backs_off():
    now = [0.0]
    budget = RestartBudget(max_restarts=3, window_s=600, clock=lambda: now[0])
    delays = []
    for _ in range(3):
        assert budget.spend()
        delays.append(budget.backoff_s())
        now[0] += 10
    assert delays == [1.0, 2.0, 4.0]
    assert not budget.spend()  # a 4th exit within 10 minutes: give up
    now[0] = 605  # the first restart has left the window
    assert budget.spend() and budget.used == 3
    assert RestartBudget(max_restarts=0).spend() is False
    many = RestartBudget(max_restarts=50, clock=lambda: 0.0)
    for _ in range(20):
        many.spend()
    assert many.backoff_s() == MAX_BACKOFF_S


def test_auto_detect_chooses_among_served_languages_and_flags_doubt(data_dir):
    """The issue's batch with lid.176: Swahili that the model calls Esperanto still gets a served guess."""
    from xplus_release.serve.lid import LanguageDetector

    detector = LanguageDetector(data_dir / "lid" / "lid.176.ftz")
    german = detector.detect("Guten Morgen, wie geht es dir heute?", ALL_LANGUAGES)
    assert german.language.code == "de" and not german.uncertain and german.confidence > 0.5
    swahili = detector.detect("Habari ya asubuhi, rafiki yangu.", ALL_LANGUAGES)
    assert swahili.top_label == "eo" and swahili.language in ALL_LANGUAGES and swahili.uncertain
    assert swahili.language.code == "sw"  # the best of the served languages
    finnish = detector.detect("Hyvää huomenta, kuinka voit tänään?", ALL_LANGUAGES)
    assert finnish.top_label == "fi" and finnish.uncertain and finnish.language in ALL_LANGUAGES


@pytest.mark.parametrize("path,status", [
    ("/v1/translate", 503), ("/health", 503), ("/v1/chat/completions", 503),
    ("/v1/languages", 200), ("/runs/", 200), ("/runs/gradio_api/info", 200), ("/demo", 200), ("/runsx", 503),
])
def test_engine_guard_answers_503_only_where_the_model_is_needed(path, status):
    """While vLLM restarts, the explorer, the language list and the demo page still answer."""
    import asyncio

    from xplus_release.serve.availability import EngineGuard

    class Restarting:
        ready, retry_after_s = False, 7

    sent = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def send(message):
        sent.append(message)

    guard = EngineGuard(app, Restarting(), demo_path="/demo")
    asyncio.run(guard({"type": "http", "path": path}, None, send))
    assert sent[0]["status"] == status
    if status == 503:
        assert (b"retry-after", b"7") in sent[0]["headers"]


def test_translation_route_and_demo_answer_503_at_once_without_vllm():
    """No retries on the way to vLLM: when it is gone (being restarted), the route and the demo say so at once,
    and the demo refuses what the route refuses with the route's own message."""
    import asyncio

    import gradio as gr
    from fastapi.testclient import TestClient

    from xplus_release.engines.server import free_port
    from xplus_release.serve.app import build_app
    from xplus_release.serve.backend import Backend
    from xplus_release.serve.demo import DemoBackend
    from xplus_release.serve.limits import ServeLimits
    from xplus_release.serve.translation import Translator

    backend = Backend(f"http://127.0.0.1:{free_port()}", "internal", "xplus-tiny")  # nothing listens there
    with TestClient(build_app(backend, ServeLimits(), None, None, demo=False)) as client:
        for payload in ({"q": "Hi", "source": "en", "target": "de"}, {"q": ["Hi", "Ho"], "source": "en", "target": "de"},
                        {"q": "Hi", "source": "en", "target": "de", "stream": True}):
            reply = client.post("/v1/translate", json=payload)
            assert reply.status_code == 503 and reply.headers["retry-after"] == "1", reply.text
            assert reply.json() == {"error": "the model server did not answer; retry in 1 s"}
        same = client.post("/v1/translate", json={"q": "Hi", "source": "en", "target": "en"}).json()["error"]

    async def demo_error(*args: str) -> str:
        demo = DemoBackend(Translator(backend, ServeLimits(max_text_chars=10), None, "no LID model"))
        with pytest.raises(gr.Error) as err:
            async for _ in demo.translate(*args):
                pass
        await demo.translator.aclose()
        return err.value.message

    assert asyncio.run(demo_error("Hi", "en", "de")) == "the model server did not answer; retry in 1 s"
    assert asyncio.run(demo_error("Hi", "en", "en")) == same
    assert "the limit is 10" in asyncio.run(demo_error("x" * 11, "en", "de"))
    assert "(source=auto, /v1/detect) is unavailable on this server: no LID model" in asyncio.run(demo_error("Hi", "auto", "de"))
