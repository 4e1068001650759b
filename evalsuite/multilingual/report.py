"""The multilingual section of report.md: our scores beside the paper's Table 2/8, and a bar plot."""

from __future__ import annotations

from xplus_release.evalsuite.fidelity import render_fidelity
from xplus_release.evalsuite.plots import comparison_plot
from xplus_release.markdown import markdown_table, score_cell
from xplus_release.paper import load_table, paper_name
from xplus_release.runs import RunFolder

PLOT_FILE = "multilingual.png"
# The paper's rows drawn beside ours: the baseline and the released model of the same size.
PAPER_REFERENCE = ("Qwen3-8B", "Qwen3-XPlus-8B")


def paper_scores() -> dict[str, dict[str, float]]:
    """``{paper model name: {paper task name: score}}`` from Table 8 (which repeats Table 2)."""
    table: dict[str, dict[str, float]] = {}
    for row in load_table("multilingual_tasks"):
        table.setdefault(row["model"], {})[row["task"]] = float(row["score"])
    return table


def reference_models(model: str) -> list[str]:
    """The paper rows to print: the evaluated model's own row (if the paper has one) and the 8B pair."""
    own = paper_name(model)
    return list(dict.fromkeys(([own] if own else []) + list(PAPER_REFERENCE)))


def report_section(run: RunFolder, scores: dict) -> str:
    tasks = scores.get("tasks", {})
    if not tasks:
        return "## Multilingual tasks\n\nNo task finished.\n"
    model = run.meta.get("model", "")
    paper = paper_scores()
    refs = reference_models(model)
    header = ["task", "metric", "languages", f"`{model}`"] + [f"paper: {r}" for r in refs]
    rows = [[e["paper_name"], _metric_label(e["metric"]), str(len(e["languages"])), f"{e['score']:.2f}",
             *(score_cell(paper.get(r, {}).get(e["paper_name"])) for r in refs)] for e in tasks.values()]
    lines = ["## Multilingual tasks (lm-eval)", "",
             "Scores are 0-100, the mean over each task's languages; paper columns are Table 2/8 of the paper.",
             "", *markdown_table(header, rows)]
    lines += ["", "Per language:", ""]
    for entry in tasks.values():
        per_lang = " · ".join(f"{code} {lang['score']:.1f}" for code, lang in entry["languages"].items())
        lines.append(f"- {entry['paper_name']}: {per_lang}")
    limit = next(iter(tasks.values()))["request"].get("limit")
    if limit:
        lines += ["", f"Smoke run: at most {limit} items per language (`--limit`); not comparable with the paper."]
    plot = comparison_plot(paper_comparison_rows(tasks, paper, refs), run.path / PLOT_FILE, f"multilingual: {model}")
    lines += ["", f"![multilingual tasks]({plot.name})", ""]
    lines += render_fidelity(scores.get("fidelity", {}))
    return "\n".join(lines)


def paper_comparison_rows(tasks: dict, paper: dict, refs: list[str]) -> list[dict]:
    """The bar plot's rows: each task's score beside the ``refs`` rows of the paper that have it."""
    return [{"task": entry["paper_name"], "ours": entry["score"],
             "paper": {r: paper[r][entry["paper_name"]] for r in refs if entry["paper_name"] in paper.get(r, {})}}
            for entry in tasks.values()]


def _metric_label(key: str) -> str:
    """lm-eval's ``"exact_match,flexible-extract"`` -> ``"exact_match (flexible-extract)"``."""
    metric, _, filter_name = key.partition(",")
    return metric if filter_name in ("", "none") else f"{metric} ({filter_name})"
