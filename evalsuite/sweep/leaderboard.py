"""``leaderboard.md`` and ``leaderboard.json``: every model of a sweep × every aggregate of every suite,
read from the models' ``scores.json``, with the paper's number beside each where it has one, the best
per column marked, and, for translation, the paired bootstrap against a reference model
(``xplus-eval compare``'s own machinery: the same resamples, intervals and Holm correction).

Columns: ``translation/<aggregate>/<metric>`` (``en-x/spbleu``...) and ``<suite>/<task>`` for suites that
score tasks (multilingual, reasoning: the task's name in the paper).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from xplus_release.evalsuite.sweep.config import Sweep, SweepModel
from xplus_release.evalsuite.sweep.jobs import STATE_DIR
from xplus_release.markdown import markdown_table, score_cell
from xplus_release.paper import load_table, paper_name
from xplus_release.runs import SCORES_FILE, read_json, write_json_atomic

LOWER_IS_BETTER = ("ter", "offtarget")
SIGNIFICANCE_METRICS = ("spbleu", "chrf", "xcomet")  # what ``xplus-eval compare`` tests
MARKS = {"better": "▲", "worse": "▼"}


def build_leaderboard(sweep: Sweep, statuses: dict[str, dict], reference: str | None = None,
                      progress: bool = False) -> dict:
    """The leaderboard as data (what ``leaderboard.json`` holds)."""
    scores = {m.name: _scores(sweep, m) for m in sweep.models}
    values = {name: dict(_values(model_scores)) for name, model_scores in scores.items()}
    columns = list(dict.fromkeys(col for row in values.values() for col in row))
    paper = _paper_values()
    rows = []
    for model in sweep.models:
        own = _paper_row(model, paper)
        rows.append({"name": model.name, "model": model.model_id, "paper_name": own,
                     "status": statuses.get(model.name, {}).get("status", "missing"),
                     "error": statuses.get(model.name, {}).get("error"),
                     "values": values[model.name],
                     "paper": {c: paper[own][c] for c in columns if own and c in paper.get(own, {})}})
    reference = reference or sweep.reference
    if reference:
        _add_significance(sweep, rows, reference, progress)
    return {"sweep": sweep.name, "reference": reference, "columns": columns, "models": rows,
            "best": {c: _best(c, rows) for c in columns}}


def write_leaderboard(sweep: Sweep, board: dict) -> Path:
    write_json_atomic(sweep.output / "leaderboard.json", board)
    path = sweep.output / "leaderboard.md"
    path.write_text(render_markdown(board), encoding="utf-8")
    return path


def _scores(sweep: Sweep, model: SweepModel) -> dict:
    path = sweep.output / model.name / SCORES_FILE
    return read_json(path) if path.is_file() else {}


def _values(scores: dict) -> Iterable[tuple[str, float]]:
    """(column, value) of every aggregate of every suite in one ``scores.json``."""
    for suite, suite_scores in scores.items():
        for key, means in suite_scores.get("aggregates", {}).items() if suite == "translation" else ():
            for metric, value in means.items():
                if metric != "directions" and value is not None:
                    yield f"translation/{key}/{metric}", value
        for task in suite_scores.get("tasks", {}).values():  # multilingual, reasoning
            if task.get("score") is not None:
                yield f"{suite}/{task.get('paper_name')}", task["score"]


def _paper_values() -> dict[str, dict[str, float]]:
    """The paper's numbers by (normalised) model name and column: Table 7 (spBLEU, xCOMET), Table 8, Table 5."""
    paper: dict[str, dict[str, float]] = {}
    for row in (*load_table("flores_x_to_lang"), *load_table("flores_lang_to_x")):
        for metric in ("spbleu", "xcomet"):
            paper.setdefault(_norm(row["model"]), {})[f"translation/{row['direction']}/{metric}"] = float(row[metric])
    for row in load_table("multilingual_tasks"):
        paper.setdefault(_norm(row["model"]), {})[f"multilingual/{row['task']}"] = float(row["score"])
    for row in load_table("code_tasks"):
        paper.setdefault(_norm("Qwen3-8B"), {})[f"reasoning/{row['benchmark']}"] = float(row["qwen3_8b"])
    return paper


def _paper_row(model: SweepModel, paper: dict) -> str | None:
    """The model's key among the paper's rows (names compared without case and punctuation: the paper
    prints LLaMA3-8B in Table 7 and Llama-3-8B in Table 8)."""
    name = model.paper_name or paper_name(model.model_id)
    return _norm(name) if name and _norm(name) in paper else None


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _best(column: str, rows: list[dict]) -> list[str]:
    scored = [(r["values"][column], r["name"]) for r in rows if column in r["values"]]
    if not scored:
        return []
    pick = min if column.rsplit("/", 1)[-1] in LOWER_IS_BETTER else max
    top = pick(value for value, _ in scored)
    return [name for value, name in scored if value == top]


def _add_significance(sweep: Sweep, rows: list[dict], reference: str, progress: bool) -> None:
    """Each model's translation aggregates tested against the reference's (paired bootstrap, Holm)."""
    from xplus_release.errors import XPlusError
    from xplus_release.evalsuite.translation.compare import compare_runs

    ref_path = sweep.output / reference
    metrics = [m for m in SIGNIFICANCE_METRICS if any(f"/{m}" in c for r in rows for c in r["values"])]
    for row in rows:
        if row["name"] == reference or not metrics or not any(c.startswith("translation/") for c in row["values"]):
            continue
        try:
            comparison = compare_runs(ref_path, sweep.output / row["name"], metrics, progress=progress)
        except XPlusError as err:  # e.g. no shared direction, or the reference has no translation run
            row["significance_error"] = str(err)
            continue
        row["significance"] = {f"translation/{a['aggregate']}/{a['metric']}": {
            k: a[k] for k in ("delta", "ci_delta", "p_value", "p_corrected", "outcome") if k in a}
            for a in comparison["aggregates"]}


def render_markdown(board: dict) -> str:
    columns, rows = board["columns"], board["models"]
    lines = [f"# Leaderboard: sweep {board['sweep']}", "",
             "Cells: score (paper's number for that model, where the paper has one); **bold**: best of the "
             "column" + (f"; ▲/▼: significantly better/worse than {board['reference']} (paired bootstrap, "
                         "Holm-corrected, p < 0.05)" if board["reference"] else "") + ".", ""]
    for suite in dict.fromkeys(c.split("/", 1)[0] for c in columns):
        own = [c for c in columns if c.startswith(f"{suite}/")]
        lines += [f"## {suite}", "", *markdown_table(
            ["model", *(c.split("/", 1)[1] for c in own)],
            ([r["name"], *(_cell(r, c, board["best"][c]) for c in own)] for r in rows), 1), ""]
    failed = [r for r in rows if r["status"] != "done"]
    if failed:
        lines += ["## Not finished", "", *(f"- {r['name']}: {r['status']}" + (f": {r['error']}" if r["error"] else "")
                                           for r in failed), ""]
    lines.append(f"Logs and per-model status: `{STATE_DIR}/`.")
    return "\n".join(lines) + "\n"


def _cell(row: dict, column: str, best: list[str]) -> str:
    if column not in row["values"]:
        return "–"
    text = score_cell(row["values"][column])
    if row["name"] in best:
        text = f"**{text}**"
    mark = MARKS.get(row.get("significance", {}).get(column, {}).get("outcome"))
    if mark:
        text += f" {mark}"
    if column in row["paper"]:
        text += f" ({row['paper'][column]:.2f})"
    return text
