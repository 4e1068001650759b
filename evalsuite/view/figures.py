"""Heatmaps for the viewer: the source x target grid of a metric as a colour-graded table the page can
click, the difference of two runs with the paired-bootstrap marks of ``xplus-eval compare``, and the
same figures as PNG/SVG files for download."""

from __future__ import annotations

from pathlib import Path

from xplus_release.evalsuite.plots import heatmap_figure, save_figure, score_grid, score_scale
from xplus_release.evalsuite.translation.report import METRIC_LABELS

CORNER = "source \\ target"
SIGNIFICANT = 0.05  # p below this gets a star, as in compare.md


def grid_languages(runs_scores: list[dict]) -> list[str]:
    """The languages of the runs' grids, in the first run's order, others appended."""
    codes = [code for scores in runs_scores
             for code in [*(scores.get("settings", {}).get("langs") or []),
                          *(lang for direction in scores.get("directions", {})
                            for lang in direction.split("-"))]]
    return list(dict.fromkeys(codes))


def difference_grid(a: dict, b: dict, langs: list[str], metric: str) -> list[list[float | None]]:
    """B − A per direction both runs scored."""
    grid_a, grid_b = score_grid(a, langs, metric), score_grid(b, langs, metric)
    return [[None if x is None or y is None else round(y - x, 4) for x, y in zip(ra, rb)]
            for ra, rb in zip(grid_a, grid_b)]


def cell_text(value: float | None, p_value: float | None = None, signed: bool = False) -> str:
    if value is None:
        return ""
    text = f"{value:+.1f}" if signed else f"{value:.1f}"
    return text + ("*" if p_value is not None and p_value < SIGNIFICANT else "")


def heatmap_styler(grid: list[list[float | None]], langs: list[str], diverging: bool = False,
                   p_values: dict[str, float] | None = None):
    """A pandas Styler: one row per source, one column per target, each cell coloured by its value."""
    import pandas as pd

    p_values = p_values or {}
    text = [[src] + [cell_text(v, p_values.get(f"{src}-{tgt}"), diverging) for tgt, v in zip(langs, row)]
            for src, row in zip(langs, grid)]
    frame = pd.DataFrame(text, columns=[CORNER, *langs])
    colours = _cell_colours(grid, diverging)
    styles = pd.DataFrame([["font-weight: bold"] + row for row in colours], columns=frame.columns)
    return frame.style.apply(lambda _: styles, axis=None)


def _cell_colours(grid: list[list[float | None]], diverging: bool) -> list[list[str]]:
    import matplotlib
    from matplotlib.colors import Normalize, TwoSlopeNorm, to_hex

    values = [v for row in grid for v in row if v is not None]
    if not values:
        return [["" for _ in row] for row in grid]
    if diverging:
        bound = max(abs(v) for v in values) or 1.0
        cmap, norm = matplotlib.colormaps["RdYlGn"], TwoSlopeNorm(0.0, -bound, bound)
    else:
        cmap, norm = matplotlib.colormaps["viridis"], Normalize(*score_scale(values))  # as the report's heatmap

    def style(value: float | None) -> str:
        if value is None:
            return "background-color: #f3f4f6"
        shade = norm(value)
        ink = "black" if (0.25 < shade < 0.75 if diverging else shade > 0.6) else "white"
        return f"background-color: {to_hex(cmap(shade))}; color: {ink}"

    return [[style(value) for value in row] for row in grid]


def direction_of_cell(langs: list[str], row: int, column: int) -> str | None:
    """The direction a clicked cell stands for (column 0 holds the source names), None off the grid."""
    if not 0 <= row < len(langs) or not 1 <= column <= len(langs) or row == column - 1:
        return None
    return f"{langs[row]}-{langs[column - 1]}"


def difference_files(folder: Path, grid: list[list[float | None]], langs: list[str], metric: str,
                     p_values: dict[str, float], title: str) -> list[Path]:
    """The difference heatmap (B − A, starred where p < 0.05) as PNG and SVG."""
    import numpy as np

    values = np.array(grid, dtype=float)  # None: NaN
    bound = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    title = f"{METRIC_LABELS.get(metric, metric)}: {title} (* p < {SIGNIFICANT})"
    fig, ax = heatmap_figure(values, langs, title, cmap="RdYlGn", vmin=-bound or -1, vmax=bound or 1)
    for (i, j), value in np.ndenumerate(values):
        if not np.isnan(value):
            ax.text(j, i, cell_text(value, p_values.get(f"{langs[i]}-{langs[j]}"), True),
                    ha="center", va="center", fontsize=7)
    paths = [folder / f"difference_{metric}.{fmt}" for fmt in ("png", "svg")]
    save_figure(fig, paths, dpi=110)
    return paths
