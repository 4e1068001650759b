"""Per-key limits, the keys file and the usage store without a server: token buckets on an injected clock,
file reloads, counting generated tokens in vLLM's answers."""

from __future__ import annotations

import json
import os

import pytest

from xplus_release.errors import ConfigError
from xplus_release.serve.keys import KeyEntry, KeyLimits, KeyRing, KeysFile, hash_key, load_keys, save_keys
from xplus_release.serve.metering import Meter, _JsonCounter, _StreamCounter, prompt_characters
from xplus_release.serve.ratelimit import KeyLimiter, TokenBucket
from xplus_release.serve.usage import UsageStore, prometheus_text


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_bursts_a_minute_then_refills_at_the_rate():
    clock = Clock()
    bucket = TokenBucket(60, clock)  # one per second, burst of 60
    for _ in range(60):
        assert bucket.wait_s(1) == 0
        bucket.take(1)
    assert bucket.wait_s(1) == pytest.approx(1.0)
    clock.now += 0.25
    assert bucket.wait_s(1) == pytest.approx(0.75)
    clock.now += 0.75
    assert bucket.wait_s(1) == 0
    clock.now += 3600
    assert bucket.wait_s(60) == 0 and bucket.tokens == 60  # never more than a minute's worth


def test_limiter_refuses_with_retry_after_and_takes_nothing_when_refusing():
    clock = Clock()
    limiter = KeyLimiter(clock)
    limits = KeyLimits(requests_per_minute=6, characters_per_minute=600, concurrency=2)
    for _ in range(6):
        assert limiter.admit("a", limits, 10) is None
        limiter.release("a")
    refusal = limiter.admit("a", limits, 10)
    assert refusal.status == 429 and refusal.retry_after_s == 10 and "6 requests" in refusal.message
    clock.now += 9.9
    assert limiter.admit("a", limits, 10).retry_after_s == 1  # rounded up, never 0
    clock.now += 0.1
    assert limiter.admit("a", limits, 10) is None
    assert limiter.admit("b", limits, 10) is None  # another key has its own buckets


def test_limiter_characters_and_concurrency():
    clock = Clock()
    limiter = KeyLimiter(clock)
    limits = KeyLimits(requests_per_minute=100, characters_per_minute=600, concurrency=2)
    assert limiter.admit("a", limits, 500) is None
    refusal = limiter.admit("a", limits, 200)  # 100 left, 10 per second: 10 s until 200
    assert refusal.status == 429 and refusal.retry_after_s == 10
    assert limiter.characters_in_use("a", limits) == 500
    assert limiter.admit("a", limits, 601).status == 413  # more than a minute's allowance: never
    assert limiter.admit("a", limits, 50) is None  # two running now
    refusal = limiter.admit("a", limits, 1)
    assert refusal.status == 429 and "2 request(s) running" in refusal.message and refusal.retry_after_s == 1
    limiter.release("a")
    assert limiter.admit("a", limits, 1) is None
    assert limiter.in_flight("a") == 2


def test_limits_changed_in_the_file_apply_and_keep_the_running_count():
    limiter = KeyLimiter(Clock())
    assert limiter.admit("a", KeyLimits(concurrency=1), 1) is None
    assert limiter.admit("a", KeyLimits(concurrency=1), 1).status == 429
    assert limiter.admit("a", KeyLimits(concurrency=2), 1) is None  # raised: one more fits
    assert limiter.in_flight("a") == 2


def _keys_file(path, *entries: KeyEntry) -> None:
    save_keys(path, KeysFile.build({"keys": entries}))


