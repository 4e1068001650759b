"""``xplus-eval compare RUN_A RUN_B``: per-direction deltas between two translation runs with sacrebleu's
paired tests, 95% confidence intervals (per direction, per x→L / L→x average and for the grid) and a
correction for testing many directions at once, as a table (compare.md, compare.json) and a PNG per metric.

    xplus-eval compare runs/Qwen_Qwen3-8B-translation runs/LLaMAX_Qwen3-XPlus-8B-translation
    xplus-eval compare RUN_A RUN_B --metrics spbleu,chrf,xcomet --test ar --correction bh
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare two translation runs per direction (paired significance, corrected; intervals)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_a", type=Path, metavar="RUN_A", help="baseline run folder")
    parser.add_argument("run_b", type=Path, metavar="RUN_B", help="run folder compared with the baseline")
    parser.add_argument("--metrics", default="spbleu,chrf",
                        help="comma-separated: spbleu, chrf, xcomet (xcomet: both runs scored with one xCOMET "
                             "model; default spbleu,chrf)")
    parser.add_argument("--tokenizer", default="flores200", choices=("flores200", "flores101"),
                        help="spBLEU's SentencePiece tokenizer (default flores200)")
    parser.add_argument("--test", default="bs", choices=("bs", "ar"),
                        help="bs: paired bootstrap resampling (default), ar: approximate randomization (sacrebleu's)")
    parser.add_argument("--samples", type=int,
                        help="resamples (bs) or trials (ar); default sacrebleu's: 1000 for bs, 10000 for ar")
    parser.add_argument("--correction", default="holm", choices=("holm", "bh", "none"),
                        help="multiple-testing correction across directions, per metric: holm (family-wise "
                             "error, default), bh (Benjamini-Hochberg false discovery rate) or none")
    parser.add_argument("--output", type=Path, help="where compare.md/.json/.png go (default: RUN_B/compare-<RUN_A name>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from xplus_release.errors import ConfigError
    from xplus_release.evalsuite.translation.compare import compare_runs, summary_sentence, write_comparison
    from xplus_release.evalsuite.translation.significance import DEFAULT_SAMPLES, outcome_counts

    samples = DEFAULT_SAMPLES[args.test] if args.samples is None else args.samples
    if samples < 1:
        raise ConfigError(f"--samples must be at least 1, got {samples}")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    comparison = compare_runs(args.run_a, args.run_b, metrics, args.tokenizer, samples, not args.no_progress,
                              args.test, args.correction)
    output = args.output or args.run_b / f"compare-{args.run_a.resolve().name}"
    report = write_comparison(comparison, args.run_a, args.run_b, output, samples, args.test, args.correction)
    for metric in metrics:
        print(f"{metric}: " + summary_sentence(outcome_counts([r for r in comparison["rows"] if r["metric"] == metric])))
    print(f"report: {report}")
    return 0
