"""Throughput of xplus-data steps 2-4 (clean, dedup, language ID) through the whole pipeline on synthetic
pairs made from FLORES sentences, in the same run against three baselines:

- ``vs_before``: the same steps, same data, through the pipeline as it was at ``--baseline-commit`` (its
  own runner and process pool; the tree is taken from git into a temporary folder and imported from
  there, so the old implementation lives nowhere but in this run). One process each: pairs/s per core.
- ``ray_vs_local``: datatrove's Ray executor on a local 2-CPU Ray cluster (started and stopped here)
  against its local executor with 2 workers; 2 ranks each, wall time.
- ``vs_pure_python_simhash``: the SimHash dedup (compiled kernel, numpy table search) against a
  straightforward pure-Python SimHash on the same pairs (same conflicts required).

    /work/bin/heavy .venv/bin/python benchmarks/data_throughput.py                 # 200,000 pairs
    /work/bin/heavy .venv/bin/python benchmarks/data_throughput.py --pairs 20000   # a quick look

Synthetic pairs: an English-X FLORES devtest pair (16 pairs, X = the other 16 languages) with 3 words
(characters for zh/ja/th) on each side replaced by words of the same language, so nearly every pair is
distinct but shares most of its text with others (a hard case for the SimHash tables). Planted
near-duplicates: 5% of pairs repeat an earlier pair with one word changed or its punctuation changed.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from xplus_release.languages import PAPER_LANGUAGES
from xplus_release.training.pipeline import simhash
from xplus_release.training.pipeline.config import PairConfigs
from xplus_release.training.pipeline.dedup import DedupConfig, shard_index
from xplus_release.training.pipeline.records import pair_document
from xplus_release.training.pipeline.tokens import CHARACTER_LANGUAGES, simhash_features, tokenize

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

sys.path.insert(0, str(ROOT / "tests"))  # the readable SimHash the tests check the kernel against
from helpers.simhash_reference import reference_simhash as python_fingerprint


def python_conflicts(fps: list[int], hamming: int, blocks: int) -> list[int]:
    """Same definition as simhash.earlier_conflicts, with dict buckets per permuted table."""
    edges = [round(i * 64 / blocks) for i in range(blocks + 1)]
    masks = [
        sum(((1 << (edges[b + 1] - edges[b])) - 1) << edges[b] for b in combo)
        for combo in itertools.combinations(range(blocks), blocks - hamming)
    ]
    seen = [set() for _ in fps]
    tables = [{} for _ in masks]
    for i, fp in enumerate(fps):
        for mask, table in zip(masks, tables):
            bucket = table.setdefault(fp & mask, [])
            for j in bucket:
                # kept as first measured (README's figures); int.bit_count would speed up the baseline
                if bin(fp ^ fps[j]).count("1") <= hamming:  # noqa: FURB161
                    seen[i].add(j)
            bucket.append(i)
    return [len(s) for s in seen]


def python_simhash_dedup(rows: list[dict], config: DedupConfig) -> list[int]:
    fps = []
    for row in rows:
        src, tgt = tokenize(row["src_line"], row["src"]), tokenize(row["tgt_line"], row["trg"])
        fps.append(python_fingerprint(simhash_features(src, row["src"]) + simhash_features(tgt, row["trg"])))
    return python_conflicts(fps, config.hamming, config.hamming + 2)


# ------------------------------------------------------------------ the pipeline, before and now

# Run in a fresh interpreter for each implementation: argv = corpus, output, lid model, shard size,
# engine, workers. Prints the CPU and wall seconds of steps 2-4 (unify runs first, apart).
PREAMBLE = r"""
import json, os, sys, time
from pathlib import Path
if os.environ.get("XPLUS_BENCH_TREE"):  # import the old tree: drop the editable install's finder
    sys.meta_path = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
    sys.path.insert(0, os.environ["XPLUS_BENCH_TREE"])
"""
MEASURE = (
    PREAMBLE
    + r"""
from xplus_release.training.pipeline.config import PipelineConfig
from xplus_release.training.pipeline.runner import PipelineRun
from xplus_release.training.pipeline.unify import InputSpec

