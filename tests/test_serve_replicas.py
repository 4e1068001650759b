"""Two ``xplus-serve --endpoint`` fronts on one real vLLM (xplus-tiny on CPU) and one real Redis.

Front A runs ``--state-unavailable deny``, front B ``allow``; both read the same keys file and name the
same Redis. Limits, concurrency slots and usage are global; a revoked key is refused by both within 2 s;
Redis SIGKILLed and restarted; a front SIGKILLed while it holds a slot; vLLM killed under ``--endpoint``.
The tests run in order on one set of processes (the last one stops and restarts vLLM).
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from helpers.redis_server import RedisServer
from helpers.serve import Served, run_serve, serve_command

from xplus_release.engines.server import VLLMServer, free_port
from xplus_release.serve.keys import KeyEntry, KeyLimits, KeysFile, hash_key, save_keys
from xplus_release.serve.keys_cli import main as keys_main

pytestmark = pytest.mark.slow
VLLM_KEY = "replicas-vllm-key"
SLOT_EXPIRY_S = 6.0  # the holder refreshes every third of it: slack for a front starved of CPU by vLLM
KEYS = {  # name: (rpm, chars per minute, concurrency)
    "ten": (10, 100_000, 10), "chars": (1000, 100, 10), "cap": (1000, 100_000, 1), "rev": (1000, 100_000, 4),
    "redis": (1000, 100_000, 4),
}
MONTHLY = {"quota": 100}  # name: characters per month


def _key(name: str) -> str:
    return f"secret-{name}"


def _auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_key(name)}"}


def _start_front(folder: Path, name: str, vllm: VLLMServer, redis: RedisServer, mode: str) -> Served:
    port, log = free_port(), folder / f"front-{name}.log"
    command = serve_command("--endpoint", vllm.root_url, "--endpoint-api-key", VLLM_KEY, "--port", str(port),
                            "--api-keys", str(folder / "keys.yaml"), "--state", redis.url, "--state-unavailable",
                            mode, "--state-slot-expiry", str(SLOT_EXPIRY_S), "--no-demo", "--max-tokens", "8",
                            "--lid-model", str(Path(__file__).parent / "data" / "lid" / "lid.176.ftz"))
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    front = Served(process, port, log, _key("ten"))
    front.wait_status("/health", 200, 120)
    return front


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, tiny_model):
    folder = tmp_path_factory.mktemp("replicas")
    save_keys(folder / "keys.yaml", KeysFile(keys=tuple(
        KeyEntry(name=name, sha256=hash_key(_key(name)),
                 limits=KeyLimits(requests_per_minute=rpm, characters_per_minute=cpm, concurrency=cap,
                                  characters_per_month=MONTHLY.get(name)))
        for name, (rpm, cpm, cap) in {**KEYS, "quota": (1000, 100_000, 4)}.items())))
    redis = RedisServer(folder).start()
    vllm = VLLMServer(tiny_model, api_key=VLLM_KEY, log_path=folder / "vllm.log", startup_timeout=600).start()
    fronts: dict[str, Served] = {}
    try:
        fronts["a"] = _start_front(folder, "a", vllm, redis, "deny")
        fronts["b"] = _start_front(folder, "b", vllm, redis, "allow")
        yield {"folder": folder, "redis": redis, "vllm": vllm, "fronts": fronts}
    finally:
        for front in fronts.values():
            front.stop()
        vllm.stop()
        redis.stop()


def _translate(front: Served, key: str, text: str = "Hello.") -> httpx.Response:
    return front.client.post("/v1/translate", json={"q": text, "source": "en", "target": "de"},
                             headers=_auth(key))


def _usage(front: Served, key: str) -> dict:
    reply = front.client.get("/v1/usage", headers=_auth(key))
    assert reply.status_code == 200, reply.text
    return reply.json()


def _wait_usage(fronts, key: str, requests: int) -> list[dict]:
    """Both fronts' /v1/usage once the batches are in Redis (a fraction of a second)."""
    deadline = time.monotonic() + 5
    while True:
        bodies = [_usage(fronts[n], key) for n in ("a", "b")]
        if all(b["total"]["requests"] == requests for b in bodies) or time.monotonic() > deadline:
            return bodies
        time.sleep(0.2)


def test_requests_per_minute_are_global(deployment):
    fronts = deployment["fronts"]
    statuses = [_translate(fronts["ab"[i % 2]], "ten").status_code for i in range(12)]
    assert statuses == [200] * 10 + [429, 429]
    refused = _translate(fronts["b"], "ten")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "requests" in refused.json()["error"]
    a, b = _wait_usage(fronts, "ten", 13)
    assert a["total"] == b["total"]
    assert a["total"]["requests"] == 13 and a["total"]["errors"] == {"429": 3}


def test_characters_per_minute_are_global(deployment):
    fronts = deployment["fronts"]
    assert _translate(fronts["a"], "chars", "x" * 60).status_code == 200
    refused = _translate(fronts["b"], "chars", "y" * 60)
    assert refused.status_code == 429 and "100 characters per minute" in refused.json()["error"]
    assert _usage(fronts["b"], "chars")["character_count"] >= 59  # A's spending, seen from B


