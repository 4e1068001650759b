"""Per-key limits: token buckets for requests and characters per minute, and a cap on requests at once.

A bucket holds at most one minute's allowance and refills continuously, so a key may burst up to its
per-minute limit and then runs at the steady rate. A request takes one request token and as many
character tokens as it sends; when either bucket is short it is refused with the seconds until both would
suffice (``Retry-After``) and takes nothing. Time comes from an injected clock, so tests need no sleeps.

Characters are also counted per UTC day and month (``quotas``); a key with ``characters_per_day`` or
``characters_per_month`` is refused past them until the period ends. Those counts are kept by ``periods``:
the usage store, so that they survive a restart.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from xplus_release.serve.keys import KeyLimits
from xplus_release.serve.quotas import PeriodCounts, Periods, over_quota

Clock = Callable[[], float]


class TokenBucket:
    def __init__(self, per_minute: int, clock: Clock = time.monotonic):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.tokens = self.capacity
        self._clock = clock
        self._updated = clock()

    def wait_s(self, cost: float) -> float:
        """Seconds until ``cost`` tokens are there (0: now). ``cost`` must not exceed the capacity."""
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
        self._updated = now
        return 0.0 if self.tokens >= cost else (cost - self.tokens) / self.rate

    def take(self, cost: float) -> None:
        self.tokens -= cost


@dataclass(frozen=True)
class Refusal:
    """Why a request may not run now: ``status`` 429 (``retry_after_s`` ≥ 1) or 413 (never, as sent)."""

    status: int
    message: str
    retry_after_s: int = 0


class _KeyState:
    def __init__(self, limits: KeyLimits, clock: Clock):
        self.limits = limits
        self.requests = TokenBucket(limits.requests_per_minute, clock)
        self.characters = TokenBucket(limits.characters_per_minute, clock)
        self.in_flight = 0


class KeyLimiter:
    """The limit state of every key by name. Single-threaded use (the server's event loop)."""

    def __init__(self, clock: Clock = time.monotonic, periods=None, calendar=Periods.now):
        """``periods``: where the per-day and per-month counts live (``period_totals``/``add_counts``; the
        usage store persists them); ``calendar``: the current ``Periods`` (tests move it)."""
        self._clock = clock
        self._states: dict[str, _KeyState] = {}
        self.periods = periods if periods is not None else PeriodCounts()
        self._calendar = calendar

    def admit(self, name: str, limits: KeyLimits, characters: int) -> Refusal | None:
        """Take a request of ``characters`` for key ``name``, or say why not; call ``release`` when it is done."""
        state = self._state(name, limits)
        if state.in_flight >= limits.concurrency:
            return Refusal(429, f"key {name!r} already has {limits.concurrency} request(s) running, its limit; "
                                f"wait for one to finish", 1)
        if characters > limits.characters_per_minute:
            return Refusal(413, f"the request has {characters} characters, more than key {name!r} may send in a "
                                f"minute ({limits.characters_per_minute}); split it")
        wait = max(state.requests.wait_s(1), state.characters.wait_s(characters))
        if wait > 0:
            retry = max(1, math.ceil(wait))
            return Refusal(429, f"key {name!r} is over its limit of {limits.requests_per_minute} requests or "
                                f"{limits.characters_per_minute} characters per minute; retry in {retry} s", retry)
        periods = self._calendar()
        over = over_quota(name, limits, characters, *self.period_usage(name, periods), periods)
        if over is not None:
            return Refusal(429, *over)
        state.requests.take(1)
        state.characters.take(characters)
        state.in_flight += 1
        self._count_period(name, characters, periods)
        return None

    def period_usage(self, name: str, periods: Periods | None = None) -> tuple[int, int]:
        """Characters of key ``name`` in the current UTC day and month."""
        totals = self.periods.period_totals(name)
        return tuple(totals.get(counter, 0) for counter in (periods or self._calendar()).counters())

    def _count_period(self, name: str, characters: int, periods: Periods) -> None:
        if characters:
            self.periods.add_counts(name, dict.fromkeys(periods.counters(), characters))

    def charge(self, name: str, limits: KeyLimits, characters: int) -> None:
        """Characters a running request sent after it was admitted (a file's text): the key's next requests
        wait until the allowance has refilled past them."""
        if characters:
            self._state(name, limits).characters.take(characters)
            self._count_period(name, characters, self._calendar())

    def release(self, name: str) -> None:
        self._states[name].in_flight -= 1

    def in_flight(self, name: str) -> int:
        state = self._states.get(name)
        return state.in_flight if state else 0

    def characters_in_use(self, name: str, limits: KeyLimits) -> int:
        """Characters of the current minute's allowance spent (the bucket's capacity minus what is left)."""
        bucket = self._state(name, limits).characters
        bucket.wait_s(0)  # refill to now
        return round(bucket.capacity - bucket.tokens)

    def _state(self, name: str, limits: KeyLimits) -> _KeyState:
        state = self._states.get(name)
        if state is None or state.limits != limits:  # new key, or its limits changed in the file
            in_flight = state.in_flight if state else 0
            state = self._states[name] = _KeyState(limits, self._clock)
            state.in_flight = in_flight
        return state
