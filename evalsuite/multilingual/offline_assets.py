"""What lm-eval tasks fetch for themselves at load time, fetched ahead into a data folder for offline use.

BenchMAX's ifeval checkers split sentences with NLTK's ``punkt_tab`` (downloaded at import, quietly
skipped offline); lm-eval's HumanEval+ scores with Hugging Face evaluate's ``code_eval`` metric, whose
script ``evaluate.load`` downloads from the Hub. ``xplus-eval fetch-data`` puts both under the data folder
(``nltk_data/``, ``hf/modules/``), where the harness finds them again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from xplus_release.errors import MissingAssetError

NLTK_SUBDIR = "nltk_data"
MODULES_SUBDIR = Path("hf") / "modules"


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
