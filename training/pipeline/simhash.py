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
from xplus_release.training.pipeline.tokens import CHARACTER_LANGUAGES

FINGERPRINT_BITS = 64
_TABLE_SIZE = 0x20000  # punctuation and whitespace live in the first two planes
_P = 0x100000001B3  # odd, so invertible modulo 2**64
_P_INV = pow(_P, -1, 2**64)
_LENGTH_MIX = 0x9E3779B97F4A7C15


TOKEN, PUNCTUATION, SPACE, SENTINEL = 0, 1, 2, 3


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


_POWERS: list[np.ndarray] = [np.ones(1, np.uint64), np.ones(1, np.uint64)]


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """P**i and P**-i modulo 2**64 for i < n (uint64 arithmetic wraps, which is the modulus we want)."""
    if len(_POWERS[0]) < n:
        size = max(n, 2 * len(_POWERS[0]))
        with np.errstate(over="ignore"):
            one = np.ones(1, np.uint64)
            _POWERS[0] = np.cumprod(np.concatenate((one, np.full(size - 1, _P, np.uint64))), dtype=np.uint64)
            _POWERS[1] = np.cumprod(
                np.concatenate((one, np.full(size - 1, _P_INV, np.uint64))), dtype=np.uint64
            )
    return _POWERS[0][:n], _POWERS[1][:n]


