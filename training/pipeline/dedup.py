"""Step 3, deduplicate per language pair: the length rules, exact duplicates, then SimHash conflicts (see
``simhash`` for what a conflict is and ``tokens`` for the tokenisation rule of every language).

Staged like datatrove's own MinHash dedup, so that it is exact across shards and its memory is bounded by
the index (a few dozen bytes per pair), never the corpus:

1. ``DedupSignatures`` (every rank, its shards): tokens, the length rules, the 64-bit SimHash of the
   concatenated source and target features and the exact-duplicate key; ``index/<shard>.npz``.
2. ``DedupConflicts`` (one task, every shard of every pair in global order: shard name, then line):
   which pairs are exact duplicates, and the earlier conflicts of each other pair; ``<shard>.conflicts.npy``.
3. ``DedupFilter`` (every rank): drops ``too_few_tokens``, ``length_ratio``, ``exact_duplicate`` and
   ``simhash_conflicts`` (more than ``max_conflicts`` earlier conflicts).

Exact duplicates (the same tokens in the same order on each side, i.e. equal after case folding,
punctuation removal and whitespace normalisation). ``exact_duplicates: keep_first`` (default) keeps the
first copy and drops the others before the SimHash rule, which then counts conflicts among the kept pairs.
``paper`` reads the paper literally ("deleting those with more than 2 conflicts"): a copy is one more
conflict, so up to two copies of a pair survive beside it.
"""

from __future__ import annotations

import io
import itertools
from typing import Literal

import numpy as np
from datatrove.data import Document
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.utils.batching import batched
from pydantic import Field, model_validator

from xplus_release.config import Config
from xplus_release.training.pipeline.records import PairStats, pair_name
from xplus_release.training.pipeline.simhash import BatchFeatures, earlier_conflicts

STATUS_OK, STATUS_TOO_FEW, STATUS_RATIO = 0, 1, 2
STATUS_REASONS = {STATUS_TOO_FEW: "too_few_tokens", STATUS_RATIO: "length_ratio"}
NOT_INDEXED, EXACT_DUPLICATE = -1, -2


class DedupConfig(Config):
    section = "dedup"
    yaml_keys = True

    min_tokens: int = 2  # pairs with fewer tokens on either side are dropped
    min_length_ratio: float = Field(0.3, ge=0, le=1)  # shorter side / longer side, in tokens
    hamming: int = 3  # fingerprints within this many bits conflict
    blocks: int | None = None  # permuted-table blocks (default hamming + 2)
    max_conflicts: int = 2  # the paper deletes samples with more than 2 conflicts
    # keep_first: one copy survives; paper: copies are conflicts
    exact_duplicates: Literal["keep_first", "paper"] = "keep_first"

    @model_validator(mode="after")
    def _blocks_hold_hamming(self) -> DedupConfig:
        blocks = self.hamming + 2 if self.blocks is None else self.blocks
        if not 0 <= self.hamming < blocks <= 64:
            raise ValueError(f"dedup needs 0 <= hamming < blocks <= 64 (hamming={self.hamming}, blocks={blocks})")
        return self


def length_status(
    src_counts: np.ndarray, tgt_counts: np.ndarray, min_tokens: np.ndarray, min_ratio: np.ndarray
) -> np.ndarray:
    """Status of each pair under the length rules, from its token counts."""
    shorter, longer = np.minimum(src_counts, tgt_counts), np.maximum(src_counts, tgt_counts)
    status = np.full(len(shorter), STATUS_OK, dtype=np.int8)
    status[shorter < min_ratio * longer] = STATUS_RATIO
    status[shorter < min_tokens] = STATUS_TOO_FEW
    return status


def _index_batch(batch: list[Document], configs) -> dict[str, np.ndarray]:
    pairs = [pair_name(d) for d in batch]
    pair_configs = [configs(p) for p in pairs]
    meta = [d.metadata for d in batch]
    features = BatchFeatures(
        [d.text for d in batch],
        [m["target"] for m in meta],
        [m["src"] for m in meta],
        [m["trg"] for m in meta],
    )
    counts = features.token_counts
    status = length_status(
        counts[:, 0],
        counts[:, 1],
        np.array([c.min_tokens for c in pair_configs]),
        np.array([c.min_length_ratio for c in pair_configs]),
    )
    fps = features.fingerprints()
    fps[status != STATUS_OK] = 0
    return {"status": status, "pair": np.array(pairs, dtype=str), "fingerprint": fps, "key": features.keys}


def shard_index(docs, configs, batch_size: int = 8192) -> dict[str, np.ndarray]:
    """Phase 1 on one shard's pairs: status, pair name, fingerprint and exact key of each, in order.
    ``configs("en-zh")`` is the pair's ``DedupConfig`` (its length rules)."""
    parts = [_index_batch(batch, configs) for batch in batched(docs, batch_size)]
    empty = {"status": np.int8, "pair": str, "fingerprint": np.uint64, "key": np.uint64}
    return {
        name: np.concatenate([p[name] for p in parts]) if parts else np.zeros(0, dtype)
        for name, dtype in empty.items()
    }


