"""Paired significance tests and confidence intervals for a whole direction grid.

The tests are sacrebleu's (``sacrebleu.significance``): paired bootstrap resampling (``bs``, as Moses'
``bootstrap-hypothesis-difference-significance.pl``) and approximate randomization (``ar``, as multeval),
on sacrebleu's own sentence statistics, score function (``Metric._compute_score_from_stats``), p-value
(``_compute_p_value``) and interval (``estimate_ci``: bootstrap mean ± half the central 95% range). With the
same seed (``$SACREBLEU_SEED``, default 12345) the draws are sacrebleu's draws, so a direction's p-value
equals ``PairedTest``'s. What changes is the arithmetic: a resample's corpus statistics are one matrix
product of resample counts and sentence statistics instead of a 3-D gather per system and metric, and one
set of draws serves every direction of the same length -- FLORES is multi-way parallel, sentence i is the
same sentence in every direction, so the x→L, L→x and grid averages are bootstrapped over sentences too.

xCOMET is tested the same way on its segment scores (the corpus score is their mean); ``comet-compare``'s
paired t-test is reported beside it (``scipy.stats.ttest_rel``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

TESTS = ("bs", "ar")
CORRECTIONS = {"holm": "holm", "bh": "fdr_bh", "none": None}  # ours -> statsmodels' multipletests method
ALPHA = 0.05
DEFAULT_SAMPLES = {"bs": 1000, "ar": 10000}  # sacrebleu's defaults (PairedTest._DEFAULT_SAMPLES)


def sacrebleu_seed() -> int | None:
    """sacrebleu's seed rule: ``$SACREBLEU_SEED``, 12345 by default, ``none`` for fresh entropy."""
    seed = os.environ.get("SACREBLEU_SEED", "12345")
    return None if seed.lower() == "none" else int(seed)


@dataclass
class PairedStats:
    """One direction and metric: sentence statistics of both systems, aligned, and the score function."""

    direction: str
    metric: str
    a: np.ndarray  # (sentences, statistics) of the baseline
    b: np.ndarray
    score: Callable[[np.ndarray], np.ndarray]  # summed statistics (rows) -> corpus scores

    @property
    def segments(self) -> int:
        return len(self.a)


def sacrebleu_scorer(metric) -> Callable[[np.ndarray], np.ndarray]:
    """Scores of summed statistics with the sacrebleu metric object's own ``_compute_score_from_stats``."""
    return lambda sums: np.array([metric._compute_score_from_stats(row).score for row in sums])


def mean_scorer(sums: np.ndarray) -> np.ndarray:
    """Segment-score metrics (xCOMET): statistics are (score, 1), the corpus score is the mean."""
    return sums[:, 0] / sums[:, 1]


