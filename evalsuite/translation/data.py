"""FLORES devtest: a local folder, the Hub copy BenchMAX uses, or the excerpt shipped in the package.

- ``local``: the standard layout ``DIR/devtest/<code>.devtest`` (or ``DIR/<code>.devtest``), one sentence
  per line, FLORES-200 (``zho_Hans``) or FLORES-101 (``zho_simpl``) file codes.
- ``benchmax``: ``LLaMAX/BenchMAX_General_Translation``, configs ``flores_<code>``, through ``datasets``
  (the Hub cache serves it offline once fetched).
- ``flores200-sample``: the first 80 devtest sentences of the 17 languages, shipped in the package for
  the test model ``xplus-tiny``; too small for numbers anyone should quote.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from xplus_release.errors import ConfigError, MissingAssetError
from xplus_release.languages import PAPER_LANGUAGES, Language

BENCHMAX_REPO = "LLaMAX/BenchMAX_General_Translation"
SAMPLE_LINES = 80


def load_flores(langs: list[Language], dataset: str, data_dir: Path | None = None,
                limit: int | None = None) -> dict[str, list[str]]:
    """Aligned sentences per language code, cut to the first ``limit``.

    Raises:
        MissingAssetError: a language file or dataset config is not on this machine.
        ConfigError: the languages' files have different lengths (not aligned); "local" without ``data_dir``.
    """
    if dataset == "local":
        if data_dir is None:
            raise ConfigError("dataset 'local' needs --data-dir DIR (a folder with devtest/<code>.devtest files)")
        texts = {lang.code: _read_local(lang, Path(data_dir)) for lang in langs}
    elif dataset == "benchmax":
        texts = {lang.code: _read_benchmax(lang, data_dir) for lang in langs}
    else:  # flores200-sample, the one other value TranslationOptions.dataset allows
        texts = _read_sample(langs)
    _check_aligned(texts, dataset)
    return {code: lines[:limit] for code, lines in texts.items()}


def _read_local(lang: Language, data_dir: Path) -> list[str]:
    folders = [data_dir / "devtest", data_dir]
    candidates = [folder / f"{code}.devtest" for folder in folders for code in (lang.flores200, lang.flores101)]
    for path in candidates:
        if path.is_file():
            return path.read_text(encoding="utf-8").rstrip("\n").split("\n")
    raise MissingAssetError(
        f"no FLORES devtest file for {lang.name} in {data_dir}: looked for "
        f"devtest/{lang.flores200}.devtest and devtest/{lang.flores101}.devtest; add it, or drop "
        f"{lang.code} from --langs"
    )


def _read_benchmax(lang: Language, data_dir: Path | None = None) -> list[str]:
    """From the hub cache ``xplus-eval fetch-data`` fills under ``data_dir``, else the datasets cache."""
    import datasets

    from xplus_release.evalsuite.fetch import hub_snapshot

    config = f"flores_{lang.code}"
    source = hub_snapshot(data_dir, BENCHMAX_REPO) or BENCHMAX_REPO
    try:
        rows = datasets.load_dataset(str(source), config, split="train")
    # datasets raises many types for "not cached offline" and "no such config"; all need the same fix
    except Exception as err:  # noqa: BLE001
        raise MissingAssetError(
            f"FLORES {lang.name} ({BENCHMAX_REPO}, config {config}) is not available here "
            f"({type(err).__name__}); fetch it on a connected machine with: "
            f"hf download --repo-type dataset {BENCHMAX_REPO}, or pass --data-dir with devtest/<code>.devtest files"
        ) from None
    return [row["text"] for row in rows]


def _read_sample(langs: list[Language]) -> dict[str, list[str]]:
    # The package's FLORES excerpt (assets/tiny_corpus.txt, also the tiny model's tokenizer corpus) holds
    # 80 lines per language, languages in order of their FLORES-200 file names.
    lines = (resources.files("xplus_release") / "assets" / "tiny_corpus.txt").read_text(encoding="utf-8").splitlines()
    order = sorted(PAPER_LANGUAGES, key=lambda lang: lang.flores200)
    blocks = {lang.code: lines[i * SAMPLE_LINES:(i + 1) * SAMPLE_LINES] for i, lang in enumerate(order)}
    missing = [lang.code for lang in langs if lang.code not in blocks]
    if missing:
        raise MissingAssetError(
            f"the built-in FLORES sample has only the paper's 17 languages, not {', '.join(missing)}; "
            "use --data-dir or --dataset benchmax"
        )
    return {lang.code: blocks[lang.code] for lang in langs}


def _check_aligned(texts: dict[str, list[str]], dataset: str) -> None:
    lengths = {code: len(lines) for code, lines in texts.items()}
    if len(set(lengths.values())) > 1:
        listing = ", ".join(f"{code}: {n}" for code, n in lengths.items())
        raise ConfigError(
            f"FLORES files of the {dataset} dataset are not aligned (lines per language: {listing}); "
            "use devtest files with one sentence per line, the same count in every language"
        )
