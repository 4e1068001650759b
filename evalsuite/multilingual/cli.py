"""``xplus-eval multilingual``: the paper's multilingual tasks through lm-eval against a vLLM server.

Without ``--endpoint`` a vLLM OpenAI server is started for ``--model`` (and stopped at the end); with it,
the running server is used and must serve ``--model``.
"""

from __future__ import annotations

from xplus_release.evalsuite.multilingual.tasks import TASKS

EXAMPLE = """examples:
  xplus-eval multilingual --model LLaMAX/Qwen3-XPlus-8B
  xplus-eval multilingual --model xplus-tiny --tasks xnli,mgsm --langs paper --limit 4 --max-tokens 32
  xplus-eval multilingual --model LLaMAX/Qwen3-XPlus-8B --endpoint http://127.0.0.1:8000/v1 --tasks xcopa
  xplus-eval multilingual --model xplus-tiny --tasks xgpqa --langs de --limit 2 --benchmax-dir ~/BenchMAX

xifeval, xgpqa and mgsm run BenchMAX's own lm-eval task folders (github.com/CONE-MT/BenchMAX at
d509bfdefa43): from --benchmax-dir, or from the data dir `xplus-eval fetch-data` fills.

tasks:
""" + "\n".join(f"  {name:<15} {spec.description}" for name, spec in TASKS.items())


def add_parser(subparsers) -> None:
    from xplus_release.evalsuite.cli import add_suite_command

    add_suite_command(
        subparsers, "multilingual", "multilingual", title="Multilingual evaluation of {model}",
        help="XNLI, XStoryCloze, XCOPA, XWinograd, MGSM, xIFEval, XGPQA (BenchMAX), MathQA, HumanEval+ (lm-eval)",
        description=__doc__, epilog=EXAMPLE)
