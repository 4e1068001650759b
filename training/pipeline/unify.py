"""Step 1, unify: read every input format and write pair-record shards (``records.py``).

Formats (``format:`` of an input in the pipeline YAML):

- ``nllb``: the allenai/nllb files (``eng_Latn-zho_Hans.gz``): gzipped TSV rows ``source, target,
  laser_score, source_lid, target_lid`` optionally followed by ``source_source, source_url,
  target_source, target_url``; the numbers and sources go into the provenance.
- ``opus100``: OPUS-100 parquet with a ``translation: {lang: text}`` column.
- ``tsv``: plain ``source<TAB>target`` lines (``columns:`` picks other columns), optionally gzipped.
- ``moses``: two aligned plain-text files (``src_path``, ``trg_path``), one sentence per line.
- ``jsonl``: objects with ``src_line`` and ``tgt_line`` (and ``src``/``trg`` unless the input sets them).

A malformed line (invalid UTF-8, wrong column count, bad JSON, a missing field, unaligned Moses files) is
counted, written to ``malformed/<input>.jsonl`` with its reason and never stops the run unless the
input's share of malformed lines exceeds the error budget.

``UnifyReader`` is the datatrove step: rank *r* reads inputs r, r+n, ... and yields pair documents in
shards of ``shard_size`` (``<input>-<n>``, ids ``<shard>:<line in shard>``).
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from datatrove.data import Document
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from pydantic import Field, model_validator

from xplus_release.config import Config
from xplus_release.errors import UnknownLanguageError
from xplus_release.languages import find_language, get_language
from xplus_release.training.pipeline.records import PipelineDataError, encode_line, pair_document

FORMATS = ("nllb", "opus100", "tsv", "moses", "jsonl")
_NLLB_NAME = re.compile(r"([a-z]{3}_[A-Z][a-z]{3})-([a-z]{3}_[A-Z][a-z]{3})")


class InputSpec(Config):
    section = "input"
    yaml_keys = True

    # described for the flags of ``xplus-data unify`` (its positional input is ``path``)
    format: Literal[FORMATS] = Field(description="input format")
    path: str | None = None
    src_path: str | None = Field(None, description="moses: the source-side file")
    trg_path: str | None = Field(None, description="moses: the target-side file")
    src: str | None = Field(None, description="source language code (any of en, eng_Latn, English ...)")
    trg: str | None = Field(None, description="target language code")
    name: str | None = None
    columns: list[int] = Field(default_factory=lambda: [0, 1])

    @model_validator(mode="before")
    @classmethod
    def _complete(cls, values: Any) -> Any:
        """Languages from an NLLB file name, as short codes; the name from the file name.

        Raises:
            UnknownLanguageError: src or trg is not a language the package knows.
        """
        if not isinstance(values, dict) or values.get("format") not in FORMATS or set(values) - set(cls.model_fields):
            return values  # the field checks say what is wrong
        spec = dict(values)
        if spec["format"] == "moses":
            if not (spec.get("src_path") and spec.get("trg_path")):
                raise ValueError("a moses input needs src_path and trg_path (two aligned files)")
        elif not spec.get("path"):
            raise ValueError(f"a {spec['format']} input needs path")
        if spec["format"] == "nllb" and not (spec.get("src") and spec.get("trg")):
            match = _NLLB_NAME.search(Path(spec["path"]).name)
            if not match:
                raise ValueError(f"cannot tell the languages of {spec['path']} from its name; set src and trg")
            spec["src"], spec["trg"] = match.groups()
        if spec["format"] != "jsonl" and not (spec.get("src") and spec.get("trg")):
            raise ValueError(f"input {spec.get('path') or spec['src_path']} needs src and trg language codes")
        for side in ("src", "trg"):
            spec[side] = get_language(spec[side]).code if spec.get(side) else None
        if spec.get("name") is None:
            stem = Path(spec.get("path") or spec["src_path"]).name.split(".")[0]
            spec["name"] = re.sub(r"[^A-Za-z0-9_-]+", "-", stem)
        return spec

    def files(self) -> list[Path]:
        return [Path(p).expanduser() for p in (self.path, self.src_path, self.trg_path) if p]


@dataclass
class Row:
    """One line of an input: a pair (``bad`` is None) or a malformed line (``bad`` is the reason)."""

    line: int
    src_text: str = ""
    tgt_text: str = ""
    src: str | None = None
    trg: str | None = None
    extra: dict = field(default_factory=dict)
    bad: str | None = None
    raw: str = ""


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _decoded_lines(path: Path) -> Iterator[tuple[int, str | None, str]]:
    """(line number, text or None when not UTF-8, printable raw) for each line."""
    with _open_binary(path) as handle:
        for number, raw in enumerate(handle, 1):
            raw = raw.rstrip(b"\r\n")
            try:
                yield number, raw.decode("utf-8"), ""
            except UnicodeDecodeError:
                yield number, None, raw.decode("utf-8", "backslashreplace")


def _tsv_rows(
    spec: InputSpec, expected_columns: tuple[int, ...] | None = None
) -> Iterator[tuple[int, list[str] | None, Row | None]]:
    for number, text, raw in _decoded_lines(spec.files()[0]):
        if text is None:
            yield number, None, Row(number, bad="invalid_utf8", raw=raw)
            continue
        cells = text.split("\t")
        fits = len(cells) in expected_columns if expected_columns else len(cells) > max(spec.columns)
        if fits:
            yield number, cells, None
        else:
            yield number, None, Row(number, bad="wrong_column_count", raw=text)


def read_tsv(spec: InputSpec) -> Iterator[Row]:
    src_col, tgt_col = spec.columns
    for number, cells, bad in _tsv_rows(spec):
        yield bad or Row(number, cells[src_col], cells[tgt_col])


NLLB_EXTRA = ("source_source", "source_url", "target_source", "target_url")


def read_nllb(spec: InputSpec) -> Iterator[Row]:
    for number, cells, bad in _tsv_rows(spec, expected_columns=(5, 9)):
        if bad:
            yield bad
            continue
        try:
            extra = {
                "laser_score": float(cells[2]),
                "source_lid": float(cells[3]),
                "target_lid": float(cells[4]),
            }
        except ValueError:
            yield Row(number, bad="bad_number", raw="\t".join(cells))
            continue
        extra.update(zip(NLLB_EXTRA, cells[5:]))
        yield Row(number, cells[0], cells[1], extra=extra)


def read_opus100(spec: InputSpec) -> Iterator[Row]:
    import pyarrow.parquet as pq

    number = 0
    for batch in pq.ParquetFile(spec.files()[0]).iter_batches(columns=["translation"], batch_size=8192):
        for item in batch.column(0).to_pylist():
            number += 1
            texts = {lang.code: v for k, v in (item or {}).items() if (lang := find_language(k))}
            if not isinstance(texts.get(spec.src), str) or not isinstance(texts.get(spec.trg), str):
                yield Row(number, bad="missing_language", raw=json.dumps(item, ensure_ascii=False))
            else:
                yield Row(number, texts[spec.src], texts[spec.trg])


def read_moses(spec: InputSpec) -> Iterator[Row]:
    src_path, trg_path = spec.files()
    pairs = itertools.zip_longest(_decoded_lines(src_path), _decoded_lines(trg_path))
    for src_line, trg_line in pairs:
        number = (src_line or trg_line)[0]
        if src_line is None or trg_line is None:
            yield Row(number, bad="line_count_mismatch", raw=(src_line or trg_line)[1] or "")
        elif src_line[1] is None or trg_line[1] is None:
            yield Row(
                number, bad="invalid_utf8", raw=f"{src_line[2] or src_line[1]}\t{trg_line[2] or trg_line[1]}"
            )
        else:
            yield Row(number, src_line[1], trg_line[1])


def read_jsonl(spec: InputSpec) -> Iterator[Row]:
    for number, text, raw in _decoded_lines(spec.files()[0]):
        if text is None:
            yield Row(number, bad="invalid_utf8", raw=raw)
            continue
        try:
            item = json.loads(text)
        except json.JSONDecodeError:
            yield Row(number, bad="bad_json", raw=text)
            continue
        yield _jsonl_row(number, item, spec, text)


def _jsonl_row(number: int, item, spec: InputSpec, text: str) -> Row:
    if (
        not isinstance(item, dict)
        or not isinstance(item.get("src_line"), str)
        or not isinstance(item.get("tgt_line"), str)
    ):
        return Row(number, bad="missing_field", raw=text)
    try:
        src = get_language(item.get("src") or spec.src or "").code
        trg = get_language(item.get("trg") or spec.trg or "").code
    except UnknownLanguageError:
        return Row(number, bad="unknown_language", raw=text)
    extra = item.get("provenance") if isinstance(item.get("provenance"), dict) else {}
    return Row(number, item["src_line"], item["tgt_line"], src=src, trg=trg, extra=extra)


READERS = {
    "nllb": read_nllb,
    "opus100": read_opus100,
    "tsv": read_tsv,
    "moses": read_moses,
    "jsonl": read_jsonl,
}


def row_document(row: Row, spec: InputSpec, shard: str, index: int) -> Document:
    provenance = {"source": spec.name, "format": spec.format, "file": str(spec.files()[0]), "line": row.line}
    record = {"id": f"{shard}:{index}", "src": row.src or spec.src, "trg": row.trg or spec.trg,
              "src_line": row.src_text, "tgt_line": row.tgt_text, "provenance": {**provenance, **row.extra}}
    return pair_document(record, shard, index)


class UnifyReader(PipelineStep):
    """Counts ``total`` lines, ``forwarded`` pairs, ``pairs_<src>-<trg>`` and ``malformed_<reason>``. Raises
    PipelineDataError: an input's malformed share is over ``error_budget`` (``PipelineRun`` checks first that
    every input file exists)."""

    name = "unify"
    type = "📖 - READER"

    def __init__(self, inputs: list[InputSpec], step_folder: str, shard_size: int, error_budget: float):
        super().__init__()
        self.inputs, self.shard_size, self.error_budget = inputs, shard_size, error_budget
        self.folder = get_datafolder(step_folder)

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        for spec in self.inputs[rank::world_size]:
            yield from self._read(spec)

    def _read(self, spec: InputSpec):
        good, bad = 0, {}
        with self.folder.open(f"malformed/{spec.name}.jsonl", "wb") as malformed:
            for row in READERS[spec.format](spec):  # the runner checked that its files exist
                self.stat_update("total")
                if row.bad:
                    bad[row.bad] = bad.get(row.bad, 0) + 1
                    self.stat_update(f"malformed_{row.bad}")
                    where = f"{spec.files()[0]}:{row.line}"
                    malformed.write(encode_line({"reason": row.bad, "where": where, "raw": row.raw}))
                    continue
                shard = f"{spec.name}-{good // self.shard_size:05d}"
                doc, good = row_document(row, spec, shard, good % self.shard_size), good + 1
                self.stat_update("forwarded", f"pairs_{doc.metadata['src']}-{doc.metadata['trg']}")
                yield doc
        if (total_bad := sum(bad.values())) and total_bad > self.error_budget * (total_bad + good):
            reasons = ", ".join(f"{k}={v}" for k, v in sorted(bad.items(), key=lambda kv: -kv[1]))
            raise PipelineDataError(
                f"input {spec.name}: {total_bad} of {total_bad + good} lines are malformed ({reasons}), "
                f"over the error budget {self.error_budget:g}; see "
                f"{self.folder.resolve_paths('malformed')}, fix the input or raise unify.error_budget"
            )
