"""Where key limits and usage live: this process and SQLite (one replica), or Redis (many replicas).

``--state sqlite:///PATH`` is the single-replica store: token buckets in this process (``KeyLimiter``),
usage in SQLite (``UsageStore``). ``--state redis://HOST:PORT/DB`` (or ``rediss://``) shares them between
every ``xplus-serve`` that names the same Redis:

- the buckets and the concurrency slots of a key are changed by one server-side Lua script per request
  (``ADMIT``), so two replicas admitting at the same moment cannot both take the last token: Redis runs a
  script alone. Time is Redis's own (``TIME``), so replicas need no synchronised clocks.
- a concurrency slot is a member of a sorted set scored with its expiry; the replica holding it pushes the
  expiry forward every third of ``--state-slot-expiry``, so the slots of a replica that died are free again
  within that expiry.
- usage increments are buffered for a fraction of a second and written in batches; each batch carries an
  id that the script records (``SET NX``) with the increments, so a batch sent again after a lost answer is
  applied once.

When Redis does not answer: ``--state-unavailable deny`` answers 503 with Retry-After; ``allow`` serves with
this replica's own buckets until Redis is back (usage is kept and written then). One log line when it goes,
one when it is back; it reconnects by itself. The client never retries a command on its own (a resent
``ADMIT`` would take tokens twice).

Revocation: replicas that share the keys file (a shared volume) each reread it within a second
(``keys.KeyRing``), so a revoked key is refused everywhere within that.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field

from xplus_release.config import Config
from xplus_release.errors import ConfigError
from xplus_release.serve.keys import KeyLimits
from xplus_release.serve.quotas import Periods, over_quota
from xplus_release.serve.ratelimit import KeyLimiter, Refusal
from xplus_release.serve.usage import CHARACTERS, ERROR_PREFIX, REQUESTS, TOKENS, UsageStore

log = logging.getLogger("xplus_release.serve")
PASSWORD_ENV = "XPLUS_REDIS_PASSWORD"
PREFIX = "xplus"
RETRY_AFTER_S = 2  # what a client is told while Redis is away: about two reconnect attempts
TICK_S = 0.2  # usage batches, reconnect attempts


class StateOptions(Config):
    """Where the per-key limits and usage of ``--api-keys`` live; each is an ``xplus-serve`` flag."""

    section = "shared state"
    state: str | None = Field(None, description=(
        "sqlite:///PATH (one replica; default: FILE-stem.usage.sqlite beside --api-keys) or redis://HOST:PORT/DB "
        "(also rediss://; password in the URL or $XPLUS_REDIS_PASSWORD): limits and usage shared by every "
        "replica that names it"), json_schema_extra={"metavar": "URL"})
    state_unavailable: Literal["deny", "allow"] = Field("deny", description=(
        "while Redis does not answer: deny (503 with Retry-After) or allow (this replica's own limits; usage "
        "written when it is back)"))
    state_slot_expiry: float = Field(30.0, gt=0, description=(
        "seconds after which the concurrency slots of a replica that stopped answering are free again"))


def parse_state_url(url: str) -> tuple[str, str]:
    """``(kind, location)``: ``("sqlite", PATH)`` or ``("redis", URL)``.

    Raises: ConfigError naming the accepted forms."""
    parts = urlsplit(url)
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        # as SQLAlchemy writes it: sqlite:///relative/path, sqlite:////absolute/path
        return "sqlite", url[len("sqlite:///"):]
    if parts.scheme in ("redis", "rediss") and parts.hostname:
        try:
            parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
        except ValueError:
            raise ConfigError(f"--state {url}: the port is not a number; use redis://HOST:PORT/DB") from None
        database = parts.path.strip("/")
        if database and not database.isdigit():
            raise ConfigError(f"--state {url}: the database must be a number (redis://HOST:PORT/0)")
        return "redis", url
    raise ConfigError(f"--state {url!r} is not sqlite:///PATH or redis://HOST:PORT/DB (or rediss://...); "
                      f"pass one of those")


def open_state(options: StateOptions, keys_path: Path):
    """``(limiter, usage)`` for ``Metering``.

    Raises: ConfigError for a bad URL, an unreachable Redis or a database that does not open."""
    from xplus_release.serve.keys import usage_path

    if options.state is None:
        usage = UsageStore(usage_path(keys_path))
        return KeyLimiter(periods=usage), usage
    kind, location = parse_state_url(options.state)
    if kind == "sqlite":
        usage = UsageStore(Path(location))
        return KeyLimiter(periods=usage), usage
    link = RedisLink.connect(location, options.state_slot_expiry)
    return RedisLimiter(link, allow_when_down=options.state_unavailable == "allow"), RedisUsage(link)


class StateUnavailable(Exception):
    """Redis did not answer; the caller answers 503 (or, under ``allow``, carries on locally)."""


# KEYS: bucket hash, slots sorted set, period counts hash. ARGV: rpm, chars per minute, concurrency, characters,
# slot id, expiry ms, day field, month field, day quota, month quota (0: none).
# Returns {0, 0} admitted, {1, 0} at the concurrency cap, {2, ms} a bucket short for ms milliseconds,
# {3, day used, month used} over a quota.
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm, cpm, cap, chars = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= cap then return {1, 0} end
local b = redis.call('HMGET', KEYS[1], 'r', 'c', 't')
local last = tonumber(b[3]) or now
local elapsed = math.max(0, now - last)
local r = math.min(rpm, (tonumber(b[1]) or rpm) + elapsed * rpm / 60000)
local c = math.min(cpm, (tonumber(b[2]) or cpm) + elapsed * cpm / 60000)
local wait = 0
if r < 1 then wait = (1 - r) * 60000 / rpm end
if c < chars then wait = math.max(wait, (chars - c) * 60000 / cpm) end
if wait > 0 then return {2, math.ceil(wait)} end
local used = redis.call('HMGET', KEYS[3], ARGV[7], ARGV[8])
local day, month = tonumber(used[1]) or 0, tonumber(used[2]) or 0
local day_quota, month_quota = tonumber(ARGV[9]), tonumber(ARGV[10])
if (day_quota > 0 and day + chars > day_quota) or (month_quota > 0 and month + chars > month_quota) then
  return {3, day, month}
end
if chars > 0 then
  redis.call('HINCRBY', KEYS[3], ARGV[7], chars)
  redis.call('HINCRBY', KEYS[3], ARGV[8], chars)
  redis.call('PEXPIRE', KEYS[3], 3024000000)
end
redis.call('HSET', KEYS[1], 'r', tostring(r - 1), 'c', tostring(c - chars), 't', now)
redis.call('PEXPIRE', KEYS[1], 120000)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[6]), ARGV[5])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[6]) * 2)
return {0, 0}
"""

