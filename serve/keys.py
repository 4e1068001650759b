"""API keys of ``xplus-serve --api-keys FILE``: the YAML file, its atomic writes, and the live view the server
reads it through.

The file holds, per key, a name, the SHA-256 of the key (never the key itself: a copied or leaked file
grants nothing), its limits and whether it is enabled::

    keys:
      - name: alice
        sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
        enabled: true
        limits: {requests_per_minute: 60, characters_per_minute: 100000, concurrency: 4}

``xplus-serve keys add|list|revoke`` edits it; every write goes to a temporary file in the same folder
and is renamed over the old one, so a running server never reads half a file. The server notices a
change within a second (``KeyRing``) and keeps the last good keys when the new file does not parse.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import yaml
from pydantic import Field, field_validator, model_validator

from xplus_release.config import AtLeastOne, Config
from xplus_release.errors import ConfigError
from xplus_release.storage import write_atomic

log = logging.getLogger("xplus_release.serve")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
HEADER = ("# xplus-serve API keys (SHA-256 of each key, never the key). Edit with: xplus-serve keys add|list|revoke\n"
          "# Limits are per key: requests and characters per minute (token buckets), requests at once, and\n"
          "# optional quotas of characters per UTC day and month.\n")
RELOAD_EVERY_S = 1.0


class KeyLimits(Config):
    """A key's limits: the YAML keys of ``limits:`` in the keys file and the flags of ``xplus-serve keys add``
    (``flag`` names the shorter flag of a field)."""

    section = "key limits"
    requests_per_minute: AtLeastOne = Field(60, description="requests per minute (a burst may use a whole minute's)",
                                            json_schema_extra={"flag": "rpm"})
    characters_per_minute: AtLeastOne = Field(100_000, description="characters of input per minute",
                                              json_schema_extra={"flag": "chars-per-minute"})
    concurrency: AtLeastOne = Field(4, description="requests at once")
    characters_per_day: AtLeastOne | None = Field(None, description=(
        "characters of input per UTC day (default: no daily quota); over it: 429 until midnight UTC"),
        json_schema_extra={"flag": "chars-per-day"})
    characters_per_month: AtLeastOne | None = Field(None, description=(
        "characters of input per UTC calendar month (default: no monthly quota); over it: 429 until the 1st"),
        json_schema_extra={"flag": "chars-per-month"})


class KeyEntry(Config):
    section = "key"
    name: str = Field(description="who the key belongs to; shown in usage and metrics")
    sha256: str = Field(description="hex SHA-256 of the key")
    enabled: bool = True
    limits: KeyLimits = KeyLimits()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.fullmatch(value):
            raise ValueError("must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{64}", value):
            raise ValueError("must be 64 lowercase hex digits (the SHA-256 of the key, not the key)")
        return value


class KeysFile(Config):
    section = "keys file"
    keys: tuple[KeyEntry, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> KeysFile:
        for field in ("name", "sha256"):
            seen: set[str] = set()
            for entry in self.keys:
                value = getattr(entry, field)
                if value in seen:
                    shown = value if field == "name" else value[:12] + "…"
                    raise ValueError(f"duplicate key {field} {shown!r}; each key needs its own")
                seen.add(value)
        return self

    def by_hash(self) -> dict[str, KeyEntry]:
        return {entry.sha256: entry for entry in self.keys}

    def get(self, name: str) -> KeyEntry | None:
        return next((entry for entry in self.keys if entry.name == name), None)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_keys(path: Path) -> KeysFile:
    """Raises: ConfigError (one line naming the file) when it is missing, not YAML, or holds bad entries."""
    if not path.is_file():
        raise ConfigError(f"keys file {path} not found; create it with: xplus-serve keys add NAME --file {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"keys file {path} is not valid YAML{where}; fix it or restore it from a backup") from None
    if not isinstance(data, dict):
        raise ConfigError(f"keys file {path} must hold a mapping with a 'keys' list, not {type(data).__name__}")
    try:
        return KeysFile.build(data)
    except ConfigError as err:
        raise ConfigError(f"keys file {path}: {err}") from None


def save_keys(path: Path, keys: KeysFile) -> None:
    """Write ``keys`` to ``path`` through a temporary file in the same folder, flushed, then renamed."""
    text = HEADER + yaml.safe_dump({"keys": [entry.model_dump(exclude_none=True) for entry in keys.keys]},
                                  sort_keys=False)  # exclude_none: a quota not set is not written
    write_atomic(path, text, mode=0o600)  # hashes only, but nobody else needs to read who has keys


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of the keys file between ``keys`` commands run at the same time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def usage_path(keys_path: Path) -> Path:
    """The usage database beside the keys file: ``keys.yaml`` -> ``keys.usage.sqlite``."""
    return keys_path.with_name(f"{keys_path.stem}.usage.sqlite")


class KeyRing:
    """The keys file as the running server sees it: reloaded when its mtime, size or inode change (checked at
    most once per ``RELOAD_EVERY_S``, on the request path: one ``stat``), the last good keys kept when a new
    version does not load."""

    def __init__(self, path: Path, clock=time.monotonic):
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self.keys = load_keys(path)
        self._hashes = self.keys.by_hash()
        self._signature = self._stat()
        self._checked = clock()

    def find(self, key: str) -> KeyEntry | None:
        """The enabled entry whose hash is the key's, or None."""
        self.refresh()
        entry = self._hashes.get(hash_key(key))
        return entry if entry is not None and entry.enabled else None

    def entry(self, name: str) -> KeyEntry | None:
        """The enabled entry named ``name`` (a session cookie names its key), or None."""
        self.refresh()
        entry = self.keys.get(name)
        return entry if entry is not None and entry.enabled else None

    def refresh(self) -> None:
        now = self._clock()
        if now - self._checked < RELOAD_EVERY_S:
            return
        with self._lock:
            self._checked = now
            signature = self._stat()
            if signature == self._signature:
                return
            self._signature = signature
            try:
                keys = load_keys(self.path)
            except ConfigError as err:
                log.error("keeping the previous %d key(s): %s", len(self.keys.keys), err)
                return
            self.keys, self._hashes = keys, keys.by_hash()
            log.info("keys file %s reloaded: %d key(s), %d enabled", self.path, len(keys.keys),
                     sum(e.enabled for e in keys.keys))

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino


class SingleKey:
    """``--api-key KEY``: one key, named ``default``, without limits or usage records."""

    def __init__(self, key: str):
        self.only = KeyEntry(name="default", sha256=hash_key(key))

    def find(self, key: str) -> KeyEntry | None:
        return self.only if hmac.compare_digest(hash_key(key), self.only.sha256) else None

    def entry(self, name: str) -> KeyEntry | None:
        return self.only if name == self.only.name else None