corpus, out, lid, shard_size, engine, workers = sys.argv[1:7]
now = hasattr(PipelineConfig, "ranks")  # the datatrove implementation; before: a Path output, no engines
steps = {"unify": {"shard_size": int(shard_size), "error_budget": 1.0}}
def run(steps):
    spec = InputSpec(format="jsonl", path=corpus, name="synthetic")
    extra = {"engine": engine} if now else {}
    config = PipelineConfig(output=out if now else Path(out), inputs=[spec], steps=steps,
                            workers=int(workers), **extra)
    return PipelineRun(config, progress=False).run()
from xplus_release.training.pipeline.simhash import BatchFeatures
BatchFeatures(["a b"], ["c d"], ["en"], ["de"])  # compile (or load) this tree's kernel before timing
run(steps)
cpu, wall = time.process_time(), time.perf_counter()
report = run({**steps, "clean": {}, "dedup": {}, "langid": {"model": lid}})
print(json.dumps({"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall,
                  "kept": report["steps"]["langid"]["kept"], "code": sys.modules[PipelineRun.__module__].__file__}))
"""
)


# argv = corpus, pairs: CPU seconds of the SimHash dedup alone (fingerprints, length rules, conflicts).
SIMHASH = (
    PREAMBLE
    + r"""
from xplus_release.training.pipeline import dedup, simhash
rows = [json.loads(line) for _, line in zip(range(int(sys.argv[2])), open(sys.argv[1], encoding="utf-8"))]
config = dedup.DedupConfig()
items = rows
if hasattr(dedup, "DedupSignatures"):  # now: the steps work on datatrove Documents
    from xplus_release.training.pipeline.records import pair_document
    items = [pair_document(r, "s", i) for i, r in enumerate(rows)]
dedup.shard_index(items[:10], lambda pair: config)  # compile (or load) the kernel before timing
start = time.process_time()
index = dedup.shard_index(items, lambda pair: config)
simhash.earlier_conflicts(index["fingerprint"][index["status"] == 0], config.hamming, config.blocks)
print(json.dumps({"cpu_s": time.process_time() - start, "code": dedup.__file__}))
"""
)


def write_corpus(path: Path, pairs: int, chunk: int = 50_000) -> None:
    corpus = Corpus(load_flores())
    with open(path, "w", encoding="utf-8") as handle:
        for start in range(0, pairs, chunk):
            for row in corpus.chunk(min(chunk, pairs - start)):
                row.pop("planted", None)
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def checkout(commit: str, into: Path) -> Path:
    """The package as it was at ``commit``, laid out for import (``xplus_release.training`` etc.)."""
    into.mkdir(parents=True)
    archive = into / "tree.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), commit], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    package = into / "pkg" / "xplus_release"
    shutil.copytree(into / "tree" / "xplus_release", package)
    for folder in ("training", "evalsuite", "serve", "model_cards"):
        shutil.copytree(into / "tree" / folder, package / folder)
    return into / "pkg"


def measure(corpus: Path, out: Path, shard_size: int, engine="local", workers=1, pythonpath=None) -> dict:
    args = [str(corpus), str(out), str(LID176), str(shard_size), engine, str(workers)]
    return _in_fresh_interpreter(MEASURE, args, pythonpath)


def _in_fresh_interpreter(script: str, args: list[str], pythonpath: Path | None) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["XPLUS_BENCH_TREE"] = str(pythonpath)
    done = subprocess.run(
        [sys.executable, "-c", script, *args], check=True, capture_output=True, text=True, env=env
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def before_and_now(run, old_tree: Path, pairs: int) -> tuple[dict, dict, dict]:
    """``run(pythonpath)`` on the old tree, then on this checkout: per-core rates and their ratio, and both
    runs' own figures."""
    before, now = run(old_tree), run(None)
    assert before["code"].startswith(str(old_tree)), before["code"]  # the old tree, not this checkout
    rates = {"before_pairs_per_s_per_core": _rate(pairs, before["cpu_s"]),
             "now_pairs_per_s_per_core": _rate(pairs, now["cpu_s"]), "ratio": round(before["cpu_s"] / now["cpu_s"], 3)}
    return rates, before, now


def simhash_vs_before(corpus: Path, old_tree: Path, pairs: int) -> dict:
    rates, _, _ = before_and_now(lambda tree: _in_fresh_interpreter(SIMHASH, [str(corpus), str(pairs)], tree),
                                 old_tree, pairs)
    return {"pairs": pairs, **rates}


def _rate(pairs: int, seconds: float) -> int:
    return round(pairs / seconds)