# KEYS: bucket hash (and the period counts hash when taking). ARGV: chars per minute, characters to take (0: only
# read), day field, month field. Returns characters in use.
CHARGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cpm, chars = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'c', 't')
local last = tonumber(b[2]) or now
local c = math.min(cpm, (tonumber(b[1]) or cpm) + math.max(0, now - last) * cpm / 60000)
if chars > 0 then
  redis.call('HSET', KEYS[1], 'c', tostring(c - chars), 't', now)
  if not b[2] then redis.call('HSET', KEYS[1], 'r', '1e308') end
  redis.call('HINCRBY', KEYS[2], ARGV[3], chars)
  redis.call('HINCRBY', KEYS[2], ARGV[4], chars)
  redis.call('PEXPIRE', KEYS[1], 120000)
  c = c - chars
end
return math.floor(cpm - c + 0.5)
"""

# KEYS: slots sorted set. ARGV: expiry ms, then slot ids to keep (none: only count). Returns slots held now.
SLOTS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
if #ARGV > 1 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2) end
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""

# KEYS: the batch's marker. ARGV: name, counter, value, name, counter, value, ... Returns 1 applied, 0 seen before.
USAGE = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', 86400) then return 0 end
for i = 1, #ARGV, 3 do
  redis.call('HINCRBY', '""" + PREFIX + """:usage:' .. ARGV[i], ARGV[i + 1], ARGV[i + 2])
  redis.call('SADD', '""" + PREFIX + """:usage:names', ARGV[i])
end
return 1
"""


def _bucket(name: str) -> str:
    return f"{PREFIX}:{{{name}}}:bucket"  # {name}: a key's bucket and slots share a Redis Cluster hash slot


def _slots(name: str) -> str:
    return f"{PREFIX}:{{{name}}}:slots"


def _periods(name: str) -> str:
    return f"{PREFIX}:{{{name}}}:periods"  # characters per day and month (35 days after the last request)


