"""The translation suite's options: one typed dataclass, filled from ``EvalContext.options`` or CLI flags.

Directions are written ``SRC-TGT`` (``en-zh``), ``L-x`` (L into every other chosen language), ``x-L``
(every other language into L) or ``all`` (every ordered pair): the grid the paper's Table 7 averages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from xplus_release.errors import ConfigError
from xplus_release.languages import ALL_LANGUAGES, PAPER_CODES, Language, get_language, parse_language_list

METRICS = ("spbleu", "chrf", "bleu", "xcomet")
TOKENIZERS = ("flores200", "flores101")
DATASETS = ("local", "benchmax", "flores200-sample")
# BenchMAX's translation evaluation, which the paper used, scores with XCOMET-XXL; XL is selectable
DEFAULT_COMET_MODEL = "Unbabel/XCOMET-XXL"


@dataclass(frozen=True)
class TranslationOptions:
    langs: tuple[str, ...] = PAPER_CODES
    directions: tuple[str, ...] = ("all",)
    metrics: tuple[str, ...] | None = None  # None: the model's defaults (see ``default_metrics``)
    dataset: str | None = None  # None: "local" with a data dir, else the model's default source
    tokenizer: str = "flores200"  # spBLEU's SentencePiece tokenizer; BenchMAX, which the paper used, scores with flores200
    comet_model: str = DEFAULT_COMET_MODEL
    comet_batch_size: int = 16
    max_tokens: int = 512
    chunk_size: int = 20000  # prompts per engine call: a killed run loses at most one chunk

    @classmethod
    def from_mapping(cls, options: dict) -> TranslationOptions:
        """Build from a dict such as ``EvalContext.options``; ``None`` values keep the defaults.

        Raises:
            ConfigError: an unknown key, or a value out of range.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown translation option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values = {k: _as_tuple(k, v) for k, v in options.items() if v is not None}
        opts = cls(**values)
        opts.validate()
        return opts

    def validate(self) -> None:
        if self.metrics is not None:
            bad = [m for m in self.metrics if m not in METRICS]
            if bad or not self.metrics:
                raise ConfigError(f"unknown metric(s) {', '.join(bad) or '(none given)'}; choose from {', '.join(METRICS)}")
        if self.tokenizer not in TOKENIZERS:
            raise ConfigError(f"unknown spBLEU tokenizer {self.tokenizer!r}; choose flores200 or flores101")
        if self.dataset is not None and self.dataset not in DATASETS:
            raise ConfigError(f"unknown dataset {self.dataset!r}; choose from {', '.join(DATASETS)}")
        for name in ("comet_batch_size", "max_tokens", "chunk_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")


def _as_tuple(key: str, value):
    if key in ("langs", "directions", "metrics") and isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return tuple(value) if key in ("langs", "directions", "metrics") else value


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


def direction_name(src: Language, tgt: Language) -> str:
    return f"{src.code}-{tgt.code}"
