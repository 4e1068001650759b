"""Run every xIFEval instruction checker of a BenchMAX checkout in every language, on sample responses,
offline: what the multilingual suite's xIFEval scoring calls, without a model or the Hub.

BenchMAX's checkers (``tasks/ifeval/instructions.py``) branch per language: sentence counts with NLTK's
punkt_tab, ``pythainlp`` (Thai), ``kss`` (Korean) or their own rules (Chinese, Japanese, Bengali), word
counts with sacrebleu's Chinese / MeCab tokenizers or the FLORES-101 SentencePiece model (Thai). A
checker whose library or data is missing fails here, before a run, instead of at scoring time.

    python -m xplus_release.evalsuite.multilingual.xifeval_checkers --benchmax-dir DIR [--data-dir DIR]

Exit status 0 when every checker ran in every language, 1 otherwise (each failure on one line).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

from xplus_release.errors import MissingAssetError

# BenchMAX's language field per package code (its docs say zh-CN for Chinese; the others are the same)
BENCHMAX_LANG = {"zh": "zh-CN"}
# checkers that cannot build without these arguments (the dataset always gives them)
REQUIRED_KWARGS = {"combination:repeat_prompt": {"prompt_to_repeat": "{prompt}"}}


def load_registry(ifeval_dir: Path):
    """BenchMAX's ``instructions_registry`` module, imported as lm-eval's ``!function`` loader does
    (its folder on ``sys.path``: the modules import each other by bare name); its prints go nowhere."""
    if not (ifeval_dir / "instructions_registry.py").is_file():
        raise MissingAssetError(f"{ifeval_dir} has no instructions_registry.py; pass the folder of a BenchMAX "
                                "checkout that holds tasks/ifeval")
    if str(ifeval_dir) not in sys.path:
        sys.path.insert(0, str(ifeval_dir))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import instructions_registry
    return instructions_registry


def sample_response(lang: str, sentences: list[str]) -> str:
    """A response a model could give: three paragraphs of that language's FLORES sentences, markdown marks."""
    paragraphs = [" ".join(sentences[i:i + 3]) for i in range(0, 9, 3)]
    return f"*{paragraphs[0]}*\n\n{paragraphs[1]}\n\n* {paragraphs[2]}"


def run_checker(registry, instruction_id: str, lang: str, prompt: str, response: str) -> bool:
    """One checker as BenchMAX's ``test_instruction_following_strict`` runs it; raises what it raises."""
    checker = registry.INSTRUCTION_DICT[instruction_id](instruction_id, BENCHMAX_LANG.get(lang, lang))
    kwargs = {k: v.format(prompt=prompt) for k, v in REQUIRED_KWARGS.get(instruction_id, {}).items()}
    checker.build_description(**kwargs)
    args = checker.get_instruction_args()
    if args and "prompt" in args:
        checker.build_description(prompt=prompt)
    return bool(checker.check_following(response))


def run_every_checker(ifeval_dir: Path, langs: list[str]) -> tuple[int, list[str]]:
    """(checks run, failures as lines) for every checker in every language."""
    from tqdm.auto import tqdm

    from xplus_release.evalsuite.translation.data import load_flores
    from xplus_release.languages import get_language

    registry = load_registry(ifeval_dir)
    texts = load_flores([get_language(code) for code in langs], "flores200-sample")
    failures, runs = [], 0
    for lang in tqdm(langs, desc="xIFEval checkers", unit="language"):
        response = sample_response(lang, texts[lang])
        for instruction_id in registry.INSTRUCTION_DICT:
            runs += 1
            try:
                run_checker(registry, instruction_id, lang, texts[lang][10], response)
            except Exception as err:  # noqa: BLE001 -- every failure of BenchMAX's code is reported, not raised
                failures.append(f"{lang} {instruction_id}: {type(err).__name__}: {err}".splitlines()[0])
    return runs, failures


def main(argv: list[str] | None = None) -> int:
    from xplus_release.evalsuite.multilingual.offline_assets import check_xifeval_assets
    from xplus_release.multilingual_tasks import BENCHMAX_LANGS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmax-dir", type=Path, required=True, help="a BenchMAX checkout (holds tasks/ifeval)")
    parser.add_argument("--data-dir", type=Path, help="a folder filled by xplus-eval fetch-data (NLTK, sacrebleu data)")
    parser.add_argument("--langs", default=",".join(BENCHMAX_LANGS), help="comma-separated (default: all 17)")
    args = parser.parse_args(argv)
    try:
        check_xifeval_assets(args.data_dir)
        runs, failures = run_every_checker(args.benchmax_dir / "tasks" / "ifeval", args.langs.split(","))
    except MissingAssetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for line in failures:
        print(line, file=sys.stderr)
    print(f"{runs - len(failures)} of {runs} checker runs passed ({len(args.langs.split(','))} languages)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
