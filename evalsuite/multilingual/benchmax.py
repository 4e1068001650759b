"""BenchMAX's own lm-eval task folders (xIFEval, XGPQA, xMGSM), used unchanged from a checkout.

The paper evaluates "using the BenchMax suite and the lm-evaluation-harness suite". BenchMAX
(github.com/CONE-MT/BenchMAX, MIT licence) keeps those tasks as lm-eval task folders: ``tasks/ifeval``
(its own language-aware ``instructions*.py``), ``tasks/gpqa`` (prompts written in each language) and
``tasks/mgsm`` (``LLaMAX/BenchMAX_Math``, 17 languages). This package holds no copy of them: lm-eval
reads them from a checkout, handed over as its ``include_path``, exactly as BenchMAX's README runs them.

A checkout is found, in this order, at ``--benchmax-dir DIR`` (the folder that holds ``tasks/``) or in a
data folder that ``xplus-eval fetch-data`` filled (``<data_dir>/benchmax``, extracted from the archive of
the pinned commit).
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from xplus_release.errors import MissingAssetError
from xplus_release.multilingual_tasks import TASKS

REPO = "CONE-MT/BenchMAX"
COMMIT = "d509bfdefa43fc8cb32045c98642d709fad56e3a"
ARCHIVE_URL = f"https://github.com/{REPO}/archive/{COMMIT}.tar.gz"
# what the multilingual suite runs from tasks/: the folders its tasks name
FOLDERS = tuple(dict.fromkeys(spec.benchmax_folder for spec in TASKS.values() if spec.benchmax_folder))
DATA_SUBDIR = "benchmax"  # <data_dir>/benchmax/tasks/... as fetch-data lays it out
COMMIT_FILE = "BENCHMAX_COMMIT"  # written by fetch-data beside tasks/: the commit the archive came from


@dataclass(frozen=True)
class BenchmaxCheckout:
    """A folder holding BenchMAX's ``tasks/``, and the commit it is at (None when it cannot be told)."""

    root: Path
    commit: str | None

    def include_paths(self) -> list[str]:
        """The task folders this checkout has, for lm-eval's ``TaskManager(include_path=...)``."""
        return [str(self.root / "tasks" / f) for f in FOLDERS if (self.root / "tasks" / f).is_dir()]

    @property
    def source(self) -> str:
        """How the fidelity section names it: the repository and commit, and whether that is the pinned one."""
        if self.commit is None:
            return f"{REPO} (commit unknown: {self.root} is not a git checkout; pinned: {COMMIT})"
        pinned = "" if self.commit == COMMIT else f"; differs from the pinned {COMMIT}"
        return f"{REPO}@{self.commit}{pinned}"


def locate(benchmax_dir: Path | None, data_dir: Path | None, folders: list[str], tasks: list[str]) -> BenchmaxCheckout:
    """The BenchMAX checkout that has every folder in ``folders``.

    Raises:
        MissingAssetError: neither ``--benchmax-dir`` nor the data dir has them; the message names both fixes.
    """
    candidates = [Path(benchmax_dir).expanduser()] if benchmax_dir else []
    if data_dir is not None:
        candidates.append(Path(data_dir) / DATA_SUBDIR)
    for root in candidates:
        if all((root / "tasks" / folder).is_dir() for folder in folders):
            return BenchmaxCheckout(root.resolve(), checkout_commit(root))
        if benchmax_dir and root == candidates[0]:  # named explicitly but wrong: say so rather than look on
            absent = [f"tasks/{f}" for f in folders if not (root / "tasks" / f).is_dir()]
            raise MissingAssetError(f"--benchmax-dir {root} has no {', '.join(absent)}; point it (or "
                                    f"--multilingual-benchmax-dir in `xplus-eval all`) at the folder of a BenchMAX "
                                    f"checkout that holds tasks/ (github.com/{REPO} at {COMMIT[:12]})")
    wanted = ", ".join(f"tasks/{f}" for f in folders)
    raise MissingAssetError(
        f"task(s) {', '.join(tasks)} run BenchMAX's own lm-eval task folders ({wanted}), which are not here; "
        f"pass --benchmax-dir DIR (--multilingual-benchmax-dir in `xplus-eval all`; a checkout of "
        f"github.com/{REPO} at {COMMIT[:12]}, the folder holding tasks/), or run `xplus-eval fetch-data "
        f"--output DIR` on a connected machine and pass --data-dir DIR")


def checkout_commit(root: Path) -> str | None:
    """The commit of a fetched archive (its marker file) or of a git checkout; None if neither says."""
    marker = root / COMMIT_FILE
    if marker.is_file():
        return marker.read_text(encoding="utf-8").strip()
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=False, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and (root / ".git").exists() else None


def fetch_archive(out_dir: Path) -> list[str]:
    """Download the pinned commit's archive and extract its licence and task folders into ``out_dir/benchmax``.

    Returns the failures as lines (empty on success).
    """
    from xplus_release.evalsuite.fetch import download

    target = out_dir / DATA_SUBDIR
    if checkout_commit(target) == COMMIT and all((target / "tasks" / f).is_dir() for f in FOLDERS):
        return []
    return download(ARCHIVE_URL, "BenchMAX task folders", lambda archive: extract_task_folders(archive, target))


def extract_task_folders(archive: bytes, target: Path) -> None:
    """Unpack LICENSE and ``tasks/<FOLDERS>`` from a GitHub tar.gz (one top folder) into ``target``."""
    folders = tuple(f"tasks/{f}/" for f in FOLDERS)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        members = []
        for member in tar.getmembers():
            _, _, inner = member.name.partition("/")  # drop GitHub's "BenchMAX-<commit>/" top folder
            if member.isfile() and (inner == "LICENSE" or inner.startswith(folders)):
                member.name = inner
                members.append(member)
        target.mkdir(parents=True, exist_ok=True)
        tar.extractall(target, members=members, filter="data")
    (target / COMMIT_FILE).write_text(COMMIT + "\n", encoding="utf-8")
