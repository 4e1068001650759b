"""Per-task bars: this run beside the paper's numbers (Qwen3 and Qwen3-XPlus, where the paper has them)."""

from __future__ import annotations

from pathlib import Path


def comparison_plot(rows: list[dict], path: Path, title: str) -> Path:
    """``rows``: ``{"task": str, "ours": float, "paper": {model name: float}}``; one group of bars per task."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    references = sorted({model for row in rows for model in row["paper"]})
    series = [("this run", [row["ours"] for row in rows])]
    series += [(f"paper {m}", [row["paper"].get(m, float("nan")) for row in rows]) for m in references]
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(rows) + 2), 4))
    for index, (label, values) in enumerate(series):
        ax.bar([i + index * width for i in range(len(rows))], values, width, label=label)
    ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(rows))])
    ax.set_xticklabels([row["task"] for row in rows], rotation=30, ha="right")
    ax.set_ylabel("score (0-100)")
    ax.set_ylim(0, 100)  # the whole scale: zeros sit on the axis, small differences are not blown up
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
