"""``xplus-translate``: translate text with any model, through the paper's prompt, greedy, thinking off.

    xplus-translate --model xplus-tiny --source en --target zh "Hello, world."
    xplus-translate --model LLaMAX/Qwen3-XPlus-8B -s de -t sw --input doc.txt --output doc.sw.txt
    xplus-translate --endpoint http://127.0.0.1:8000/v1 --model LLaMAX/Qwen3-XPlus-8B -s en -t ja < in.txt
    xplus-translate --model LLaMAX/Qwen3-XPlus-8B -s en -t de report.docx      # writes report.de.docx

One translation per input line, in order. Each line is cut into sentences (the segmentation of
``xplus-serve``'s translation route, ``--split-sentences``), every sentence of the whole input goes to the
engine in one batch, and each line is put back together with its spacing, indentation and list markers as
they were; blank lines stay blank and are never sent. Sentences that stop at ``--max-tokens`` are reported
on stderr.

A single argument naming a file of a supported format (.txt .html .md .srt .vtt .docx .pptx .xlf .xliff) is
translated as a file, as ``xplus-serve``'s ``/v1/translate_file`` does, into FILE.<target>.EXT beside it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xplus_release.cli import add_model_arguments, run_cli
from xplus_release.config import from_flags
from xplus_release.documents.files import SUPPORTED_EXTENSIONS, FileLimits, translate_file
from xplus_release.documents.segmentation import SPLIT_SENTENCES, segment, segment_units
from xplus_release.engines import SamplingConfig
from xplus_release.errors import ConfigError
from xplus_release.languages import get_language
from xplus_release.options import ModelOptions
from xplus_release.prompts import postprocess_translation, translation_messages


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xplus-translate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("text", nargs="*", help=(
        "texts to translate (default: lines of --input, else stdin), or one FILE of a supported format"))
    parser.add_argument("-s", "--source", required=True, help="source language: code, FLORES code or name")
    parser.add_argument("-t", "--target", required=True, help="target language: code, FLORES code or name")
    parser.add_argument("--input", type=Path, help="file with one text per line")
    parser.add_argument("--output", type=Path, help="write translations here, one per line (default: stdout)")
    parser.add_argument("--max-tokens", type=int, default=512, help="new tokens per sentence (default 512)")
    parser.add_argument("--split-sentences", choices=SPLIT_SENTENCES, default="1",
                        help="DeepL's values: 1 sentences (default), 0 each line whole, nonewlines as 1 here "
                             "(input is read line by line)")
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
    if len(args.text) == 1 and Path(args.text[0]).suffix.lower() in SUPPORTED_EXTENSIONS \
            and Path(args.text[0]).is_file():
        written = translate_a_file(args, Path(args.text[0]), source, target)
        print(f"wrote {written}", file=sys.stderr)
        return 0
    texts = read_texts(args)
    if not texts:
        raise ConfigError("nothing to translate: pass texts, --input FILE, or lines on stdin")
    output = "".join(line + "\n" for line in translate_lines(args, texts, source, target))
    if args.output:
        args.output.write_text(output, encoding="utf-8")
    else:
        sys.stdout.write(output)
    return 0


def translate_a_file(args: argparse.Namespace, path: Path, source, target) -> Path:
    """``path`` translated by its format's library into ``NAME.<target>.EXT`` beside it, written whole or not at
    all. Raises: DocumentError (one line: unsupported, too large, corrupt)."""
    def translate_units(units: list[str]) -> list[str]:
        documents = segment_units(units, source.code, args.split_sentences)
        return documents.join(translate_sentences(args, documents.segments, source, target))

    data = translate_file(path.name, path.read_bytes(), translate_units, FileLimits())
    out = path.with_name(f"{path.stem}.{target.code}{path.suffix}")
    partial = out.with_name(out.name + ".partial")
    partial.write_bytes(data)
    partial.replace(out)  # an interrupted run never leaves half a file under the final name
    return out


def translate_lines(args: argparse.Namespace, texts: list[str], source, target) -> list[str]:
    """Each text translated sentence by sentence, all sentences in one batch, separators kept."""
    documents = [segment(text, source.code, args.split_sentences) for text in texts]
    sentences = [s for doc in documents for s in doc.segments]
    outputs = iter(translate_sentences(args, sentences, source, target))
    return [doc.join([next(outputs) for _ in doc.segments]) for doc in documents]


def translate_sentences(args: argparse.Namespace, sentences: list[str], source, target) -> list[str]:
    """One batch on the engine; sentences cut at ``--max-tokens`` are counted on stderr."""
    if not sentences:
        return []  # only blank lines: nothing for a model to do
    engine = from_flags(ModelOptions, args).open_engine()
    generations = engine.chat([translation_messages(s, source, target) for s in sentences],
                              SamplingConfig(max_tokens=args.max_tokens), progress=len(sentences) > 1)
    cut = sum(g.finish_reason == "length" for g in generations)
    if cut:
        print(f"warning: {cut} of {len(sentences)} sentence(s) stopped at --max-tokens {args.max_tokens}; "
              f"raise it for whole translations", file=sys.stderr)
    return [postprocess_translation(g.text) for g in generations]


if __name__ == "__main__":
    sys.exit(main())
