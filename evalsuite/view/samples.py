"""The sample browser: lm-eval's logged samples (``generations/multilingual/<task>.jsonl``, as the
multilingual suite stores them) and OpenCompass's predictions and per-item results
(``opencompass/run/predictions|results/<model>/<task>__<dataset>.json``, as OpenCompass writes them),
shown as prompt, output, extracted answer, target and whether it was scored correct."""

from __future__ import annotations

import html
import json
from pathlib import Path

from xplus_release.evalsuite.view.reading import RunView, read_complete_lines
from xplus_release.evalsuite.view.segments import STYLE, page_of

CORRECTNESS = ("all", "correct", "wrong")
PAGE_SIZE = 20
MULTILINGUAL_DIR = Path("generations") / "multilingual"
OPENCOMPASS_DIR = Path("opencompass") / "run"
TASK_SEP = "__"  # the reasoning suite names OpenCompass datasets <task>__<dataset abbr>


def tasks(run: RunView) -> list[str]:
    """``multilingual/<task>`` for every lm-eval sample file, ``reasoning/<task>`` for OpenCompass's."""
    found = [f"multilingual/{p.stem}" for p in sorted((run.path / MULTILINGUAL_DIR).glob("*.jsonl"))]
    found += sorted({f"reasoning/{p.stem.split(TASK_SEP)[0]}"
                     for p in (run.path / OPENCOMPASS_DIR / "predictions").glob(f"*/*{TASK_SEP}*.json")})
    return found


def load(run: RunView, task: str) -> list[dict]:
    """The task's samples as ``{"language", "id", "prompt", "output", "answer", "target", "correct"}``."""
    suite, _, name = task.partition("/")
    if suite == "multilingual":
        metrics = run.scores().get("multilingual", {}).get("tasks", {}).get(name, {})
        return [_lm_eval_sample(r, metrics.get("metric", "")) for r in
                read_complete_lines(run.path / MULTILINGUAL_DIR / f"{name}.jsonl") if r.get("model") == run.model]
    if suite == "reasoning":
        return [s for path in sorted((run.path / OPENCOMPASS_DIR / "predictions").glob(f"*/{name}{TASK_SEP}*.json"))
                for s in _opencompass_samples(path)]
    return []


def _lm_eval_sample(record: dict, metric: str) -> dict:
    """lm-eval's sample fields: ``arguments`` (the requests), ``resps``/``filtered_resps``, ``target`` and
    the value of each metric under the sample's own filter; the task's metric is ``name,filter``."""
    value = record.get(metric.partition(",")[0] or (record.get("metrics") or [""])[0])
    responses = record.get("filtered_resps") or []
    return {"language": record.get("lang", ""), "id": f"{record.get('doc_id')} ({record.get('filter', 'none')})",
            "prompt": _prompt(record.get("arguments")), "output": _output(record.get("resps")),
            "answer": _choice(responses), "target": _text(record.get("target")),
            "correct": None if value is None else bool(value)}


def _prompt(arguments) -> str:
    """The request text: lm-eval logs each request's arguments, ``[context, continuation]`` per choice
    for multiple choice (all choices are shown), ``[prompt, generation kwargs]`` for a generation."""
    if not isinstance(arguments, list) or not arguments:
        return _text(arguments)
    requests = [_unwrap(a) for a in arguments]
    if len(requests) == 1:
        return requests[0]
    return "\n".join(f"({i}) {r}" for i, r in enumerate(requests))


def _unwrap(request) -> str:
    if isinstance(request, list) and request and isinstance(request[-1], dict):
        return _unwrap(request[0])  # a generation: the prompt, then its kwargs
    if isinstance(request, list) and all(isinstance(part, str) for part in request):
        return "".join(request)  # context + continuation
    return _text(request)


def _output(responses) -> str:
    """A generation's raw text, or the loglikelihood of each choice."""
    if isinstance(responses, list) and len(responses) == 1 and isinstance(responses[0], list) \
            and len(responses[0]) == 1 and isinstance(responses[0][0], str):
        return responses[0][0]
    return _text(responses)


def _choice(responses) -> str:
    """A generation's filtered answer, or for multiple choice the index of the highest loglikelihood."""
    if responses and all(isinstance(r, list) and r and isinstance(r[0], (int, float)) for r in responses):
        scores = [r[0] for r in responses]
        return f"choice {scores.index(max(scores))}"
    return _text(responses[0] if isinstance(responses, list) and len(responses) == 1 else responses)


def _opencompass_samples(path: Path) -> list[dict]:
    """One dataset's predictions joined with the per-item details of its results file, when it has them."""
    dataset = path.stem.partition(TASK_SEP)[2]
    predictions = _read_json(path)
    details = _read_json(path.parents[2] / "results" / path.parent.name / path.name).get("details")
    out = []
    for position, (key, item) in enumerate(predictions.items()):
        detail = _detail(details, key, position)
        out.append({"language": dataset, "id": key, "prompt": _text(item.get("origin_prompt")),
                    "output": _text(item.get("prediction")),
                    "answer": _text(_single(detail.get("pred", _program(detail)))),
                    "target": _text(_single(item.get("gold", detail.get("answer", "")))),
                    "correct": _correct(detail)})
    return out


def _detail(details, key: str, position: int) -> dict:
    if isinstance(details, dict):
        found = details.get(key, details.get(str(position)))
    elif isinstance(details, list) and position < len(details):
        found = details[position]
    else:
        found = None
    return found if isinstance(found, dict) else {}


def _single(value):
    """OpenCompass keeps one entry per replica in its details: unwrap a list of one."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _program(detail: dict) -> str:
    """What a code evaluator extracted and ran: ``programs`` holds ``[code, tests]`` per replica."""
    programs = detail.get("programs")
    return programs[0][0] if isinstance(programs, list) and programs and isinstance(programs[0], list) else ""


def _correct(detail: dict) -> bool | None:
    for key in ("correct", "is_correct"):
        if key in detail:
            value = detail[key]
            return bool(value[0] if isinstance(value, list) and value else value)
    return None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}  # not written yet, or being written: shown once it is complete
    return data if isinstance(data, dict) else {}


def _text(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def select(items: list[dict], language: str, correctness: str, search: str) -> list[dict]:
    needle = search.strip().casefold()
    return [item for item in items
            if (not language or item["language"] == language)
            and (correctness == "all" or item["correct"] is (correctness == "correct"))
            and (not needle or any(needle in item[key].casefold()
                                   for key in ("prompt", "output", "answer", "target")))]


def render(run: RunView, task: str, language: str, correctness: str, search: str, page: int) -> str:
    """One page of a task's samples as an HTML table."""
    if not task:
        return "<p>This run has no logged samples.</p>"
    items = select(load(run, task), language.strip(), correctness, search)
    shown, page, pages = page_of(items, page, PAGE_SIZE)
    rows = "".join(_row(item) for item in shown)
    head = "".join(f"<th>{h}</th>" for h in ("language", "id", "prompt", "output", "answer", "target", "correct"))
    return (f"{STYLE}<p class='view-summary'>{html.escape(task)}: {len(items)} samples match; page {page} of {pages}</p>"
            f"<table class='view-segments'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")


def _row(item: dict) -> str:
    mark = {True: "✔", False: "✘", None: "–"}[item["correct"]]
    cells = [html.escape(item[k]) for k in ("language", "id")]
    cells += [f"<pre style='white-space:pre-wrap;max-height:12em;overflow:auto'>{html.escape(item[k])}</pre>"
              for k in ("prompt", "output")]
    cells += [html.escape(item[k]) for k in ("answer", "target")] + [mark]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
