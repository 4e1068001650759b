"""A direction's segments across runs: sentence-level scores, filters, sorting, search, pages, CSV.

Sentence scores are sacrebleu's own ``sentence_score`` (chrF; spBLEU with ``effective_order``, as
sacrebleu recommends for single sentences) and the stored xCOMET segment score; they are computed when a
direction is opened and cached with the files' stamps, so paging and re-sorting cost nothing more.
"""

from __future__ import annotations

import csv
import functools
import html
import json
from dataclasses import dataclass
from pathlib import Path

from xplus_release.errors import ConfigError, MissingAssetError
from xplus_release.evalsuite.translation.metrics import check_spm_model, metric_object
from xplus_release.evalsuite.view.reading import RunView, file_stamp

SENTENCE_METRICS = ("chrf", "spbleu", "xcomet")
SORTS = ("sentence", "score", "difference")
OUTPUT_FILTERS = ("all", "empty or truncated", "hide empty and truncated", "off-target", "source copies")
# inside the page's HTML, so the table looks the same wherever the app is mounted
STYLE = """<style>
.view-segments { border-collapse: collapse; width: 100%; font-size: 0.9em; }
.view-segments td, .view-segments th { border: 1px solid #d1d5db; padding: 4px 6px; vertical-align: top;
  overflow-wrap: anywhere; }
.view-segments .scores { color: #4b5563; margin-top: 2px; }
.view-segments .flag { color: #b91c1c; }
mark.xcomet-span { padding: 0 1px; border-radius: 2px; color: black; }
</style>"""
SEVERITY_COLOURS = {"minor": "#fde68a", "major": "#fdba74", "critical": "#f87171"}


@dataclass(frozen=True)
class PageQuery:
    """What the direction page shows. ``run`` indexes the run whose score ``sort="score"`` uses;
    ``sort="difference"`` orders by the last run minus the first (B − A, as ``xplus-eval compare``)."""

    direction: str
    sort: str = "sentence"
    metric: str = "chrf"
    run: int = 0
    descending: bool = False
    outputs: str = "all"
    search: str = ""
    page: int = 1
    page_size: int = 25

    def check(self) -> None:
        """Raises: ConfigError for an unknown sort, metric or filter, or a page size below 1."""
        for value, allowed, what in ((self.sort, SORTS, "sort"), (self.metric, SENTENCE_METRICS, "metric"),
                                     (self.outputs, OUTPUT_FILTERS, "output filter")):
            if value not in allowed:
                raise ConfigError(f"unknown {what} {value!r}; choose one of {', '.join(allowed)}")
        if self.page_size < 1:
            raise ConfigError(f"page size must be at least 1, got {self.page_size}")


def direction_rows(runs: list[RunView], direction: str) -> list[dict]:
    """One row per sentence any run translated: source, reference and, per run, its output and scores
    (``None`` where that run has no output for the sentence yet)."""
    per_run = [_scored(run, direction) for run in runs]
    indices = sorted({i for scored in per_run for i in scored})
    rows = []
    for i in indices:
        first = next(scored[i] for scored in per_run if i in scored)
        rows.append({"index": i, "source": first["source"], "reference": first["reference"],
                     "runs": [scored.get(i) for scored in per_run]})
    return rows


def _scored(run: RunView, direction: str) -> dict[int, dict]:
    stamps = (file_stamp(run.generation_file(direction)), file_stamp(run.xcomet_file(direction)))
    tokenizer = run.translation().get("settings", {}).get("spbleu_tokenizer") or "flores200"
    scored = _scored_cached(run, direction, stamps, tokenizer)
    # off-target flags come from scores.json (the suite's language ID), read afresh as it may be rescored
    entry = run.translation().get("directions", {}).get(direction, {})
    off, copies = set(entry.get("off_target_segments", [])), set(entry.get("source_copy_segments", []))
    return {i: {**out, "off_target": i in off, "source_copy": i in copies} for i, out in scored.items()}