def vs_before(corpus: Path, work: Path, pairs: int, shard_size: int, commit: str) -> dict:
    def run(tree: Path | None) -> dict:
        return measure(corpus, work / ("before" if tree else "now"), shard_size, pythonpath=tree)

    rates, before, now = before_and_now(run, work / "old" / "pkg", pairs)
    # fewer kept now: exact duplicates keep one copy (the default changed)
    return {"baseline_commit": commit, **rates, "before_kept": before["kept"], "now_kept": now["kept"]}


def ray_vs_local(corpus: Path, work: Path, pairs: int, shard_size: int) -> dict:
    local = measure(corpus, work / "local2", shard_size, workers=2)
    ray = Path(sys.executable).with_name("ray")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = [str(ray), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2"]
    start += ["--object-store-memory=200000000", "--include-dashboard=false", "--disable-usage-stats"]
    subprocess.run(start, check=True, capture_output=True)
    os.environ["RAY_ADDRESS"] = f"127.0.0.1:{port}"
    try:
        on_ray = measure(corpus, work / "ray2", shard_size, engine="ray", workers=2)
    finally:
        subprocess.run([str(ray), "stop", "--force"], check=False, capture_output=True)
        del os.environ["RAY_ADDRESS"]
    return {
        "ranks": 2,
        "local_2_workers_pairs_per_s": _rate(pairs, local["wall_s"]),
        "ray_2_cpus_pairs_per_s": _rate(pairs, on_ray["wall_s"]),
        "ratio": round(local["wall_s"] / on_ray["wall_s"], 3),
        "same_kept": local["kept"] == on_ray["kept"],
    }


def baseline_comparison(pairs: int, config: DedupConfig) -> dict:
    """Pure-Python SimHash vs the package's on the same rows (same fingerprints, same conflicts)."""
    rows = Corpus(load_flores(), seed=1).chunk(pairs)
    docs = [pair_document(r, "synthetic", i) for i, r in enumerate(rows)]
    configs = PairConfigs("dedup", {"default": {"exact_duplicates": "paper"}, "pairs": {}})
    start = time.process_time()
    reference = python_simhash_dedup(rows, config)
    python_s = time.process_time() - start
    start = time.process_time()
    index = shard_index(docs, configs)
    ours = np.full(len(rows), -1)
    mask = index["status"] == 0
    ours[mask] = simhash.earlier_conflicts(index["fingerprint"][mask], config.hamming, config.blocks)
    vector_s = time.process_time() - start
    reference = [c if m else -1 for c, m in zip(reference, mask)]
    return {
        "pairs": len(rows),
        "pure_python_pairs_per_s": _rate(len(rows), python_s),
        "simhash_pairs_per_s_per_core": _rate(len(rows), vector_s),
        "speedup": round(python_s / vector_s, 1),
        "same_conflicts": reference == ours.tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=200_000, help="synthetic pairs (default 200,000)")
    parser.add_argument("--shard-size", type=int, default=25_000, help="pairs per shard (unify.shard_size)")
    parser.add_argument("--baseline-commit", default="ac189e6", help="the pipeline before datatrove steps")
    parser.add_argument(
        "--baseline-pairs", type=int, default=20_000, help="pairs for the pure-Python SimHash"
    )
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray comparison")
    args = parser.parse_args()
    shard_index(
        [pair_document(r, "warm", i) for i, r in enumerate(Corpus(load_flores()).chunk(10))],
        PairConfigs("dedup", {"default": {}, "pairs": {}}),
    )  # the kernel compiles once, here
    with tempfile.TemporaryDirectory(prefix="xplus-data-bench-") as tmp:
        work = Path(tmp)
        write_corpus(work / "corpus.jsonl", args.pairs)
        result = {
            "benchmark": "data_throughput",
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "cpus": os.cpu_count(),
            "pairs": args.pairs,
            "simhash_vs_before": simhash_vs_before(
                work / "corpus.jsonl", checkout(args.baseline_commit, work / "old"), min(args.pairs, 100_000)
            ),
            "steps_2_to_4_vs_before": vs_before(
                work / "corpus.jsonl", work, args.pairs, args.shard_size, args.baseline_commit
            ),
            "vs_pure_python_simhash": baseline_comparison(args.baseline_pairs, DedupConfig()),
        }
        if not args.no_ray:
            result["ray_vs_local"] = ray_vs_local(work / "corpus.jsonl", work, args.pairs, args.shard_size)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