def test_monthly_quota_is_global_and_usage_reports_the_month(deployment):
    fronts = deployment["fronts"]
    assert _translate(fronts["a"], "quota", "x" * 60).status_code == 200
    usage = _usage(fronts["b"], "quota")
    assert (usage["character_count"], usage["character_limit"]) == (60, 100)  # DeepL's fields: the month
    assert usage["month"]["resets_at"].endswith("-01T00:00:00Z") and usage["minute"]["character_limit"] == 100_000
    refused = _translate(fronts["b"], "quota", "y" * 50)
    assert refused.status_code == 429 and "used 60 of its 100 characters this month" in refused.json()["error"]
    assert int(refused.headers["retry-after"]) >= 1
    assert _translate(fronts["b"], "quota", "z" * 40).status_code == 200


def _hold_slot(front: Served, key: str) -> dict:
    """A long streamed completion on ``front``, read on a thread, holding one of ``key``'s slots."""
    state: dict = {"first": threading.Event()}

    def read() -> None:
        body = {"model": "xplus-tiny", "max_tokens": 1500, "ignore_eos": True, "stream": True,
                "messages": [{"role": "user", "content": "Go on."}]}
        try:
            with httpx.stream("POST", front.root + "/v1/chat/completions", json=body, headers=_auth(key),
                              timeout=120) as reply:
                state["status"] = reply.status_code
                for _ in reply.iter_lines():
                    state["first"].set()
        except httpx.HTTPError as err:
            state["error"] = err
        state["first"].set()

    state["thread"] = threading.Thread(target=read, daemon=True)
    state["thread"].start()
    assert state["first"].wait(60)
    return state


def test_concurrency_cap_is_global_and_a_dead_fronts_slot_expires(deployment):
    fronts = deployment["fronts"]
    held = _hold_slot(fronts["a"], "cap")
    assert held.get("status") == 200
    refused = _translate(fronts["b"], "cap")
    assert refused.status_code == 429 and "1 request(s) running" in refused.json()["error"]
    fronts["a"].process.kill()  # SIGKILL while holding the slot: no release, no more refreshes
    fronts["a"].process.wait()
    killed_at = time.monotonic()
    while _translate(fronts["b"], "cap").status_code != 200:
        assert time.monotonic() - killed_at < SLOT_EXPIRY_S + 2, "the dead front's slot was never freed"
        time.sleep(0.2)
    fronts["a"] = _start_front(deployment["folder"], "a2", deployment["vllm"], deployment["redis"], "deny")


def test_revoked_key_is_refused_by_both_fronts_within_2_s(deployment):
    fronts = deployment["fronts"]
    assert [_translate(fronts[n], "rev").status_code for n in "ab"] == [200, 200]
    assert keys_main(["revoke", "rev", "--file", str(deployment["folder"] / "keys.yaml")]) == 0
    revoked_at = time.monotonic()
    refused = set()
    while refused != {"a", "b"}:
        assert time.monotonic() - revoked_at < 2.0, f"only {refused} refuse the revoked key after 2 s"
        refused |= {n for n in "ab" if _translate(fronts[n], "rev").status_code == 401}
        time.sleep(0.1)


def test_redis_killed_deny_503_allow_200_then_counts_go_on_once(deployment):
    fronts, redis = deployment["fronts"], deployment["redis"]
    assert _translate(fronts["a"], "redis").status_code == 200
    _wait_usage(fronts, "redis", 1)
    redis.kill()
    denied = _translate(fronts["a"], "redis")
    assert denied.status_code == 503 and denied.headers["retry-after"] == "2"
    assert "does not answer" in denied.json()["error"]
    assert [_translate(fronts["b"], "redis").status_code for _ in range(3)] == [200] * 3  # allow
    redis.start()
    deadline, denials = time.monotonic() + 10, 1
    while _translate(fronts["a"], "redis").status_code != 200:
        assert time.monotonic() < deadline, "front A never reconnected"
        denials += 1
        time.sleep(0.2)
    # 1 before + 3 during (B) + the denied ones (A) + 1 after: each counted once
    a, b = _wait_usage(fronts, "redis", 5 + denials)
    assert a["total"] == b["total"]
    assert a["total"]["requests"] == 5 + denials and a["total"]["errors"] == {"503": denials}
    for name in "ab":
        log = fronts[name].log_text()
        assert log.count("unreachable") == 1 and log.count("reachable again") == 1, log[-2000:]


def test_vllm_killed_under_endpoint_503_then_healed(deployment):
    fronts, vllm = deployment["fronts"], deployment["vllm"]
    vllm.process.kill()
    vllm.kill_group()
    vllm.process.wait()
    deadline = time.monotonic() + 10
    while (reply := _translate(fronts["b"], "redis")).status_code != 503:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert int(reply.headers["retry-after"]) >= 1
    assert fronts["a"].client.get("/health").status_code == 503
    assert _usage(fronts["a"], "redis")["key"] == "redis"  # routes without the model still answer
    vllm.start()
    fronts["a"].wait_status("/health", 200, 10)
    assert _translate(fronts["a"], "redis").status_code == 200


@pytest.mark.parametrize(("state", "expected"), [
    ("mysql://db/1", "is not sqlite:///PATH or redis://HOST:PORT/DB"),
    (f"redis://127.0.0.1:{free_port()}/0", "Redis does not answer"),
])
def test_bad_state_url_or_unreachable_redis_is_one_line_exit_2(tmp_path, state, expected):
    keys = tmp_path / "keys.yaml"
    save_keys(keys, KeysFile(keys=(KeyEntry(name="k", sha256=hash_key("k")),)))
    done = run_serve("--endpoint", "http://127.0.0.1:9", "--api-keys", str(keys), "--state", state)
    assert done.returncode == 2
    assert expected in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