@pytest.mark.parametrize("text,needle", [
    ("keys:\n  - name: a\n    sha256: " + "0" * 64 + "\n    colour: red\n", "option(s): keys[0].colour; known: name, sha256, enabled, limits"),
    ("keys: [\n", "is not valid YAML at line 2"),
    ("keys:\n  - {name: a, sha256: '" + "0" * 64 + "'}\n  - {name: a, sha256: '" + "1" * 64 + "'}\n",
     "duplicate key name 'a'"),
    ("keys:\n  - {name: a, sha256: mykey}\n", "sha256 must be 64 lowercase hex digits"),
    ("keys:\n  - {name: 'a b', sha256: '" + "0" * 64 + "'}\n", "name must be 1-64 letters"),
    ("keys:\n  - {name: a, sha256: '" + "0" * 64 + "', limits: {concurrency: 0}}\n", "must be at least 1"),
    ("- a\n", "must hold a mapping"),
])
def test_bad_keys_files_are_one_line_naming_the_file(tmp_path, text, needle):
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_keys(path)
    assert needle in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_key_ring_reloads_changes_and_keeps_the_last_good_keys(tmp_path, caplog):
    clock = Clock()
    path = tmp_path / "keys.yaml"
    _keys_file(path, KeyEntry(name="a", sha256=hash_key("ka")))
    ring = KeyRing(path, clock)
    assert ring.find("ka").name == "a" and ring.find("kb") is None
    _keys_file(path, KeyEntry(name="a", sha256=hash_key("ka"), enabled=False), KeyEntry(name="b", sha256=hash_key("kb")))
    assert ring.find("ka") is not None  # not looked at again within the second
    clock.now += 1
    assert ring.find("ka") is None and ring.find("kb").name == "b" and ring.entry("a") is None
    path.write_text("keys: [\n")
    clock.now += 1
    assert ring.find("kb").name == "b"  # the broken file is not used...
    clock.now += 1
    ring.find("kb")
    errors = [r for r in caplog.records if "keeping the previous 2 key(s)" in r.getMessage()]
    assert len(errors) == 1  # ...and said once, not at every check


def test_saving_never_leaves_a_temporary_file_or_a_key(tmp_path):
    path = tmp_path / "keys.yaml"
    _keys_file(path, KeyEntry(name="a", sha256=hash_key("secret-key-a")))
    assert os.listdir(tmp_path) == ["keys.yaml"]
    assert "secret-key-a" not in path.read_text() and hash_key("secret-key-a") in path.read_text()
    assert load_keys(path).keys[0].limits == KeyLimits()


def test_usage_store_survives_a_reopen_and_only_the_flush_writes(tmp_path):
    db = tmp_path / "u.sqlite"
    store = UsageStore(db)
    store.record("a", 200, characters=10, tokens=3)
    store.record("a", 429)
    store.record("b", 200, characters=5, tokens=1)
    assert UsageStore(db).totals("a") == {}  # nothing written yet: requests never wait on the disk
    store.close()
    again = UsageStore(db)
    assert again.totals("a") == {"requests": 2, "characters": 10, "generated_tokens": 3, "errors_429": 1}
    assert again.totals("b") == {"requests": 1, "characters": 5, "generated_tokens": 1}
    again.record("a", 200, characters=1)
    again.close()
    assert UsageStore(db).totals("a")["characters"] == 11


def test_a_broken_usage_database_is_one_line(tmp_path):
    db = tmp_path / "u.sqlite"
    db.write_bytes(b"not a database" * 100)
    with pytest.raises(ConfigError, match="moved aside"):
        UsageStore(db)


def test_prometheus_families():
    text = prometheus_text({"a": {"requests": 3, "characters": 7, "errors_429": 2}}, {"a": 1})
    assert 'xplus_key_requests_total{key="a"} 3' in text
    assert 'xplus_key_generated_tokens_total{key="a"} 0' in text
    assert 'xplus_key_errors_total{key="a",status="429"} 2' in text
    assert "# TYPE xplus_key_requests_in_flight gauge" in text and text.endswith("\n")


def test_prompt_characters_per_route():
    assert prompt_characters("/v1/translate", {"q": ["ab", "cde"]}) == 5
    assert prompt_characters("/v1/chat/completions", {"messages": [
        {"role": "system", "content": "abc"}, {"role": "user", "content": [{"type": "text", "text": "de"}]}]}) == 5
    assert prompt_characters("/v1/completions", {"prompt": "hello"}) == 5
    assert prompt_characters("/tokenize", {"prompt": "hello"}) == 0
    assert prompt_characters("/v1/chat/completions", ["not", "a", "dict"]) == 0