def fmix64(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser: spreads the polynomial hash over all 64 bits."""
    with np.errstate(over="ignore"):
        values = values ^ (values >> np.uint64(33))
        values = values * np.uint64(0xFF51AFD7ED558CCD)
        values = values ^ (values >> np.uint64(33))
        values = values * np.uint64(0xC4CEB9FE1A85EC53)
        return values ^ (values >> np.uint64(33))


def feature_hashes(cps: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Hash of each feature ``cps[start:end]``: fmix64(sum(cp_i * P**i) xor length * golden ratio)."""
    powers, inverse = _powers(len(cps) + 1)
    with np.errstate(over="ignore"):
        prefix = np.concatenate(
            (np.zeros(1, np.uint64), np.cumsum(cps.astype(np.uint64) * powers[: len(cps)], dtype=np.uint64))
        )
        raw = (prefix[ends] - prefix[starts]) * inverse[starts]
        lengths = (ends - starts).astype(np.uint64)
        return fmix64(raw ^ (lengths * np.uint64(_LENGTH_MIX)))


class BatchFeatures:
    """Token counts and SimHash fingerprints of a batch of pairs, computed on code-point arrays.

    The rule is ``tokens.tokenize`` + ``tokens.simhash_features`` exactly (the tests check it against
    them): case-fold, delete punctuation, split on whitespace (words) or take every non-space character
    (zh/ja/th, whose features are character bigrams, or the character itself when there is only one).
    Python touches each pair once (to join its texts); everything after is numpy over the whole batch.
    """

    def __init__(
        self, src_texts: list[str], tgt_texts: list[str], src_langs: list[str], tgt_langs: list[str]
    ):
        self.size = n = len(src_texts)
        texts = [t for pair in zip(src_texts, tgt_texts) for t in pair]
        joined = "\x00".join(texts).casefold() + "\x00"
        if n and joined.count("\x00") != 2 * n:  # a NUL inside a text would shift the sides
            joined = "\x00".join(t.replace("\x00", " ") for t in texts).casefold() + "\x00"
        cps = np.frombuffer(joined.encode("utf-32-le", errors="replace"), dtype=np.uint32)
        kinds = _char_kinds()[cps]
        keep = kinds != PUNCTUATION
        self.cps, kinds = cps[keep], kinds[keep]
        self.side_ends = np.flatnonzero(kinds == SENTINEL)  # text k (2i source, 2i+1 target) ends here
        char_side = np.array(
            [lang in CHARACTER_LANGUAGES for pair in zip(src_langs, tgt_langs) for lang in pair], dtype=bool
        )
        lengths = np.diff(self.side_ends, prepend=-1)
        self._sides = np.repeat(np.arange(2 * n, dtype=np.int32), lengths)  # the text each position is in
        on_char_side = char_side[self._sides]
        token_char = kinds == TOKEN
        self._word_features(token_char & ~on_char_side)
        self._char_features(np.flatnonzero(token_char & on_char_side))
        counts = np.bincount(self.word_sides, minlength=2 * n) + np.bincount(
            self._sides[self.chars], minlength=2 * n
        )
        self.token_counts = counts.reshape(n, 2)

    def _word_features(self, on_word: np.ndarray) -> None:
        edges = np.diff(on_word.view(np.int8), prepend=np.int8(0), append=np.int8(0))
        self.word_starts, word_ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        self.word_hashes = feature_hashes(self.cps, self.word_starts, word_ends)
        self.word_sides = self._sides[self.word_starts]
        self.word_pairs = self.word_sides // 2

    def _char_features(self, chars: np.ndarray) -> None:
        self.chars = chars
        sides = self._sides[chars]
        same_side = sides[:-1] == sides[1:]
        first = chars[:-1][same_side]
        single = (
            np.bincount(sides, minlength=2 * self.size)[sides] == 1
        )  # a one-character side: the character
        lonely = chars[single]
        codes = np.empty(2 * len(first) + len(lonely), np.uint32)
        codes[0 : 2 * len(first) : 2], codes[1 : 2 * len(first) : 2] = (
            self.cps[first],
            self.cps[chars[1:][same_side]],
        )
        codes[2 * len(first) :] = self.cps[lonely]
        starts = np.concatenate((np.arange(0, 2 * len(first), 2), np.arange(len(lonely)) + 2 * len(first)))
        ends = starts + np.concatenate((np.full(len(first), 2), np.ones(len(lonely), np.int64))).astype(
            starts.dtype
        )
        order = np.argsort(np.concatenate((sides[:-1][same_side], sides[single])), kind="stable")
        self.char_hashes = feature_hashes(codes, starts, ends)[order]
        self.char_pairs = (np.concatenate((sides[:-1][same_side], sides[single])) // 2)[order]

    def fingerprints(self) -> np.ndarray:
        """SimHash per pair (0 for a pair without features): bit i set when more than half of the pair's
        feature hashes have it.

        Bits are counted in SIMD-within-a-register lanes: hash >> k & 0x0101...01 puts bits k, k+8, ...
        in the eight byte lanes of one uint64, so summing 8 such words per feature counts all 64 bits
        (16-bit lanes, 16 words, when a pair has 256 features or more; 65536 is the limit)."""
        per_pair = np.bincount(self.word_pairs, minlength=self.size) + np.bincount(
            self.char_pairs, minlength=self.size
        )
        fps = np.zeros(self.size, dtype=np.uint64)
        if not per_pair.any():
            return fps
        if per_pair.max() >= 1 << 16:
            raise ValueError("a pair with 65536 or more SimHash features; split such texts before dedup")
        lane_bits = 8 if per_pair.max() < 256 else 16
        sums = _lane_sums(self.word_hashes, self.word_pairs, self.size, lane_bits)
        sums += _lane_sums(self.char_hashes, self.char_pairs, self.size, lane_bits)
        per_word = 64 // lane_bits
        lane_dtype = np.uint8 if lane_bits == 8 else np.uint16
        counts = sums.view(lane_dtype).reshape(-1, lane_bits, per_word).transpose(0, 2, 1).reshape(-1, 64)
        majority = (2 * counts.astype(np.int32) > per_pair[:, None]).astype(np.uint8)
        return np.packbits(majority, axis=1, bitorder="little").view(np.uint64).ravel()


def _lane_sums(hashes: np.ndarray, pairs: np.ndarray, size: int, lane_bits: int) -> np.ndarray:
    """(size, lane_bits) uint64: per pair, the sum of its hashes' bits spread over lanes (pairs sorted)."""
    sums = np.zeros((size, lane_bits), dtype=np.uint64)
    if len(hashes) == 0:
        return sums
    mask = np.uint64(0x0101010101010101 if lane_bits == 8 else 0x0001000100010001)
    lanes = (hashes[None, :] >> np.arange(lane_bits, dtype=np.uint64)[:, None]) & mask  # rows contiguous
    per_pair = np.bincount(pairs, minlength=size)
    filled = per_pair > 0
    starts = (np.cumsum(per_pair) - per_pair)[filled]
    sums[filled] = np.add.reduceat(lanes, starts, axis=1).T
    return sums


def popcount(values: np.ndarray) -> np.ndarray:
    return np.bitwise_count(values)


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
        packed = np.sort((key << np.uint64(index_bits)) | np.arange(len(fps), dtype=np.uint64))
        return packed >> np.uint64(index_bits), (packed & np.uint64((1 << index_bits) - 1)).astype(np.int64)
    order = np.argsort(key)
    return key[order], order


def near_pairs(unique_fps: np.ndarray, hamming: int, blocks: int) -> np.ndarray:
    """Index pairs (i < j) of distinct fingerprints within ``hamming`` bits, shape (P, 2), deduplicated."""
    found = [np.zeros((0, 2), dtype=np.int64)]
    for key_blocks in table_blocks(hamming, blocks):
        sorted_keys, order = _sorted_by_key(unique_fps, key_blocks)
        active = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
        offset = 1
        while active.size:  # compare each fingerprint with the ones `offset` places later in its key run
            a, b = order[active], order[active + offset]
            close = popcount(unique_fps[a] ^ unique_fps[b]) <= hamming
            found.append(np.stack([np.minimum(a, b)[close], np.maximum(a, b)[close]], axis=1))
            offset += 1
            active = active[active + offset < len(order)]
            active = active[sorted_keys[active] == sorted_keys[active + offset]]
    pairs = np.concatenate(found)
    if len(pairs) == 0:
        return pairs
    packed = np.unique(pairs[:, 0] * len(unique_fps) + pairs[:, 1])
    return np.stack([packed // len(unique_fps), packed % len(unique_fps)], axis=1)


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
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(is_first) - 1
    conflicts = np.empty(n, dtype=np.int64)
    conflicts[order] = np.arange(n) - group_start[inverse[order]]  # exact copies seen before
    pairs = near_pairs(unique_fps, hamming, blocks)
    if len(pairs):
        sorted_keys = inverse[order].astype(np.int64) * n + order
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
