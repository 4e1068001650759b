"""How fast ``xplus-eval compare`` tests a direction grid, against sacrebleu's CLI ``--paired-bs`` run once
per direction; printed as JSON with the ratios.

Two synthetic runs of a grid (the paper's 17 languages = 272 directions by default, 1,012 segments each,
from the package's FLORES sample made unique per segment; run B repairs or damages a tenth of A's
hypotheses) are scored by the suite's scoring step, which keeps sacrebleu's sentence statistics. Then:

- **compare (stored statistics)**: ``compare_runs`` as ``xplus-eval compare`` runs it, spBLEU and chrF,
  1,000 bootstrap resamples, intervals, averages and Holm's correction.
- **compare (statistics computed)**: the same with the stored statistics removed (runs scored before
  they were kept, or by another tool): sacrebleu's statistics extraction is then part of the cost.
- **baseline**: ``python -m sacrebleu REF -i A B --paired-bs -m bleu chrf --tokenize flores200
  --chrf-whitespace`` per direction, timed on ``--cli-sample`` directions and extrapolated to the grid.

spBLEU needs sacrebleu's flores200 SentencePiece model; where it is missing (offline) a stand-in is
trained on the same text, which changes the tokenization's cost a little, not the comparison.

    .venv/bin/python benchmarks/compare_grid.py                      # 17 languages, 1,012 segments
    .venv/bin/python benchmarks/compare_grid.py --langs en,zh,de,fr,sw,ja --cli-sample 6
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--langs", default="paper", help="comma-separated codes, or paper (the 17 languages)")
    parser.add_argument("--segments", type=int, default=1012, help="segments per direction")
    parser.add_argument("--samples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--cli-sample", type=int, default=8, help="directions the sacrebleu CLI is timed on")
    return parser.parse_args()


def grid_texts(codes: list[str], segments: int) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """direction -> (references, hypotheses of A, hypotheses of B)."""
    from xplus_release.evalsuite.translation.data import load_flores
    from xplus_release.languages import get_language

    texts = load_flores([get_language(c) for c in codes], "flores200-sample")
    out = {}
    for src in codes:
        for tgt in codes:
            if src == tgt:
                continue
            refs = [f"{texts[tgt][i % len(texts[tgt])]} ({i})" for i in range(segments)]
            hyps_a = [" ".join(r.split()[:-2]) if i % 3 else r for i, r in enumerate(refs)]  # two words short
            hyps_b = [refs[i] if i % 10 == 0 else h[: len(h) // 2] if i % 10 == 5 else h
                      for i, h in enumerate(hyps_a)]  # a tenth repaired, a tenth cut in half
            out[f"{src}-{tgt}"] = (refs, hyps_a, hyps_b)
    return out


def write_runs(root: Path, grid: dict) -> tuple[Path, Path, float]:
    """Runs A and B, scored by the suite's scoring step; returns their paths and the scoring time."""
    from tqdm.auto import tqdm

    from xplus_release.evalsuite.translation.scoring import score_corpus
    from xplus_release.runs import RunFolder

    paths, scoring = [], 0.0
    for side, name in ((1, "a"), (2, "b")):
        run = RunFolder.open(root / name, "synthetic-model")
        gens = {}
        for direction, texts in tqdm(grid.items(), desc=f"run {name}", unit="direction"):
            records = [{"item_id": f"{direction}:{i}", "model": "synthetic-model", "prompt_hash": "p",
                        "direction": direction, "index": i, "source": f"source {i}", "reference": ref,
                        "output": hyp, "hypothesis": hyp, "finish_reason": "stop"}
                       for i, (ref, hyp) in enumerate(zip(texts[0], texts[side]))]
            run.generations("translation", direction).append(records)
            gens[direction] = records
        start = time.perf_counter()
        score_corpus(gens, ["spbleu", "chrf"], "flores200", {}, progress=False, run_path=run.path)
        scoring += time.perf_counter() - start
        paths.append(run.path)
    return paths[0], paths[1], scoring


def time_compare(a: Path, b: Path, samples: int) -> tuple[float, dict]:
    from xplus_release.evalsuite.translation.compare import compare_runs

    start = time.perf_counter()
    result = compare_runs(a, b, ["spbleu", "chrf"], n_samples=samples, progress=False)
    return time.perf_counter() - start, result


