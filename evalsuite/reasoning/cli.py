"""``xplus-eval reasoning``: the paper's reasoning benchmarks through OpenCompass.

    xplus-eval reasoning --model LLaMAX/Qwen3-XPlus-8B --data-dir /data/xplus-eval
    xplus-eval reasoning --model xplus-tiny --tasks math,mbpp --limit 2 --max-out-len 32 --data-dir DIR
"""

from __future__ import annotations

import argparse

from xplus_release.evalsuite.reasoning.tasks import TASKS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "reasoning",
        help="reasoning benchmarks (BBEH, AIME, MATH, MBPP, LiveCodeBench, HumanEval, ...) via OpenCompass, HumanEval+ "
             "via EvalPlus",
        description="Run the paper's reasoning benchmarks with OpenCompass 0.5.4, and HumanEval+ with EvalPlus 0.3.1 "
                    "(each in its own managed environment), against one vLLM server: started here, or --endpoint. "
                    "Writes a run folder and resumes it.",
    )
    from xplus_release.evalsuite.common import add_run_arguments

    from xplus_release.cli import add_model_arguments

    add_model_arguments(parser)
    add_run_arguments(parser, default_output="runs/reasoning")
    add_reasoning_arguments(parser)
    parser.set_defaults(func=_main)


def add_reasoning_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """Reasoning options; ``prefix`` names the task option when several suites share a parser."""
    group = parser.add_argument_group("reasoning (OpenCompass)")
    group.add_argument(f"--{prefix}tasks", dest="reasoning_tasks", metavar="LIST",
                       help=f"comma-separated tasks (default: all that can run): {', '.join(TASKS)}")
    group.add_argument("--thinking", choices=("on", "off"), default="on",
                       help="Qwen3 thinking mode for reasoning (default: on, Qwen3's own default)")
    group.add_argument("--max-out-len", type=int, metavar="N",
                       help="cap generated tokens per item (default: each OpenCompass dataset's own)")
    group.add_argument("--judge-endpoint", metavar="URL",
                       help="OpenAI-compatible server of the LLM judge that AIME2025 and OlymMath need")
    group.add_argument("--judge-model", help="the judge's served model name")
    group.add_argument("--judge-api-key", help="API key of --judge-endpoint")
    group.add_argument("--tokenizer", metavar="PATH",
                       help="tokenizer folder OpenCompass counts prompt tokens with (default: the model's)")
    group.add_argument("--code-memory-gb", type=float, default=16.0,
                       help="address-space limit per process while scoring model-written code (default 16)")
    group.add_argument("--code-cpu-seconds", type=int, default=3600,
                       help="CPU-time limit per process while scoring (default 3600)")
    group.add_argument("--score-timeout", type=float, default=14400.0, metavar="SECONDS",
                       help="wall-clock limit of the whole OpenCompass run, generation and scoring (default 14400)")
    group.add_argument("--in-process", choices=("on", "off"),
                       help="run OpenCompass's per-dataset tasks in its main process: faster start, but one failing "
                            "dataset stops the run (default: on with --limit, off otherwise)")


def reasoning_options(args: argparse.Namespace) -> dict:
    return {
        "tasks": args.reasoning_tasks, "thinking": args.thinking, "max_out_len": args.max_out_len,
        "judge_endpoint": args.judge_endpoint, "judge_model": args.judge_model,
        "judge_api_key": args.judge_api_key, "tokenizer": args.tokenizer, "memory_gb": args.code_memory_gb,
        "cpu_seconds": args.code_cpu_seconds, "score_timeout_s": args.score_timeout,
        "concurrency": args.concurrency,
        "in_process": None if args.in_process is None else args.in_process == "on",
    }


def _main(args: argparse.Namespace) -> int:
    from xplus_release.evalsuite.common import run_suites

    return run_suites(args, ["reasoning"], {"reasoning": reasoning_options(args)}, title="Reasoning evaluation")
