"""The translation suite's options: one typed model, filled from flags, YAML, ``--set`` or a mapping.

Directions are written ``SRC-TGT`` (``en-zh``), ``L-x`` (L into every other chosen language), ``x-L``
(every other language into L) or ``all`` (every ordered pair): the grid the paper's Table 7 averages.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import Field

from xplus_release.config import AtLeastOne, AtLeastZero, Config
from xplus_release.errors import ConfigError
from xplus_release.languages import ALL_LANGUAGES, PAPER_CODES, Language, get_language, parse_language_list
from xplus_release.lid import NLLB_LID_REPO

METRICS = ("spbleu", "chrf", "chrfpp", "ter", "bleu", "xcomet", "offtarget")
# chrF++ and TER are asked for by name: TER is slow on a 272-direction grid and the paper reports neither
DEFAULT_METRICS = ("spbleu", "chrf", "bleu", "xcomet", "offtarget")
# BenchMAX's translation evaluation, which the paper used, scores with XCOMET-XXL; XL is selectable
DEFAULT_COMET_MODEL = "Unbabel/XCOMET-XXL"
Metric = Literal[METRICS]


class TranslationOptions(Config):
    section = "translation"

    langs: tuple[str, ...] = Field(PAPER_CODES, description=(
        "comma-separated languages (codes, FLORES codes or names); default: the paper's 17"))
    directions: tuple[str, ...] = Field(("all",), description=(
        "comma-separated: all (every ordered pair of the languages, the default), en-x (English into the "
        "others), x-en (the others into English), any L-x / x-L, or explicit pairs like en-zh"))
    metrics: tuple[Metric, ...] | None = Field(None, description=(
        f"comma-separated, from {', '.join(METRICS)} (default: {','.join(DEFAULT_METRICS)}; chrf,bleu for "
        "xplus-tiny, which need no downloaded model). chrf and ter are scored with BenchMAX's settings "
        "(whitespace included; normalized, asian support); chrfpp is sacrebleu's chrF++; offtarget is the "
        "percentage of outputs language ID puts in another language (source copies counted apart)"))
    lid_model: str = Field(NLLB_LID_REPO, description=(
        f"fastText language-ID model of the offtarget metric: a hub id in the local cache (default "
        f"{NLLB_LID_REPO}, the paper's) or a .bin/.ftz file such as lid.176.ftz"))
    dataset: Literal["local", "benchmax", "flores200-sample"] | None = Field(None, description=(
        "FLORES source: local (--data-dir), benchmax (LLaMAX/BenchMAX_General_Translation via datasets, Hub "
        "cache) or flores200-sample (80 sentences shipped in the package). Default: local if --data-dir is "
        "given, else flores200-sample for xplus-tiny and benchmax otherwise"))
    tokenizer: Literal["flores200", "flores101"] = Field("flores200", description=(
        "spBLEU's SentencePiece tokenizer (flores200, what BenchMAX's translation evaluation scores with; "
        "flores101 is the older FLORES-101 SentencePiece model)"))
    comet_model: str = Field(DEFAULT_COMET_MODEL, description=(
        f"xCOMET model: hub id (default {DEFAULT_COMET_MODEL}, as BenchMAX; Unbabel/XCOMET-XL is smaller, its "
        "scores are not comparable) or a local COMET model folder / .ckpt"))
    comet_batch_size: AtLeastOne = Field(16, description="segments per xCOMET batch")
    comet_gpus: AtLeastZero | None = Field(None, description=(
        "GPUs xCOMET scores on, through unbabel-comet's own multi-GPU prediction (default: every visible GPU; "
        "0 on CPU)"), json_schema_extra={"metavar": "N"})
    max_tokens: AtLeastOne = Field(512, description="new tokens per translation (512 is the paper's)")
    chunk_size: AtLeastOne = Field(20000, description=(
        "prompts per engine call, all directions mixed; each chunk is saved before the next, so a killed "
        "run loses at most one (larger keeps a GPU batch full longer)"))


def parse_directions(specs: Iterable[str], langs: list[Language]) -> list[tuple[Language, Language]]:
    """Expand direction specs into ordered (source, target) pairs, in the grid's row/column order.

    Raises:
        UnknownLanguageError: a language in a spec is unknown.
        ConfigError: a direction with the same source and target, ``L-x``/``x-L`` with L not among the
            chosen languages, or a spec that is not ``A-B``.
    """
    chosen = {lang.code for lang in langs}
    pairs: set[tuple[Language, Language]] = set()
    for spec in specs:
        pairs.update(_expand(spec.strip(), langs, chosen))
    return sorted(pairs, key=lambda p: (_grid_rank(p[0], langs), _grid_rank(p[1], langs)))


def _grid_rank(lang: Language, langs: list[Language]) -> int:
    """Chosen languages first, in their given order; languages only explicit pairs name, after them."""
    return langs.index(lang) if lang in langs else len(langs) + ALL_LANGUAGES.index(lang)


def _expand(spec: str, langs: list[Language], chosen: set[str]) -> list[tuple[Language, Language]]:
    if spec == "all":
        return [(s, t) for s in langs for t in langs if s != t]
    left, sep, right = spec.partition("-")
    if not sep or not left or not right:
        raise ConfigError(f"direction {spec!r} is not SRC-TGT, L-x, x-L or all (e.g. en-zh, en-x, x-en)")
    if left == "x" and right == "x":
        return _expand("all", langs, chosen)
    if left == "x" or right == "x":
        pivot = get_language(right if left == "x" else left)
        if pivot.code not in chosen:
            raise ConfigError(f"direction {spec} needs {pivot.code} among --langs ({', '.join(sorted(chosen))})")
        others = [lang for lang in langs if lang != pivot]
        return [(o, pivot) for o in others] if left == "x" else [(pivot, o) for o in others]
    src, tgt = get_language(left), get_language(right)
    if src == tgt:
        raise ConfigError(f"direction {spec} translates {src.name} into itself; pick two different languages")
    return [(src, tgt)]


def resolve_grid(opts: TranslationOptions) -> tuple[list[Language], list[tuple[Language, Language]]]:
    """The chosen languages (plus any that explicit pairs name) and the direction pairs."""
    langs = parse_language_list(list(opts.langs))
    pairs = parse_directions(opts.directions, langs)
    if not pairs:
        raise ConfigError("no directions to evaluate: give at least two --langs or explicit --directions")
    used = {lang for pair in pairs for lang in pair}
    extra = sorted(used - set(langs), key=ALL_LANGUAGES.index)
    return [lang for lang in langs if lang in used] + extra, pairs
