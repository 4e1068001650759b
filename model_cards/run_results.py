"""Reader of an ``xplus-eval`` run folder: the model it evaluated and its scores, as a card needs them.

Accepted format (``xplus_release.runs.RunFolder``)::

    run.json     {"model": "<registered name, hub id or folder>", ...}
    scores.json  {"<suite>": {...}, ...}

Suite shapes read into tables and ``model-index`` entries (anything else numeric is still shown, as a
flat list of ``path: value``)::

    "translation": {"aggregates": {"en-x": {"spbleu": 32.8, "xcomet": 85.5}, "x-sw": {...}, ...},
                    "directions": {"en-zh": {"spbleu": ..., "xcomet": ...}, ...},
                    "signatures": {"spbleu": "nrefs:1|...", ...}}
    "multilingual" / "reasoning" / any suite with tasks:
                   {"tasks": {"xnli": {"metric": "acc", "value": 0.45, "stderr": 0.01}, ...}}
                   (or "score" for "value"; "paper_name" names the benchmark; a task may also be
                   {"acc": 0.45, "acc_norm": 0.47} or {"metrics": {...}})

Counts beside scores (``n``, ``directions``, ``empty``, ``truncated``), ``settings``, ``signature(s)`` and
``failed`` are not scores. A metric stored with details (``{"spbleu": {"score": 32.8, ...}}``) counts by
its ``score``.

Direction keys are ``src-tgt`` (short or FLORES-200 codes, ``->`` and ``→`` accepted); ``x`` stands for "the 16 other languages" as in the paper.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from xplus_release.errors import RunFolderError, UnknownLanguageError
from xplus_release.languages import get_language
from xplus_release.runs import RUN_FILE, SCORES_FILE

# Keys of a task record that describe the score rather than being one.
# Counts and details stored beside scores (sample counts, empty/truncated outputs, directions averaged).
_INFO_KEYS = ("stderr", "n", "num_samples", "samples", "limit", "directions", "empty", "truncated", "count",
              "off_target", "source_copies")
_SCORE_KEYS = ("score", "value", "mean")


@dataclass
class RunResults:
    """Scores of one model. ``source`` says where they come from: a run folder path, or the paper."""

    model: str
    scores: dict
    source: str
    from_paper: bool = False
    meta: dict = field(default_factory=dict)


def read_run(path: str | Path) -> RunResults:
    """Read a run folder written by ``xplus-eval``.

    Raises:
        RunFolderError: the folder, its run.json or scores.json is missing or malformed.
    """
    path = Path(path)
    if not (path / RUN_FILE).is_file():
        raise RunFolderError(f"{path} is not an xplus-eval run folder (no {RUN_FILE}); pass the --output of xplus-eval")
    meta = _read_object(path / RUN_FILE)
    model = meta.get("model")
    if not isinstance(model, str) or not model:
        raise RunFolderError(f"{path / RUN_FILE} names no \"model\"; rerun xplus-eval into a new --output folder")
    if not (path / SCORES_FILE).is_file():
        raise RunFolderError(f"{path} has no {SCORES_FILE} yet; let xplus-eval finish (rerun it to resume)")
    scores = _read_object(path / SCORES_FILE)
    bad = [suite for suite, value in scores.items() if not isinstance(value, dict)]
    if bad:
        raise RunFolderError(f"{path / SCORES_FILE}: suite(s) {', '.join(bad)} are not objects; rerun those suites")
    return RunResults(model=model, scores=scores, source=str(path), meta=meta)


def _read_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunFolderError(f"{path} is not valid JSON ({err}); rerun xplus-eval into a new --output folder") from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} is not a JSON object; rerun xplus-eval into a new --output folder")
    return data


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_values(record) -> dict[str, float]:
    """The numeric entries of one record, e.g. ``{"spbleu": 32.8, "xcomet": 85.5}``.

    A metric stored with its details (``{"spbleu": {"score": 32.8, "signature": ...}}``) counts by its
    ``score`` (or ``value``/``mean``).
    """
    if not isinstance(record, dict):
        return {}
    values = {}
    for key, value in record.items():
        if key in _INFO_KEYS:
            continue
        if isinstance(value, dict):
            value = next((value[k] for k in _SCORE_KEYS if is_number(value.get(k))), None)
        if is_number(value):
            values[key] = value
    return values


def translation_aggregates(suite: dict) -> dict[str, dict[str, float]]:
    """``{"en-x": {"spbleu": .., "xcomet": ..}, ...}``; directions whose record has no number are left out."""
    return _metric_table(suite.get("aggregates"))


def translation_directions(suite: dict) -> dict[str, dict[str, float]]:
    return _metric_table(suite.get("directions"))


def _metric_table(table) -> dict[str, dict[str, float]]:
    if not isinstance(table, dict):
        return {}
    rows = {direction_key(key): metric_values(record) for key, record in table.items()}
    return {key: metrics for key, metrics in rows.items() if metrics}


def direction_key(key: str) -> str:
    """``eng_Latn-zho_Hans``, ``en->zh``, ``en→zh`` -> ``en-zh`` (short codes; ``x`` kept), else ``key`` as is."""
    src, sep, tgt = key.replace("→", "-").replace("->", "-").partition("-")
    if not sep:
        return key
    try:
        return "-".join(side if side == "x" else get_language(side).code for side in (src, tgt))
    except UnknownLanguageError:
        return key


def task_scores(suite: dict) -> dict[str, dict[str, float]]:
    """``{task: {metric: value}}`` from a suite's ``tasks``, whichever of the accepted task shapes it uses."""
    tasks = suite.get("tasks")
    if not isinstance(tasks, dict):
        return {}
    scores = {task: _task_metrics(record) for task, record in tasks.items()}
    return {task: metrics for task, metrics in scores.items() if metrics}


def _task_metrics(record) -> dict[str, float]:
    if is_number(record):
        return {"score": record}
    if not isinstance(record, dict):
        return {}
    for key in ("value", "score"):  # {"metric": "acc", "value" | "score": 0.45, ...}
        if is_number(record.get(key)):
            return {str(record.get("metric") or "score"): record[key]}
    if isinstance(record.get("metrics"), dict):
        return metric_values(record["metrics"])
    return metric_values(record)


def task_name(suite: dict, task: str) -> str:
    """The benchmark name a task record gives itself (``paper_name``), else its key."""
    record = (suite.get("tasks") or {}).get(task)
    name = record.get("paper_name") if isinstance(record, dict) else None
    return name if isinstance(name, str) and name else task


def task_stderr(suite: dict, task: str) -> float | None:
    record = (suite.get("tasks") or {}).get(task)
    value = record.get("stderr") if isinstance(record, dict) else None
    return value if is_number(value) else None


KNOWN_PARTS = ("aggregates", "directions", "tasks", "signatures", "signature", "settings", "failed", "fidelity")


def other_numbers(suite: dict, known: tuple[str, ...] = KNOWN_PARTS) -> dict[str, float]:
    """Every numeric leaf outside the known parts of a suite, by dotted path: nothing a run measured is hidden."""
    found: dict[str, float] = {}

    def walk(node, prefix: str) -> None:
        if is_number(node):
            found[prefix] = node
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))

    for key, value in suite.items():
        if key not in known:
            walk(value, str(key))
    return found


def signatures(suite: dict) -> dict[str, str]:
    sig = suite.get("signatures")
    return {str(k): str(v) for k, v in sig.items()} if isinstance(sig, dict) else {}
