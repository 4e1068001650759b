"""Characters per day and per month per key: quotas by calendar period (UTC), beside the per-minute buckets.

DeepL bills by the month and LibreTranslate limits by the hour and the day; a key's
``characters_per_day`` / ``characters_per_month`` (unset: no quota) count the characters of the requests
admitted in the current UTC day and month. A request that would pass either is refused with 429, the
reset time in the message and ``Retry-After`` the seconds until then. The counts live where the rest of
the state lives (``--state``): the usage database (one replica) or Redis, where the admission script checks
and adds them in the same step as the buckets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from xplus_release.serve.keys import KeyLimits

DAY_COUNTER, MONTH_COUNTER = "characters_day", "characters_month"  # + ":2026-12-06" / ":2026-12"


@dataclass(frozen=True)
class Periods:
    """The current UTC day and month, and when each ends."""

    day: str  # 2026-12-06
    month: str  # 2026-12
    day_end: datetime
    month_end: datetime

    @classmethod
    def now(cls, now: datetime | None = None) -> Periods:
        now = now or datetime.now(UTC)
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        month_start = day_start.replace(day=1)
        month_end = (month_start + timedelta(days=32)).replace(day=1)
        return cls(day_start.strftime("%Y-%m-%d"), month_start.strftime("%Y-%m"), day_start + timedelta(days=1),
                   month_end)

    def counters(self) -> tuple[str, str]:
        """The usage counter names of this day and month."""
        return f"{DAY_COUNTER}:{self.day}", f"{MONTH_COUNTER}:{self.month}"


def over_quota(name: str, limits: KeyLimits, characters: int, used_day: int, used_month: int,
               periods: Periods, now: datetime | None = None) -> tuple[str, int] | None:
    """``(message, seconds until the reset)`` when ``characters`` more would pass the day's or the month's
    quota (answered 429 by the limiter)."""
    for used, limit, period, end in ((used_month, limits.characters_per_month, "month", periods.month_end),
                                     (used_day, limits.characters_per_day, "day", periods.day_end)):
        if limit is not None and used + characters > limit:
            wait = max(1, math.ceil((end - (now or datetime.now(UTC))).total_seconds()))
            message = (f"key {name!r} has used {used} of its {limit} characters this {period}; {characters} more "
                       f"would pass it; it resets at {end.strftime('%Y-%m-%dT%H:%M:%SZ')}")
            return message, wait
    return None


class PeriodCounts:
    """Characters per key and period in this process (what ``KeyLimiter`` uses when nothing persists them)."""

    def __init__(self):
        self._counts: dict[tuple[str, str], int] = {}

    def period_totals(self, name: str) -> dict[str, int]:
        return {counter: value for (key, counter), value in self._counts.items() if key == name}

    def add_counts(self, name: str, counts: dict[str, int]) -> None:
        for counter, value in counts.items():
            self._counts[(name, counter)] = self._counts.get((name, counter), 0) + value
