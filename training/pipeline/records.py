"""Pair records and the JSONL shards steps read and write.

A pair record is one JSON object per line::

    {"id": "nllb-en-zh-00000:17", "src": "en", "trg": "zh", "src_line": "...", "tgt_line": "...",
     "provenance": {"source": "nllb-en-zh", "format": "nllb", "file": "...", "line": 18, ...}}

``src``/``trg`` are the package's short language codes; ``id`` is unique within a run and stable across
reruns (shard name + line), so drops, caches and resumes can refer to it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Iterator

from xplus_release.errors import XPlusError


class PipelineDataError(XPlusError):
    """Input data the pipeline cannot use: too many malformed lines (over the error budget), a shard that
    is not JSONL, an input file that does not exist."""


REQUIRED_FIELDS = ("id", "src", "trg", "src_line", "tgt_line")


def dumps(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def read_records(path: Path) -> Iterator[dict]:
    """Records of a shard written by a previous step (those are always well formed).

    Raises:
        PipelineDataError: a line is not JSON (the shard was edited or truncated by hand).
    """
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as err:
                raise PipelineDataError(
                    f"{path}:{number} is not JSON ({err.msg}); delete this shard to have it rebuilt"
                ) from None


def batches(records: Iterable[dict], size: int) -> Iterator[list[dict]]:
    """Consecutive lists of ``size`` records (the last one shorter): how every step streams its input."""
    batch: list[dict] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class AtomicWriter:
    """A text file written under a temporary name and renamed on ``commit``: a shard either exists whole
    or not at all, which is what makes "the output exists" a safe resume test."""

    def __init__(self, path: Path):
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.tmp, "w", encoding="utf-8")
        self.count = 0

    def write(self, record: dict) -> None:
        try:
            self._handle.write(dumps(record) + "\n")
        except UnicodeEncodeError:  # lone surrogates (from "\ud800" escapes) until clean removes them
            self._handle.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.count += 1

    def commit(self) -> None:
        self._handle.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self._handle.close()
        self.tmp.unlink(missing_ok=True)


class ShardOutput:
    """The kept, dropped and malformed records of one shard of one step, committed together."""

    def __init__(self, kept: Path, drops: Path | None, malformed: Path | None = None):
        self.kept = AtomicWriter(kept)
        self.drops = AtomicWriter(drops) if drops else None
        self.malformed = AtomicWriter(malformed) if malformed else None

    def drop(self, record: dict, reason: str, **detail) -> None:
        if self.drops is not None:
            self.drops.write({"reason": reason, **detail, "record": record})

    def bad_line(self, reason: str, where: str, raw: str) -> None:
        if self.malformed is not None:
            self.malformed.write({"reason": reason, "where": where, "raw": raw})

    def _writers(self) -> list[AtomicWriter]:
        return [w for w in (self.drops, self.malformed, self.kept) if w is not None]

    def commit(self) -> None:
        for writer in self._writers():  # kept last: its presence marks the shard done
            writer.commit()

    def abort(self) -> None:
        for writer in self._writers():
            writer.abort()
