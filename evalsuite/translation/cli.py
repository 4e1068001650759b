"""``xplus-eval translation``: a thin CLI over ``TranslationSuite``.

    xplus-eval translation --model xplus-tiny --langs en,zh,sw --limit 20
    xplus-eval translation --model LLaMAX/Qwen3-XPlus-8B                      # the full 17x16 grid
    xplus-eval translation --model Qwen/Qwen3-8B --directions en-x,x-en --data-dir flores101_dataset
    xplus-eval translation --endpoint http://127.0.0.1:8000/v1 --model LLaMAX/Qwen3-XPlus-8B --langs en,sw

A rerun with the same --output resumes: it generates and scores only what is missing (--force redoes all).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from xplus_release.evalsuite.translation.options import DATASETS, DEFAULT_COMET_MODEL, METRICS

from xplus_release.cli import add_model_arguments, engine_from_args


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "translation", help="FLORES translation benchmark (spBLEU, chrF, BLEU, xCOMET), any direction grid",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    grid = parser.add_argument_group("what to evaluate")
    grid.add_argument("--langs", default="all",
                      help="comma-separated languages (codes, FLORES codes or names); 'all' = the paper's 17 (default)")
    grid.add_argument("--directions", default="all",
                      help="comma-separated: all (every ordered pair of --langs, the default), en-x (English into "
                           "the others), x-en (the others into English), any L-x / x-L, or explicit pairs like en-zh")
    grid.add_argument("--dataset", choices=DATASETS,
                      help="FLORES source: local (--data-dir), benchmax (LLaMAX/BenchMAX_General_Translation via "
                           "datasets, Hub cache) or flores200-sample (80 sentences shipped in the package). Default: "
                           "local if --data-dir is given, else flores200-sample for xplus-tiny and benchmax otherwise")
    grid.add_argument("--data-dir", type=Path,
                      help="FLORES folder with devtest/<code>.devtest files (FLORES-200 or FLORES-101 codes)")
    grid.add_argument("--limit", type=int, help="first N sentences of each language (smoke runs)")
    scoring = parser.add_argument_group("metrics")
    scoring.add_argument("--metrics", help=f"comma-separated, from {', '.join(METRICS)} (default: all four; "
                                           "chrf,bleu for xplus-tiny, which need no downloaded model)")
    scoring.add_argument("--tokenizer", default="flores200", choices=("flores200", "flores101"),
                         help="spBLEU's SentencePiece tokenizer (default flores200, what BenchMAX's translation "
                              "evaluation scores with; flores101 is the older FLORES-101 SentencePiece model)")
    scoring.add_argument("--comet-model", default=DEFAULT_COMET_MODEL,
                         help=f"xCOMET model: hub id (default {DEFAULT_COMET_MODEL}, as BenchMAX; Unbabel/XCOMET-XL is "
                              "smaller, its scores are not comparable) or a local COMET model folder / .ckpt")
    scoring.add_argument("--comet-batch-size", type=int, default=16, help="segments per xCOMET batch (default 16)")
    run = parser.add_argument_group("run")
    run.add_argument("--output", type=Path, help="run folder (default: runs/<model>-translation); rerun to resume")
    run.add_argument("--force", action="store_true", help="regenerate and rescore everything in the run folder")
    run.add_argument("--max-tokens", type=int, default=512, help="new tokens per translation (default 512, the paper's)")
    run.add_argument("--chunk-size", type=int, default=20000,
                     help="prompts per engine call, all directions mixed; each chunk is saved before the next, "
                          "so a killed run loses at most one (default 20000: larger keeps a GPU batch full longer)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_model_arguments(parser)
    parser.set_defaults(func=run_translation)


def default_output(model: str) -> Path:
    return Path("runs") / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', model.strip('/'))}-translation"


def run_translation(args: argparse.Namespace) -> int:
    from xplus_release.evalsuite.base import EvalContext, load_suite, write_report

    from xplus_release.runs import RunFolder

    output = args.output or default_output(args.model)
    options = {"langs": args.langs, "directions": args.directions, "dataset": args.dataset, "metrics": args.metrics,
               "tokenizer": args.tokenizer, "comet_model": args.comet_model,
               "comet_batch_size": args.comet_batch_size, "max_tokens": args.max_tokens,
               "chunk_size": args.chunk_size}
    suite = load_suite("translation")
    run = RunFolder.open(output, args.model)
    ctx = EvalContext(run=run, model=args.model, engine_factory=lambda: engine_from_args(args),
                      endpoint=args.endpoint, api_key=args.api_key, limit=args.limit, force=args.force,
                      data_dir=args.data_dir, progress=not args.no_progress, options=options)
    try:
        scores = suite.run(ctx)
    finally:
        if ctx._engine is not None:
            ctx._engine.close()
    report = write_report(run, f"Translation: {args.model}", [suite.report(run, scores)])
    _print_summary(scores, report)
    return 0


def _print_summary(scores: dict, report: Path) -> None:
    metrics = scores["settings"]["metrics"]
    for key in ("en-x", "x-en"):
        if key in scores["aggregates"]:
            values = ", ".join(f"{m} {scores['aggregates'][key].get(m, float('nan')):.2f}" for m in metrics)
            print(f"{key}: {values}")
    print(f"{len(scores['directions'])} directions scored; report: {report}")


if __name__ == "__main__":
    from xplus_release.evalsuite.cli import main

    sys.exit(main(["translation", *sys.argv[1:]]))
