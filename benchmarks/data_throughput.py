"""Throughput of xplus-data steps 2-4 (clean, dedup, language ID) on synthetic pairs made from FLORES
sentences, and the package's SimHash dedup (compiled kernel, numpy table search) against a
straightforward pure-Python SimHash.

    .venv/bin/python benchmarks/data_throughput.py                    # 1,000,000 pairs, one core
    .venv/bin/python benchmarks/data_throughput.py --pairs 50000      # a quick look

Synthetic pairs: an English-X FLORES devtest pair (16 pairs, X = the other 16 languages) with 3 words
(characters for zh/ja/th) on each side replaced by words of the same language, so nearly every pair is
distinct but shares most of its text with others (a hard case for the SimHash tables). Planted
near-duplicates: 5% of pairs repeat an earlier pair with one word changed or its punctuation changed.
Everything runs in this one process (pairs/s are per core); the corpus is generated and consumed in
chunks, so peak memory shows what the steps hold, not the corpus. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import random
import resource
import time
from collections import Counter
from pathlib import Path

import numpy as np
from xplus_release.training.pipeline import simhash
from xplus_release.training.pipeline.clean import CleanConfig, clean_pairs
from xplus_release.training.pipeline.dedup import DedupConfig, shard_index
from xplus_release.lid import load_lid_model
from xplus_release.training.pipeline.langid import identify_pairs
from xplus_release.training.pipeline.tokens import CHARACTER_LANGUAGES, simhash_features, tokenize

from xplus_release.languages import PAPER_LANGUAGES

ROOT = Path(__file__).resolve().parents[1]
FLORES = ROOT / "tests" / "data" / "flores200" / "devtest"
LID176 = ROOT / "tests" / "data" / "lid" / "lid.176.ftz"


def load_flores() -> dict[str, list[str]]:
    return {
        lang.code: (FLORES / f"{lang.flores200}.devtest").read_text(encoding="utf-8").splitlines()
        for lang in PAPER_LANGUAGES
    }


def _units(text: str, lang: str) -> list[str]:
    return list(text) if lang in CHARACTER_LANGUAGES else text.split(" ")


def _join(units: list[str], lang: str) -> str:
    return "".join(units) if lang in CHARACTER_LANGUAGES else " ".join(units)


class Corpus:
    """Deterministic synthetic pairs with planted near-duplicates, produced chunk by chunk."""

    def __init__(self, flores: dict[str, list[str]], seed: int = 0, near_dup_share: float = 0.05):
        self.flores = flores
        self.targets = [code for code in flores if code != "en"]
        self.vocab = {
            code: sorted({u for line in lines for u in _units(line, code) if u.strip()})
            for code, lines in flores.items()
        }
        self.rng = random.Random(seed)
        self.share = near_dup_share
        self.recent: list[dict] = []
        self.planted = 0
        self.count = 0

    def _mutate(self, text: str, lang: str, edits: int) -> str:
        units = _units(text, lang)
        for _ in range(edits):
            units[self.rng.randrange(len(units))] = self.rng.choice(self.vocab[lang])
        return _join(units, lang)

    def _fresh(self) -> dict:
        trg = self.rng.choice(self.targets)
        i = self.rng.randrange(len(self.flores["en"]))
        return {
            "src": "en",
            "trg": trg,
            "src_line": self._mutate(self.flores["en"][i], "en", 3),
            "tgt_line": self._mutate(self.flores[trg][i], trg, 3),
        }

    def _near_duplicate(self) -> dict:
        base = dict(self.rng.choice(self.recent))
        if self.rng.random() < 0.5:
            base["src_line"] = self._mutate(base["src_line"], "en", 1)
        else:
            base["src_line"] = base["src_line"].rstrip(".") + " !"
        base["planted"] = True
        return base

    def chunk(self, size: int) -> list[dict]:
        rows = []
        for _ in range(size):
            if self.recent and self.rng.random() < self.share:
                row = self._near_duplicate()
                self.planted += 1
            else:
                row = self._fresh()
                self.recent = (self.recent + [row])[-1000:]
            row["id"] = f"synthetic:{self.count}"
            self.count += 1
            rows.append(row)
        return rows


# ------------------------------------------------------------------ pure-Python baseline

from xplus_release.training.pipeline.simhash_reference import reference_simhash as python_fingerprint  # noqa: E402


def python_conflicts(fps: list[int], hamming: int, blocks: int) -> list[int]:
    """Same definition as simhash.earlier_conflicts, with dict buckets per permuted table."""
    edges = [round(i * 64 / blocks) for i in range(blocks + 1)]
    masks = [
        sum(((1 << (edges[b + 1] - edges[b])) - 1) << edges[b] for b in combo)
        for combo in itertools.combinations(range(blocks), blocks - hamming)
    ]
    seen = [set() for _ in fps]
    tables = [dict() for _ in masks]
    for i, fp in enumerate(fps):
        for mask, table in zip(masks, tables):
            bucket = table.setdefault(fp & mask, [])
            for j in bucket:
                if bin(fp ^ fps[j]).count("1") <= hamming:
                    seen[i].add(j)
            bucket.append(i)
    return [len(s) for s in seen]


def python_simhash_dedup(rows: list[dict], config: DedupConfig) -> list[int]:
    fps = []
    for row in rows:
        src, tgt = tokenize(row["src_line"], row["src"]), tokenize(row["tgt_line"], row["trg"])
        fps.append(python_fingerprint(simhash_features(src, row["src"]) + simhash_features(tgt, row["trg"])))
    return python_conflicts(fps, config.hamming, config.hamming + 2)


# ------------------------------------------------------------------ the steps


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Timer:
    def __init__(self):
        self.cpu = Counter()
        self.wall = Counter()

    def run(self, name: str, fn, *args):
        cpu, wall = time.process_time(), time.perf_counter()
        result = fn(*args)
        self.cpu[name] += time.process_time() - cpu
        self.wall[name] += time.perf_counter() - wall
        return result


def run_steps(total: int, chunk: int, lid_model, config: DedupConfig) -> dict:
    corpus, timer = Corpus(load_flores()), Timer()
    lookup = lambda pair: config  # noqa: E731
    clean_config, counters = CleanConfig(), Counter()
    fps, ok, planted = [], [], []
    lid_kept = 0
    rss_after_first_chunk = None
    for start in range(0, total, chunk):
        rows = timer.run("generate", corpus.chunk, min(chunk, total - start))
        cleaned = timer.run(
            "clean", lambda: [r for r, reason in clean_pairs(rows, clean_config, counters) if reason is None]
        )
        index = timer.run("simhash_dedup", shard_index, cleaned, lookup)
        fps.append(index["fingerprint"][index["status"] == 0])
        ok.append(index["status"] == 0)
        planted.append(np.array([bool(r.get("planted")) for r in cleaned]))
        lid_kept += timer.run(
            "langid",
            lambda: sum(
                reason is None for _, reason, _ in identify_pairs(cleaned, lid_model, lambda p: LID_CONFIG)
            ),
        )
        if rss_after_first_chunk is None:
            rss_after_first_chunk = max_rss_mib()
    all_fps = np.concatenate(fps)
    conflicts = timer.run("simhash_dedup", simhash.earlier_conflicts, all_fps, config.hamming, config.blocks)
    planted_ok = np.concatenate(planted)[np.concatenate(ok)]
    return {
        "timer": timer,
        "pairs": total,
        "conflicts": conflicts,
        "planted": int(planted_ok.sum()),
        "planted_found": int((conflicts[planted_ok] > 0).sum()),
        "dropped": int((conflicts > config.max_conflicts).sum()),
        "indexed": int(len(all_fps)),
        "index_bytes": int(all_fps.nbytes),
        "lid_kept": lid_kept,
        "rss_after_first_chunk_mib": rss_after_first_chunk,
    }


class _LidConfig:
    threshold = 0.5


LID_CONFIG = _LidConfig()


def baseline_comparison(pairs: int, config: DedupConfig) -> dict:
    """Pure-Python SimHash vs the package's on the same rows (same fingerprints, same conflicts)."""
    rows = [
        r
        for r, reason in clean_pairs(Corpus(load_flores(), seed=1).chunk(pairs), CleanConfig(), Counter())
        if reason is None
    ]
    start = time.process_time()
    reference = python_simhash_dedup(rows, config)
    python_s = time.process_time() - start
    start = time.process_time()
    index = shard_index(rows, lambda pair: config)
    ours = np.full(len(rows), -1)
    mask = index["status"] == 0
    ours[mask] = simhash.earlier_conflicts(index["fingerprint"][mask], config.hamming, config.blocks)
    vector_s = time.process_time() - start
    reference = [c if m else -1 for c, m in zip(reference, mask)]
    return {
        "pairs": len(rows),
        "pure_python_pairs_per_s": round(len(rows) / python_s),
        "vectorised_pairs_per_s": round(len(rows) / vector_s),
        "speedup": round(python_s / vector_s, 1),
        "same_conflicts": reference == ours.tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000, help="synthetic pairs (default 1,000,000)")
    parser.add_argument("--chunk", type=int, default=50_000, help="pairs generated and processed at a time")
    parser.add_argument(
        "--baseline-pairs", type=int, default=20_000, help="pairs for the pure-Python comparison"
    )
    args = parser.parse_args()
    config = DedupConfig()
    result = run_steps(args.pairs, args.chunk, load_lid_model(LID176), config)
    timer = result.pop("timer")
    per_step = {
        name: {
            "cpu_s": round(timer.cpu[name], 2),
            "wall_s": round(timer.wall[name], 2),
            "pairs_per_s_per_core": round(args.pairs / timer.cpu[name]),
        }
        for name in ("clean", "simhash_dedup", "langid")
    }
    steps_cpu = sum(timer.cpu[name] for name in per_step)
    print(
        json.dumps(
            {
                "benchmark": "data_throughput",
                "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                "pairs": args.pairs,
                "workers": 1,
                "steps": per_step,
                "steps_2_to_4_pairs_per_s_per_core": round(args.pairs / steps_cpu),
                "generation_cpu_s": round(timer.cpu["generate"], 2),
                "dedup": {
                    "hamming": config.hamming,
                    "blocks": config.hamming + 2,
                    "max_conflicts": config.max_conflicts,
                    "indexed": result["indexed"],
                    "dropped": result["dropped"],
                    "planted_near_duplicates": result["planted"],
                    "planted_found": result["planted_found"],
                    "index_mib": round(result["index_bytes"] / 2**20, 1),
                },
                "langid_kept": result["lid_kept"],
                "peak_rss_mib": round(max_rss_mib(), 1),
                "rss_after_first_chunk_mib": round(result["rss_after_first_chunk_mib"], 1),
                "vs_pure_python_simhash": baseline_comparison(args.baseline_pairs, config),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
