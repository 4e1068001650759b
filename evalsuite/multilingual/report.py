"""The multilingual section of report.md: our scores beside the paper's Table 2/8, and a bar plot."""

from __future__ import annotations

from pathlib import Path

from xplus_release.evalsuite.fidelity import render_fidelity

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
    lines = ["## Multilingual tasks (lm-eval)", "",
             "Scores are 0-100, the mean over each task's languages; paper columns are Table 2/8 of the paper.",
             "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in tasks.values():
        cells = [entry["paper_name"], _metric_label(entry["metric"]), str(len(entry["languages"])),
                 f"{entry['score']:.2f}"]
        cells += [_fmt(paper.get(r, {}).get(entry["paper_name"])) for r in refs]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Per language:", ""]
    for entry in tasks.values():
        per_lang = " · ".join(f"{code} {lang['score']:.1f}" for code, lang in entry["languages"].items())
        lines.append(f"- {entry['paper_name']}: {per_lang}")
    limit = next(iter(tasks.values()))["request"].get("limit")
    if limit:
        lines += ["", f"Smoke run: at most {limit} items per language (`--limit`); not comparable with the paper."]
    plot = write_plot(run.path / PLOT_FILE, model, tasks, paper, refs)
    lines += ["", f"![multilingual tasks]({plot.name})", ""]
    lines += render_fidelity(scores.get("fidelity", {}))
    return "\n".join(lines)


def write_plot(path: Path, model: str, tasks: dict, paper: dict, refs: list[str]) -> Path:
    """Grouped bars per task: this run, then the paper's reference rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [entry["paper_name"] for entry in tasks.values()]
    series = [(model, [entry["score"] for entry in tasks.values()])]
    series += [(f"paper {r}", [paper.get(r, {}).get(n, float("nan")) for n in names]) for r in refs]
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(names)), 4))
    for i, (label, values) in enumerate(series):
        ax.bar([x + i * width for x in range(len(names))], values, width, label=label)
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(names))], names, rotation=30, ha="right")
    ax.set_ylabel("score (0-100)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _metric_label(key: str) -> str:
    """lm-eval's ``"exact_match,flexible-extract"`` -> ``"exact_match (flexible-extract)"``."""
    metric, _, filter_name = key.partition(",")
    return metric if filter_name in ("", "none") else f"{metric} ({filter_name})"


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"
