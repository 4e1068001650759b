"""Engine-layer overhead: the same prompts through raw vLLM, the package's engine, and the endpoint client.

    python benchmarks/engine_overhead.py [--model xplus-tiny] [--prompts 512] [--max-tokens 32] [--repeats 3]

(a) ``vllm.LLM.chat`` directly with ``SamplingParams(temperature=0, max_tokens=...)`` (no seed: what a user
of vLLM, and BenchMAX's own script, sends), (b) ``VLLMEngine.chat`` on the same LLM object, (c)
``OpenAIEndpointEngine`` at ``--concurrency`` (64) against a local vLLM server started by ``VLLMServer``, and
(d) the official ``openai.AsyncOpenAI`` client at the same concurrency against the same server. (a)/(b) and
(c)/(d) each run ``--repeats`` times, interleaved in alternating order, and the best time counts, so
background load hits both alike. Prints JSON with prompts/s for each and the ratios b/a, c/d (targets:
≥ 0.95 each) and c/a (the server path against in-process). (a) gets all prompts in one batch while the
server never holds more than ``--concurrency``; on a tiny model each engine step's fixed cost dominates,
so the JSON also has (a) run in batches of ``--concurrency`` and c against that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")


def conversations(n: int):
    from xplus_release.languages import PAPER_LANGUAGES
    from xplus_release.prompts import translation_messages

    en = PAPER_LANGUAGES[0]
    return [translation_messages(f"This is test sentence number {i} for the benchmark.", en,
                                 PAPER_LANGUAGES[1 + i % 16]) for i in range(n)]


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def alternating(runs: dict, repeats: int) -> tuple[dict, dict]:
    """Best time of each named run over ``repeats`` rounds, alternating which goes first; last results."""
    times, results = {name: [] for name in runs}, {}
    names = list(runs)
    for rep in range(repeats):
        for name in (names if rep % 2 == 0 else names[::-1]):
            seconds, results[name] = timed(runs[name])
            times[name].append(seconds)
    return {name: min(t) for name, t in times.items()}, results


def bench_in_process(model, convs, sampling, repeats, batch_size):
    from vllm import SamplingParams

    from xplus_release.engines.vllm_local import VLLMEngine

    engine = VLLMEngine(model)
    params = SamplingParams(temperature=0, max_tokens=sampling.max_tokens)
    kwargs = dict(model.spec.chat_template_kwargs)
    raw = lambda: engine.llm.chat(convs, params, use_tqdm=False, chat_template_kwargs=kwargs)
    ours = lambda: engine.chat(convs, sampling, progress=False)
    raw()  # warm-up: first batch pays one-off costs
    best, results = alternating({"raw": raw, "ours": ours}, repeats)
    tokens = sum(g.completion_tokens for g in results["ours"])
    batch = [convs[i:i + batch_size] for i in range(0, len(convs), batch_size)]
    raw_batched = min(timed(lambda: [raw_chat(engine, chunk, params, kwargs) for chunk in batch])[0]
                      for _ in range(repeats))
    engine.close()
    return best["raw"], best["ours"], raw_batched, tokens


def raw_chat(engine, convs, params, kwargs):
    return engine.llm.chat(convs, params, use_tqdm=False, chat_template_kwargs=kwargs)


async def official_client(base_url, model, convs, max_tokens, concurrency, template_kwargs):
    """What a user of the ``openai`` SDK writes: one AsyncOpenAI, a semaphore, gather."""
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY")
    semaphore = asyncio.Semaphore(concurrency)

    async def one(messages):
        async with semaphore:
            return await client.chat.completions.create(
                model=model, messages=messages, max_tokens=max_tokens, temperature=0,
                extra_body={"chat_template_kwargs": template_kwargs})

    try:
        return await asyncio.gather(*(one(m) for m in convs))
    finally:
        await client.close()


def bench_endpoint(model, convs, sampling, concurrency, repeats):
    from xplus_release.engines.openai_endpoint import OpenAIEndpointEngine
    from xplus_release.engines.server import VLLMServer

    kwargs = dict(model.spec.chat_template_kwargs)
    with VLLMServer(model) as server:
        ours = OpenAIEndpointEngine(server.base_url, model=model.name, concurrency=concurrency)
        official = lambda: asyncio.run(official_client(
            server.base_url, model.name, convs, sampling.max_tokens, concurrency, kwargs))
        ours.chat(convs[:concurrency], sampling, progress=False)  # warm-up
        best, results = alternating({"ours": lambda: ours.chat(convs, sampling, progress=False),
                                     "official": official}, repeats)
    return best["ours"], best["official"], sum(g.completion_tokens or 0 for g in results["ours"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="xplus-tiny")
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    from xplus_release.engines import SamplingConfig
    from xplus_release.registry import resolve_model

    model = resolve_model(args.model)
    convs = conversations(args.prompts)
    sampling = SamplingConfig(max_tokens=args.max_tokens)
    raw_s, ours_s, raw_batched_s, tokens = bench_in_process(model, convs, sampling, args.repeats, args.concurrency)
    endpoint_s, official_s, endpoint_tokens = bench_endpoint(model, convs, sampling, args.concurrency, args.repeats)
    n = len(convs)
    print(json.dumps({
        "model": args.model, "prompts": n, "max_tokens": args.max_tokens, "cpus": os.cpu_count(),
        "raw_vllm": {"seconds": round(raw_s, 3), "prompts_per_s": round(n / raw_s, 1),
                     "output_tokens_per_s": round(tokens / raw_s, 1)},
        "engine": {"seconds": round(ours_s, 3), "prompts_per_s": round(n / ours_s, 1)},
        "endpoint": {"seconds": round(endpoint_s, 3), "prompts_per_s": round(n / endpoint_s, 1),
                     "output_tokens_per_s": round(endpoint_tokens / endpoint_s, 1),
                     "concurrency": args.concurrency},
        "openai_client": {"seconds": round(official_s, 3), "prompts_per_s": round(n / official_s, 1),
                          "concurrency": args.concurrency},
        "raw_vllm_in_batches_of_concurrency": {"seconds": round(raw_batched_s, 3),
                                               "prompts_per_s": round(n / raw_batched_s, 1)},
        "ratio_engine_vs_raw": round(raw_s / ours_s, 3),
        "ratio_endpoint_vs_openai_client": round(official_s / endpoint_s, 3),
        "ratio_endpoint_vs_raw": round(raw_s / endpoint_s, 3),
        "ratio_endpoint_vs_raw_same_batch": round(raw_batched_s / endpoint_s, 3),
    }, indent=2))


if __name__ == "__main__":
    main()