class Draws:
    """sacrebleu's random draws for one sentence count, made once and shared by every direction of it."""

    def __init__(self, n_samples: int, seed: int | None):
        self.n_samples, self.seed = n_samples, seed
        self._bootstrap: dict[int, np.ndarray] = {}
        self._swaps: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def bootstrap_counts(self, n: int) -> np.ndarray:
        """(n_samples, n): how often each sentence is drawn in each resample (``_paired_bs_test``'s draw)."""
        if n not in self._bootstrap:
            idxs = np.random.default_rng(self.seed).choice(n, size=(self.n_samples, n), replace=True)
            flat = (idxs + n * np.arange(self.n_samples)[:, None]).ravel()
            counts = np.bincount(flat, minlength=self.n_samples * n).reshape(self.n_samples, n)
            self._bootstrap[n] = counts.astype(np.float64)  # BLAS products; integers stay exact below 2**53
        return self._bootstrap[n]

    def swaps(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(n_samples, n) 0/1 matrices: sentences each shuffled system takes from the baseline, and from the
        other system (``_paired_ar_test``'s draw); float64, exact for integer statistics, fast in BLAS."""
        if n not in self._swaps:
            rng = np.random.default_rng(self.seed)
            keep = rng.integers(2, size=(self.n_samples, n), dtype=bool)
            self._swaps[n] = (keep.astype(np.float64), (~keep).astype(np.float64))
        return self._swaps[n]


def bootstrap_scores(pair: PairedStats, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both systems' scores in every resample (float32 sums, as sacrebleu's resampling computes them)."""
    return (pair.score((counts @ pair.a.astype(np.float64)).astype(np.float32)),
            pair.score((counts @ pair.b.astype(np.float64)).astype(np.float32)))


def corpus_scores(pair: PairedStats) -> tuple[float, float]:
    return float(pair.score(pair.a.sum(0)[None])[0]), float(pair.score(pair.b.sum(0)[None])[0])


def bootstrap_p_value(samples_a: np.ndarray, samples_b: np.ndarray, score_a: float, score_b: float) -> float:
    """sacrebleu's paired bootstrap p-value: centred resampled |Δ| against the observed |Δ|."""
    from sacrebleu.significance import _compute_p_value

    sample_diffs = np.abs(samples_b - samples_a)
    return float(_compute_p_value(sample_diffs - sample_diffs.mean(), abs(score_b - score_a)))


def randomization_p_value(pair: PairedStats, swaps: tuple[np.ndarray, np.ndarray], score_a: float,
                          score_b: float) -> float:
    """sacrebleu's approximate randomization p-value: sentences swapped between the systems at random."""
    from sacrebleu.significance import _compute_p_value

    keep, flip = swaps
    a, b = pair.a.astype(np.float64), pair.b.astype(np.float64)
    shuffled_a = pair.score(keep @ a + flip @ b)
    shuffled_b = pair.score(flip @ a + keep @ b)
    return float(_compute_p_value(np.abs(shuffled_a - shuffled_b), abs(score_b - score_a)))


def interval(samples: np.ndarray) -> list[float]:
    """sacrebleu's 95% interval (``estimate_ci``) as [low, high] around the bootstrap mean."""
    from sacrebleu.significance import estimate_ci

    mean, half = estimate_ci(samples)
    return [round(float(mean - half), 4), round(float(mean + half), 4)]


def t_test_p_value(pair: PairedStats) -> float | None:
    """comet-compare's paired t-test on segment scores; None where it is undefined (identical systems)."""
    from scipy.stats import ttest_rel

    if np.array_equal(pair.a[:, 0], pair.b[:, 0]):
        return None
    return float(ttest_rel(pair.b[:, 0], pair.a[:, 0]).pvalue)


def paired_test(pair: PairedStats, draws: Draws, test: str, ci_draws: Draws) -> tuple[dict, tuple]:
    """The row of one direction and metric, and its bootstrap samples (for the aggregates)."""
    score_a, score_b = corpus_scores(pair)
    samples = bootstrap_scores(pair, ci_draws.bootstrap_counts(pair.segments))
    if np.array_equal(pair.a, pair.b):
        p_value = 1.0  # sacrebleu would give 1/(n+1) to identical systems: there is nothing to test
    elif test == "bs":
        p_value = bootstrap_p_value(*samples, score_a, score_b)
    else:
        p_value = randomization_p_value(pair, draws.swaps(pair.segments), score_a, score_b)
    row = {"direction": pair.direction, "metric": pair.metric, "segments": pair.segments,
           "a": round(score_a, 4), "b": round(score_b, 4), "delta": round(score_b - score_a, 4),
           "ci_a": interval(samples[0]), "ci_b": interval(samples[1]),
           "ci_delta": interval(samples[1] - samples[0]), "p_value": p_value}
    if pair.metric == "xcomet":
        row["t_test_p_value"] = t_test_p_value(pair)
    return row, (score_a, score_b, *samples)


def aggregate_row(name: str, metric: str, members: list[tuple]) -> dict:
    """An average of directions (x→L, L→x, the grid): its scores, intervals and paired bootstrap p-value,
    from the members' resamples (the same sentences drawn in every member)."""
    score_a = float(np.mean([m[0] for m in members]))
    score_b = float(np.mean([m[1] for m in members]))
    samples_a = np.mean([m[2] for m in members], axis=0)
    samples_b = np.mean([m[3] for m in members], axis=0)
    return {"aggregate": name, "metric": metric, "directions": len(members), "a": round(score_a, 4),
            "b": round(score_b, 4), "delta": round(score_b - score_a, 4), "ci_a": interval(samples_a),
            "ci_b": interval(samples_b), "ci_delta": interval(samples_b - samples_a),
            "p_value": 1.0 if np.array_equal(samples_a, samples_b) else  # as for an identical direction
            bootstrap_p_value(samples_a, samples_b, score_a, score_b)}


def correct(rows: list[dict], method: str) -> None:
    """Add ``p_corrected`` and ``outcome`` (better/worse/same) to rows of one family (one metric), in place.

    Holm controls the family-wise error rate, Benjamini-Hochberg the false discovery rate (statsmodels'
    ``multipletests``); ``none`` keeps the raw p-values.
    """
    if not rows:
        return
    raw = [r["p_value"] for r in rows]
    if CORRECTIONS[method] is None:
        corrected = raw
    else:
        from statsmodels.stats.multitest import multipletests

        corrected = multipletests(raw, alpha=ALPHA, method=CORRECTIONS[method])[1].tolist()
    for row, p in zip(rows, corrected):
        row["p_corrected"] = float(p)
        row["outcome"] = "same" if p >= ALPHA else ("better" if row["delta"] > 0 else "worse")


def outcome_counts(rows: list[dict]) -> dict[str, int]:
    """How many rows improve, worsen or do not differ after correction (``better`` means higher is better)."""
    return {key: sum(1 for r in rows if r["outcome"] == key) for key in ("better", "worse", "same")}
