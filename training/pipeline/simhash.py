"""64-bit SimHash fingerprints and the permuted-table search for near-duplicate conflicts.

Definitions (the dedup step's contract):

- **Fingerprint.** 64 bits. Each feature (see ``tokens.simhash_features``) of the concatenated source
  and target is hashed to 64 bits: the polynomial hash of its code points modulo 2**64 (multiplier
  0x100000001B3), xor its length times 0x9E3779B97F4A7C15, through MurmurHash3's fmix64 (the same in
  every process and on every machine); bit *i* of the fingerprint is 1 when more than half of the
  feature hashes (counted with multiplicity) have bit *i* set.
- **Conflict.** Two samples of the same language pair conflict when their fingerprints differ in at
  most ``hamming`` bits (default 3, Manku et al. 2007). A sample's conflict count is the number of
  *earlier* samples (in the pair's global order: shard name, then line) it conflicts with, so the first
  members of a near-duplicate cluster survive and the order, not the sharding, decides which.
- **Permuted tables.** The 64 bits are cut into ``blocks`` contiguous blocks (default ``hamming + 2``).
  Two fingerprints within ``hamming`` bits agree exactly on at least ``blocks - hamming`` blocks, so for
  every choice of that many blocks (C(blocks, blocks - hamming) tables; 10 tables of 25-26-bit keys by
  default) the fingerprints are sorted by those bits, and only fingerprints with equal keys are compared.
  The search is exact: every pair within the threshold is found.
"""

from __future__ import annotations

import itertools
import unicodedata
from functools import lru_cache

import numpy as np

from xplus_release.training.pipeline.simhash_kernel import (
    PUNCTUATION,
    SENTINEL,
    SPACE,
    fingerprint_batch,
)
from xplus_release.training.pipeline.tokens import CHARACTER_LANGUAGES

FINGERPRINT_BITS = 64
_TABLE_SIZE = 0x20000  # punctuation and whitespace live in the first two planes


@lru_cache(maxsize=1)
def _char_kinds() -> np.ndarray:
    """Kind of each code point (TOKEN, PUNCTUATION, SPACE; 0 is the SENTINEL between texts), with the
    same definitions as ``tokens.tokenize``; code points past the table are token characters."""
    kinds = np.zeros(0x110000, dtype=np.uint8)  # every code point, so lookups need no clipping
    for cp in range(_TABLE_SIZE):
        ch = chr(cp)
        if unicodedata.category(ch).startswith("P"):
            kinds[cp] = PUNCTUATION
        elif ch.isspace():
            kinds[cp] = SPACE
    kinds[0] = SENTINEL
    return kinds


class BatchFeatures:
    """Token counts, SimHash fingerprints and exact-duplicate keys (``keys``: equal when both sides have
    the same token sequence) of a batch of pairs.

    The rule is ``tokens.tokenize`` + ``tokens.simhash_features`` exactly (the tests check it against
    them): case-fold, delete punctuation, split on whitespace (words) or take every non-space character
    (zh/ja/th, whose features are character bigrams, or the character itself when there is only one).
    Python joins the batch's texts into one code-point array; ``simhash_kernel`` does the rest in one
    compiled pass.
    """

    def __init__(
        self, src_texts: list[str], tgt_texts: list[str], src_langs: list[str], tgt_langs: list[str]
    ):
        self.size = n = len(src_texts)
        texts = [""] * (2 * n)  # source, target, source, ... (slice assignment: no per-pair Python)
        texts[0::2], texts[1::2] = src_texts, tgt_texts
        joined = "\x00".join(texts).casefold() + "\x00"
        if n and joined.count("\x00") != 2 * n:  # a NUL inside a text would shift the sides
            joined = "\x00".join(t.replace("\x00", " ") for t in texts).casefold() + "\x00"
        cps = np.frombuffer(joined.encode("utf-32-le", errors="replace"), dtype=np.uint32)
        character_text = np.empty(2 * n, dtype=bool)
        character_text[0::2] = [lang in CHARACTER_LANGUAGES for lang in src_langs]
        character_text[1::2] = [lang in CHARACTER_LANGUAGES for lang in tgt_langs]
        self.token_counts, self._fingerprints, self.keys = fingerprint_batch(
            cps, _char_kinds(), character_text, n
        )

    def fingerprints(self) -> np.ndarray:
        """SimHash per pair (0 for a pair without features): bit i set when more than half of the pair's
        feature hashes (counted with multiplicity) have it."""
        return self._fingerprints.copy()


def table_blocks(hamming: int, blocks: int) -> list[list[tuple[int, int]]]:
    """For each permuted table, the (start, width) bit ranges of its ``blocks - hamming`` key blocks."""
    if not 0 <= hamming < blocks <= FINGERPRINT_BITS:
        raise ValueError(f"need 0 <= hamming < blocks <= 64, got hamming={hamming}, blocks={blocks}")
    edges = np.linspace(0, FINGERPRINT_BITS, blocks + 1).round().astype(int)
    ranges = [(int(edges[i]), int(edges[i + 1] - edges[i])) for i in range(blocks)]
    return [[ranges[i] for i in combo] for combo in itertools.combinations(range(blocks), blocks - hamming)]