@functools.lru_cache(maxsize=64)
def _scored_cached(run: RunView, direction: str, _stamps, tokenizer: str) -> dict[int, dict]:
    spbleu = _sentence_bleu(tokenizer)
    chrf = metric_object("chrf", "", tokenizer)  # BenchMAX's chrF (whitespace included), as the suite scores
    out = {}
    for index, record in run.segments(direction).items():
        hyp, ref = record["hypothesis"], record["reference"]
        comet = record.get("xcomet")
        out[index] = {
            "source": record["source"], "reference": ref, "hypothesis": hyp,
            "finish_reason": record.get("finish_reason"),
            "empty": not hyp.strip(), "truncated": record.get("finish_reason") == "length",
            "chrf": round(chrf.sentence_score(hyp, [ref]).score, 2),
            "spbleu": round(spbleu.sentence_score(hyp, [ref]).score, 2) if spbleu else None,
            "xcomet": round(comet["score"], 2) if comet else None,
            "error_spans": comet.get("error_spans", []) if comet else [],
        }
    return out


@functools.cache
def _sentence_bleu(tokenizer: str):
    """spBLEU for single sentences, or None when sacrebleu's SentencePiece model is not on this machine."""
    from sacrebleu.metrics import BLEU

    try:
        check_spm_model(tokenizer)
    except MissingAssetError:
        return None
    return BLEU(tokenize=tokenizer, effective_order=True)


def select_rows(rows: list[dict], query: PageQuery) -> list[dict]:
    """The rows that pass the output filter and the search, in the query's order (missing scores last)."""
    query.check()
    rows = [r for r in rows if _passes(r, query.outputs) and _matches(r, query.search)]
    if query.sort == "sentence":
        return sorted(rows, key=lambda r: r["index"], reverse=query.descending)
    key = functools.partial(_sort_value, query=query)
    present = [r for r in rows if key(r) is not None]
    missing = [r for r in rows if key(r) is None]
    return sorted(present, key=key, reverse=query.descending) + missing


def _passes(row: dict, outputs: str) -> bool:
    """Any run's output has the flag the filter asks for (none of them for "hide empty and truncated")."""
    def any_run(*flags: str) -> bool:
        return any(o is not None and any(o[f] for f in flags) for o in row["runs"])

    if outputs == "all":
        return True
    if outputs == "hide empty and truncated":
        return not any_run("empty", "truncated")
    flags = {"empty or truncated": ("empty", "truncated"), "off-target": ("off_target",),
             "source copies": ("source_copy",)}
    return any_run(*flags[outputs])


def _matches(row: dict, search: str) -> bool:
    needle = search.strip().casefold()
    if not needle:
        return True
    texts = [row["source"], row["reference"]] + [o["hypothesis"] for o in row["runs"] if o is not None]
    return any(needle in text.casefold() for text in texts)


def _sort_value(row: dict, query: PageQuery) -> float | None:
    """The row's score in the query's run (sort "score"), or the last run's minus the first's."""
    if query.sort == "score":
        output = row["runs"][query.run] if query.run < len(row["runs"]) else None
        return None if output is None else output[query.metric]
    first, last = row["runs"][0], row["runs"][-1]
    if first is None or last is None or first[query.metric] is None or last[query.metric] is None:
        return None
    return last[query.metric] - first[query.metric]


