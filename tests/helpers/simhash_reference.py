"""The SimHash fingerprint written out in plain Python, one feature and one bit at a time.

It is the readable specification of what ``xplus_release.training.pipeline.simhash_kernel`` computes in
one compiled pass: the tests check the kernel against it, and the throughput benchmark uses it as the
straightforward baseline.
"""

from __future__ import annotations

MASK64 = 2**64 - 1


def reference_feature_hash(feature: str) -> int:
    """Polynomial hash of the code points (multiplier 0x100000001B3), length mixed in, then fmix64."""
    value, power = 0, 1
    for ch in feature:
        value = (value + ord(ch) * power) & MASK64
        power = (power * 0x100000001B3) & MASK64
    value ^= (len(feature) * 0x9E3779B97F4A7C15) & MASK64
    value ^= value >> 33
    value = (value * 0xFF51AFD7ED558CCD) & MASK64
    value ^= value >> 33
    value = (value * 0xC4CEB9FE1A85EC53) & MASK64
    return value ^ (value >> 33)


def reference_simhash(features: list[str]) -> int:
    """Bit b of the fingerprint is set when more features have bit b set than clear."""
    votes = [0] * 64
    for feature in features:
        value = reference_feature_hash(feature)
        for bit in range(64):
            votes[bit] += 1 if value >> bit & 1 else -1
    return sum(1 << bit for bit in range(64) if votes[bit] > 0)
