"""Scale-out of the evaluation: the translation grid at data parallel size 1 vs N, and the sweep's own
overhead per model.

1. ``grid``: the FLORES sample grid (``--langs`` all ordered pairs × ``--sentences``) sent by
   ``OpenAIEndpointEngine`` to a vLLM server started with ``--data-parallel-size`` 1, then N (what
   ``xplus-eval translation --data-parallel-size N`` does), and generated in process by ``LLM.chat`` (what it
   does at N = 1). Server start-up is reported apart from generation; the baseline is the DP-1 server.
2. ``sweep``: M endpoint models (all ``xplus-tiny`` on one server, so generation is the same for each)
   evaluated by hand, one ``xplus-eval all`` each, then by ``xplus-eval sweep`` with the same settings; the
   sweep's overhead per model is (sweep wall time − the by-hand wall time) / M. Goal: ≤ 5 s per model.

    .venv/bin/python benchmarks/eval_scale.py [--dp 2] [--langs en,zh,de,fr] [--sentences 20] [--models 3]

Prints one JSON object.
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

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
API_KEY = "bench-key"


def grid_prompts(langs: list[str], sentences: int) -> list:
    from xplus_release.evalsuite.translation.data import load_flores
    from xplus_release.evalsuite.translation.generate import build_prompts
    from xplus_release.languages import parse_language_list

    chosen = parse_language_list(langs)
    texts = load_flores(chosen, "flores200-sample", None, sentences)
    return build_prompts([(s, t) for s in chosen for t in chosen if s != t], texts)


def server_grid(prompts: list, dp: int, max_tokens: int, concurrency: int) -> dict:
    from xplus_release.engines import SamplingConfig
    from xplus_release.engines.openai_endpoint import OpenAIEndpointEngine
    from xplus_release.engines.server import VLLMServer
    from xplus_release.evalsuite.translation.generate import CHAT_TEMPLATE_KWARGS
    from xplus_release.registry import resolve_model

    start = time.perf_counter()
    with VLLMServer(resolve_model("xplus-tiny"), data_parallel_size=dp, startup_timeout=600) as server:
        started = time.perf_counter() - start
        engine = OpenAIEndpointEngine(server.base_url, "xplus-tiny", concurrency=concurrency * dp)
        start = time.perf_counter()
        outputs = engine.chat([p.messages() for p in prompts], SamplingConfig(max_tokens=max_tokens),
                              CHAT_TEMPLATE_KWARGS, progress=False)
        seconds = time.perf_counter() - start
    tokens = sum(o.completion_tokens for o in outputs)
    return {"dp": dp, "start_s": round(started, 1), "generate_s": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds, 1), "completion_tokens": tokens}


def in_process_grid(prompts: list, max_tokens: int) -> dict:
    from xplus_release.engines import SamplingConfig, open_engine
    from xplus_release.evalsuite.translation.generate import CHAT_TEMPLATE_KWARGS

    start = time.perf_counter()
    engine = open_engine("xplus-tiny")
    started = time.perf_counter() - start
    start = time.perf_counter()
    outputs = engine.chat([p.messages() for p in prompts], SamplingConfig(max_tokens=max_tokens),
                          CHAT_TEMPLATE_KWARGS, progress=False)
    seconds = time.perf_counter() - start
    engine.close()
    tokens = sum(o.completion_tokens for o in outputs)
    return {"dp": 1, "in_process": True, "start_s": round(started, 1), "generate_s": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds, 1), "completion_tokens": tokens}


def sweep_overhead(models: int, tmp: Path) -> dict:
    from xplus_release.engines.server import VLLMServer
    from xplus_release.registry import resolve_model

    env = {**os.environ, "XPLUS_API_KEY": API_KEY}
    suites = {"translation": {"langs": ["en", "zh"], "max_tokens": 16}}
    with VLLMServer(resolve_model("xplus-tiny"), api_key=API_KEY, startup_timeout=600) as server:
        by_hand = time.perf_counter()
        for i in range(models):
            config = tmp / "suites.yaml"
            config.write_text(yaml.safe_dump(suites))
            subprocess.run([sys.executable, "-m", "xplus_release.evalsuite.cli", "all", "--model", "xplus-tiny",
                            "--endpoint", server.base_url, "--suites", "translation", "--config", str(config),
                            "--limit", "4", "-o", str(tmp / "hand" / f"m{i}"), "--no-progress"],
                           check=True, env=env, capture_output=True)
        by_hand = time.perf_counter() - by_hand
        sweep = {"name": "bench", "output": str(tmp / "sweep"), "limit": 4, "suites": suites,
                 "models": [{"name": f"m{i}", "model": "xplus-tiny", "endpoint": server.base_url}
                            for i in range(models)]}
        (tmp / "sweep.yaml").write_text(yaml.safe_dump(sweep))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "xplus_release.evalsuite.cli", "sweep", str(tmp / "sweep.yaml")],
                       check=True, env=env, capture_output=True)
        swept = time.perf_counter() - start
    children = sum(json.loads((tmp / "sweep" / ".sweep" / f"m{i}.json").read_text())["seconds"] for i in range(models))
    return {"models": models, "by_hand_s": round(by_hand, 2), "sweep_s": round(swept, 2),
            "overhead_per_model_s": round((swept - by_hand) / models, 2),
            "outside_children_per_model_s": round((swept - children) / models, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dp", type=int, default=2)
    parser.add_argument("--langs", default="en,zh,de,fr")
    parser.add_argument("--sentences", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=256, help="requests in flight per replica (the default)")
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--skip", choices=("grid", "sweep"), help="leave one part out")
    args = parser.parse_args()
    result = {"machine": platform.machine(), "cpus": os.cpu_count()}
    if args.skip != "grid":
        prompts = grid_prompts(args.langs.split(","), args.sentences)
        runs = [server_grid(prompts, 1, args.max_tokens, args.concurrency),
                server_grid(prompts, args.dp, args.max_tokens, args.concurrency),
                in_process_grid(prompts, args.max_tokens)]
        result["grid"] = {"prompts": len(prompts), "max_tokens": args.max_tokens, "runs": runs,
                          f"dp{args.dp}_vs_dp1_generate": round(runs[0]["generate_s"] / runs[1]["generate_s"], 3),
                          "in_process_vs_dp1_server_generate": round(runs[0]["generate_s"] / runs[2]["generate_s"], 3)}
    if args.skip != "sweep":
        with tempfile.TemporaryDirectory() as tmp:
            result["sweep"] = sweep_overhead(args.models, Path(tmp))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