def page_of(rows: list[dict], page: int, page_size: int) -> tuple[list[dict], int, int]:
    """Page ``page`` of ``rows`` (clamped to the first and the last): its rows, its number, the page count."""
    pages = max(1, -(-len(rows) // page_size))
    page = min(max(1, page), pages)
    return rows[(page - 1) * page_size:page * page_size], page, pages


def highlight_spans(text: str, spans: list[dict]) -> str:
    """``text`` as HTML with each xCOMET error span in a ``<mark>`` coloured by severity.

    Spans carry character offsets into the hypothesis (``start``/``end``, comet's own); one without
    offsets is found by its text. Overlapping spans keep the first."""
    parts, position = [], 0
    for span in sorted(spans, key=lambda s: s.get("start", 0)):
        start, end = _span_bounds(text, span, position)
        if start < position or end <= start:
            continue
        severity = str(span.get("severity", "minor"))
        colour = SEVERITY_COLOURS.get(severity, SEVERITY_COLOURS["minor"])
        confidence = span.get("confidence")
        title = severity + (f" ({confidence:.2f})" if isinstance(confidence, (int, float)) else "")
        mark = (f'<mark class="xcomet-span" data-severity="{html.escape(severity)}" title="{html.escape(title)}" '
                f'style="background:{colour}">{html.escape(text[start:end])}</mark>')
        parts += [html.escape(text[position:start]), mark]
        position = end
    return "".join(parts) + html.escape(text[position:])


def _span_bounds(text: str, span: dict, position: int) -> tuple[int, int]:
    if isinstance(span.get("start"), int) and isinstance(span.get("end"), int):
        return max(0, span["start"]), min(len(text), span["end"])
    found = text.find(str(span.get("text", "")), position)
    return (found, found + len(str(span.get("text", "")))) if found >= 0 and span.get("text") else (-1, -1)


def render_page(rows: list[dict], labels: list[str], direction: str, total: int, page: int,
                pages: int) -> str:
    """The page as an HTML table: sentence, source, reference, then each run's output and scores."""
    head = "".join(f"<th>{html.escape(label)}</th>" for label in labels)
    body = "".join(_row_html(row) for row in rows)
    summary = (f"<p class='view-summary'>{html.escape(direction)}: {total} segments match; "
               f"page {page} of {pages}</p>")
    return (f"{STYLE}{summary}<table class='view-segments'><thead><tr><th>#</th><th>source</th><th>reference</th>{head}"
            f"</tr></thead><tbody>{body}</tbody></table>")


def _row_html(row: dict) -> str:
    cells = [f"<td>{row['index']}</td>", f"<td>{html.escape(row['source'])}</td>",
             f"<td>{html.escape(row['reference'])}</td>"]
    for output in row["runs"]:
        cells.append(f"<td>{_output_html(output)}</td>")
    return f"<tr data-index='{row['index']}'>{''.join(cells)}</tr>"


def _output_html(output: dict | None) -> str:
    if output is None:
        return "<em>not translated yet</em>"
    flags = [word for word, on in (("empty", output["empty"]), ("truncated", output["truncated"]),
                                   ("off-target", output["off_target"]), ("source copy", output["source_copy"])) if on]
    scores = " · ".join(f"{name} {output[key]:.1f}" for key, name in
                        (("chrf", "chrF"), ("spbleu", "spBLEU"), ("xcomet", "xCOMET")) if output[key] is not None)
    flag_html = "".join(f" <strong class='flag'>[{f}]</strong>" for f in flags)
    return (f"<div class='hyp'>{highlight_spans(output['hypothesis'], output['error_spans'])}</div>"
            f"<div class='scores'><small>{scores}</small>{flag_html}</div>")


def write_csv(rows: list[dict], labels: list[str], path: Path) -> Path:
    """Every row (not only one page) with each run's output, flags, sentence scores and error spans."""
    fields = ["index", "source", "reference"]
    for label in labels:
        fields += [f"{label}:{k}" for k in ("hypothesis", "finish_reason", *SENTENCE_METRICS, "error_spans",
                                            "off_target", "source_copy")]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        for row in rows:
            cells = [row["index"], row["source"], row["reference"]]
            for output in row["runs"]:
                output = output or {}
                cells += [output.get("hypothesis", ""), output.get("finish_reason") or "",
                          *("" if output.get(m) is None else output[m] for m in SENTENCE_METRICS),
                          json.dumps(output.get("error_spans", []), ensure_ascii=False),
                          *(int(output[f]) if f in output else "" for f in ("off_target", "source_copy"))]
            writer.writerow(cells)
    return path