def time_cli(root: Path, grid: dict, directions: list[str], samples: int) -> tuple[float, list[dict]]:
    """Seconds for sacrebleu's CLI over ``directions`` (files written beforehand), and its p-values."""
    folder = root / "cli"
    folder.mkdir()
    for direction in directions:
        for name, lines in zip(("ref", "a", "b"), grid[direction]):
            (folder / f"{direction}.{name}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    outputs, start = [], time.perf_counter()
    for direction in directions:
        done = subprocess.run(
            [sys.executable, "-m", "sacrebleu", str(folder / f"{direction}.ref"), "-i", str(folder / f"{direction}.a"),
             str(folder / f"{direction}.b"), "--paired-bs", "--paired-bs-n", str(samples), "-m", "bleu", "chrf",
             "--tokenize", "flores200", "--chrf-whitespace", "-f", "text"],
            capture_output=True, text=True, check=True)
        outputs.append({"direction": direction, "table": done.stdout.split("\n\n")[0]})
    return time.perf_counter() - start, outputs


def ensure_spm(root: Path) -> str:
    """'real' if sacrebleu's flores200 model is here, else 'stand-in' after training one on the sample text."""
    from xplus_release.evalsuite.translation.metrics import spm_model_path

    if os.path.exists(spm_model_path("flores200")):
        return "real"
    import sentencepiece as spm
    from sacrebleu.tokenizers import tokenizer_spm

    from xplus_release.evalsuite.translation.data import load_flores
    from xplus_release.languages import PAPER_LANGUAGES

    corpus = root / "spm.txt"
    texts = load_flores(list(PAPER_LANGUAGES), "flores200-sample")
    corpus.write_text("\n".join(line for lines in texts.values() for line in lines), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(root / "spm"), vocab_size=4000,
                                   character_coverage=1.0, minloglevel=2)
    models = root / "sacrebleu" / "models"
    models.mkdir(parents=True)
    shutil.copy(root / "spm.model", models / os.path.basename(tokenizer_spm.SPM_MODELS["flores200"]["url"]))
    os.environ["SACREBLEU"] = str(root / "sacrebleu")  # for the CLI's processes
    tokenizer_spm.SACREBLEU_DIR = str(root / "sacrebleu")
    return "stand-in"


def main() -> None:
    from xplus_release.evalsuite.translation.sentence_stats import STATS_FOLDER
    from xplus_release.languages import PAPER_CODES

    args = parse_args()
    codes = list(PAPER_CODES) if args.langs == "paper" else args.langs.split(",")
    with tempfile.TemporaryDirectory(prefix="compare-grid-") as tmp:
        root = Path(tmp)
        spm_model = ensure_spm(root)
        grid = grid_texts(codes, args.segments)
        a, b, scoring = write_runs(root, grid)
        stored, result = time_compare(a, b, args.samples)
        for run in (a, b):
            shutil.rmtree(run.joinpath(*STATS_FOLDER))
        computed, again = time_compare(a, b, args.samples)
        sample = list(grid)[:: max(1, len(grid) // args.cli_sample)][: args.cli_sample]
        cli, tables = time_cli(root, grid, sample, args.samples)
    cli_grid = cli / len(sample) * len(grid)
    print(json.dumps({
        "benchmark": "compare_grid", "machine": platform.machine(), "cpus": os.cpu_count(),
        "languages": len(codes), "directions": len(grid), "segments": args.segments, "resamples": args.samples,
        "metrics": ["spbleu", "chrf"], "spm_model": spm_model,
        "suite_scoring_both_runs_s": round(scoring, 2),
        "compare_stored_statistics_s": round(stored, 2), "compare_computed_statistics_s": round(computed, 2),
        "same_result_either_way": result == again,
        "sacrebleu_cli_timed_directions": len(sample), "sacrebleu_cli_timed_s": round(cli, 2),
        "sacrebleu_cli_per_direction_s": round(cli / len(sample), 3),
        "sacrebleu_cli_grid_extrapolated_s": round(cli_grid, 1),
        "speedup_stored_statistics": round(cli_grid / stored, 1),
        "speedup_computed_statistics": round(cli_grid / computed, 1),
        "directions_improving_worsening_same_spbleu": [
            sum(r["outcome"] == k for r in result["rows"] if r["metric"] == "spbleu") for k in ("better", "worse", "same")],
        "cli_first_table": tables[0]["table"],
    }, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
