"""Markdown tables of a card's evaluation section, built from scores in the ``run_results`` shapes."""

from __future__ import annotations

from xplus_release.languages import PAPER_CODES
from xplus_release.markdown import markdown_table
from xplus_release.model_cards.benchmarks import METRIC_NAMES, benchmark_for, benchmark_key, direction_label
from xplus_release.model_cards.run_results import (
    other_numbers,
    signatures,
    task_name,
    task_scores,
    task_stderr,
    translation_aggregates,
    translation_directions,
)

# Metrics already on a 0-100 scale; any other metric stored as a fraction (accuracy 0.45, xCOMET 0.85) is
# shown as a percentage so it lines up with the paper's columns. model-index keeps the stored values.
HUNDRED_SCALE_METRICS = {"spbleu", "bleu", "chrf", "chrfpp", "ter", "offtarget"}


def display(value: float | None, metric: str) -> str:
    if value is None:
        return "–"
    if metric.lower() not in HUNDRED_SCALE_METRICS and 0.0 <= value <= 1.0:
        value *= 100
    return f"{value:.2f}"


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    return "\n".join(markdown_table(headers, rows))


def aggregates_table(suite: dict, beside: list[tuple[str, dict]]) -> str:
    """Direction rows, one column per metric for this model, then the same metrics of each ``beside`` column set."""
    ours = translation_aggregates(suite)
    metrics = sorted({m for row in ours.values() for m in row}, key=_metric_order)
    others = [(label, translation_aggregates(scores.get("translation", {}))) for label, scores in beside]
    headers = ["direction"] + [METRIC_NAMES.get(m, m) for m in metrics]
    headers += [f"{METRIC_NAMES.get(m, m)} ({label})" for label, _ in others for m in metrics]
    rows = []
    for direction in sorted(ours, key=_direction_order):
        row = [direction_label(direction)] + [display(ours[direction].get(m), m) for m in metrics]
        row += [display(table.get(direction, {}).get(m), m) for _, table in others for m in metrics]
        rows.append(row)
    return md_table(headers, rows)


def direction_grids(suite: dict) -> list[tuple[str, str]]:
    """One source-by-target grid per metric: ``[(metric name, markdown table)]``."""
    directions = translation_directions(suite)
    pairs = {tuple(d.split("-", 1)): d for d in directions if "-" in d}
    if not pairs:
        return []
    sources = sorted({s for s, _ in pairs}, key=_language_order)
    targets = sorted({t for _, t in pairs}, key=_language_order)
    metrics = sorted({m for row in directions.values() for m in row}, key=_metric_order)
    grids = []
    for metric in metrics:
        rows = [[f"**{s}**"] + [display(directions.get(pairs.get((s, t), ""), {}).get(metric), metric) for t in targets]
                for s in sources]
        grids.append((METRIC_NAMES.get(metric, metric), md_table(["source \\ target"] + targets, rows)))
    return grids


def tasks_table(suite: dict, beside: list[tuple[str, dict]]) -> str:
    ours = task_scores(suite)
    headers = ["task", "metric", "score"] + [label for label, _ in beside]
    rows = []
    for task, metrics in ours.items():
        bench = benchmark_for(task_name(suite, task))
        for metric, value in metrics.items():
            score = display(value, metric)
            stderr = task_stderr(suite, task)
            if stderr is not None:
                score += f" ± {display(stderr, metric)}"
            row = [bench.paper_name if bench else task_name(suite, task), METRIC_NAMES.get(metric, metric), score]
            row += [_paper_task_value(scores, task_name(suite, task), metric) for _, scores in beside]
            rows.append(row)
    return md_table(headers, rows)


def _paper_task_value(scores: dict, task: str, metric: str) -> str:
    for suite in scores.values():
        for other_task, metrics in task_scores(suite).items():
            if benchmark_key(other_task) == benchmark_key(task) and len(metrics) == 1:
                (value,) = metrics.values()
                return display(value, metric)
    return "–"


def other_numbers_table(suite: dict) -> str:
    numbers = other_numbers(suite)
    return md_table(["score", "value"], [[key, f"{value:g}"] for key, value in numbers.items()]) if numbers else ""


def signatures_list(suite: dict) -> str:
    return "\n".join(f"- {metric}: `{sig}`" for metric, sig in signatures(suite).items())


def _metric_order(metric: str) -> tuple:
    return (0 if metric == "spbleu" else 1 if metric == "xcomet" else 2, metric)


def _language_order(code: str) -> tuple:
    return (PAPER_CODES.index(code), code) if code in PAPER_CODES else (len(PAPER_CODES), code)


def _direction_order(direction: str) -> tuple:
    """The paper's order: x→L before L→x, then languages in the paper's order."""
    src, _, tgt = direction.partition("-")
    into = src == "x"
    return (0 if into else 1, _language_order(tgt if into else src))
