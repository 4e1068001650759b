"""The paper's aggregation (Table 7): "x-L" is the mean over the other languages translating into L,
"L-x" the mean over L translating into the others; en-x and x-en are the English cases of these.

Only directions that were evaluated enter a mean; each aggregate records how many did, so a partial
grid (fewer than 16 other languages) is visible as such when compared with the paper.
"""

from __future__ import annotations

from statistics import fmean


def aggregate(direction_scores: dict[str, dict[str, float]], langs: list[str], metrics: list[str]) -> dict[str, dict]:
    """``{"x-L": {metric: mean, "directions": n}, "L-x": {...}}`` for every language L that has any."""
    out: dict[str, dict] = {}
    for lang in langs:
        into = {d: s for d, s in direction_scores.items() if d.split("-")[1] == lang}
        out_of = {d: s for d, s in direction_scores.items() if d.split("-")[0] == lang}
        if into:
            out[f"x-{lang}"] = _means(into, metrics)
        if out_of:
            out[f"{lang}-x"] = _means(out_of, metrics)
    return out


def _means(scores: dict[str, dict[str, float]], metrics: list[str]) -> dict:
    means: dict = {}
    for metric in metrics:
        values = [s[metric] for s in scores.values() if s.get(metric) is not None]
        if values:
            means[metric] = round(fmean(values), 4)
    means["directions"] = len(scores)
    return means
