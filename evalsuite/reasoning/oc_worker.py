"""Runs OpenCompass inside its managed environment (a plain script: this package is not installed there).

Input row (one): ``{"config": path, "work_dir": dir, "limits": {...}}``. Generation (``--mode infer``) runs
first; then, because scoring is where OpenCompass's evaluators execute model-written code, this process
lowers its own resource limits (address space, CPU seconds, core dumps), which every process it spawns
inherits, and runs ``--mode eval``. Output rows: the summary table OpenCompass wrote, one row per
(dataset, metric), then ``{"summary": path}`` and ``{"timings": {"generation_s", "scoring_s"}}``.
"""

import csv
import os
import resource
import sys
import time
from pathlib import Path

from jsonl_worker import run_jsonl_worker

REUSE = "run"  # a fixed experiment name: OpenCompass skips datasets whose outputs are already there


def apply_limits(limits: dict) -> None:
    gib = 1024 ** 3
    if limits.get("memory_gb"):
        size = int(limits["memory_gb"] * gib)
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    if limits.get("cpu_seconds"):
        seconds = int(limits["cpu_seconds"])
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_opencompass(config: str, work_dir: str, mode: str) -> None:
    from opencompass.cli.main import main

    sys.argv = ["opencompass", config, "--work-dir", work_dir, "--mode", mode, "--reuse", REUSE]
    main()


def latest_summary(work_dir: str) -> Path | None:
    summaries = sorted((Path(work_dir) / REUSE / "summary").glob("summary_*.csv"))
    return summaries[-1] if summaries else None


def summary_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        model_column = reader.fieldnames[-1]
        return [{"dataset": r["dataset"], "metric": r["metric"], "mode": r["mode"], "value": r[model_column]}
                for r in reader]


def handle(rows: list[dict], _args) -> list[dict]:
    job = rows[0]
    os.makedirs(job["work_dir"], exist_ok=True)
    start = time.perf_counter()
    run_opencompass(job["config"], job["work_dir"], "infer")
    middle = time.perf_counter()
    apply_limits(job.get("limits", {}))
    run_opencompass(job["config"], job["work_dir"], "eval")
    timings = {"generation_s": middle - start, "scoring_s": time.perf_counter() - middle}
    summary = latest_summary(job["work_dir"])
    rows = (summary_rows(summary) + [{"summary": str(summary)}]) if summary else []
    return rows + [{"timings": timings}]


if __name__ == "__main__":
    run_jsonl_worker(handle, __doc__)
