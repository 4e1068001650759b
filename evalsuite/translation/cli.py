"""``xplus-eval translation``: the translation suite alone, through the one runner.

    xplus-eval translation --model xplus-tiny --langs en,zh,sw --limit 20
    xplus-eval translation --model LLaMAX/Qwen3-XPlus-8B                      # the full 17x16 grid
    xplus-eval translation --model Qwen/Qwen3-8B --directions en-x,x-en --data-dir flores101_dataset
    xplus-eval translation --endpoint http://127.0.0.1:8000/v1 --model LLaMAX/Qwen3-XPlus-8B --langs en,sw

Without --endpoint the model runs in this process (vLLM's offline batching). A rerun with the same --output
resumes: it generates and scores only what is missing (--force redoes all).
"""

from __future__ import annotations


def add_parser(subparsers) -> None:
    from xplus_release.evalsuite.cli import add_suite_command

    add_suite_command(subparsers, "translation", "translation", title="Translation: {model}",
                      help="FLORES translation benchmark (spBLEU, chrF, BLEU, xCOMET), any direction grid",
                      description=__doc__)
