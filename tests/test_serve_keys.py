"""xplus-serve with an --api-keys file: per-key limits, usage, revocation, all against one real server.

Keys are made with the real ``xplus-serve keys add`` command; the server is ``xplus-serve --model
xplus-tiny --api-keys FILE``. Three keys: ``big`` (generous limits), ``small`` (6 requests a minute) and
``solo`` (one request at a time). The tests run in order on one server; the last one restarts it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from helpers.serve import run_serve, serve_command

from xplus_release.engines.server import free_port

pytestmark = pytest.mark.slow

MAX_TOKENS = 8
# One stream that holds the 'solo' key's only slot: 8 choices of 1500 tokens with top logprobs are ~18 MB of
# events, several times what the kernel's socket buffers hold (4 MiB), so a client that stops reading keeps it
# running (the context is 2048).
LONG_CHOICES, LONG_TOKENS = 8, 1500
START_TIMEOUT = 600
LIMITS = {"big": ["--rpm", "1000", "--chars-per-minute", "100000", "--concurrency", "8"],
          "small": ["--rpm", "6", "--chars-per-minute", "2000", "--concurrency", "4"],
          "solo": ["--rpm", "1000", "--chars-per-minute", "100000", "--concurrency", "1"]}


def _serve_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``xplus-serve keys …``, or a command line that stops before serving."""
    result = subprocess.run(serve_command(*args), capture_output=True, text=True, timeout=120, check=False)
    assert not check or result.returncode == 0, result.stderr
    return result


class Served:
    def __init__(self, keys_file: Path, keys: dict[str, str], workdir: Path, data_dir: Path):
        self.keys_file, self.keys, self.workdir, self.data_dir = keys_file, keys, workdir, data_dir
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log = workdir / "serve.log"

    def start(self) -> None:
        cmd = serve_command("--model", "xplus-tiny", "--port", str(self.port), "--api-keys", str(self.keys_file),
                            "--lid-model", str(self.data_dir / "lid" / "lid.176.ftz"), "--max-tokens", str(MAX_TOKENS),
                            "--startup-timeout", str(START_TIMEOUT), "--vllm-log", str(self.workdir / "vllm.log"))
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_text()[-3000:]
            try:
                if self.get("big", "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        pytest.fail(f"xplus-serve not healthy:\n{self.log_text()[-3000:]}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}

    def get(self, name: str, path: str, **kwargs) -> httpx.Response:
        return httpx.get(self.root + path, headers=self.auth(name), timeout=kwargs.pop("timeout", 120), **kwargs)

    def post(self, name: str, path: str, body: dict) -> httpx.Response:
        return httpx.post(self.root + path, headers=self.auth(name), json=body, timeout=120)

    def translate(self, name: str, text: str) -> httpx.Response:
        return self.post(name, "/v1/translate", {"q": text, "source": "en", "target": "de"})

    def usage(self, name: str) -> dict:
        reply = self.get(name, "/v1/usage")
        assert reply.status_code == 200, reply.text
        return reply.json()

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def served(tmp_path_factory, data_dir) -> Served:
    workdir = tmp_path_factory.mktemp("xplus-serve-keys")
    keys_file = workdir / "keys.yaml"
    keys = {name: _serve_cli("keys", "add", name, "--file", str(keys_file), *limits).stdout.strip()
            for name, limits in LIMITS.items()}
    server = Served(keys_file, keys, workdir, data_dir)
    server.start()
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


# --- without a server --------------------------------------------------------------------------------------

BAD_FILES = [
    ("keys:\n  - {name: a, sha256: '" + "0" * 64 + "', colour: red}\n", "unknown keys file option(s): keys[0].colour"),
    ("keys:\n  - {name: a\n", "is not valid YAML"),
    ("keys:\n  - {name: a, sha256: '" + "0" * 64 + "'}\n  - {name: a, sha256: '" + "1" * 64 + "'}\n",
     "duplicate key name 'a'"),
    ("keys:\n  - {name: a, sha256: '" + "0" * 64 + "', enabled: false}\n", "has no enabled key"),
]


@pytest.mark.parametrize("text,needle", BAD_FILES, ids=["unknown-field", "bad-yaml", "duplicate-name", "none-enabled"])
def test_bad_keys_file_is_one_line_and_exit_2_before_vllm(tmp_path, text, needle):
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    result = run_serve("--api-keys", str(path))
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 2 and len(errors) == 1 and needle in errors[0] and str(path) in errors[0], result.stderr
    assert "Traceback" not in result.stderr and "starting vLLM" not in result.stderr


