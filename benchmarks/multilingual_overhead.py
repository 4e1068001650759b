"""Wall time of the multilingual suite split into request time and lm-eval harness overhead; prints JSON.

    .venv/bin/python benchmarks/multilingual_overhead.py --model xplus-tiny --limit 4

Starts a vLLM server for --model (its start-up is reported apart), then runs the suite over --tasks.
"request" time is the union of the intervals in which at least one HTTP request of lm-eval's API models
was in flight (concurrent requests are not double-counted); "harness" is the rest of the suite's wall
time: lm-eval's task index (also reported alone as ``task_index_s``), config loading, dataset loading, prompt building, tokenisation, filters, metrics
and writing the run folder. The number to drive down is ``harness_share``. Defaults use the local test
items (the suite's embedded sample) so the script runs offline; point --data-dir elsewhere for real data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class IntervalRecorder:
    """Collects (start, end) of every API call and measures the time covered by at least one."""

    def __init__(self):
        self.intervals: list[tuple[float, float]] = []

    def wrap_async(self, func):
        async def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return await func(*args, **kwargs)
            finally:
                self.intervals.append((start, time.perf_counter()))
        return timed

    def wrap_sync(self, func):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.intervals.append((start, time.perf_counter()))
        return timed

    def covered(self, since: float = float("-inf"), until: float = float("inf")) -> float:
        total, end_so_far = 0.0, since
        for start, end in sorted(self.intervals):
            start, end = max(start, end_so_far), min(end, until)
            if end > start:
                total += end - start
                end_so_far = end
        return total


def instrument(recorder: IntervalRecorder) -> None:
    from lm_eval.models.api_models import TemplateAPI

    TemplateAPI.model_call = recorder.wrap_sync(TemplateAPI.model_call)
    TemplateAPI.amodel_call = recorder.wrap_async(TemplateAPI.amodel_call)


def time_tasks(per_task: dict, recorder: IntervalRecorder) -> None:
    """Wall and request time of each ``Harness.evaluate`` call (one per task)."""
    from xplus_release.evalsuite.multilingual.harness import Harness

    original = Harness.evaluate

    def timed(self, spec, lm_tasks):
        start = time.perf_counter()
        try:
            return original(self, spec, lm_tasks)
        finally:
            end = time.perf_counter()
            request = recorder.covered(start, end)
            per_task[spec.name] = {"wall_s": round(end - start, 3), "request_s": round(request, 3),
                                   "harness_s": round(end - start - request, 3)}

    Harness.evaluate = timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="xplus-tiny")
    parser.add_argument("--tasks", default="xnli,mgsm-lmeval", help="add xgpqa,mgsm with --benchmax-dir")
    parser.add_argument("--langs", default="en")
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--max-gen-toks", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: the suite's embedded sample rows")
    parser.add_argument("--benchmax-dir", type=Path, help="a BenchMAX checkout, for xifeval, xgpqa and mgsm")
    args = parser.parse_args()

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    from xplus_release.engines.server import VLLMServer
    from xplus_release.evalsuite.base import EvalContext, RunOptions, load_suite
    from xplus_release.evalsuite.common import run_suite
    from xplus_release.evalsuite.multilingual.harness import task_manager
    from xplus_release.evalsuite.multilingual.suite import SAMPLE_DATA
    from xplus_release.registry import resolve_model
    from xplus_release.runs import RunFolder

    recorder, per_task = IntervalRecorder(), {}
    instrument(recorder)
    time_tasks(per_task, recorder)
    api_key = secrets.token_hex(8)
    start = time.perf_counter()
    with VLLMServer(resolve_model(args.model), api_key=api_key) as server, tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        task_manager()  # lm-eval's task index, cached for the suite: timed apart as the largest fixed cost
        indexed = time.perf_counter()
        ctx = EvalContext(run=RunFolder.open(Path(tmp) / "run", args.model), model=args.model,
                          engine_factory=lambda: None, endpoint=server.base_url, api_key=api_key,
                          run_options=RunOptions(limit=args.limit, data_dir=args.data_dir or SAMPLE_DATA,
                                                 concurrency=args.concurrency),
                          options={"tasks": args.tasks, "langs": args.langs, "max_tokens": args.max_gen_toks,
                                   "benchmax_dir": args.benchmax_dir})
        run_suite(load_suite("multilingual"), ctx)
        finished = time.perf_counter()
    suite_wall = finished - started
    request = recorder.covered(started, finished)
    print(json.dumps({
        "benchmark": "multilingual_overhead",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "model": args.model, "tasks": args.tasks, "langs": args.langs, "limit": args.limit,
        "max_gen_toks": args.max_gen_toks, "requests": len(recorder.intervals),
        "server_start_s": round(started - start, 3),
        "suite_wall_s": round(suite_wall, 3),
        "request_s": round(request, 3),
        "harness_s": round(suite_wall - request, 3),
        "harness_share": round((suite_wall - request) / suite_wall, 3),
        "task_index_s": round(indexed - started, 3),
        "per_task": per_task,
    }, indent=2))


if __name__ == "__main__":
    main()
