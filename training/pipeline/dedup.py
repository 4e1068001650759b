"""Step 3, deduplicate per language pair: the length rules, then SimHash conflicts (see ``simhash`` for
what a conflict is and ``tokens`` for the tokenisation rule of every language).

The step runs in three phases so that it is exact across shards and its memory is bounded by the index
(12 bytes per pair), never the corpus:

1. ``fingerprint_shard`` (per shard, parallel): tokens, the length rules, the 64-bit fingerprint of the
   concatenated source and target features; saved as ``<shard>.npz``.
2. ``count_conflicts`` (per language pair, over every shard in order): earlier conflicts of each pair.
3. ``filter_shard`` (per shard, parallel): drops ``too_few_tokens``, ``length_ratio`` and
   ``simhash_conflicts`` (more than ``max_conflicts`` earlier conflicts).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from xplus_release.training.pipeline.simhash import BatchFeatures, earlier_conflicts
from xplus_release.training.pipeline.records import batches

from xplus_release.errors import ConfigError

STATUS_OK, STATUS_TOO_FEW, STATUS_RATIO = 0, 1, 2
STATUS_REASONS = {STATUS_TOO_FEW: "too_few_tokens", STATUS_RATIO: "length_ratio"}
NOT_INDEXED = -1


@dataclass
class DedupConfig:
    min_tokens: int = 2  # pairs with fewer tokens on either side are dropped
    min_length_ratio: float = 0.3  # shorter side / longer side, in tokens
    hamming: int = 3  # fingerprints within this many bits conflict
    blocks: int | None = None  # permuted-table blocks (default hamming + 2)
    max_conflicts: int = 2  # the paper deletes samples with more than 2 conflicts

    def __post_init__(self):
        blocks = self.hamming + 2 if self.blocks is None else self.blocks
        if not 0 <= self.hamming < blocks <= 64:
            raise ConfigError(
                f"dedup needs 0 <= hamming < blocks <= 64 (hamming={self.hamming}, blocks={blocks})"
            )
        if not 0 <= self.min_length_ratio <= 1:
            raise ConfigError(f"dedup.min_length_ratio must be within [0, 1], not {self.min_length_ratio}")


def length_status(
    src_counts: np.ndarray, tgt_counts: np.ndarray, min_tokens: np.ndarray, min_ratio: np.ndarray
) -> np.ndarray:
    """Status of each pair under the length rules, from its token counts."""
    shorter, longer = np.minimum(src_counts, tgt_counts), np.maximum(src_counts, tgt_counts)
    status = np.full(len(shorter), STATUS_OK, dtype=np.int8)
    status[shorter < min_ratio * longer] = STATUS_RATIO
    status[shorter < min_tokens] = STATUS_TOO_FEW
    return status


def _index_batch(batch: list[dict], configs_by_pair) -> tuple[np.ndarray, list[str], np.ndarray]:
    pairs = [f"{r['src']}-{r['trg']}" for r in batch]
    configs = [configs_by_pair(p) for p in pairs]
    features = BatchFeatures(
        [r["src_line"] for r in batch],
        [r["tgt_line"] for r in batch],
        [r["src"] for r in batch],
        [r["trg"] for r in batch],
    )
    counts = features.token_counts
    status = length_status(
        counts[:, 0],
        counts[:, 1],
        np.array([c.min_tokens for c in configs]),
        np.array([c.min_length_ratio for c in configs]),
    )
    fps = features.fingerprints()
    fps[status != STATUS_OK] = 0
    return status, pairs, fps


def shard_index(records: Iterable[dict], configs_by_pair, batch_size: int = 8192) -> dict[str, np.ndarray]:
    """Phase 1 on one shard's records: status, pair name and fingerprint of every record, in order.
    ``configs_by_pair("en-zh")`` is the pair's ``DedupConfig`` (its length rules)."""
    statuses, pairs, fps = [], [], []
    for batch in batches(records, batch_size):
        status, batch_pairs, batch_fps = _index_batch(batch, configs_by_pair)
        statuses.append(status)
        pairs += batch_pairs
        fps.append(batch_fps)
    return {
        "status": np.concatenate(statuses or [np.zeros(0, np.int8)]),
        "pair": np.array(pairs, dtype=str),
        "fingerprint": np.concatenate(fps or [np.zeros(0, np.uint64)]),
    }




def save_index(path: Path, index: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **index)
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)


def load_index(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def count_conflicts(index_paths: list[Path], configs_by_pair, out_dir: Path) -> dict[str, dict]:
    """Phase 2: for every shard (in the given global order) write ``<shard>.conflicts.npy``: earlier
    conflicts per record, ``NOT_INDEXED`` for records the length rules dropped. Returns per-pair counts."""
    indexes = [load_index(p) for p in index_paths]
    conflicts = [np.full(len(ix["status"]), NOT_INDEXED, dtype=np.int32) for ix in indexes]
    all_pairs = sorted({str(p) for ix in indexes for p in np.unique(ix["pair"])})
    summary = {}
    for pair in all_pairs:
        config = configs_by_pair(pair)
        masks = [(ix["pair"] == pair) & (ix["status"] == STATUS_OK) for ix in indexes]
        fps = np.concatenate(
            [ix["fingerprint"][m] for ix, m in zip(indexes, masks)] or [np.zeros(0, np.uint64)]
        )
        counts = earlier_conflicts(fps, config.hamming, config.blocks)
        offset = 0
        for mask, shard_conflicts in zip(masks, conflicts):
            n = int(mask.sum())
            shard_conflicts[mask] = counts[offset : offset + n]
            offset += n
        summary[pair] = {
            "indexed": int(len(fps)),
            "with_conflicts": int((counts > 0).sum()),
            "over_limit": int((counts > config.max_conflicts).sum()),
        }
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, shard_conflicts in zip(index_paths, conflicts):
        target = conflicts_path(path)
        tmp = target.with_name(f".{target.name}.tmp.npy")
        np.save(tmp, shard_conflicts)
        os.replace(tmp, target)
    return summary


def conflicts_path(index_path: Path) -> Path:
    return index_path.with_name(index_path.name.replace(".npz", ".conflicts.npy"))


def filter_shard(
    records: Iterable[dict], index: dict[str, np.ndarray], conflicts: np.ndarray, configs_by_pair
) -> Iterator[tuple[dict, str | None, dict]]:
    """Phase 3: yield ``(record, reason or None, detail)`` for one shard."""
    for row, record in enumerate(records):
        status = int(index["status"][row])
        if status != STATUS_OK:
            yield record, STATUS_REASONS[status], {}
            continue
        count = int(conflicts[row])
        config = configs_by_pair(str(index["pair"][row]))
        if count > config.max_conflicts:
            yield (
                record,
                "simhash_conflicts",
                {"conflicts": count, "fingerprint": f"{int(index['fingerprint'][row]):016x}"},
            )
        else:
            yield record, None, {}
