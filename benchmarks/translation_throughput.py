"""Translation suite throughput, printed as JSON; each figure is a ratio against its baseline, same run.

1. generation: the suite (prompt building, resume bookkeeping, chunked JSONL writes) against raw
   ``vllm.LLM.chat`` on the same prompts with the same sampling, on the same loaded engine (prefix cache
   reset before each timing); and the suite's own cost per prompt with an engine that answers instantly,
   projected to the full 275,264-prompt grid;
2. scoring: spBLEU over a synthetic 272-direction x 1012-segment grid (FLORES lines, hypotheses = the
   references shifted by one sentence, each segment made unique so sacrebleu's tokenizer cache does not
   flatter the figure), through the suite's ``score_corpus`` against one sacrebleu ``BLEU`` object per run.

    .venv/bin/python benchmarks/translation_throughput.py                    # both parts, defaults below
    .venv/bin/python benchmarks/translation_throughput.py --part scoring --segments 1012

spBLEU needs sacrebleu's flores200 SentencePiece model in $SACREBLEU/models; without it (offline) the
benchmark trains a stand-in model on the package's FLORES sample and says so in the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")  # its log goes to stdout, where the JSON goes


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("generation", "scoring", "all"), default="all")
    parser.add_argument("--model", default="xplus-tiny")
    parser.add_argument("--gen-langs", default="en,zh,sw,de", help="languages of the generation grid")
    parser.add_argument("--gen-sentences", type=int, default=10, help="sentences per direction (generation)")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--segments", type=int, default=1012, help="segments per direction (scoring)")
    parser.add_argument("--score-langs", default="all", help="languages of the scoring grid (all: 17 -> 272)")
    return parser.parse_args()


def bench_generation(args) -> dict:
    from vllm import SamplingParams

    from xplus_release.engines.vllm_local import VLLMEngine
    from xplus_release.evalsuite.base import EvalContext, RunOptions
    from xplus_release.evalsuite.translation.data import load_flores
    from xplus_release.evalsuite.translation.generate import CHAT_TEMPLATE_KWARGS, build_prompts, generate
    from xplus_release.evalsuite.translation.options import TranslationOptions, resolve_grid
    from xplus_release.registry import resolve_model
    from xplus_release.runs import RunFolder

    langs, pairs = resolve_grid(TranslationOptions.build({"langs": args.gen_langs}))
    texts = load_flores(langs, "flores200-sample", limit=args.gen_sentences)
    prompts = build_prompts(pairs, texts)
    engine = VLLMEngine(resolve_model(args.model))
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens)
    conversations = [p.messages() for p in prompts]
    engine.llm.chat(conversations[:8], params, use_tqdm=False, chat_template_kwargs=CHAT_TEMPLATE_KWARGS)  # warm-up
    timings = {"raw": [], "suite": []}
    for _ in range(3):  # alternate, so drift on a shared machine hits both sides
        engine.llm.reset_prefix_cache()  # neither side may reuse the other's cached prompts
        start = time.perf_counter()
        outputs = engine.llm.chat(conversations, params, use_tqdm=False, chat_template_kwargs=CHAT_TEMPLATE_KWARGS)
        timings["raw"].append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as tmp:
            ctx = EvalContext(run=RunFolder.open(tmp, args.model), model=args.model, engine_factory=lambda: engine,
                              options=TranslationOptions(), run_options=RunOptions(progress=False))
            engine.llm.reset_prefix_cache()
            start = time.perf_counter()
            generate(ctx, prompts, args.max_tokens, chunk_size=TranslationOptions().chunk_size)
            timings["suite"].append(time.perf_counter() - start)
    tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    raw, suite = min(timings["raw"]), min(timings["suite"])
    return {"prompts": len(prompts), "directions": len(pairs), "max_tokens": args.max_tokens,
            "completion_tokens": tokens, "raw_vllm_s": round(raw, 3), "suite_s": round(suite, 3),
            "raw_prompts_per_s": round(len(prompts) / raw, 2), "suite_prompts_per_s": round(len(prompts) / suite, 2),
            "suite_over_raw_time": round(suite / raw, 3),
            "all_timings_s": {k: [round(t, 3) for t in v] for k, v in timings.items()}}


def bench_bookkeeping(args) -> dict:
    """The suite's own cost per prompt (prompt building, hashing, resume lookups, JSONL writes), measured with
    an engine that answers instantly, over the full 17-language grid of the package's 80-sentence sample."""
    from xplus_release.engines import ChatEngine, Generation
    from xplus_release.evalsuite.base import EvalContext, RunOptions
    from xplus_release.evalsuite.translation.data import load_flores
    from xplus_release.evalsuite.translation.generate import build_prompts, generate
    from xplus_release.evalsuite.translation.options import TranslationOptions, resolve_grid
    from xplus_release.runs import RunFolder

    class InstantEngine(ChatEngine):
        model_name = "instant"

        def chat(self, conversations, sampling=None, chat_template_kwargs=None, progress=True):
            return [Generation(text="a translation", finish_reason="stop", prompt_tokens=90, completion_tokens=50)
                    for _ in conversations]

    langs, pairs = resolve_grid(TranslationOptions())
    prompts = build_prompts(pairs, load_flores(langs, "flores200-sample"))
    with tempfile.TemporaryDirectory() as tmp:
        ctx = EvalContext(run=RunFolder.open(tmp, "instant"), model="instant", engine_factory=InstantEngine,
                          options=TranslationOptions(), run_options=RunOptions(progress=False))
        start = time.perf_counter()
        generate(ctx, prompts, 512, TranslationOptions().chunk_size)
        first = time.perf_counter() - start
        start = time.perf_counter()
        generate(ctx, prompts, 512, TranslationOptions().chunk_size)  # the resume check of a finished run
        rerun = time.perf_counter() - start
    full_grid = 272 * 1012
    return {"prompts": len(prompts), "generate_s": round(first, 2), "rerun_nothing_to_do_s": round(rerun, 2),
            "us_per_prompt": round(1e6 * first / len(prompts), 1),
            "projected_full_grid_s": round(first / len(prompts) * full_grid, 1)}


