"""The compiled fingerprint kernel of the dedup step: one pass over a batch's code points gives every
pair's token counts and 64-bit SimHash (the definitions are in ``simhash`` and ``tokens``).

One pass instead of whole-batch numpy arrays because the work per code point is tiny: numpy spent most
of its time writing and re-reading intermediate arrays (kinds, positions, prefix hashes, bit lanes).
Compiled once per machine with numba and cached next to this file (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

TOKEN, PUNCTUATION, SPACE, SENTINEL = 0, 1, 2, 3

# numba types integer literals as int64 and uint64 op int64 as float64: every constant is a uint64.
_P = np.uint64(0x100000001B3)
_LENGTH_MIX = np.uint64(0x9E3779B97F4A7C15)
_FMIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_SHIFT_33 = np.uint64(33)
_BYTE_LANES = np.uint64(0x0101010101010101)  # bit k of each byte lane
_BYTE = np.uint64(0xFF)
_ONE = np.uint64(1)
_LANE_LIMIT = 255  # a byte lane holds counts up to 255, then it is flushed into the votes


@njit(cache=True, nogil=True)
def _finish_hash(value, length):
    """The feature hash's last step: xor the length times the golden ratio, then MurmurHash3's fmix64."""
    value ^= np.uint64(length) * _LENGTH_MIX
    value ^= value >> _SHIFT_33
    value *= _FMIX_1
    value ^= value >> _SHIFT_33
    value *= _FMIX_2
    return value ^ (value >> _SHIFT_33)


@njit(cache=True, nogil=True)
def _add_feature(lanes, hashed, pending, votes):
    """Count the bits of one feature hash in SIMD-within-a-register lanes: ``lanes[k]`` holds, in byte
    lane j, how many hashes had bit 8j + k set. Flushes into ``votes`` before a lane can overflow."""
    for k in range(8):
        lanes[k] += (hashed >> np.uint64(k)) & _BYTE_LANES
    pending += 1
    if pending == _LANE_LIMIT:
        _flush(lanes, votes)
        pending = 0
    return pending


@njit(cache=True, nogil=True)
def _flush(lanes, votes):
    for k in range(8):
        for j in range(8):
            votes[8 * j + k] += np.int64((lanes[k] >> np.uint64(8 * j)) & _BYTE)
        lanes[k] = np.uint64(0)


@njit(cache=True, nogil=True)
def _word_text(cps, kinds, pos, lanes, pending, votes):
    """Features of one space-delimited text starting at ``pos``: its words (punctuation deleted, so it
    joins its neighbours). Returns (position after the text's sentinel, pending, words, sequence hash of
    the words in order)."""
    value, power, length, words, sequence = np.uint64(0), _ONE, 0, 0, np.uint64(0)
    while True:
        cp = cps[pos]
        kind = kinds[cp]
        pos += 1
        if kind == TOKEN:
            value += np.uint64(cp) * power
            power *= _P
            length += 1
        elif kind != PUNCTUATION:  # a space or the end of the text closes the word
            if length:
                hashed = _finish_hash(value, length)
                pending = _add_feature(lanes, hashed, pending, votes)
                sequence = sequence * _P + hashed
                words += 1
                value, power, length = np.uint64(0), _ONE, 0
            if kind == SENTINEL:
                return pos, pending, words, sequence


@njit(cache=True, nogil=True)
def _character_text(cps, kinds, pos, lanes, pending, votes):
    """Features of one zh/ja/th text: bigrams of its non-space characters (the character itself when
    there is only one). Returns (position after the text's sentinel, pending, characters, sequence hash
    of the characters in order)."""
    previous, chars, sequence = np.uint64(0), 0, np.uint64(0)
    while True:
        cp = cps[pos]
        kind = kinds[cp]
        pos += 1
        if kind == TOKEN:
            current = np.uint64(cp)
            if chars:
                pending = _add_feature(lanes, _finish_hash(previous + current * _P, 2), pending, votes)
            sequence = sequence * _P + current
            previous = current
            chars += 1
        elif kind == SENTINEL:
            if chars == 1:
                pending = _add_feature(lanes, _finish_hash(previous, 1), pending, votes)
            return pos, pending, chars, _finish_hash(sequence, chars)


@njit(cache=True, nogil=True)
def fingerprint_batch(cps, kinds, character_text, n_pairs):
    """(token counts (n, 2), fingerprints (n,), token-sequence keys (n,)) of ``n_pairs`` pairs whose 2n
    texts (source, target, case-folded) lie in ``cps`` (uint32 code points), each followed by a 0 sentinel.
    ``kinds`` maps a code point to TOKEN, PUNCTUATION, SPACE or SENTINEL; ``character_text[t]`` is True for
    zh/ja/th texts. Two pairs have the same key when their token sequences are equal on each side (the
    exact duplicates of the dedup step), and, but for a 64-bit hash collision, only then."""
    counts = np.zeros((n_pairs, 2), np.int64)
    fingerprints = np.zeros(n_pairs, np.uint64)
    keys = np.zeros(n_pairs, np.uint64)
    votes = np.zeros(64, np.int64)
    lanes = np.zeros(8, np.uint64)
    pos = 0
    for pair in range(n_pairs):
        votes[:] = 0
        pending, features, key = 0, 0, np.uint64(0)
        for side in range(2):
            if character_text[2 * pair + side]:
                pos, pending, tokens, sequence = _character_text(cps, kinds, pos, lanes, pending, votes)
                features += tokens - 1 if tokens > 1 else tokens
            else:
                pos, pending, tokens, sequence = _word_text(cps, kinds, pos, lanes, pending, votes)
                features += tokens
            counts[pair, side] = tokens
            key = _finish_hash(key * _P + sequence, tokens + 1)
        keys[pair] = key
        _flush(lanes, votes)
        fingerprint = np.uint64(0)
        for bit in range(64):
            if 2 * votes[bit] > features:
                fingerprint |= _ONE << np.uint64(bit)
        fingerprints[pair] = fingerprint
    return counts, fingerprints, keys
