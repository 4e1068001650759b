"""Runs EvalPlus's HumanEval+ inside its managed environment (a plain script: this package is not installed there).

Input row (one): ``{"model", "base_url", "root", "limits"}``; the environment carries
``HUMANEVAL_OVERRIDE_PATH`` (the problems file), ``OPENAI_API_KEY`` and ``XDG_CACHE_HOME`` (where EvalPlus
keeps its ground-truth cache). Generation is EvalPlus's own ``run_codegen`` with its OpenAI backend, greedy,
against the vLLM server, with its own prompt and token limit (768) (resumable: it skips problems already in its samples file). Then this process
lowers its resource limits, which the processes EvalPlus's evaluator spawns inherit, on top of EvalPlus's
own sandbox (its reliability guard and time limits), and runs EvalPlus's ``evaluate``.
Output rows: ``{"task_id", "base_status", "plus_status"}`` per problem, then ``{"samples": path}``.
"""

import json
from pathlib import Path

from jsonl_worker import run_jsonl_worker
from oc_worker import apply_limits  # the same limits as OpenCompass scoring (a sibling: this script's folder)


def generate(row: dict) -> str:
    from evalplus.codegen import run_codegen

    return run_codegen(model=row["model"], dataset="humaneval", root=row["root"], greedy=True, backend="openai",
                       base_url=row["base_url"])


def score(samples: str, limits: dict) -> list[dict]:
    from evalplus.evaluate import evaluate

    apply_limits(limits)
    evaluate(dataset="humaneval", samples=samples, parallel=int(limits.get("parallel") or 1))
    results = json.loads(Path(samples.replace(".jsonl", "_eval_results.json")).read_text(encoding="utf-8"))
    return [{"task_id": task_id, "base_status": runs[0]["base_status"], "plus_status": runs[0]["plus_status"]}
            for task_id, runs in results["eval"].items()]


def handle(rows: list[dict], _args) -> list[dict]:
    samples = generate(rows[0])
    return score(samples, rows[0]["limits"]) + [{"samples": samples}]


if __name__ == "__main__":
    run_jsonl_worker(handle, __doc__)
