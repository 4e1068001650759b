"""``xplus-eval compare RUN_A RUN_B``: per-direction deltas between two translation runs, with sacrebleu's
paired bootstrap significance, as a table (compare.md, compare.json) and a PNG per metric.

    xplus-eval compare runs/Qwen_Qwen3-8B-translation runs/LLaMAX_Qwen3-XPlus-8B-translation
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare two translation runs per direction (paired bootstrap significance)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_a", type=Path, metavar="RUN_A", help="baseline run folder")
    parser.add_argument("run_b", type=Path, metavar="RUN_B", help="run folder compared with the baseline")
    parser.add_argument("--metrics", default="spbleu,chrf", help="comma-separated: spbleu, chrf (default both)")
    parser.add_argument("--tokenizer", default="flores200", choices=("flores200", "flores101"),
                        help="spBLEU's SentencePiece tokenizer (default flores200)")
    parser.add_argument("--samples", type=int, default=1000, help="bootstrap resamples (default 1000, sacrebleu's)")
    parser.add_argument("--output", type=Path, help="where compare.md/.json/.png go (default: RUN_B/compare-<RUN_A name>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from xplus_release.evalsuite.translation.compare import compare_runs, write_comparison

    from xplus_release.errors import ConfigError

    if args.samples < 1:
        raise ConfigError(f"--samples must be at least 1, got {args.samples}")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    rows = compare_runs(args.run_a, args.run_b, metrics, args.tokenizer, args.samples, not args.no_progress)
    output = args.output or args.run_b / f"compare-{args.run_a.resolve().name}"
    report = write_comparison(rows, args.run_a, args.run_b, output, args.samples)
    significant = sum(1 for r in rows if r["p_value"] < 0.05)
    print(f"{len(rows)} direction/metric pairs compared, {significant} significant at p < 0.05; report: {report}")
    return 0