class RedisLink:
    """The client, its scripts, whether Redis answers (logged once per change) and a background tick."""

    def __init__(self, client, url: str, slot_expiry_s: float):
        self.client = client
        self.url = _without_password(url)
        self.slot_expiry_ms = int(slot_expiry_s * 1000)
        self.up = True
        self._scripts = {name: client.register_script(text) for name, text in
                         (("admit", ADMIT), ("charge", CHARGE), ("slots", SLOTS), ("usage", USAGE))}
        self._ticks: list[tuple[float, Callable[[], None]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def connect(cls, url: str, slot_expiry_s: float) -> RedisLink:
        """Raises: ConfigError when Redis does not answer a PING (wrong address, password, TLS)."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        password = None if urlsplit(url).password else os.environ.get(PASSWORD_ENV)
        # retries 0: a command is sent once (see the module docstring); short timeouts: a request never
        # waits long on a Redis that went away
        client = redis.Redis.from_url(url, password=password, socket_timeout=1.0, socket_connect_timeout=1.0,
                                      retry=Retry(NoBackoff(), 0), health_check_interval=0)
        try:
            client.ping()
        except redis.RedisError as err:
            raise ConfigError(f"--state {_without_password(url)}: Redis does not answer ({err}); start it, or fix "
                              f"the address or the password (${PASSWORD_ENV})") from None
        return cls(client, url, slot_expiry_s)

    def run(self, script: str, keys: list[str], args: list) -> object:
        """Raises: StateUnavailable when Redis does not answer."""
        import redis

        try:
            result = self._scripts[script](keys=keys, args=args)
        except (redis.ConnectionError, redis.TimeoutError) as err:
            self.went_down(err)
            raise StateUnavailable(str(err)) from None
        self.came_back()
        return result

    def command(self, *args):
        """One plain command. Raises: StateUnavailable."""
        import redis

        try:
            result = self.client.execute_command(*args)
        except (redis.ConnectionError, redis.TimeoutError) as err:
            self.went_down(err)
            raise StateUnavailable(str(err)) from None
        self.came_back()
        return result

    def went_down(self, err: Exception) -> None:
        if self.up:
            self.up = False
            log.error("shared state %s unreachable (%s); reconnecting every %.1f s", self.url, err, TICK_S)

    def came_back(self) -> None:
        if not self.up:
            self.up = True
            log.info("shared state %s reachable again", self.url)

    def every(self, seconds: float, job: Callable[[], None]) -> None:
        self._ticks.append((seconds, job))

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="redis-state", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        due = [0.0] * len(self._ticks)
        while not self._stop.wait(TICK_S):
            now = time.monotonic()
            if not self.up:
                try:
                    self.command("PING")
                except StateUnavailable:
                    continue
            for i, (seconds, job) in enumerate(self._ticks):
                if now >= due[i]:
                    due[i] = now + seconds - TICK_S / 2  # on the tick at or just before the period
                    try:
                        job()
                    except StateUnavailable:
                        pass  # logged by the link; tried again on the next tick


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


class RedisLimiter:
    """``KeyLimiter``'s interface on Redis: every replica shares each key's buckets and concurrency slots."""

    def __init__(self, link: RedisLink, allow_when_down: bool = False, calendar=Periods.now):
        self.link = link
        self._calendar = calendar
        self.allow_when_down = allow_when_down
        self.local = KeyLimiter()  # under ``allow``, while Redis is away
        self._held: dict[str, list[str | None]] = defaultdict(list)  # slot ids held here (None: a local one)
        self._lock = threading.Lock()
        link.every(link.slot_expiry_ms / 3000, self._keep_slots)

    def admit(self, name: str, limits: KeyLimits, characters: int) -> Refusal | None:
        if characters > limits.characters_per_minute:
            return Refusal(413, f"the request has {characters} characters, more than key {name!r} may send in a "
                                f"minute ({limits.characters_per_minute}); split it")
        slot, periods = uuid.uuid4().hex, self._calendar()
        try:
            outcome, *detail = self.link.run("admit", [_bucket(name), _slots(name), _periods(name)], [
                limits.requests_per_minute, limits.characters_per_minute, limits.concurrency, characters, slot,
                self.link.slot_expiry_ms, *periods.counters(), limits.characters_per_day or 0,
                limits.characters_per_month or 0])
        except StateUnavailable:
            return self._admit_locally(name, limits, characters)
        if outcome == 3:
            return Refusal(429, *over_quota(name, limits, characters, detail[0], detail[1], periods))
        if outcome == 1:
            return Refusal(429, f"key {name!r} already has {limits.concurrency} request(s) running, its limit; "
                                f"wait for one to finish", 1)
        if outcome == 2:
            retry = max(1, math.ceil(detail[0] / 1000))
            return Refusal(429, f"key {name!r} is over its limit of {limits.requests_per_minute} requests or "
                                f"{limits.characters_per_minute} characters per minute; retry in {retry} s", retry)
        with self._lock:
            self._held[name].append(slot)
        return None

    def _admit_locally(self, name: str, limits: KeyLimits, characters: int) -> Refusal | None:
        if not self.allow_when_down:
            return Refusal(503, f"the shared limits store ({self.link.url}) does not answer; retry in "
                                f"{RETRY_AFTER_S} s", RETRY_AFTER_S)
        refusal = self.local.admit(name, limits, characters)
        if refusal is None:
            with self._lock:
                self._held[name].append(None)
        return refusal

    def charge(self, name: str, limits: KeyLimits, characters: int) -> None:
        if characters:
            try:
                self.link.run("charge", [_bucket(name), _periods(name)],
                              [limits.characters_per_minute, characters, *self._calendar().counters()])
            except StateUnavailable:
                self.local.charge(name, limits, characters)

    def release(self, name: str) -> None:
        with self._lock:
            slot = self._held[name].pop()
        if slot is None:
            return self.local.release(name)
        try:
            self.link.command("ZREM", _slots(name), slot)
        except StateUnavailable:
            pass  # the slot expires by itself (``--state-slot-expiry``)

    def in_flight(self, name: str) -> int:
        """Requests of key ``name`` running on every replica. Raises: StateUnavailable."""
        return int(self.link.run("slots", [_slots(name)], [self.link.slot_expiry_ms]))

    def characters_in_use(self, name: str, limits: KeyLimits) -> int:
        """Raises: StateUnavailable."""
        return int(self.link.run("charge", [_bucket(name)], [limits.characters_per_minute, 0]))

    def period_usage(self, name: str) -> tuple[int, int]:
        """Characters of key ``name`` in the current UTC day and month, on every replica. Raises: StateUnavailable."""
        used = self.link.command("HMGET", _periods(name), *self._calendar().counters())
        return tuple(int(v or 0) for v in used)

    def _keep_slots(self) -> None:
        """Push the expiry of the slots this replica holds forward (requests still running here)."""
        with self._lock:
            held = {name: [s for s in slots if s] for name, slots in self._held.items()}
        for name, slots in held.items():
            if slots:
                self.link.run("slots", [_slots(name)], [self.link.slot_expiry_ms, *slots])


class RedisUsage:
    """``UsageStore``'s interface on Redis: one hash of counters per key name, shared by every replica."""

    def __init__(self, link: RedisLink, flush_every_s: float = TICK_S):
        self.link = link
        self._lock = threading.Lock()
        self._pending: dict[str, Counter] = defaultdict(Counter)
        self._batch: tuple[str, list] | None = None  # sent, answer not yet seen: resent with the same id
        link.every(flush_every_s, self.flush)

    def record(self, name: str, status: int, characters: int = 0, tokens: int = 0,
               extra: dict[str, int] | None = None) -> None:
        counts = {**(extra or {}), REQUESTS: 1, CHARACTERS: characters, TOKENS: tokens}
        if status >= 400:
            counts[f"{ERROR_PREFIX}{status}"] = 1
        with self._lock:
            self._pending[name].update({k: v for k, v in counts.items() if v})

    def totals(self, name: str) -> dict[str, int]:
        """Every replica's counts as Redis has them. Raises: StateUnavailable."""
        counts = self.link.command("HGETALL", f"{PREFIX}:usage:{name}")
        return {k.decode(): int(v) for k, v in counts.items()}

    def all_totals(self) -> dict[str, dict[str, int]]:
        """Raises: StateUnavailable."""
        names = sorted(n.decode() for n in self.link.command("SMEMBERS", f"{PREFIX}:usage:names"))
        return {name: self.totals(name) for name in names}

    def start(self) -> None:
        self.link.start()

    def close(self) -> None:
        self.link.stop()
        try:
            self.flush()
        except StateUnavailable:
            pending = sum(sum(c.values()) for c in self._pending.values())
            log.error("usage not written: %s unreachable at shutdown (%d counts lost)", self.link.url, pending)

    def flush(self) -> None:
        """Send the pending increments as one batch; a batch whose answer was lost goes again, with its id, first.
        Raises: StateUnavailable (the increments stay pending)."""
        if self._batch is None:
            with self._lock:
                pending, self._pending = self._pending, defaultdict(Counter)
            args = [x for name, counts in pending.items() for counter, value in counts.items()
                    for x in (name, counter, value)]
            if not args:
                return
            self._batch = (f"{PREFIX}:usage:batch:{uuid.uuid4().hex}", args)
        marker, args = self._batch
        self.link.run("usage", [marker], args)  # StateUnavailable: kept in _batch, resent next tick
        self._batch = None
