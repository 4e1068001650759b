"""The translation section of report.md: aggregates, the run beside the paper's Table 7 with deltas,
per-direction scores, warnings (empty or truncated outputs), and one heatmap PNG per metric."""

from __future__ import annotations

from pathlib import Path

from xplus_release.evalsuite.fidelity import render_fidelity
from xplus_release.evalsuite.plots import heatmap_figure, save_figure, score_grid, score_scale
from xplus_release.markdown import markdown_table, score_cell
from xplus_release.paper import load_table, paper_name
from xplus_release.runs import RunFolder

METRIC_LABELS = {"spbleu": "spBLEU", "chrf": "chrF", "chrfpp": "chrF++", "ter": "TER", "bleu": "BLEU",
                 "xcomet": "xCOMET", "offtarget": "off-target %"}
PAPER_METRICS = ("spbleu", "xcomet")  # what Table 7 reports


def render_report(run: RunFolder, scores: dict) -> str:
    settings, metrics = scores["settings"], scores["settings"]["metrics"]
    lines = ["## Translation (FLORES devtest)", "", *_settings_lines(settings, scores), ""]
    lines += _warning_lines(scores["directions"])
    lines += ["### Aggregates (paper definition)", "", *_aggregate_table(scores["aggregates"], metrics), ""]
    for metric in PAPER_METRICS:
        if metric in metrics:
            lines += _paper_table(run.meta.get("model", ""), scores["aggregates"], metric, len(settings["langs"]))
    lines += ["### Per direction", "", "<details><summary>every evaluated direction</summary>", "",
              *_direction_table(scores["directions"], metrics), "", "</details>", ""]
    lines += ["### Heatmaps (rows: source, columns: target)", ""]
    for metric in metrics:
        path = write_heatmap(run.path, scores["directions"], settings["langs"], metric)
        lines += [f"![{METRIC_LABELS[metric]}]({path.name})", ""]
    lines += render_fidelity(scores.get("fidelity", {}))
    return "\n".join(lines)


def _settings_lines(settings: dict, scores: dict) -> list[str]:
    lines = [
        f"- dataset: {settings['dataset']}" + (f" ({settings['data_dir']})" if settings.get("data_dir") else ""),
        (f"- languages: {', '.join(settings['langs'])}; directions: {len(scores['directions'])}; "
         f"segments per direction: {settings['segments_per_direction']}"),
        f"- greedy, thinking off, up to {settings['max_tokens']} new tokens",
        f"- xCOMET model: {settings.get('comet_model') or 'not computed'}",
        "- signatures:",
    ]
    lines += [f"  - {key}: `{sig}`" for key, sig in sorted(scores["signatures"].items())]
    return lines


def _warning_lines(directions: dict) -> list[str]:
    lines = []
    for field, what in (("empty", "empty hypotheses (scored as empty strings)"),
                        ("truncated", "outputs cut at the max-tokens limit"),
                        ("off_target", "outputs in another language than the target (language ID)"),
                        ("source_copies", "outputs that copy the source sentence")):
        total = sum(d.get(field, 0) for d in directions.values())
        if total:
            hit = sum(1 for d in directions.values() if d.get(field))
            lines += [f"> **Warning:** {total} {what} in {hit} of {len(directions)} directions.", ""]
    return lines


def _ordered_aggregates(aggregates: dict) -> list[str]:
    head = [k for k in ("en-x", "x-en") if k in aggregates]
    return head + [k for k in aggregates if k not in head]


def _aggregate_table(aggregates: dict, metrics: list[str]) -> list[str]:
    header = ["direction", *(METRIC_LABELS[m] for m in metrics), "directions averaged"]
    return markdown_table(header, ([key, *(score_cell(aggregates[key].get(m)) for m in metrics),
                                    str(aggregates[key]["directions"])] for key in _ordered_aggregates(aggregates)), 1)


def _paper_table(model: str, aggregates: dict, metric: str, n_langs: int) -> list[str]:
    """Every model and direction of Table 7, with this run's delta (run minus paper) where it has one."""
    rows = list(load_table("flores_x_to_lang")) + list(load_table("flores_lang_to_x"))
    directions = list(dict.fromkeys(r["direction"] for r in rows))
    paper: dict[str, dict[str, float]] = {}
    for r in rows:
        paper.setdefault(r["model"], {})[r["direction"]] = float(r[metric])
    own = paper_name(model)
    order = ([own] if own in paper else []) + [m for m in paper if m != own]
    label = METRIC_LABELS[metric]
    note = ("the paper averages over all 16 other languages; this run over "
            f"{n_langs - 1}, so deltas compare like with like only on the full grid")
    ours = [aggregates.get(d, {}).get(metric) for d in directions]
    rows = [["**this run**", *map(score_cell, ours)]]
    rows += [["**" + name + "**" if name == own else name,
              *(_paper_cell(paper[name].get(d), run) for d, run in zip(directions, ours))] for name in order]
    return [f"### Beside the paper: {label} (Table 7, FLORES-101 devtest)", "",
            f"Cells: paper value (Δ this run − paper). {note if n_langs < 17 else ''}".rstrip(), "",
            *markdown_table(["model", *directions], rows, 1), ""]


def _paper_cell(paper_value: float | None, run_value: float | None) -> str:
    if paper_value is None:
        return "–"
    if run_value is None:
        return f"{paper_value:.2f}"
    return f"{paper_value:.2f} ({run_value - paper_value:+.2f})"


def _direction_table(directions: dict, metrics: list[str]) -> list[str]:
    header = ["direction", *(METRIC_LABELS[m] for m in metrics), "empty", "truncated", "off-target", "source copies"]
    return markdown_table(header, ([name, *(score_cell(d.get(m)) for m in metrics),
                                    *(str(d.get(f, 0)) for f in ("empty", "truncated", "off_target", "source_copies"))]
                                   for name, d in directions.items()), 1)


def write_heatmap(folder: Path, directions: dict, langs: list[str], metric: str, fmt: str = "png") -> Path:
    """``translation_<metric>.<fmt>`` (png, svg): a source x target grid, blank where a direction was not evaluated."""
    import numpy as np

    grid = np.array(score_grid(directions, langs, metric), dtype=float)  # None: NaN
    low, high = score_scale(grid.flat)
    fig, ax = heatmap_figure(grid, langs, f"{METRIC_LABELS[metric]} per direction", cmap="viridis", vmin=low,
                             vmax=high)
    _annotate(ax, grid, low, high)
    path = folder / f"translation_{metric}.{fmt}"
    save_figure(fig, [path], dpi=110)
    return path


def _annotate(ax, grid, low: float, high: float) -> None:
    import numpy as np

    for (i, j), value in np.ndenumerate(grid):
        if not np.isnan(value):
            bright = high > low and (value - low) / (high - low) > 0.6  # viridis turns yellow at the top
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7, color="black" if bright else "white")