def test_generated_tokens_from_answers_split_anywhere():
    meter = Meter()
    counter = _JsonCounter(meter)
    body = json.dumps({"choices": [], "usage": {"completion_tokens": 7}}).encode()
    counter.feed(body[:10])
    counter.feed(body[10:])
    counter.close()
    counter.close()
    assert meter.tokens == 7
    events = b"".join(b"data: " + json.dumps({"choices": [{"delta": {"content": c}}]}).encode() + b"\n\n"
                      for c in ["", "a", "b", "c"]) + b"data: [DONE]\n\n"
    meter = Meter()
    counter = _StreamCounter(meter)
    for i in range(0, len(events), 7):
        counter.feed(events[i:i + 7])
    counter.close()
    assert meter.tokens == 3  # the empty role delta is no token
    meter = Meter()
    counter = _StreamCounter(meter)
    counter.feed(events + b'data: {"choices": [], "usage": {"completion_tokens": 5}}\n\n')
    counter.close()
    assert meter.tokens == 5  # include_usage: vLLM's own count wins


def test_the_usage_event_asked_for_metering_is_hidden_however_the_stream_is_cut():
    from xplus_release.serve.proxy import _UsageEventFilter

    stream = (b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
              b'data: {"id":"x","choices":[],"usage":{"completion_tokens":1}}\n\ndata: [DONE]\n\n')
    for size in (1, 5, 17, len(stream)):
        events = _UsageEventFilter()
        out = b"".join(events.feed(stream[i:i + size]) for i in range(0, len(stream), size)) + events.rest
        assert out == b'data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: [DONE]\n\n'



def test_a_reader_of_the_keys_file_keeps_a_whole_version_while_it_is_rewritten(tmp_path):
    """The write is a new file renamed over the old one: a reader that opened the file before (the server
    reloading it) reads the old version whole, never the new one half written into the same file."""
    path = tmp_path / "keys.yaml"
    _keys_file(path, KeyEntry(name="a", sha256=hash_key("ka")))
    old_text = path.read_text()
    with open(path) as reading:
        reading.read(10)
        _keys_file(path, KeyEntry(name="a", sha256=hash_key("ka")), KeyEntry(name="b", sha256=hash_key("kb")))
        assert old_text[:10] + reading.read() == old_text
    assert [e.name for e in load_keys(path).keys] == ["a", "b"] and os.listdir(tmp_path) == ["keys.yaml"]


def test_keys_add_and_list_take_every_limit_from_its_declaration(tmp_path, capsys):
    """``keys add`` has a flag per ``KeyLimits`` field (``--rpm`` for requests_per_minute) with its check, and
    ``keys list`` a column per field: a limit added to ``KeyLimits`` needs no change in the command."""
    from xplus_release.serve import keys_cli

    path = tmp_path / "keys.yaml"
    assert keys_cli.main(["add", "bob", "--file", str(path), "--rpm", "7", "--chars-per-minute", "900"]) == 0
    assert load_keys(path).get("bob").limits == KeyLimits(requests_per_minute=7, characters_per_minute=900)
    with pytest.raises(ConfigError, match=r"^rpm must be at least 1, got 0$"):
        keys_cli.main(["add", "carol", "--file", str(path), "--rpm", "0"])
    assert load_keys(path).get("carol") is None
    capsys.readouterr()
    assert keys_cli.main(["list", "--file", str(path)]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[3:6] == ["rpm", "chars-per-minute", "concurrency"]
    assert row.split()[0] == "bob" and row.split()[3:6] == ["7", "900", "4"]


def test_keys_add_sets_day_and_month_quotas(tmp_path, capsys):
    from xplus_release.serve import keys_cli

    path = tmp_path / "keys.yaml"
    assert keys_cli.main(["add", "dana", "--file", str(path), "--chars-per-day", "500",
                          "--chars-per-month", "9000"]) == 0
    limits = load_keys(path).get("dana").limits
    assert (limits.characters_per_day, limits.characters_per_month) == (500, 9000)
    with pytest.raises(ConfigError, match="chars-per-month must be at least 1"):
        keys_cli.main(["add", "eve", "--file", str(path), "--chars-per-month", "0"])
    capsys.readouterr()
    assert keys_cli.main(["add", "fay", "--file", str(path)]) == 0
    assert load_keys(path).get("fay").limits.characters_per_day is None  # no quota unless asked