def test_api_key_and_api_keys_together_is_one_line(tmp_path):
    result = run_serve("--api-key", "k", "--api-keys", str(tmp_path / "k.yaml"))
    assert result.returncode == 2 and result.stderr.startswith("error: both --api-key") \
        and len(result.stderr.splitlines()) == 1


def test_keys_add_refuses_an_existing_name_and_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "keys.yaml"
    first = _serve_cli("keys", "add", "alice", "--file", str(path)).stdout.strip()
    before = path.read_bytes()
    again = _serve_cli("keys", "add", "alice", "--file", str(path), check=False)
    assert again.returncode == 2 and "a key named 'alice' already exists" in again.stderr and not again.stdout
    assert path.read_bytes() == before and first not in before.decode()
    listing = _serve_cli("keys", "list", "--file", str(path)).stdout
    assert "alice" in listing and first not in listing


# --- one server, in order ----------------------------------------------------------------------------------

def test_the_keys_file_never_holds_a_key(served):
    text = served.keys_file.read_text()
    assert len(set(served.keys.values())) == 3
    for name, key in served.keys.items():
        assert key not in text and key.startswith("xpk-") and f"name: {name}" in text


def test_each_key_sees_only_its_own_usage(served):
    chat = {"model": "xplus-tiny", "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": "Hello there"}]}
    completion = served.post("big", "/v1/chat/completions", chat)
    assert completion.status_code == 200
    assert served.translate("big", "Good morning.").status_code == 200
    assert served.translate("small", "Good evening, friends.").status_code == 200
    bad = served.post("big", "/v1/translate", {"q": "Hi", "source": "en", "target": "xx"})
    assert bad.status_code == 400
    big, small, solo = served.usage("big"), served.usage("small"), served.usage("solo")
    assert big["key"] == "big" and small["key"] == "small"
    assert big["total"]["requests"] == 3 and small["total"]["requests"] == 1 and solo["total"]["requests"] == 0
    assert big["total"]["characters"] == len("Hello there") + len("Good morning.") + len("Hi")
    assert small["total"]["characters"] == len("Good evening, friends.")
    assert big["total"]["errors"] == {"400": 1} and small["total"]["errors"] == {}
    # the chat's own count plus at least one token for the translation
    assert big["total"]["generated_tokens"] > completion.json()["usage"]["completion_tokens"] >= 1
    assert 1 <= small["total"]["generated_tokens"] <= MAX_TOKENS
    # the spent part of the minute's allowance, draining back at 2000/60 characters a second
    assert small["character_limit"] == 2000 and 0 <= small["character_count"] <= len("Good evening, friends.")
    assert small["limits"] == {"requests_per_minute": 6, "characters_per_minute": 2000, "concurrency": 4}


def test_metrics_keep_vllms_families_and_add_per_key_counters(served):
    text = served.get("small", "/metrics").text
    assert "vllm:" in text
    assert 'xplus_key_requests_total{key="big"} 3' in text
    assert 'xplus_key_errors_total{key="big",status="400"} 1' in text
    assert text.count("# TYPE xplus_key_requests_total counter") == 1


