"""``xplus-eval all``: every suite against one server, one run folder, one report.

    xplus-eval all --model LLaMAX/Qwen3-XPlus-8B --data-dir /data/xplus-eval
    xplus-eval all --model xplus-tiny --limit 2 --max-out-len 32 --suites reasoning --data-dir DIR
    xplus-eval all --model Qwen/Qwen3-8B --endpoint http://127.0.0.1:8000/v1 --api-key KEY
"""

from __future__ import annotations

import argparse

from xplus_release.evalsuite.base import SUITES

from xplus_release.errors import ConfigError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "all", help="every suite (translation, multilingual, reasoning) with the model loaded once, one report",
        description="Start one vLLM server (or attach to --endpoint), run the chosen suites against it and write "
                    "one run folder: scores.json, report.md beside the paper's numbers, plots. A failed suite "
                    "does not stop the others; the exit status is non-zero and names it. Rerun to resume.",
    )
    from xplus_release.evalsuite.common import add_run_arguments
    from xplus_release.evalsuite.reasoning.cli import add_reasoning_arguments

    from xplus_release.cli import add_model_arguments

    add_model_arguments(parser)
    add_run_arguments(parser, default_output="runs/all")
    parser.add_argument("--suites", metavar="LIST",
                        help=f"comma-separated suites, in run order (default: all registered: {', '.join(SUITES)})")
    add_reasoning_arguments(parser, prefix="reasoning-")
    parser.add_argument("--benchmax-dir", metavar="DIR",
                        help="BenchMAX checkout (the folder holding tasks/) for the multilingual suite's xifeval, "
                             "xgpqa and mgsm (default: DATA_DIR/benchmax, which fetch-data fills)")
    parser.set_defaults(func=_main)


def parse_suites(text: str | None) -> list[str]:
    """Raises: ConfigError: an unknown or empty suite list (the message lists the valid ones)."""
    if text is None:
        return list(SUITES)
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in SUITES]
    if unknown or not names:
        raise ConfigError(f"unknown suite {', '.join(unknown) or '(none)'}; choose from: {', '.join(SUITES)}")
    return names


def _main(args: argparse.Namespace) -> int:
    from xplus_release.evalsuite.common import run_suites
    from xplus_release.evalsuite.reasoning.cli import reasoning_options

    names = parse_suites(args.suites)
    # each suite takes its own option names; a suite not listed here runs on its defaults
    options = {name: {} for name in names}
    if "translation" in names and args.max_out_len:
        options["translation"] = {"max_tokens": args.max_out_len}
    if "multilingual" in names:
        options["multilingual"] = {"max_out_len": args.max_out_len, "concurrency": args.concurrency,
                                   "benchmax_dir": args.benchmax_dir}
    if "reasoning" in names:
        options["reasoning"] = reasoning_options(args)
    return run_suites(args, names, options, title=f"Evaluation of {args.model}")
