"""Pairs as datatrove ``Document``s: ``text`` is the source side; ``metadata`` holds ``target``, ``src`` and
``trg`` (short language codes), ``provenance`` (input, format, file, line, and what the format carries),
``shard`` (the file it is read from and written to) and ``row`` (its line there). On disk::

    {"id": "nllb-en-zh-00000:17", "src": "en", "trg": "zh", "src_line": "...", "tgt_line": "...",
     "provenance": {"source": "nllb-en-zh", "format": "nllb", "file": "...", "line": 18, ...}}

``id`` (shard + line) is stable across reruns. Drops: ``{"reason": ..., <detail>, "record": <the pair>}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO

import orjson
from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers.base import BaseDiskReader
from datatrove.pipeline.writers.jsonl import JsonlWriter
from loguru import logger

from xplus_release.errors import XPlusError

logger.disable("datatrove.pipeline.writers.disk_base")  # "no ${rank} in the file name": shards are per rank


class PipelineDataError(XPlusError):
    """Input data the pipeline cannot use: too many malformed lines (over the error budget), a shard that
    is not JSONL, an input file that does not exist."""


def encode_line(record: dict) -> bytes:
    try:
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:  # lone surrogates (from "\ud800" escapes) until clean removes them
        return (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")


def decode_line(line: bytes):
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:  # orjson refuses escaped lone surrogates; json reads them
        return json.loads(line)


def pair_document(record: dict, shard: str, row: int) -> Document:
    return Document(
        text=record["src_line"],
        id=record["id"],
        metadata={
            "src": record["src"],
            "trg": record["trg"],
            "target": record["tgt_line"],
            "provenance": record.get("provenance", {}),
            "shard": shard,
            "row": row,
        },
    )


def pair_record(doc: Document) -> dict:
    meta = doc.metadata
    return {
        "id": doc.id,
        "src": meta["src"],
        "trg": meta["trg"],
        "src_line": doc.text,
        "tgt_line": meta["target"],
        "provenance": meta["provenance"],
    }


def pair_name(doc: Document) -> str:
    return f"{doc.metadata['src']}-{doc.metadata['trg']}"


class PairStats:
    """Mixin for the pipeline's datatrove steps: counts summed per rank, handed to datatrove's stats when the
    step's generator ends (a ``MetricStats`` update per pair and label cost more than clean's own work; the
    report reads totals), no per-document length stats. Filters define ``filter`` or ``filter_batch``."""

    def stat_update(self, *labels, value: int = 1, unit: str | None = None) -> None:
        counts = self.__dict__.setdefault("_counts", {})
        for label in labels:
            counts[label] = counts.get(label, 0) + value

    def run(self, data, rank: int = 0, world_size: int = 1):
        try:
            yield from super().run(data, rank, world_size)
        finally:
            for label, total in self.__dict__.pop("_counts", {}).items():
                PipelineStep.stat_update(self, label, value=total)

    def update_doc_stats(self, document: Document) -> None:
        pass

    def filter(self, doc: Document):
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch: list[Document]) -> list:
        return [self.filter(doc) for doc in batch]


class PairReader(PairStats, BaseDiskReader):
    """The pair shards of a step folder (``*.jsonl``, not its subfolders), files ``rank::world_size``. Not
    datatrove's ``JsonlReader``: it skips lines orjson cannot parse (lone surrogates before clean)."""

    name = "pairs"

    def __init__(self, data_folder):
        super().__init__(data_folder, recursive=False, glob_pattern="*.jsonl", add_file_path=False)

    def read_file(self, filepath: str) -> Iterator[Document]:
        shard = filepath.rsplit("/", 1)[-1].removesuffix(".jsonl")
        with self.data_folder.open(filepath, "rb") as handle:
            for row, line in enumerate(handle):
                try:
                    record = decode_line(line)
                except json.JSONDecodeError as err:
                    where = self.data_folder.resolve_paths(filepath)
                    raise PipelineDataError(
                        f"{where}:{row + 1} is not JSON ({err.msg}); delete its step folder to rebuild it"
                    ) from None
                yield pair_document(record, shard, row)

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if not self.data_folder.list_files(recursive=False, glob_pattern="*.jsonl"):
            return  # every pair was dropped upstream: nothing to read, nothing to write
        yield from super().run(data, rank, world_size)


class PairWriter(PairStats, JsonlWriter):
    """One JSONL file per shard (``<shard>.jsonl``), written with the pair-record (or drop, or chat) adapter
    and the stdlib encoder (orjson refuses the lone surrogates that clean is there to remove)."""

    name = "pairs"

    def __init__(self, output_folder, adapter=None):
        super().__init__(output_folder, output_filename="${shard}.jsonl", compression=None, adapter=adapter)

    def write(self, document: Document, rank: int = 0, **kwargs) -> None:
        name = f"{document.metadata['shard']}.jsonl"  # the template, without Template's cost per pair
        self._write(self.adapter(document), self.output_mg.get_file(name), name)
        self.stat_update("total")

    def _write(self, document: dict, file_handler: IO, _filename: str):
        file_handler.write(encode_line(document))


def record_adapter(writer, doc: Document) -> dict:
    return pair_record(doc)


def drop_adapter(writer, doc: Document) -> dict:
    reason = doc.metadata.get("filter_reason")
    return {"reason": reason, **doc.metadata.get("detail", {}), "record": pair_record(doc)}
