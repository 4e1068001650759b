"""Read-only access to run folders for the viewer: nothing is copied, nothing is written.

A run that is still being written is shown as far as it goes, so the readers here never change a file:
``runs.GenerationStore`` cuts a partial last line off (right for the writer that owns the file, wrong
for a reader beside it), so generation files are read here up to their last complete line instead.
Per-direction segments are read only when a direction is opened, and cached until the files change.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xplus_release.errors import RunFolderError
from xplus_release.runs import RUN_FILE, SCORES_FILE, read_json

TRANSLATION_DIR = Path("generations") / "translation"


def read_complete_lines(path: Path) -> Iterator[dict]:
    """The JSON records of a JSONL file up to its last newline (a line still being written is skipped).

    Raises:
        RunFolderError: a complete line that is not JSON (the file is damaged, not just unfinished).
    """
    if not path.is_file():
        return
    data = path.read_bytes()
    complete = data[:data.rfind(b"\n") + 1]
    for number, line in enumerate(complete.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as err:
            raise RunFolderError(f"{path}:{number} is malformed ({err}); the viewer reads run folders as "
                                 "xplus-eval writes them: rerun the suite with --force to rewrite it") from None


def file_stamp(path: Path) -> tuple[int, int]:
    """(mtime, size) of a file, (0, 0) when absent: the cache key that notices a run still growing."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_size)


@dataclass(frozen=True)
class RunView:
    """One run folder, read on demand. ``label`` names it in tables (its folder name, made unique)."""

    path: Path
    label: str

    @classmethod
    def open(cls, path: str | Path, label: str | None = None) -> RunView:
        """Raises: RunFolderError when ``path`` has no run.json."""
        path = Path(path)
        if not (path / RUN_FILE).is_file():
            raise RunFolderError(f"{path} is not a run folder (no {RUN_FILE}); pass folders written by xplus-eval")
        return cls(path, label or path.resolve().name)

    @property
    def meta(self) -> dict:
        return read_json(self.path / RUN_FILE)

    @property
    def model(self) -> str:
        return str(self.meta.get("model", ""))

    def scores(self) -> dict:
        """scores.json as it is now ({} before the first suite finished)."""
        path = self.path / SCORES_FILE
        return read_json(path) if path.is_file() else {}

    def translation(self) -> dict:
        return self.scores().get("translation", {})

    def directions(self) -> list[str]:
        """Directions with a generation file, scored or not (a running suite writes files before scores)."""
        folder = self.path / TRANSLATION_DIR
        files = folder.glob("*.jsonl") if folder.is_dir() else []
        return sorted({p.stem for p in files} | set(self.translation().get("directions", {})))

    def generation_file(self, direction: str) -> Path:
        return self.path / TRANSLATION_DIR / f"{direction}.jsonl"

    def xcomet_file(self, direction: str) -> Path:
        return self.path / TRANSLATION_DIR / "xcomet" / f"{direction}.jsonl"

    def segments(self, direction: str) -> dict[int, dict]:
        """Sentence index -> the run's record for one direction, with ``xcomet`` (score and error spans)
        joined in where the stored xCOMET record scored exactly this source, hypothesis and reference."""
        stamps = (file_stamp(self.generation_file(direction)), file_stamp(self.xcomet_file(direction)))
        return _segments(self.path, self.model, direction, stamps)


def unique_labels(paths: list[Path]) -> list[str]:
    """Folder names, with the parent added where two runs share a name."""
    names = [p.resolve().name for p in paths]
    return [f"{p.resolve().parent.name}/{n}" if names.count(n) > 1 else n for p, n in zip(paths, names)]


def open_runs(paths: list[str | Path]) -> list[RunView]:
    """Raises: RunFolderError for a path that is not a run folder (checked for all before any opens)."""
    paths = [Path(p) for p in paths]
    return [RunView.open(p, label) for p, label in zip(paths, unique_labels(paths))]


@functools.lru_cache(maxsize=64)
def _segments(path: Path, model: str, direction: str, _stamps) -> dict[int, dict]:
    from xplus_release.evalsuite.translation.xcomet import segment_key

    run = RunView(path, "")
    records: dict[int, dict] = {}
    for record in read_complete_lines(run.generation_file(direction)):
        if record.get("model") == model:
            records[record["index"]] = record  # a later record of the same sentence wins, as in the store
    scored = {r["item_id"]: r for r in read_complete_lines(run.xcomet_file(direction))}
    for record in records.values():
        comet = scored.get(record["item_id"])
        key = segment_key(record["source"], record["hypothesis"], record["reference"])
        record["xcomet"] = comet if comet is not None and comet.get("prompt_hash") == key else None
    return records
