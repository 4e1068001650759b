"""The shared state of ``--state redis://``: its Lua scripts against a real ``redis-server`` (no vLLM).

Bursts, refill and concurrent admits from many threads on two links (two replicas), the concurrency slots
of a replica that died expiring, usage batches applied once when an answer was lost, deny/allow while Redis
is down, and the one-line errors for bad URLs and an unreachable Redis.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
from helpers.redis_server import RedisServer

from xplus_release.engines.server import free_port
from xplus_release.errors import ConfigError
from xplus_release.serve.keys import KeyLimits
from xplus_release.serve.shared_state import (
    RedisLimiter,
    RedisLink,
    RedisUsage,
    StateUnavailable,
    parse_state_url,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    redis_server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield redis_server
    redis_server.stop()


def _limiter(server: RedisServer, expiry_s: float = 30.0, allow: bool = False) -> RedisLimiter:
    return RedisLimiter(RedisLink.connect(server.url, expiry_s), allow_when_down=allow)


def test_burst_up_to_the_minute_then_refused_with_retry_after(server):
    limiter, limits = _limiter(server), KeyLimits(requests_per_minute=10, characters_per_minute=1000, concurrency=50)
    outcomes = [limiter.admit("burst", limits, 5) for _ in range(12)]
    assert outcomes[:10] == [None] * 10
    assert [r.status for r in outcomes[10:]] == [429, 429]
    assert outcomes[10].retry_after_s == 6  # one request refills in 60/10 s


def test_characters_refill_at_the_per_minute_rate(server):
    limiter = _limiter(server)
    limits = KeyLimits(requests_per_minute=1000, characters_per_minute=6000, concurrency=50)  # 100 per second
    assert limiter.admit("refill", limits, 6000) is None
    assert limiter.admit("refill", limits, 50).status == 429
    time.sleep(0.7)
    assert limiter.admit("refill", limits, 50) is None
    assert limiter.admit("refill", limits, 50).status == 429
    assert 5900 <= limiter.characters_in_use("refill", limits) <= 6000


def test_concurrent_admits_on_two_replicas_take_exactly_the_limit(server):
    replicas = [_limiter(server), _limiter(server)]
    limits = KeyLimits(requests_per_minute=20, characters_per_minute=100_000, concurrency=1000)
    admitted = []
    start = threading.Barrier(40)

    def client(i: int) -> None:
        start.wait()
        for _ in range(3):
            if replicas[i % 2].admit("race", limits, 1) is None:
                admitted.append(i)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 20
    assert replicas[0].in_flight("race") == 20  # slots of both replicas


def test_slots_are_global_and_those_of_a_dead_replica_expire(server):
    limits = KeyLimits(requests_per_minute=1000, characters_per_minute=100_000, concurrency=2)
    dead, alive = _limiter(server, expiry_s=1.0), _limiter(server, expiry_s=1.0)
    assert dead.admit("slots", limits, 0) is None and dead.admit("slots", limits, 0) is None
    refusal = alive.admit("slots", limits, 0)
    assert refusal.status == 429 and "2 request(s) running" in refusal.message
    time.sleep(1.2)  # ``dead`` never refreshes nor releases its slots
    assert alive.admit("slots", limits, 0) is None
    alive.release("slots")
    assert alive.in_flight("slots") == 0


def test_a_held_slot_is_kept_alive_past_the_expiry(server):
    limits = KeyLimits(requests_per_minute=1000, characters_per_minute=100_000, concurrency=1)
    holder, other = _limiter(server, expiry_s=1.0), _limiter(server, expiry_s=1.0)
    assert holder.admit("kept", limits, 0) is None
    holder.link.start()  # its tick refreshes the slot every third of the expiry
    try:
        time.sleep(2.0)
        assert other.admit("kept", limits, 0).status == 429
        holder.release("kept")
        assert other.admit("kept", limits, 0) is None
    finally:
        holder.link.stop()


def test_a_usage_batch_whose_answer_was_lost_is_applied_once(server):
    usage = RedisUsage(RedisLink.connect(server.url, 30.0))
    usage.record("once", 200, characters=7, tokens=3)
    real_run = usage.link.run

    def run_then_lose_answer(*args):
        real_run(*args)
        raise StateUnavailable("connection reset")

    usage.link.run = run_then_lose_answer
    with pytest.raises(StateUnavailable):
        usage.flush()
    usage.link.run = real_run
    usage.record("once", 429)
    usage.flush()  # the lost batch again (same id: skipped by Redis), then the new one
    usage.flush()
    assert usage.totals("once") == {"requests": 2, "characters": 7, "generated_tokens": 3, "errors_429": 1}


def test_redis_down_deny_answers_503_allow_serves_and_both_log_once(tmp_path, caplog):
    server = RedisServer(tmp_path).start()
    limits = KeyLimits(requests_per_minute=100, characters_per_minute=100_000, concurrency=4)
    deny, allow = _limiter(server), _limiter(server, allow=True)
    usage = RedisUsage(deny.link)
    try:
        assert deny.admit("down", limits, 3) is None
        deny.release("down")
        server.kill()
        with caplog.at_level(logging.INFO, logger="xplus_release.serve"):
            refusals = [deny.admit("down", limits, 3) for _ in range(3)]
            assert {(r.status, r.retry_after_s) for r in refusals} == {(503, 2)}
            assert allow.admit("down", limits, 3) is None  # this replica's own bucket
            allow.release("down")
            usage.record("down", 200, characters=3)
            with pytest.raises(StateUnavailable):
                usage.flush()
            server.start()
            usage.flush()
            assert deny.admit("down", limits, 3) is None
            assert allow.admit("down", limits, 3) is None  # shared again
        lines = [r.getMessage() for r in caplog.records]
        assert sum("unreachable" in line for line in lines) == 2  # one per link (replica)
        assert sum("reachable again" in line for line in lines) == 2
        assert usage.totals("down")["characters"] == 3
    finally:
        server.stop()


@pytest.mark.parametrize("url", ["redis://", "mysql://host/db", "redis://host:port/0", "redis://host:6379/x",
                                 "sqlite://", "keys.sqlite"])
def test_bad_state_urls_are_one_line(url):
    with pytest.raises(ConfigError, match="--state"):
        parse_state_url(url)


def test_state_urls_accepted():
    assert parse_state_url("sqlite:///usage.sqlite") == ("sqlite", "usage.sqlite")
    assert parse_state_url("sqlite:////var/lib/x.sqlite") == ("sqlite", "/var/lib/x.sqlite")
    assert parse_state_url("rediss://:pw@cache:6380/2") == ("redis", "rediss://:pw@cache:6380/2")


def test_unreachable_redis_at_start_names_the_fix_without_the_password():
    with pytest.raises(ConfigError, match=r"does not answer.*XPLUS_REDIS_PASSWORD") as err:
        RedisLink.connect(f"redis://:secret@127.0.0.1:{free_port()}/0", 30.0)
    assert "secret" not in str(err.value)


# --- quotas per UTC day and month --------------------------------------------------------------------------

def _calendar(day: str):
    """A calendar stuck at noon UTC of ``day`` (YYYY-MM-DD), as the limiters take it."""
    from datetime import UTC, datetime

    from xplus_release.serve.quotas import Periods

    return lambda: Periods.now(datetime.fromisoformat(f"{day}T12:00:00").replace(tzinfo=UTC))


QUOTA = KeyLimits(requests_per_minute=1000, characters_per_minute=100_000, concurrency=100,
                  characters_per_day=100, characters_per_month=150)


def _moving_calendar():
    """``(days, calendar)``: the calendar is at noon UTC of ``days["now"]``, which the test moves."""
    days = {"now": "2026-12-06"}
    calendar = lambda: _calendar(days["now"])()
    return days, calendar


def test_day_and_month_quotas_on_two_redis_replicas(server):
    days, calendar = _moving_calendar()
    a, b = (RedisLimiter(RedisLink.connect(server.url, 30.0), calendar=calendar) for _ in range(2))
    assert a.admit("quota", QUOTA, 60) is None
    refusal = b.admit("quota", QUOTA, 50)  # 110 > 100 today, across replicas
    assert refusal.status == 429
    assert "used 60 of its 100 characters this day" in refusal.message and "2026-12-07T00:00:00Z" in refusal.message
    assert 0 < refusal.retry_after_s  # until midnight UTC, from the real clock
    assert b.admit("quota", QUOTA, 40) is None
    assert a.period_usage("quota") == (100, 100)
    days["now"] = "2026-12-07"
    refusal = a.admit("quota", QUOTA, 60)  # a new day, but 160 > 150 this month
    assert refusal.status == 429 and "this month" in refusal.message and "2027-01-01T00:00:00Z" in refusal.message
    assert a.admit("quota", QUOTA, 50) is None and b.period_usage("quota") == (50, 150)
    days["now"] = "2027-01-01"
    assert b.admit("quota", QUOTA, 100) is None


def test_quotas_of_one_replica_survive_a_restart_in_the_usage_database(tmp_path):
    from xplus_release.serve.ratelimit import KeyLimiter
    from xplus_release.serve.usage import UsageStore

    _, calendar = _moving_calendar()
    store = UsageStore(tmp_path / "usage.sqlite")
    limiter = KeyLimiter(periods=store, calendar=calendar)
    assert limiter.admit("q", QUOTA, 70) is None
    limiter.charge("q", QUOTA, 20)  # a file's text, counted after admission
    store.close()
    again = KeyLimiter(periods=UsageStore(tmp_path / "usage.sqlite"), calendar=calendar)
    assert again.period_usage("q") == (90, 90)
    refusal = again.admit("q", QUOTA, 11)
    assert refusal.status == 429 and "used 90 of its 100 characters this day" in refusal.message