def synthetic_grid(langs, segments: int) -> dict[str, list[dict]]:
    from xplus_release.evalsuite.translation.data import load_flores

    texts = load_flores(langs, "flores200-sample")
    n = len(next(iter(texts.values())))
    refs = {code: [f"{lines[i % n]} ({i})" for i in range(segments)] for code, lines in texts.items()}
    grid = {}
    for src in langs:
        for tgt in langs:
            if src != tgt:
                r = refs[tgt.code]
                grid[f"{src.code}-{tgt.code}"] = [{"hypothesis": r[(i + 1) % segments], "reference": r[i],
                                                   "finish_reason": "stop"} for i in range(segments)]
    return grid


def ensure_spm() -> str:
    """'real' when sacrebleu's flores200 model is present, else train a stand-in and point sacrebleu at it."""
    from sacrebleu.tokenizers import tokenizer_spm

    from xplus_release.evalsuite.translation.metrics import spm_model_path

    if os.path.exists(spm_model_path("flores200")):
        return "real flores200 model"
    from importlib import resources

    import sentencepiece as spm

    root = Path(tempfile.mkdtemp(prefix="sacrebleu-"))
    (root / "models").mkdir()
    corpus = str(resources.files("xplus_release") / "assets" / "tiny_corpus.txt")
    spm.SentencePieceTrainer.train(input=corpus, model_prefix=str(root / "m"), vocab_size=8000,
                                   character_coverage=1.0, minloglevel=2)
    tokenizer_spm.SACREBLEU_DIR = str(root)
    (root / "models" / os.path.basename(spm_model_path("flores200"))).write_bytes((root / "m.model").read_bytes())
    return "stand-in SentencePiece model (8k unigram, trained on the package's FLORES sample)"


def bench_scoring(args) -> dict:
    from sacrebleu.metrics import BLEU

    from xplus_release.evalsuite.translation.scoring import score_corpus
    from xplus_release.languages import parse_language_list

    spm_model = ensure_spm()
    grid = synthetic_grid(parse_language_list(args.score_langs), args.segments)
    segments = sum(len(v) for v in grid.values())
    bleu = BLEU(tokenize="flores200")
    bleu.corpus_score(["warm up"], [["warm up"]])
    start = time.perf_counter()
    raw = {d: bleu.corpus_score([r["hypothesis"] for r in rs], [[r["reference"] for r in rs]]).score
           for d, rs in grid.items()}
    raw_s = time.perf_counter() - start
    BLEU(tokenize="flores200").tokenizer.__class__.__call__.cache_clear()  # no head start from the baseline
    start = time.perf_counter()
    ours, _ = score_corpus(grid, ["spbleu"], "flores200", previous={}, progress=False)
    suite_s = time.perf_counter() - start
    assert all(abs(ours[d]["spbleu"] - raw[d]) < 1e-3 for d in grid), "suite and sacrebleu disagree"
    return {"directions": len(grid), "segments_per_direction": args.segments, "segments": segments,
            "spm_model": spm_model, "sacrebleu_s": round(raw_s, 2), "suite_s": round(suite_s, 2),
            "sacrebleu_segments_per_s": round(segments / raw_s), "suite_segments_per_s": round(segments / suite_s),
            "suite_over_sacrebleu_time": round(suite_s / raw_s, 3)}


def main() -> None:
    args = parse_args()
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"}
    if args.part in ("generation", "all"):
        result["generation"] = bench_generation(args)
        result["suite_bookkeeping"] = bench_bookkeeping(args)
    if args.part in ("scoring", "all"):
        result["scoring_spbleu"] = bench_scoring(args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
