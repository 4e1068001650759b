"""Plots every suite shares: per-task bars beside the paper's numbers, source x target heatmaps and their
colour scale. Score axes start at 0, so a weak run looks weak and small differences are not blown up."""

from __future__ import annotations

import math
from pathlib import Path


def pyplot():
    """matplotlib's pyplot drawing to files only (the Agg backend: never a window, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, paths: list[Path], dpi: int) -> None:
    """Lay out, write each of ``paths`` (the format follows the suffix), and free the figure."""
    fig.tight_layout()
    for path in paths:
        fig.savefig(path, dpi=dpi)
    pyplot().close(fig)


def comparison_plot(rows: list[dict], path: Path, title: str) -> Path:
    """``rows``: ``{"task": str, "ours": float, "paper": {model name: float}}``; one group of bars per task."""
    references = sorted({model for row in rows for model in row["paper"]})
    series = [("this run", [row["ours"] for row in rows])]
    series += [(f"paper {m}", [row["paper"].get(m, float("nan")) for row in rows]) for m in references]
    width = 0.8 / len(series)
    fig, ax = pyplot().subplots(figsize=(max(6.0, 1.1 * len(rows) + 2), 4))
    for index, (label, values) in enumerate(series):
        ax.bar([i + index * width for i in range(len(rows))], values, width, label=label)
    ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(rows))])
    ax.set_xticklabels([row["task"] for row in rows], rotation=30, ha="right")
    ax.set_ylabel("score (0-100)")
    ax.set_ylim(0, 100)  # the whole scale: zeros sit on the axis
    ax.set_title(title)
    ax.legend()
    save_figure(fig, [path], dpi=120)
    return path


def score_grid(directions: dict, langs: list[str], metric: str) -> list[list[float | None]]:
    """Rows source, columns target; None where the direction has no score (not run, or not yet scored)."""
    return [[(directions.get(f"{src}-{tgt}") or {}).get(metric) for tgt in langs] for src in langs]


def heatmap_figure(values, langs: list[str], title: str, **imshow):
    """A source x target grid of ``values`` (NaN: no cell) with its colour bar: the figure and the grid's axes."""
    import numpy as np

    size = 1.5 + 0.55 * len(langs)
    fig, ax = pyplot().subplots(figsize=(size + 1.5, size))
    image = ax.imshow(np.ma.masked_invalid(values), **imshow)
    ax.set_xticks(range(len(langs)), langs)
    ax.set_yticks(range(len(langs)), langs)
    ax.set_xlabel("target")
    ax.set_ylabel("source")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig, ax


def score_scale(values) -> tuple[float, float]:
    """The colour scale of a score heatmap: 0 to the highest score (to 1 when every score is 0 or missing:
    an empty range would otherwise be centred on 0, e.g. -0.1 to 0.1)."""
    top = max((v for v in values if v is not None and not math.isnan(v)), default=0.0)  # None/NaN: no score
    return 0.0, top if top > 0 else 1.0
