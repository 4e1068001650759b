"""sacrebleu's sentence statistics of a scored direction, kept beside its generations
(``generations/translation/stats/<metric>/<direction>.npz``) so that ``xplus-eval compare`` resamples a
272-direction grid without tokenizing it again.

A file holds the statistics, the sentence index of each row, the fingerprint of the hypotheses and
references they were computed on and the metric signature; a file whose fingerprint or signature does not
match what is compared is ignored and the statistics are computed afresh.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np

STATS_METRICS = ("spbleu", "chrf")  # the metrics compare tests with sacrebleu's statistics
STATS_FOLDER = ("generations", "translation", "stats")


def stats_path(run_path: Path, metric: str, direction: str) -> Path:
    return run_path.joinpath(*STATS_FOLDER, metric, f"{direction}.npz")


def save_stats(path: Path, stats, index: list[int], fingerprint: str, signature: str) -> None:
    """Written through a temporary file and a rename: a killed run leaves the old file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez(tmp, stats=np.asarray(stats), index=np.asarray(index), fingerprint=fingerprint, signature=signature)
    os.replace(tmp, path)


def load_stats(path: Path, signature: str) -> tuple[np.ndarray, list[int], str] | None:
    """(statistics, sentence indices, fingerprint), or None: no file, another signature, or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            if str(data["signature"]) != signature:
                return None
            return data["stats"], data["index"].tolist(), str(data["fingerprint"])
    except (OSError, ValueError, KeyError):  # a damaged file is recomputed, never trusted
        return None


def extract_pair(metric, hyps_a: list[str], hyps_b: list[str], refs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Both systems' statistics, the references prepared once (sacrebleu's reference cache, on a copy of
    the shared metric object so the cache does not outlive this direction)."""
    with_refs = copy.copy(metric)
    with_refs._ref_cache = metric._cache_references([refs])
    return (np.asarray(with_refs._extract_corpus_statistics(hyps_a, None)),
            np.asarray(with_refs._extract_corpus_statistics(hyps_b, None)))