def first_copies(fps: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """True for each pair whose (fingerprint, key) no earlier pair has."""
    order = np.lexsort((keys, fps))  # stable: copies stay in global order
    sorted_fps, sorted_keys = fps[order], keys[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (sorted_fps[1:] != sorted_fps[:-1]) | (sorted_keys[1:] != sorted_keys[:-1])
    first = np.empty(len(order), dtype=bool)
    first[order] = new
    return first


def pair_conflicts(fps: np.ndarray, keys: np.ndarray, config: DedupConfig) -> np.ndarray:
    """Earlier conflicts of each pair of one language pair (``EXACT_DUPLICATE`` for a later copy when
    ``exact_duplicates`` is keep_first)."""
    if config.exact_duplicates == "paper":
        return earlier_conflicts(fps, config.hamming, config.blocks)
    first = first_copies(fps, keys)
    counts = np.full(len(fps), EXACT_DUPLICATE, dtype=np.int64)
    counts[first] = earlier_conflicts(fps[first], config.hamming, config.blocks)
    return counts


def count_conflicts(indexes: list[dict[str, np.ndarray]], configs) -> tuple[list[np.ndarray], dict]:
    """Phase 2 over every shard's index in global order: per shard, the earlier conflicts of each pair
    (``NOT_INDEXED`` where the length rules dropped it), and per language pair the counts."""
    conflicts = [np.full(len(ix["status"]), NOT_INDEXED, dtype=np.int64) for ix in indexes]
    summary = {}
    for pair in sorted({str(p) for ix in indexes for p in np.unique(ix["pair"])}):
        config = configs(pair)
        masks = [(ix["pair"] == pair) & (ix["status"] == STATUS_OK) for ix in indexes]
        fps = np.concatenate([ix["fingerprint"][m] for ix, m in zip(indexes, masks)])
        keys = np.concatenate([ix["key"][m] for ix, m in zip(indexes, masks)])
        counts = pair_conflicts(fps, keys, config)
        offsets = np.cumsum([0] + [int(m.sum()) for m in masks])
        for mask, shard_conflicts, start, end in zip(masks, conflicts, offsets, offsets[1:]):
            shard_conflicts[mask] = counts[start:end]
        summary[pair] = {
            "indexed": len(fps),
            "exact_duplicates": int((counts == EXACT_DUPLICATE).sum()),
            "over_limit": int((counts > config.max_conflicts).sum()),
        }
    return conflicts, summary


def _save_array(folder, name: str, save, value) -> None:
    with io.BytesIO() as buffer, folder.open(name, "wb") as handle:
        save(buffer, value)
        handle.write(buffer.getvalue())


def _load(folder, name: str):
    with folder.open(name, "rb") as handle:
        loaded = np.load(io.BytesIO(handle.read()))
    return {key: loaded[key] for key in loaded.files} if name.endswith(".npz") else loaded


class _IndexStep(PipelineStep):
    type = "xplus"

    def __init__(self, index_folder: str, configs):
        super().__init__()
        self.index_folder = get_datafolder(index_folder)
        self.configs = configs


class DedupSignatures(_IndexStep):
    """Phase 1: ``index/<shard>.npz`` for each shard of this rank."""

    name = "dedup-signatures"

    def run(self, data, rank: int = 0, world_size: int = 1):
        for shard, docs in itertools.groupby(data, key=lambda d: d.metadata["shard"]):
            with self.track_time():
                index = shard_index(docs, self.configs)
                _save_array(self.index_folder, f"{shard}.npz", lambda f, ix: np.savez(f, **ix), index)
            self.stat_update("total", value=len(index["status"]))
        yield from ()


class DedupConflicts(_IndexStep):
    """Phase 2 (one task): reads every shard's index, writes ``index/<shard>.conflicts.npy``."""

    name = "dedup-conflicts"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        names = sorted(self.index_folder.list_files(glob_pattern="*.npz"))
        indexes = [_load(self.index_folder, name) for name in names]
        with self.track_time():
            conflicts, summary = count_conflicts(indexes, self.configs)
        for name, shard_conflicts in zip(names, conflicts):
            _save_array(self.index_folder, name.replace(".npz", ".conflicts.npy"), np.save, shard_conflicts)
        for counts in summary.values():
            for label, value in counts.items():
                self.stat_update(label, value=value)
        yield from ()


class DedupFilter(PairStats, BaseFilter):
    """Phase 3: the verdict of each pair from its shard's index and conflicts."""

    name = "dedup"

    def __init__(self, index_folder: str, configs, exclusion_writer=None):
        super().__init__(exclusion_writer, batch_size=1024)
        self.index_folder = get_datafolder(index_folder)
        self.configs = configs
        self._shard, self._index, self._conflicts = None, None, None

    def filter(self, doc: Document):
        if (shard := doc.metadata["shard"]) != self._shard:  # a rank reads its shards one after another
            self._index = _load(self.index_folder, f"{shard}.npz")
            self._conflicts, self._shard = _load(self.index_folder, f"{shard}.conflicts.npy"), shard
        row = doc.metadata["row"]
        status = int(self._index["status"][row])
        if status != STATUS_OK:
            return False, STATUS_REASONS[status]
        count, fingerprint = int(self._conflicts[row]), f"{int(self._index['fingerprint'][row]):016x}"
        if count == EXACT_DUPLICATE:
            doc.metadata["detail"] = {"fingerprint": fingerprint}
            return False, "exact_duplicate"
        if count > self.configs(pair_name(doc)).max_conflicts:
            doc.metadata["detail"] = {"conflicts": count, "fingerprint": fingerprint}
            return False, "simhash_conflicts"
        return True