def test_a_client_that_asks_for_the_usage_event_still_gets_it(served):
    body = {"model": "xplus-tiny", "max_tokens": MAX_TOKENS, "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "Hi"}]}
    before = served.usage("big")["total"]["generated_tokens"]
    with httpx.stream("POST", served.root + "/v1/chat/completions", json=body, headers=served.auth("big"),
                      timeout=120) as reply:
        events = [line[6:] for line in reply.iter_lines() if line.startswith("data: ")]
    usage = json.loads(events[-2])["usage"]
    assert events[-1] == "[DONE]" and usage["completion_tokens"] >= 1
    assert served.usage("big")["total"]["generated_tokens"] == before + usage["completion_tokens"]


def test_the_limited_key_gets_429_with_retry_after_and_recovers(served):
    replies = [served.translate("small", f"Sentence number {i}.") for i in range(6)]
    refused = [r for r in replies if r.status_code == 429]
    assert refused and all(r.status_code == 200 for r in replies[:5])  # one was spent in the usage test
    retry_after = int(refused[0].headers["retry-after"])
    assert 1 <= retry_after <= 10 and list(refused[0].json()) == ["error"]
    assert "retry in" in refused[0].json()["error"]
    assert served.translate("big", "Meanwhile the other key works.").status_code == 200
    time.sleep(retry_after)
    assert served.translate("small", "After the wait.").status_code == 200
    assert served.usage("small")["total"]["errors"]["429"] == len(refused)


def test_concurrency_cap_and_characters_per_minute(served):
    body = {"model": "xplus-tiny", "max_tokens": LONG_TOKENS, "n": LONG_CHOICES, "ignore_eos": True, "stream": True,
            "logprobs": True, "top_logprobs": 20, "messages": [{"role": "user", "content": "Tell me a story."}]}
    started, answered, finished = threading.Event(), threading.Event(), {}

    def long_stream() -> None:
        with httpx.stream("POST", served.root + "/v1/chat/completions", json=body, headers=served.auth("solo"),
                          timeout=300) as reply:
            lines = reply.iter_lines()
            finished["lines"] = [next(lines)]
            started.set()
            # Read no further until the second request is answered: a request holds its key's slot until its
            # body is sent, and an unread stream this large cannot be, so the first request is still running
            # however fast the model generates (timing alone lost that race on a fast machine).
            answered.wait(300)
            finished["lines"] += list(lines)
        finished["status"] = reply.status_code

    thread = threading.Thread(target=long_stream, daemon=True)
    thread.start()
    assert started.wait(120)
    second = served.translate("solo", "One at a time.")
    answered.set()
    thread.join(300)
    assert second.status_code == 429 and "1 request(s) running" in second.json()["error"]
    assert second.headers["retry-after"] == "1"
    events = [line for line in finished["lines"] if line.startswith("data: ")]
    assert finished["status"] == 200 and events[-1] == "data: [DONE]"
    assert not any('"usage"' in event for event in events)  # the usage event asked for metering stays hidden
    assert served.translate("solo", "Now it fits.").status_code == 200
    usage = served.usage("solo")["total"]
    long_stream_tokens = LONG_CHOICES * LONG_TOKENS
    assert long_stream_tokens < usage["generated_tokens"] <= long_stream_tokens + MAX_TOKENS
    assert usage["errors"] == {"429": 1}
    too_long = served.translate("small", "x" * 2001)
    assert too_long.status_code == 413 and "more than key 'small' may send in a minute" in too_long.json()["error"]


def test_demo_session_is_metered_on_the_key_it_was_opened_with(served):
    from gradio_client import Client

    browser = httpx.Client(base_url=served.root, follow_redirects=False)
    login = browser.get(f"/demo/?api_key={served.keys['solo']}")
    assert login.status_code == 303 and served.keys["solo"] not in login.headers["set-cookie"]
    cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    before = served.usage("solo")["total"]
    text = "The demo counts this text."
    translation, _ = Client(f"{served.root}/demo/", headers={"Cookie": cookie}, verbose=False).predict(
        text, "en", "zh", api_name="/translate")
    assert isinstance(translation, str)
    after = served.usage("solo")["total"]
    assert after["requests"] == before["requests"] + 1 and after["characters"] == before["characters"] + len(text)
    assert after["generated_tokens"] > before["generated_tokens"]
    assert served.usage("big")["total"]["characters"] < 10_000  # not charged to another key


def test_revoked_key_is_refused_within_seconds_and_a_broken_file_keeps_the_keys(served):
    assert served.get("solo", "/v1/models").status_code == 200
    _serve_cli("keys", "revoke", "solo", "--file", str(served.keys_file))
    deadline = time.monotonic() + 10
    while served.get("solo", "/v1/models").status_code != 401:
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.2)
    assert "API key" in served.get("solo", "/v1/models").json()["error"]
    good = served.keys_file.read_text()
    served.keys_file.write_text(good + "  - {name: broken\n")
    try:
        time.sleep(2.5)  # past the one-second reload check, twice
        assert served.get("big", "/v1/models").status_code == 200  # the last good keys stay in force
        assert served.get("solo", "/v1/models").status_code == 401
        assert served.log_text().count("keeping the previous 3 key(s)") == 1
    finally:
        served.keys_file.write_text(good)


def test_usage_survives_a_restart(served):
    """Keep last: stops the server and starts it again on the same keys file."""
    totals = {name: served.usage(name)["total"] for name in ("big", "small")}
    assert served.stop() == 0
    served.start()
    assert {name: served.usage(name)["total"] for name in ("big", "small")} == totals
    assert served.translate("big", "Once more.").status_code == 200
    assert served.usage("big")["total"]["requests"] == totals["big"]["requests"] + 1