def _table_key(fps: np.ndarray, key_blocks: list[tuple[int, int]]) -> tuple[np.ndarray, int]:
    """The table's key bits moved next to each other (so key and sample index fit one uint64)."""
    key = np.zeros(len(fps), dtype=np.uint64)
    width_total = 0
    for start, width in key_blocks:
        block = (fps >> np.uint64(start)) & np.uint64((1 << width) - 1)
        key |= block << np.uint64(width_total)
        width_total += width
    return key, width_total


def _sorted_by_key(fps: np.ndarray, key_blocks) -> tuple[np.ndarray, np.ndarray]:
    """(sorted keys, sample order). Packing key and index into one uint64 lets numpy's plain sort, several
    times faster than argsort, do the work whenever both fit in 64 bits."""
    key, key_bits = _table_key(fps, key_blocks)
    index_bits = max(1, int(len(fps) - 1).bit_length())
    if key_bits + index_bits <= 64:
        packed = key  # in place: at 1M fingerprints every extra copy is another 8 MB
        packed <<= np.uint64(index_bits)
        packed |= np.arange(len(fps), dtype=np.uint64)
        packed.sort()
        order = (packed & np.uint64((1 << index_bits) - 1)).astype(np.int64)
        packed >>= np.uint64(index_bits)
        return packed, order
    order = np.argsort(key)
    return key[order], order


def _block_mask(key_blocks: list[tuple[int, int]]) -> np.uint64:
    """The table's key bits, in place."""
    return np.uint64(sum(((1 << width) - 1) << start for start, width in key_blocks))


def near_pairs(unique_fps: np.ndarray, hamming: int, blocks: int) -> np.ndarray:
    """Index pairs (i < j) of distinct fingerprints within ``hamming`` bits, shape (P, 2), sorted, each
    pair once.

    A close pair shares the keys of several tables; it is kept only from the first of them (its
    fingerprints differ on every earlier table's key bits), so no table's finds are kept twice and no
    sort-and-unique over all finds (several times the index at 1M fingerprints) is needed."""
    n = len(unique_fps)
    found = [np.zeros(0, dtype=np.int64)]  # pair (i, j) packed as i * n + j
    earlier_masks: list[np.uint64] = []
    for key_blocks in table_blocks(hamming, blocks):
        sorted_keys, order = _sorted_by_key(unique_fps, key_blocks)
        active = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
        offset = 1
        while active.size:  # compare each fingerprint with the ones `offset` places later in its key run
            a, b = order[active], order[active + offset]
            diff = unique_fps[a] ^ unique_fps[b]
            keep = np.bitwise_count(diff) <= hamming
            for mask in earlier_masks:
                keep &= (diff & mask) != 0
            a, b = a[keep], b[keep]
            found.append(np.minimum(a, b) * n + np.maximum(a, b))
            offset += 1
            active = active[active + offset < len(order)]
            active = active[sorted_keys[active] == sorted_keys[active + offset]]
        earlier_masks.append(_block_mask(key_blocks))
    packed = np.sort(np.concatenate(found))
    return np.stack([packed // n, packed % n], axis=1)


def earlier_conflicts(fps: np.ndarray, hamming: int = 3, blocks: int | None = None) -> np.ndarray:
    """For each sample, how many earlier samples (lower index) conflict with it (see module docstring).

    Memory is a few arrays the size of ``fps`` plus the conflicting pairs: the index, never the texts.
    """
    blocks = hamming + 2 if blocks is None else blocks
    n = len(fps)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(fps, kind="stable")  # samples grouped by fingerprint, in index order
    sorted_fps = fps[order]
    is_first = np.concatenate(([True], sorted_fps[1:] != sorted_fps[:-1]))
    group_start = np.flatnonzero(is_first)
    unique_fps = sorted_fps[group_start]
    counts = np.diff(np.append(group_start, n))
    sorted_group = np.cumsum(is_first) - 1  # fingerprint group of each sorted position
    del sorted_fps, is_first  # the table search below is the memory peak: hold only what is needed
    conflicts = np.empty(n, dtype=np.int64)
    conflicts[order] = np.arange(n) - group_start[sorted_group]  # exact copies seen before
    del sorted_group
    pairs = near_pairs(unique_fps, hamming, blocks)
    if len(pairs):
        sorted_keys = np.repeat(np.arange(len(counts), dtype=np.int64), counts) * n + order
        for src, dst in ((pairs[:, 0], pairs[:, 1]), (pairs[:, 1], pairs[:, 0])):
            _add_earlier_from(conflicts, src, dst, counts, group_start, order, sorted_keys, n)
    return conflicts


def _add_earlier_from(conflicts, src, dst, counts, group_start, order, sorted_keys, n) -> None:
    """For every sample whose fingerprint is ``dst[e]``, add the samples with fingerprint ``src[e]``
    that come before it."""
    reps = counts[dst]
    edge = np.repeat(np.arange(len(dst)), reps)
    within = np.arange(len(edge)) - np.repeat(np.cumsum(reps) - reps, reps)
    positions = order[group_start[dst[edge]] + within]
    source = src[edge].astype(np.int64)
    before = np.searchsorted(sorted_keys, source * n + positions) - group_start[source]
    np.add.at(conflicts, positions, before)
