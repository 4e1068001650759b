"""``xplus-eval reasoning``: the paper's reasoning benchmarks through OpenCompass, HumanEval+ through EvalPlus.

    xplus-eval reasoning --model LLaMAX/Qwen3-XPlus-8B --data-dir /data/xplus-eval
    xplus-eval reasoning --model xplus-tiny --tasks math,mbpp --limit 2 --max-tokens 32 --data-dir DIR

OpenCompass 0.5.4 and EvalPlus 0.3.1 run each in its own managed environment against one vLLM server:
started here, or --endpoint.
Writes a run folder and resumes it.
"""

from __future__ import annotations

from xplus_release.evalsuite.reasoning.tasks import TASKS


def add_parser(subparsers) -> None:
    from xplus_release.evalsuite.cli import add_suite_command

    add_suite_command(
        subparsers, "reasoning", "reasoning", title="Reasoning evaluation of {model}",
        help="reasoning benchmarks (BBEH, AIME, MATH, MBPP, LiveCodeBench, HumanEval, ...) via OpenCompass, "
             "HumanEval+ via EvalPlus",
        description=__doc__, epilog="tasks: " + ", ".join(TASKS))
