"""``xplus-translate``: translate text with any model, through the paper's prompt, greedy, thinking off.

    xplus-translate --model xplus-tiny --source en --target zh "Hello, world."
    xplus-translate --model LLaMAX/Qwen3-XPlus-8B -s de -t sw --input doc.txt --output doc.sw.txt
    xplus-translate --endpoint http://127.0.0.1:8000/v1 --model LLaMAX/Qwen3-XPlus-8B -s en -t ja < in.txt

One translation per input line, in order. The whole input goes to the engine in one batch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xplus_release.cli import add_model_arguments, run_cli
from xplus_release.config import from_flags
from xplus_release.engines import SamplingConfig
from xplus_release.errors import ConfigError
from xplus_release.languages import get_language
from xplus_release.options import ModelOptions
from xplus_release.prompts import postprocess_translation, translation_messages


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xplus-translate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("text", nargs="*", help="texts to translate (default: lines of --input, else stdin)")
    parser.add_argument("-s", "--source", required=True, help="source language: code, FLORES code or name")
    parser.add_argument("-t", "--target", required=True, help="target language: code, FLORES code or name")
    parser.add_argument("--input", type=Path, help="file with one text per line")
    parser.add_argument("--output", type=Path, help="write translations here, one per line (default: stdout)")
    parser.add_argument("--max-tokens", type=int, default=512, help="new tokens per translation (default 512)")
    add_model_arguments(parser)
    return parser


def read_texts(args: argparse.Namespace) -> list[str]:
    if args.text:
        return list(args.text)
    if args.input:
        if not args.input.is_file():
            raise ConfigError(f"--input {args.input} does not exist; pass a text file with one text per line")
        return args.input.read_text(encoding="utf-8").splitlines()
    return sys.stdin.read().splitlines()


@run_cli
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    source, target = get_language(args.source), get_language(args.target)
    if source == target:
        raise ConfigError(f"source and target are both {source.name}; pick two different languages")
    texts = read_texts(args)
    if not texts:
        raise ConfigError("nothing to translate: pass texts, --input FILE, or lines on stdin")
    engine = from_flags(ModelOptions, args).open_engine()
    generations = engine.chat([translation_messages(t, source, target) for t in texts],
                              SamplingConfig(max_tokens=args.max_tokens), progress=len(texts) > 1)
    output = "".join(postprocess_translation(g.text) + "\n" for g in generations)
    if args.output:
        args.output.write_text(output, encoding="utf-8")
    else:
        sys.stdout.write(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
