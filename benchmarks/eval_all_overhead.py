"""Where the wall time of ``xplus-eval all --limit`` goes: engine start, generation, scoring, harness overhead.

Runs ``xplus-eval all --model xplus-tiny --limit N --suites reasoning`` (OpenCompass on the MATH-500-format
test items) in a subprocess that starts its own vLLM server, then reads the timings ``all`` records in
run.json. Baseline: the same number of chat requests with the same max tokens sent straight to a vLLM server
by ``OpenAIEndpointEngine``; ``generation_vs_direct`` is OpenCompass's generation phase over that.

    .venv/bin/python benchmarks/eval_all_overhead.py [--limit 2] [--max-out-len 16]

Prints one JSON object. The reasoning generation phase includes OpenCompass's own start-up (a fresh Python
process importing it), which is the overhead this benchmark is meant to expose.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# offline, and a small KV cache: the CPU engine otherwise reserves most of the machine's memory
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "evalsuite" / "reasoning" / "sample_data"  # the MATH-500 excerpt shipped in the package


def run_all(out: Path, limit: int, max_out_len: int) -> float:
    cmd = [sys.executable, "-m", "xplus_release.evalsuite.cli", "all", "--model", "xplus-tiny", "--suites",
           "reasoning", "--reasoning-tasks", "math", "--limit", str(limit), "--max-tokens", str(max_out_len),
           "--reasoning-thinking", "off", "--data-dir", str(DATA), "-o", str(out), "--no-progress"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=sys.stderr)  # its logs must not mix with the JSON on stdout
    return time.perf_counter() - start


def direct_generation(limit: int, max_out_len: int) -> tuple[float, float]:
    """(server start, generation) seconds for ``limit`` MATH prompts sent straight to a vLLM server."""
    from xplus_release.engines import SamplingConfig
    from xplus_release.engines.openai_endpoint import OpenAIEndpointEngine
    from xplus_release.engines.server import VLLMServer
    from xplus_release.registry import resolve_model

    rows = [json.loads(line) for line in (DATA / "opencompass/data/math/test_prm800k_500.jsonl").read_text().splitlines()]
    prompts = [[{"role": "user", "content": r["problem"]}] for r in rows[:limit]]
    start = time.perf_counter()
    with VLLMServer(resolve_model("xplus-tiny"), api_key="bench") as server:
        started = time.perf_counter()
        engine = OpenAIEndpointEngine(server.base_url, "xplus-tiny", api_key="bench")
        engine.chat(prompts, SamplingConfig(max_tokens=max_out_len), {"enable_thinking": False}, progress=False)
        return started - start, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2)
    parser.add_argument("--max-out-len", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xplus-bench-") as tmp:
        out = Path(tmp) / "run"
        wall = run_all(out, args.limit, args.max_out_len)
        timings = json.loads((out / "run.json").read_text())["timings"]
    direct_start, direct_gen = direct_generation(args.limit, args.max_out_len)
    reasoning = timings["reasoning"]
    engine_start = timings["engine_start_s"]
    generation, scoring = reasoning["generation_s"], reasoning["scoring_s"]
    harness = wall - engine_start - generation - scoring
    print(json.dumps({
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "model": "xplus-tiny", "limit": args.limit,
        "max_out_len": args.max_out_len, "wall_s": round(wall, 2), "engine_start_s": engine_start,
        "reasoning": {"generation_s": generation, "scoring_s": scoring, "suite_total_s": reasoning["total_s"]},
        "harness_overhead_s": round(harness, 2),
        "not_generation_share": round((wall - generation) / wall, 3),
        "baseline_direct": {"server_start_s": round(direct_start, 2), "generation_s": round(direct_gen, 3)},
        "generation_vs_direct": round(generation / direct_gen, 1) if direct_gen else None,
    }, indent=2))


if __name__ == "__main__":
    main()
