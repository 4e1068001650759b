"""xplus-serve end to end: one real server (vLLM on CPU with xplus-tiny behind the front app) per session.

The server is started through the ``xplus-serve`` command exactly as a user starts it, with lid.176 for
``source=auto`` and small limits so the random-weight model's noise stays short. The last test sends it
SIGTERM with a request in flight; keep it last.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from helpers.serve import Served, run_serve, started_serve

from xplus_release.languages import ALL_LANGUAGES, PAPER_LANGUAGES, get_language
from xplus_release.prompts import strip_thinking, translation_messages

pytestmark = pytest.mark.slow

KEY = "serve-test-key"
MAX_TOKENS = 8
MAX_TEXT_CHARS = 2000
MAX_BATCH = 32
MAX_BODY = 64 * 1024
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / ".artifacts"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory, data_dir) -> Served:
    """``xplus-serve --model xplus-tiny`` as a subprocess, healthy, protected by KEY."""
    with started_serve(tmp_path_factory.mktemp("xplus-serve"), KEY, "--lid-model", str(data_dir / "lid" / "lid.176.ftz"),
                       "--max-tokens", str(MAX_TOKENS), "--max-text-chars", str(MAX_TEXT_CHARS),
                       "--max-batch", str(MAX_BATCH), "--max-body-bytes", str(MAX_BODY),
                       "--demo-concurrency", "8") as server:
        yield server


def _flores_line(flores_dir: Path, lang, line: int = 0) -> str:
    return (flores_dir / "devtest" / f"{lang.flores200}.devtest").read_text(encoding="utf-8").splitlines()[line]


def _assert_alive(served: Served) -> None:
    assert served.client.get("/health").status_code == 200
    assert served.process.poll() is None


# --- without a server: bad command lines, the demo's swap -------------------------------------------------

@pytest.mark.parametrize("args,needle", [
    (["--max-batch", "0"], "--max-batch is 0"),
    (["--vllm-args", "--api-key other"], "--vllm-args may not set --api-key"),
    (["--lid-model", "/no/such/lid.bin"], "/no/such/lid.bin does not exist"),
    (["--model", "not a model"], "unknown model 'not a model'"),
])
def test_bad_command_line_is_one_line_and_exit_2(args, needle):
    result = run_serve(*args)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and needle in errors[0] and "Traceback" not in result.stderr


def test_bad_port_is_reported_before_vllm_starts():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_serve(port=port)
    assert result.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_demo_swap():
    from xplus_release.serve.demo import AUTO, DemoBackend

    assert DemoBackend.swap("en", "zh", "cat", "mao", "") == ("zh", "en", "mao", "cat")
    assert DemoBackend.swap(AUTO, "zh", "cat", "mao", "en") == ("zh", "en", "mao", "cat")  # detected en
    assert DemoBackend.swap(AUTO, "zh", "cat", "", "") == (AUTO, "zh", "cat", "")  # nothing to swap yet


# --- vLLM's OpenAI API through the front app ---------------------------------------------------------------

def test_openai_client_chat_completion(served):
    from openai import OpenAI

    client = OpenAI(base_url=f"{served.root}/v1", api_key=KEY)
    assert [m.id for m in client.models.list().data] == ["xplus-tiny"]
    reply = client.chat.completions.create(model="xplus-tiny", max_tokens=MAX_TOKENS, temperature=0,
                                           messages=[{"role": "user", "content": "Hello"}])
    assert reply.model == "xplus-tiny"
    assert isinstance(reply.choices[0].message.content, str)
    assert 1 <= reply.usage.completion_tokens <= MAX_TOKENS


def test_openai_client_streaming(served):
    from openai import OpenAI

    client = OpenAI(base_url=f"{served.root}/v1", api_key=KEY)
    stream = client.chat.completions.create(model="xplus-tiny", max_tokens=MAX_TOKENS, temperature=0, stream=True,
                                            messages=[{"role": "user", "content": "Hello"}])
    chunks = list(stream)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2  # really streamed
    assert chunks[-1].choices[0].finish_reason in ("length", "stop")


def test_thinking_is_off_by_default(served):
    """The default prompt equals an explicit enable_thinking=False one and differs from thinking on."""
    def prompt_tokens(extra: dict) -> int:
        body = {"model": "xplus-tiny", "max_tokens": 1, "messages": [{"role": "user", "content": "Hi"}], **extra}
        return served.client.post("/v1/chat/completions", json=body).json()["usage"]["prompt_tokens"]

    default = prompt_tokens({})
    assert default == prompt_tokens({"chat_template_kwargs": {"enable_thinking": False}})
    assert default != prompt_tokens({"chat_template_kwargs": {"enable_thinking": True}})


def test_health_and_metrics_pass_through(served):
    assert served.client.get("/health").status_code == 200
    metrics = served.client.get("/metrics")
    assert metrics.status_code == 200 and "vllm:" in metrics.text


# --- the translation API -----------------------------------------------------------------------------------

def test_translate_single_is_the_paper_prompt_greedy(served):
    text, en, zh = "The cat sat on the mat.", get_language("en"), get_language("zh")
    reply = served.client.post("/v1/translate", json={"q": text, "source": "en", "target": "zh"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    # no detectedLanguage when the source was given
    assert set(body) == {"translatedText", "truncated", "truncated_segments", "off_target"}
    raw = served.client.post("/v1/chat/completions", json={
        "model": "xplus-tiny", "messages": translation_messages(text, en, zh), "temperature": 0,
        "max_tokens": MAX_TOKENS}).json()
    assert body["translatedText"] == strip_thinking(raw["choices"][0]["message"]["content"])
    assert body["truncated"] == (raw["choices"][0]["finish_reason"] == "length")


def test_translate_batch_auto_detects_flores_languages_in_order(served, flores_dir):
    non_english = [lang for lang in PAPER_LANGUAGES if lang.code != "en"]
    texts = [_flores_line(flores_dir, lang, 5) for lang in non_english]
    reply = served.client.post("/v1/translate", json={"q": texts, "source": "auto", "target": "en"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert len(body["translatedText"]) == len(texts) and all(isinstance(t, str) for t in body["translatedText"])
    assert [d["language"] for d in body["detectedLanguage"]] == [lang.code for lang in non_english]
    assert all(0 < d["confidence"] <= 100 for d in body["detectedLanguage"])


def test_translate_auto_single_english(served, flores_dir):
    text = _flores_line(flores_dir, get_language("en"), 5)
    body = served.client.post("/v1/translate", json={"q": text, "target": "de"}).json()  # source defaults to auto
    assert body["detectedLanguage"]["language"] == "en"
    assert isinstance(body["translatedText"], str)


def test_translate_streaming_single_text(served):
    payload = {"q": "Good morning.", "source": "en", "target": "fr", "stream": True}
    with served.client.stream("POST", "/v1/translate", json=payload) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in reply.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    deltas = [json.loads(e)["delta"] for e in events[:-2]]
    final = json.loads(events[-2])
    assert len(deltas) >= 2
    assert final["translatedText"] == strip_thinking("".join(deltas))
    plain = served.client.post("/v1/translate", json={**payload, "stream": False}).json()
    assert plain["translatedText"] == final["translatedText"]


def test_languages_route(served):
    languages = served.client.get("/v1/languages").json()
    codes = [lang["code"] for lang in languages]
    assert codes[:17] == [lang.code for lang in PAPER_LANGUAGES]
    english = languages[0]
    assert english["name"] == "English" and english["trained"] is True and "en" not in english["targets"]


BAD_TRANSLATIONS = [
    ({"q": "Hi", "source": "en", "target": "xx"}, 400, "supported: en, zh"),
    ({"q": "Hi", "source": "klingon", "target": "zh"}, 400, "supported: en, zh"),
    ({"q": "Hi", "source": "en", "target": "en"}, 400, "both en"),
    ({"q": "x" * (MAX_TEXT_CHARS + 1), "source": "en", "target": "zh"}, 413, f"limit is {MAX_TEXT_CHARS}"),
    ({"q": ["Hi"] * (MAX_BATCH + 1), "source": "en", "target": "zh"}, 413, f"limit is {MAX_BATCH}"),
    ({"q": [], "source": "en", "target": "zh"}, 422, "empty list"),
    ({"q": "   ", "source": "en", "target": "zh"}, 422, "empty"),
    ({"q": ["a", "b"], "source": "en", "target": "zh", "stream": True}, 422, "single text"),
    ({"source": "en", "target": "zh"}, 422, "q"),
    ({"q": "Hi", "source": "en"}, 422, "target"),
    ({"q": 5, "source": "en", "target": "zh"}, 422, "q"),
    ({"q": "Hi", "source": "en", "target": "zh", "max_tokens": 0}, 422, "max_tokens"),
    ({"q": "Hi", "source": "en", "target": "zh", "format": "xml"}, 422, "format"),
    ({"q": "Hi", "source": "en", "target": "zh", "colour": "red"}, 422, "colour"),
]


@pytest.mark.parametrize("payload,status,needle", BAD_TRANSLATIONS, ids=[f"{s}-{n[:14]}" for _, s, n in BAD_TRANSLATIONS])
def test_translate_bad_input_is_a_json_error_and_the_server_survives(served, payload, status, needle):
    reply = served.client.post("/v1/translate", json=payload)
    assert reply.status_code == status, reply.text
    assert needle in reply.json()["error"]
    _assert_alive(served)


BAD_TEXT = [
    ("/v1/translate", b'{"q": "a\\ud800b", "source": "en", "target": "zh"}', "q contains a lone surrogate (U+D800)"),
    ("/v1/translate", b'{"q": ["fine", "a\\u0000b"], "source": "en", "target": "zh"}', "q[1] contains a NUL"),
    ("/v1/chat/completions", b'{"model": "xplus-tiny", "messages": [{"role": "user", "content": "\\udc00"}]}',
     "messages[0].content contains a lone surrogate (U+DC00)"),
    ("/v1/translate", b'{"q": "caf\xe9", "source": "en", "target": "zh"}', "not valid UTF-8 (byte 10)"),
    ("/v1/chat/completions", b"[" * 50_000, "nested deeper than 64 levels"),
    ("/v1/translate", b'{"q": ' + b'{"a": ' * 80 + b'1' + b'}' * 81, "nested deeper than 64 levels"),
    ("/v1/translate", b'{"q": "Hi", ', "not valid JSON"),
]


@pytest.mark.parametrize("path,body,needle", BAD_TEXT, ids=[n[:24] for _, _, n in BAD_TEXT])
def test_bad_text_is_422_with_the_error_shape_and_the_server_survives(served, path, body, needle):
    reply = served.client.post(path, content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 422, reply.text
    assert list(reply.json()) == ["error"] and needle in reply.json()["error"], reply.text
    _assert_alive(served)


def test_validation_errors_have_the_one_error_shape(served):
    reply = served.client.post("/v1/translate", json={"q": "Hi", "target": "zh", "colour": "red"})
    assert reply.status_code == 422 and list(reply.json()) == ["error"] and "colour" in reply.json()["error"]


def test_auto_batch_with_an_unserved_language_translates_the_rest_and_flags_it(served, flores_dir):
    """Finnish is not served: its text gets the best served guess, flagged; the batch still answers 200."""
    served_texts = [_flores_line(flores_dir, get_language(code), 7) for code in ("de", "fr", "sw")]
    texts = served_texts[:2] + ["Hyvää huomenta, kuinka voit tänään? Toivottavasti hyvin."] + served_texts[2:]
    reply = served.client.post("/v1/translate", json={"q": texts, "source": "auto", "target": "en"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    detected = body["detectedLanguage"]
    assert [d["language"] for i, d in enumerate(detected) if i != 2] == ["de", "fr", "sw"]
    assert [d.get("uncertain", False) for d in detected] == [False, False, True, False]
    assert detected[2]["language"] in {lang.code for lang in ALL_LANGUAGES}  # a served guess, not "fi"
    assert len(body["translatedText"]) == 4 and all(isinstance(t, str) for t in body["translatedText"])
    en_text = _flores_line(flores_dir, get_language("en"), 7)  # already in the target: returned as it is
    reply = served.client.post("/v1/translate", json={"q": [en_text, served_texts[0]], "target": "en"}).json()
    assert reply["translatedText"][0] == en_text and reply["detectedLanguage"][0]["language"] == "en"


@pytest.mark.parametrize("path", ["/v1/translate", "/v1/chat/completions", "/demo/gradio_api/queue/join"])
def test_body_over_the_limit_is_413_on_any_route(served, path):
    reply = served.client.post(path, content=b"x" * (MAX_BODY + 1), headers={"content-type": "application/json"})
    assert reply.status_code == 413 and "body over" in reply.json()["error"]

    def chunked():  # no content-length: the gate counts as the body arrives
        for _ in range(MAX_BODY // 4096 + 2):
            yield b"x" * 4096
    reply = served.client.post(path, content=chunked(), headers={"content-type": "application/json"})
    assert reply.status_code == 413
    _assert_alive(served)


def test_prompt_longer_than_the_model_is_a_4xx_not_a_crash(served):
    reply = served.client.post("/v1/translate", json={"q": "word " * 399, "source": "en", "target": "zh",
                                                      "max_tokens": 1})
    assert reply.status_code in (200, 400), reply.text  # 2048-token context: 400 only if it overflows
    reply = served.client.post("/v1/chat/completions", json={
        "model": "xplus-tiny", "max_tokens": 10_000, "messages": [{"role": "user", "content": "Hi"}]})
    assert reply.status_code == 400 and "error" in reply.json()
    _assert_alive(served)


# --- security and operations -------------------------------------------------------------------------------

ROUTES = [("POST", "/v1/translate"), ("GET", "/v1/languages"), ("POST", "/v1/chat/completions"),
          ("POST", "/v1/completions"), ("GET", "/v1/models"), ("GET", "/health"), ("GET", "/metrics"),
          ("GET", "/version"), ("POST", "/tokenize"), ("GET", "/"), ("GET", "/demo/"), ("GET", "/demo/config"),
          ("GET", "/demo/gradio_api/info"), ("POST", "/demo/gradio_api/queue/join"), ("OPTIONS", "/v1/models")]


@pytest.mark.parametrize("method,path", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_every_route_needs_the_key(served, method, path):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}):
        reply = httpx.request(method, served.root + path, headers=headers, json={"q": "Hi", "target": "zh"})
        assert reply.status_code == 401, (headers, reply.text)
        assert "API key" in reply.json()["error"]
    _assert_alive(served)


def test_demo_page_login_sets_a_cookie(served):
    browser = httpx.Client(base_url=served.root, follow_redirects=False)
    form = browser.get("/demo/", headers={"accept": "text/html"})
    assert form.status_code == 401 and 'name="api_key"' in form.text
    assert browser.get("/demo/?api_key=wrong", headers={"accept": "text/html"}).status_code == 401
    login = browser.get(f"/demo/?api_key={KEY}")
    assert login.status_code == 303 and login.headers["location"] == "/demo/"
    assert KEY not in login.headers["set-cookie"]  # the cookie carries an HMAC, not the key
    page = browser.get("/demo/")
    assert page.status_code == 200 and "gradio" in page.text.lower()
    assert browser.get("/v1/models").status_code == 200  # the same cookie works for the page's calls


def test_one_access_log_line_per_request(served):
    path = f"/no-such-route-{uuid.uuid4().hex}"
    assert served.client.get(path).status_code == 404  # vLLM's own 404, passed through
    assert httpx.get(served.root + path + "x").status_code == 401
    time.sleep(0.2)
    lines = [line for line in served.log_text().splitlines() if path in line]  # every logger, not only access
    assert len(lines) == 2, lines
    assert f'"GET {path}" 404' in lines[0] and f'"GET {path}x" 401' in lines[1]


# --- the demo ----------------------------------------------------------------------------------------------

def test_gradio_client_drives_the_demo(served):
    from gradio_client import Client

    client = Client(f"{served.root}/demo/", headers=AUTH, verbose=False)
    text = "The cat sat on the mat."
    translation, note = client.predict(text, "en", "zh", api_name="/translate")
    api = served.client.post("/v1/translate", json={"q": text, "source": "en", "target": "zh"}).json()
    assert translation == api["translatedText"]  # same prompt, greedy, same max tokens
    assert ("Cut short" in note) == api["truncated"] and ("Off target" in note) == api["off_target"]
    _, note = client.predict(text, "auto", "zh", api_name="/translate")
    assert "English" in note


def test_demo_document_tab_translates_a_file_for_download(served, tmp_path):
    from gradio_client import Client, handle_file

    source = tmp_path / "notes.md"
    source.write_text("# Title\n\nFirst sentence. Second one.\n\n```\ncode stays\n```\n", encoding="utf-8")
    client = Client(f"{served.root}/demo/", headers=AUTH, verbose=False)
    path, note = client.predict(handle_file(str(source)), "en", "de", api_name="/translate_file")
    assert Path(path).name == "notes.de.md" and "3 sentence(s) translated" in note
    out = Path(path).read_text(encoding="utf-8")
    assert out.startswith("# ") and "```\ncode stays\n```\n" in out
    with pytest.raises(Exception, match=r"\.docx"):  # refused, naming the supported extensions
        bad = tmp_path / "tool.exe"
        bad.write_bytes(b"MZ")
        client.predict(handle_file(str(bad)), "en", "de", api_name="/translate_file")


def test_gradio_client_without_the_key_is_refused(served):
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    with pytest.raises(AuthenticationError):
        Client(f"{served.root}/demo/", verbose=False)


def _chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    from helpers.browser import chromium

    return chromium(*args, timeout=timeout)


def test_headless_chromium_renders_the_demo(served):
    from PIL import Image

    url = f"{served.root}/demo/?api_key={KEY}"
    dom = _chromium("--dump-dom", url)
    assert "Qwen3-XPlus translation" in dom.stdout and "Detect language" in dom.stdout, dom.stderr[-2000:]
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "serve-demo.png"
    shot.unlink(missing_ok=True)
    _chromium(f"--screenshot={shot}", url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 900)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # a rendered page, not a blank one


# --- load and shutdown -------------------------------------------------------------------------------------

def test_load_64_concurrent_clients_zero_errors(served, flores_dir):
    clients, per_client = 64, 3
    sentences = [_flores_line(flores_dir, get_language("en"), i) for i in range(10)]

    async def one_client(index: int, http: httpx.AsyncClient) -> list[int]:
        codes = []
        for n in range(per_client):
            if (index + n) % 2:
                reply = await http.post("/v1/translate", json={"q": sentences[(index + n) % 10], "target": "de"})
            else:
                reply = await http.post("/v1/chat/completions", json={
                    "model": "xplus-tiny", "max_tokens": MAX_TOKENS,
                    "messages": [{"role": "user", "content": sentences[n]}]})
            codes.append(reply.status_code)
        return codes

    async def run() -> list[int]:
        limits = httpx.Limits(max_connections=clients)
        async with httpx.AsyncClient(base_url=served.root, headers=AUTH, timeout=300, limits=limits) as http:
            results = await asyncio.gather(*(one_client(i, http) for i in range(clients)))
        return [code for codes in results for code in codes]

    codes = asyncio.run(run())
    assert len(codes) == clients * per_client and set(codes) == {200}
    _assert_alive(served)


def test_sigterm_finishes_the_request_in_flight(served):
    """Keep last: the server is gone afterwards."""
    body = {"model": "xplus-tiny", "max_tokens": 200, "ignore_eos": True, "stream": True,
            "messages": [{"role": "user", "content": "Tell me a story."}]}
    pieces = 0
    with served.client.stream("POST", "/v1/chat/completions", json=body) as reply:
        lines = reply.iter_lines()
        for line in lines:
            if line.startswith("data: {"):
                break  # generation has started
        served.process.send_signal(signal.SIGTERM)
        finish = None
        for line in lines:
            if line.startswith("data: {"):
                pieces += 1
                choice = json.loads(line[6:])["choices"][0]
                finish = choice.get("finish_reason") or finish
    assert finish == "length" and pieces > 50
    assert served.process.wait(120) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(served.root + "/health", headers=AUTH)
    assert "stopping vLLM" in served.log_text()
