"""``xplus-eval all``: every suite against one server, one run folder, one report.

    xplus-eval all --model LLaMAX/Qwen3-XPlus-8B --data-dir /data/xplus-eval
    xplus-eval all --model xplus-tiny --limit 2 --max-tokens 32 --suites reasoning --data-dir DIR
    xplus-eval all --model Qwen/Qwen3-8B --endpoint http://127.0.0.1:8000/v1 --api-key KEY

Each suite's options are its own command's flags with the suite's name in front (--translation-langs,
--reasoning-tasks); --max-tokens caps every suite at once.
"""

from __future__ import annotations


def add_parser(subparsers) -> None:
    from xplus_release.evalsuite.cli import add_suite_command

    add_suite_command(
        subparsers, "all", None, title="Evaluation of {model}",
        help="every suite (translation, multilingual, reasoning) with the model loaded once, one report",
        description="Start one vLLM server (or attach to --endpoint), run the chosen suites against it and write "
                    "one run folder: scores.json, report.md beside the paper's numbers, plots. A failed suite "
                    "does not stop the others; the exit status is non-zero and names it. Rerun to resume.\n\n"
                    + __doc__)
