"""What lm-eval tasks fetch for themselves at load time, fetched ahead into a data folder for offline use.

BenchMAX's ifeval checkers split sentences with NLTK's ``punkt_tab`` (downloaded at import, quietly
skipped offline), count Thai sentences with ``pythainlp`` (its default ``crfcut`` engine needs
``python-crfsuite``) and Korean ones with ``kss``, and count Thai words with sacrebleu's FLORES-101
SentencePiece model (``count_words_by_spm``, which sacrebleu downloads on first use); lm-eval's HumanEval+
scores with Hugging Face evaluate's ``code_eval`` metric, whose script ``evaluate.load`` downloads from the
Hub. ``xplus-eval fetch-data`` puts the data under the data folder (``nltk_data/``, ``sacrebleu/models/``,
``hf/modules/``), where the harness finds them again; the libraries are the package's own dependencies.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from xplus_release.errors import MissingAssetError

NLTK_SUBDIR = "nltk_data"
MODULES_SUBDIR = Path("hf") / "modules"
SACREBLEU_SUBDIR = "sacrebleu"  # <data_dir>/sacrebleu/models/<model>, the layout of sacrebleu's own $SACREBLEU
# the modules BenchMAX's checkers import at check time (instructions_util.py), and the distributions pinned for them
CHECKER_MODULES = {"pythainlp": "pythainlp", "pycrfsuite": "python-crfsuite", "kss": "kss"}


def fetch_punkt_tab(out_dir: Path) -> list[str]:
    import nltk

    print("fetching NLTK punkt_tab", file=sys.stderr)
    ok = nltk.download("punkt_tab", download_dir=str(out_dir / NLTK_SUBDIR), quiet=True, raise_on_error=False)
    return [] if ok else ["NLTK punkt_tab: download failed (see NLTK's message above)"]


def fetch_code_eval(out_dir: Path) -> list[str]:
    """``evaluate.load("code_eval")`` in a child process whose modules cache is the data folder's."""
    print("fetching the code_eval metric", file=sys.stderr)
    env = {**os.environ, "HF_MODULES_CACHE": str(out_dir / MODULES_SUBDIR)}
    done = subprocess.run([sys.executable, "-c", "import evaluate; evaluate.load('code_eval')"], env=env,
                          capture_output=True, text=True, check=False)
    tail = (done.stderr.strip().splitlines() or [""])[-1]
    return [] if done.returncode == 0 else [f"code_eval metric: {tail}"]


def check_nltk_data(data_dir: Path | None) -> None:
    """BenchMAX's ifeval checkers split sentences with NLTK's ``punkt_tab``; its module tries to download it
    at import and goes on quietly when offline, to fail later on the first answer. Check it up front.

    Raises:
        MissingAssetError: punkt_tab is neither in NLTK's search path nor in ``<data_dir>/nltk_data``.
    """
    import nltk

    if data_dir is not None and (Path(data_dir) / NLTK_SUBDIR).is_dir():
        local = str(Path(data_dir) / NLTK_SUBDIR)
        if local not in nltk.data.path:
            nltk.data.path.append(local)
    try:
        nltk.data.find("tokenizers/punkt_tab")
    except LookupError:
        raise MissingAssetError(
            "xIFEval's checkers need NLTK's punkt_tab data, which is not here; run `python -m nltk.downloader "
            "punkt_tab`, or `xplus-eval fetch-data --output DIR` on a connected machine and pass --data-dir DIR"
        ) from None


def use_fetched_modules(data_dir: Path | None) -> None:
    """Point evaluate at the data folder's modules cache, if fetch-data filled one. evaluate reads the variable
    when it is first imported, which lm-eval does only when a task that needs it loads."""
    folder = Path(data_dir) / MODULES_SUBDIR if data_dir is not None else None
    if folder is not None and folder.is_dir() and "evaluate" not in sys.modules:
        os.environ["HF_MODULES_CACHE"] = str(folder)


def check_xifeval_assets(data_dir: Path | None) -> None:
    """Everything BenchMAX's xIFEval checkers load while scoring, checked before a run starts (offline, a
    missing piece would otherwise fail the first Thai or Korean answer after the model has run).

    Raises:
        MissingAssetError: punkt_tab, a checker library or sacrebleu's FLORES-101 model is missing.
    """
    check_nltk_data(data_dir)
    missing = [dist for module, dist in CHECKER_MODULES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise MissingAssetError(
            f"xIFEval's Thai and Korean checkers import {', '.join(missing)}, which is not installed; reinstall "
            "the package (`pip install -e .`: it pins pythainlp, python-crfsuite and kss)")
    check_flores101_spm(data_dir)


def _flores101_model() -> tuple[str, str]:
    from sacrebleu.tokenizers import tokenizer_spm

    url = tokenizer_spm.SPM_MODELS["flores101"]["url"]
    return url, os.path.basename(url)


def check_flores101_spm(data_dir: Path | None) -> None:
    """sacrebleu's FLORES-101 SentencePiece model (BenchMAX's Thai word count) where sacrebleu looks, or in
    ``<data_dir>/sacrebleu/models`` -- then sacrebleu is pointed there for this process.

    Raises:
        MissingAssetError: in neither place; the message names the fetch commands.
    """
    from sacrebleu.tokenizers import tokenizer_spm

    url, name = _flores101_model()
    current = Path(tokenizer_spm.SACREBLEU_DIR) / "models" / name
    if current.is_file():
        return
    fetched = Path(data_dir) / SACREBLEU_SUBDIR if data_dir is not None else None
    if fetched is not None and (fetched / "models" / name).is_file():
        os.environ["SACREBLEU"] = str(fetched)
        tokenizer_spm.SACREBLEU_DIR = str(fetched)  # sacrebleu read $SACREBLEU at import
        return
    raise MissingAssetError(
        f"xIFEval's Thai word counts need sacrebleu's FLORES-101 SentencePiece model, which is not at {current}; "
        f"run `xplus-eval fetch-data --output DIR` on a connected machine and pass --data-dir DIR, or download "
        f"{url} to {current}")


def fetch_flores101_spm(out_dir: Path) -> list[str]:
    from xplus_release.evalsuite.fetch import download

    url, name = _flores101_model()
    target = out_dir / SACREBLEU_SUBDIR / "models" / name

    def save(body: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{name}.tmp")
        tmp.write_bytes(body)
        os.replace(tmp, target)  # a killed fetch leaves no half model for the check to accept

    return download(url, "sacrebleu's FLORES-101 SentencePiece model (xIFEval's Thai word count)", save)
