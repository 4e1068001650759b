"""The Overview and score tables: every run's aggregates, the paper's Table 7 rows beside them, the
fidelity section each run's scores.json carries, and per-task, per-language multilingual and reasoning
scores. Tables are pandas frames (the page sorts them by column)."""

from __future__ import annotations

from xplus_release.evalsuite.fidelity import render_fidelity
from xplus_release.evalsuite.multilingual.report import paper_scores
from xplus_release.evalsuite.translation.report import METRIC_LABELS
from xplus_release.evalsuite.view.reading import RunView
from xplus_release.paper import load_table, paper_name


def runs_table(runs: list[RunView]):
    """One row per run: model, folder, suites scored, translation directions written and scored."""
    import pandas as pd

    rows = []
    for run in runs:
        meta, scores = run.meta, run.scores()
        rows.append({"run": run.label, "model": meta.get("model"), "folder": str(run.path),
                     "updated": meta.get("updated") or meta.get("created"),
                     "suites scored": ", ".join(k for k in scores if isinstance(scores[k], dict)),
                     "directions written": len(run.directions()),
                     "directions scored": len(scores.get("translation", {}).get("directions", {}))})
    return pd.DataFrame(rows)


def aggregates_table(runs: list[RunView]):
    """Rows: the paper's aggregates (en-x, x-en, x-L, L-x); columns: each run's value of each metric."""
    import pandas as pd

    columns: dict[str, dict[str, float]] = {}
    keys: list[str] = []
    for run in runs:
        translation = run.translation()
        for key, values in translation.get("aggregates", {}).items():
            keys.append(key)
            for metric in translation.get("settings", {}).get("metrics", []):
                if values.get(metric) is not None:
                    columns.setdefault(f"{run.label} {METRIC_LABELS.get(metric, metric)}", {})[key] = values[metric]
    ordered = _aggregate_order(list(dict.fromkeys(keys)))
    return pd.DataFrame([{"aggregate": k, **{c: v.get(k) for c, v in columns.items()}} for k in ordered])


def _aggregate_order(keys: list[str]) -> list[str]:
    head = [k for k in ("en-x", "x-en") if k in keys]
    return head + sorted(k for k in keys if k not in head)


def paper_table(runs: list[RunView], metric: str):
    """Table 7 for one of its metrics: each run's aggregate, then every model the paper reports."""
    import pandas as pd

    paper_rows = list(load_table("flores_x_to_lang")) + list(load_table("flores_lang_to_x"))
    directions = list(dict.fromkeys(r["direction"] for r in paper_rows))
    rows = []
    for run in runs:
        aggregates = run.translation().get("aggregates", {})
        rows.append({"model": f"this run: {run.label}",
                     **{d: aggregates.get(d, {}).get(metric) for d in directions}})
    paper: dict[str, dict[str, float]] = {}
    for r in paper_rows:
        paper.setdefault(r["model"], {})[r["direction"]] = float(r[metric])
    own = {paper_name(run.model) for run in runs}
    for name in sorted(paper, key=lambda n: (n not in own, n)):
        rows.append({"model": f"paper: {name}", **{d: paper[name].get(d) for d in directions}})
    return pd.DataFrame(rows)


def fidelity_markdown(runs: list[RunView]) -> str:
    """Each run's fidelity records (``scores.json[suite]["fidelity"]``) as the report renders them, or a
    line saying the run has none."""
    parts = []
    for run in runs:
        scores = run.scores()
        sections = {suite: value["fidelity"] for suite, value in scores.items()
                    if isinstance(value, dict) and isinstance(value.get("fidelity"), dict) and value["fidelity"]}
        parts.append(f"#### {run.label}")
        if not sections:
            parts.append("scores.json has no fidelity section.")
        for suite, records in sections.items():
            parts += [f"**{suite}**", "", *render_fidelity(records)[2:], ""]  # without its own heading
    return "\n".join(parts)


def task_scores_table(runs: list[RunView]):
    """Rows: run, suite, task, language (reasoning: OpenCompass dataset), metric, score, items, paper."""
    import pandas as pd

    paper = paper_scores()
    rows = []
    for run in runs:
        scores = run.scores()
        own = paper.get(paper_name(run.model) or "", {})
        for name, task in scores.get("multilingual", {}).get("tasks", {}).items():
            for code, lang in task.get("languages", {}).items():
                rows.append({"run": run.label, "suite": "multilingual", "task": name, "language": code,
                             "metric": task.get("metric"), "score": lang.get("score"), "items": lang.get("n"),
                             "paper (task mean)": own.get(task.get("paper_name"))})
        for name, task in scores.get("reasoning", {}).get("tasks", {}).items():
            for dataset, metrics in task.get("datasets", {}).items():
                metric, value = next(iter(metrics.items()), (None, None))
                rows.append({"run": run.label, "suite": "reasoning", "task": name, "language": dataset,
                             "metric": metric, "score": value, "items": None, "paper (task mean)": None})
    return pd.DataFrame(rows, columns=["run", "suite", "task", "language", "metric", "score", "items",
                                       "paper (task mean)"])
