"""Usage per key name: requests, characters in, generated tokens and errors by status, kept in SQLite.

Requests never wait on the disk: ``add`` updates two dicts under a lock (the running totals that
``/v1/usage`` and ``/metrics`` read, and the increments not yet written), and a background thread writes the
increments in one transaction every ``flush_every_s`` and once more at shutdown. A crash loses at most the
last second. The database sits beside the keys file (``keys.usage.sqlite``) and survives restarts; rows are
``(key, counter, value)``, so a new counter needs no migration.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import Counter, defaultdict
from pathlib import Path

from xplus_release.errors import ConfigError

log = logging.getLogger("xplus_release.serve")

REQUESTS, CHARACTERS, TOKENS = "requests", "characters", "generated_tokens"
OFF_TARGET = "off_target_texts"  # translations the LID model placed in another language, or copies
ERROR_PREFIX = "errors_"  # errors_429, errors_503, ...
SCHEMA = """CREATE TABLE IF NOT EXISTS usage (
    key TEXT NOT NULL, counter TEXT NOT NULL, value INTEGER NOT NULL, PRIMARY KEY (key, counter))"""
UPSERT = """INSERT INTO usage (key, counter, value) VALUES (?, ?, ?)
    ON CONFLICT (key, counter) DO UPDATE SET value = value + excluded.value"""


class UsageStore:
    """Counters per key name, persisted in SQLite by a background thread (``start``/``close``).

    Raises (from ``__init__``):
        ConfigError: the database exists but is not one SQLite can open."""

    def __init__(self, path: Path, flush_every_s: float = 1.0):
        self.path = path
        self.flush_every_s = flush_every_s
        self._lock = threading.Lock()
        self._totals: dict[str, Counter] = defaultdict(Counter)
        self._pending: dict[str, Counter] = defaultdict(Counter)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()  # one flush at a time: the writer thread's, or close()'s last one
        try:
            # one connection for the store's life (opened here, used by whichever thread flushes, one at a time)
            self._db = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
            # WAL + synchronous=NORMAL: a commit is an append without fsync; a crash (not a power cut) loses nothing
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._db:
                self._db.execute(SCHEMA)
            for key, counter, value in self._db.execute("SELECT key, counter, value FROM usage"):
                self._totals[key][counter] = value
        except sqlite3.Error as err:
            raise ConfigError(f"usage database {path} cannot be opened ({err}); the keys file's folder must be "
                              f"writable, and a damaged database can be moved aside to start counting afresh") from None

    def record(self, name: str, status: int, characters: int = 0, tokens: int = 0,
               extra: dict[str, int] | None = None) -> None:
        """One finished (or refused) request of key ``name``; ``extra``: more counters (``OFF_TARGET``...)."""
        counts = {**(extra or {}), REQUESTS: 1, CHARACTERS: characters, TOKENS: tokens}
        if status >= 400:
            counts[f"{ERROR_PREFIX}{status}"] = 1
        with self._lock:
            for counter, value in counts.items():
                if value:
                    self._totals[name][counter] += value
                    self._pending[name][counter] += value

    def add_counts(self, name: str, counts: dict[str, int]) -> None:
        """Counters that are not a request of their own (the characters of a period: ``quotas``)."""
        with self._lock:
            self._totals[name].update(counts)
            self._pending[name].update(counts)

    def period_totals(self, name: str) -> dict[str, int]:
        return self.totals(name)

    def totals(self, name: str) -> dict[str, int]:
        with self._lock:
            return dict(self._totals.get(name, {}))

    def all_totals(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {name: dict(counts) for name, counts in self._totals.items()}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="usage-writer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the writer and write what is pending."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.flush()
        with self._write_lock:
            self._db.close()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, defaultdict(Counter)
        rows = [(key, counter, value) for key, counts in pending.items() for counter, value in counts.items()]
        if not rows:
            return
        try:
            with self._write_lock, self._db:  # one transaction
                self._db.executemany(UPSERT, rows)
        except sqlite3.Error as err:  # disk full, file removed: keep the increments for the next try
            log.error("usage not written to %s (%s); retrying in %.0f s", self.path, err, self.flush_every_s)
            with self._lock:
                for key, counts in pending.items():
                    self._pending[key].update(counts)
            return

    def _run(self) -> None:
        while not self._stop.wait(self.flush_every_s):
            self.flush()



def errors_by_status(counts: dict[str, int]) -> dict[str, int]:
    return {counter.removeprefix(ERROR_PREFIX): value for counter, value in sorted(counts.items())
            if counter.startswith(ERROR_PREFIX)}


_FAMILIES = [
    (REQUESTS, "xplus_key_requests_total", "Requests per API key name (model routes and demo translations)."),
    (CHARACTERS, "xplus_key_characters_total", "Characters of input per API key name."),
    (TOKENS, "xplus_key_generated_tokens_total", "Tokens generated per API key name."),
    (OFF_TARGET, "xplus_key_off_target_total",
     "Translated texts per API key name not in the target language (language ID) or copying the source."),
]


def prometheus_text(totals: dict[str, dict[str, int]], in_flight: dict[str, int]) -> str:
    """The usage counters as Prometheus text-format families (names are ``[A-Za-z0-9_.-]``: no escaping)."""
    lines = []
    for counter, family, help_text in _FAMILIES:
        lines += [f"# HELP {family} {help_text}", f"# TYPE {family} counter"]
        lines += [f'{family}{{key="{name}"}} {counts.get(counter, 0)}' for name, counts in sorted(totals.items())]
    lines += ["# HELP xplus_key_errors_total Requests per API key name answered with an error status.",
              "# TYPE xplus_key_errors_total counter"]
    for name, counts in sorted(totals.items()):
        lines += [f'xplus_key_errors_total{{key="{name}",status="{status}"}} {value}'
                  for status, value in errors_by_status(counts).items()]
    lines += ["# HELP xplus_key_requests_in_flight Requests running now per API key name.",
              "# TYPE xplus_key_requests_in_flight gauge"]
    lines += [f'xplus_key_requests_in_flight{{key="{name}"}} {n}' for name, n in sorted(in_flight.items())]
    return "\n".join(lines) + "\n"
