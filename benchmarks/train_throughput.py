"""Training throughput and peak memory: xplus-train's step vs the naive layer-freezing baseline.

Prints one JSON object. Every figure comes from the same run, on the same device, on a random-weight model
of the chosen shape (``qwen3-8b``: 36 layers, hidden 4096, vocab 151936; ``small``: a CPU-sized Qwen3).

Modes (one optimizer step = forward + backward + AdamW step on the trainable parameters):

- ``naive-<stage>``: the baseline the issue names: a Hugging Face model, ``requires_grad`` off outside the
  stage, gradient checkpointing on every layer (non-reentrant), ``model(input_ids, labels=...)``, no packing.
- ``xplus-<stage>``: ``xplus_release.training``'s step: frozen prefix under no_grad, automatic
  checkpointing policy, per-layer ``torch.compile`` (GPU), logits only at target positions.

- ``fsdp2-<stage>`` (``--fsdp2``): the same step with the model fully sharded by FSDP2 (every decoder layer
  and the root, as ``distributed: fsdp2`` does) over a one-process group: the cost of the wrapping itself.
  Run last, on a fresh model. ``--fsdp2-memory SHAPE`` then trains every parameter of a random model of
  SHAPE the way ``precision: bf16`` + ``fsdp2`` does (fp32 master weights and Adam states, bf16 compute,
  every layer checkpointed) and compares its peak memory with ``xplus-train plan``'s estimate.
- ``--processes 2`` (CPU): ``xplus-train run`` of the tiny recipe under ``torchrun`` with 2 processes
  against 1, for ``ddp`` and ``fsdp2``, tokens/s from the run's own metrics.

Part 1, ``seq x batch`` dense rows with a target on every position (the anchors' setting). Part 2,
translation-length samples (token lengths of FLORES-200 pairs in the tiny tokenizer, shipped in
``flores_lengths.json``): the paper's one sample per step (naive stage 2) against packed steps (xplus
stage 2), counting non-padding tokens only.

    python benchmarks/train_throughput.py --shape qwen3-8b              # GPU
    python benchmarks/train_throughput.py --shape small --seq 256 --batch 2 --steps 2   # CPU, a minute
    python benchmarks/train_throughput.py --shape qwen3-8b --modes naive-full,xplus-stage2 --fsdp2 \
        --fsdp2-memory qwen3-4b                                                          # GPU, FSDP2 rows
    python benchmarks/train_throughput.py --processes 2 --modes none                     # CPU, DDP/FSDP2 rows
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from xplus_release.training.config import StageConfig
from xplus_release.training.dataset import IGNORE, Sample, collate, pack
from xplus_release.training.forward import ForwardSettings, flops_per_step, loss_sum
from xplus_release.training.layers import LayerPlan, apply_freezing, decoder_parts, plan_stage
from xplus_release.training.memory import choose_checkpointed_layers
from xplus_release.training.trainer import raise_recompile_limit

ROOT = Path(__file__).resolve().parents[1]

SHAPES = {
    "qwen3-8b": {"hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36, "num_attention_heads": 32,
                 "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936, "tie_word_embeddings": False},
    "qwen3-4b": {"hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 36, "num_attention_heads": 32,
                 "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936, "tie_word_embeddings": True},
    "small": {"hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 8, "num_attention_heads": 4,
              "num_key_value_heads": 2, "head_dim": 64, "vocab_size": 4096, "tie_word_embeddings": False},
}
MEASURED_PEAK_TFLOPS = {"H200": 790.0, "H100": 790.0}  # bf16 8192^3 matmul measured on these machines


def stages_for(layers: int) -> dict[str, StageConfig]:
    """The paper's stages scaled to the model depth: bottom 4/36 and top 15/36 with the 16th from the top
    skipped."""
    bottom = max(1, round(4 * layers / 36))
    top = max(1, round(15 * layers / 36))
    return {"stage1": StageConfig(name="stage1", bottom=bottom),
            "stage2": StageConfig(name="stage2", top=top, skip=[layers - top - 1]),
            "full": StageConfig(name="full", method="full"),
            "lora": StageConfig(name="lora", method="lora")}


def build_model(shape: str, device: torch.device, dtype: torch.dtype):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(**SHAPES[shape], max_position_embeddings=8192, attn_implementation="sdpa")
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    with device:
        model = Qwen3ForCausalLM(config)
    torch.set_default_dtype(previous)
    return model


def dense_rows(vocab: int, seq: int, batch: int, device) -> dict:
    ids = torch.randint(0, vocab, (batch, seq), device=device)
    targets = torch.cat([ids[:, 1:], torch.full((batch, 1), IGNORE, device=device)], dim=1)
    positions = torch.arange(seq, device=device).expand(batch, seq)
    return {"input_ids": ids, "targets": targets, "position_ids": positions,
            "segments": torch.ones_like(ids)}


def translation_samples(lengths: list[list[int]], vocab: int, count: int) -> list[Sample]:
    generator = torch.Generator().manual_seed(0)
    samples = []
    for i in range(count):
        prompt, response = lengths[i % len(lengths)]
        ids = torch.randint(0, vocab, (prompt + response,), generator=generator).tolist()
        targets = [IGNORE] * (prompt - 1) + ids[prompt:] + [IGNORE]
        samples.append(Sample(ids, targets))
    return samples


class Timer:
    def __init__(self, device):
        self.device = device

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def run(self, step, warmup: int, steps: int) -> float:
        for _ in range(warmup):
            step()
        times = []
        for _ in range(steps):
            self.sync()
            start = time.perf_counter()
            step()
            self.sync()
            times.append(time.perf_counter() - start)
        return statistics.median(times)


def reset(model, device):
    model.requires_grad_(False)
    for p in model.parameters():
        p.grad = None
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def optimizer_for(params, device):
    return torch.optim.AdamW(params, lr=1e-5, fused=device.type == "cuda")


def naive_mode(model, stage: StageConfig, batches: list[dict], device, args) -> dict:
    """HF forward with labels, every layer checkpointed, requires_grad off outside the stage."""
    reset(model, device)
    plan = plan_stage(stage, model.config.num_hidden_layers)
    params = apply_freezing(model, plan)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    optimizer = optimizer_for(params, device)
    cursor = iter(range(10**9))

    def step():
        batch = batches[next(cursor) % len(batches)]
        labels = batch["input_ids"].masked_fill(_label_mask(batch), IGNORE)
        model(input_ids=batch["input_ids"], labels=labels, use_cache=False).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    compiled = _set_compiled(model, None)  # the baseline is the plain HF model: eager layers
    try:
        seconds = Timer(device).run(step, args.warmup, args.steps)
    finally:
        _set_compiled(model, compiled)
    model.gradient_checkpointing_disable()
    return {"seconds_per_step": seconds, "peak_gib": peak_gib(device)}


def _set_compiled(model, impls):
    """Detach (impls=None) or restore the per-layer compiled forwards that ``nn.Module.compile`` set."""
    layers = decoder_parts(model)[1]
    previous = [getattr(layer, "_compiled_call_impl", None) for layer in layers]
    for layer, impl in zip(layers, impls or [None] * len(layers)):
        layer._compiled_call_impl = impl
    return previous


def _label_mask(batch: dict) -> torch.Tensor:
    """HF shifts labels itself: label t is the token at t, masked where the previous position has no target."""
    prev = torch.nn.functional.pad(batch["targets"], (1, 0), value=IGNORE)[:, :-1]
    return prev == IGNORE


def xplus_mode(model, stage: StageConfig, batches: list[dict], device, args) -> dict:
    """xplus_release.training's step on the same model."""
    reset(model, device)
    plan = plan_stage(stage, model.config.num_hidden_layers)
    target = model
    if plan.method == "lora":
        from peft import LoraConfig, get_peft_model

        target = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=list(stage.lora.target_modules),
                                                  task_type="CAUSAL_LM"))
    params = apply_freezing(model, plan)
    tokens = max(int((b["segments"] > 0).sum()) for b in batches)
    chosen = choose_checkpointed_layers(args.checkpointing, model.config, plan, tokens, params, device, "bf16-pure")
    settings = ForwardSettings(checkpointed=frozenset(chosen))
    optimizer = optimizer_for(params, device)
    cursor = iter(range(10**9))

    def step():
        batch = batches[next(cursor) % len(batches)]
        loss, count = loss_sum(model, batch, plan, settings)
        (loss / count).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    seconds = Timer(device).run(step, args.warmup, args.steps)
    result = {"seconds_per_step": seconds, "peak_gib": peak_gib(device), "checkpointed_layers": len(chosen)}
    if plan.method == "lora":
        target.unload()  # back to the plain model for the next mode
    return result


def describe(result: dict, batches: list[dict], model, plan: LayerPlan, peaks: dict) -> dict:
    tokens = statistics.mean(int((b["segments"] > 0).sum()) for b in batches)
    response = statistics.mean(int((b["targets"] != IGNORE).sum()) for b in batches)
    seq = max(b["input_ids"].shape[1] for b in batches)
    out = {**result, "tokens_per_s": tokens / result["seconds_per_step"]}
    flops = flops_per_step(model.config, plan, int(tokens), int(response), int(seq))
    for name, peak in peaks.items():
        out[f"mfu_{name}"] = flops / result["seconds_per_step"] / (peak * 1e12)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=SHAPES, default="qwen3-8b")
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--modes", default="naive-full,naive-stage2,xplus-stage1,xplus-stage2,xplus-full,xplus-lora")
    parser.add_argument("--translation-samples", type=int, default=512, help="samples per packed step (part 2)")
    parser.add_argument("--checkpointing", choices=["auto", "none", "all"], default="auto")
    parser.add_argument("--compile", choices=["on", "off", "auto"], default="auto")
    parser.add_argument("--fsdp2", action="store_true", help="add the fsdp2-stage2 row (one-process FSDP2)")
    parser.add_argument("--fsdp2-memory", choices=SHAPES, help="full fine-tuning under FSDP2 on this shape: "
                        "measured peak memory vs the planner's estimate")
    parser.add_argument("--processes", type=int, default=0, help="CPU: torchrun rows with this many processes")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.processes:
        return _emit(_process_rows(args.processes), args.out)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = build_model(args.shape, device, dtype)
    if args.compile == "on" or (args.compile == "auto" and device.type == "cuda"):
        raise_recompile_limit()
        for layer in decoder_parts(model)[1]:
            layer.compile()
    peaks = _peaks(device)
    stages = stages_for(model.config.num_hidden_layers)
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "shape": args.shape, "dtype": str(dtype), "seq": args.seq,
              "batch": args.batch, "compile": args.compile, "dense": {}, "translation": {}}
    dense = [dense_rows(model.config.vocab_size, args.seq, args.batch, device) for _ in range(2)]
    for mode in [m for m in args.modes.split(",") if m != "none"]:
        kind, stage_name = mode.split("-", 1)
        runner = naive_mode if kind == "naive" else xplus_mode
        plan = plan_stage(stages[stage_name], model.config.num_hidden_layers)
        report["dense"][mode] = _safe(lambda run=runner, stage=stages[stage_name], plan=plan: describe(
            run(model, stage, dense, device, args), dense, model, plan, peaks))
        print(json.dumps({mode: report["dense"][mode]}), file=sys.stderr, flush=True)
    if args.translation_samples:
        report["translation"] = _translation(model, stages["stage2"], device, args, peaks)
    if args.fsdp2 or args.fsdp2_memory:
        del model
        reset_memory(device)
    if args.fsdp2:
        plan = plan_stage(stages["stage2"], SHAPES[args.shape]["num_hidden_layers"])
        report["dense"]["fsdp2-stage2"] = _safe(lambda: fsdp2_stage(args, stages["stage2"], dense, device, peaks, plan))
        reset_memory(device)
    if args.fsdp2_memory:
        report["fsdp2_full_memory"] = _safe(lambda: fsdp2_full_memory(args, device))
    report["ratios"] = _ratios(report)
    return _emit(report, args.out)


def _emit(report: dict, out: str | None) -> int:
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        Path(out).write_text(text)
    return 0


def reset_memory(device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def one_process_group(device) -> None:
    import torch.distributed as dist

    if not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29517")
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=0, world_size=1)


def sharded_step(shape: str, stage: StageConfig, device, args, precision: str, checkpointing: str):
    """A fresh random model, frozen per ``stage``, wrapped in ``SelectiveStep`` and sharded by FSDP2 as the
    trainer does; returns (step module, plan, trainable parameters)."""
    from xplus_release.training.distributed import shard_fsdp2
    from xplus_release.training.forward import SelectiveStep

    one_process_group(device)
    model = build_model(shape, device, torch.bfloat16)
    plan = plan_stage(stage, model.config.num_hidden_layers)
    apply_freezing(model, plan)
    if precision == "bf16":
        for param in model.parameters():
            if param.requires_grad:
                param.data = param.data.float()
    if args.compile == "on" or (args.compile == "auto" and device.type == "cuda"):
        raise_recompile_limit()
        for layer in decoder_parts(model)[1]:
            layer.compile()
    tokens = args.seq * args.batch
    chosen = choose_checkpointed_layers(checkpointing, model.config, plan, tokens, [], device, precision)
    settings = ForwardSettings(checkpointed=frozenset(chosen),
                               autocast_dtype=torch.bfloat16 if precision == "bf16" else None)
    step = shard_fsdp2(SelectiveStep(model, model, plan, settings), decoder_parts(model)[1], precision, False)
    return step, plan, [p for p in step.parameters() if p.requires_grad]


def fsdp2_stage(args, stage: StageConfig, dense: list[dict], device, peaks, plan) -> dict:
    """The xplus step of ``stage`` with the model sharded by FSDP2 (bf16 weights, as the xplus rows)."""
    step_module, _, params = sharded_step(args.shape, stage, device, args, "bf16-pure", args.checkpointing)
    optimizer = optimizer_for(params, device)
    cursor = iter(range(10**9))

    def step():
        batch = dense[next(cursor) % len(dense)]
        loss, count = step_module(batch)
        (loss / count).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    seconds = Timer(device).run(step, args.warmup, args.steps)
    result = describe({"seconds_per_step": seconds, "peak_gib": peak_gib(device)}, dense,
                      step_module.lm, plan, peaks)
    return result


def fsdp2_full_memory(args, device) -> dict:
    """Full fine-tuning of ``--fsdp2-memory``'s shape as precision bf16 + fsdp2 trains it, against the planner."""
    from xplus_release.training.config import Recipe
    from xplus_release.training.planner import GIB, Shape, estimate

    stage = StageConfig(name="full", method="full")
    step_module, plan, params = sharded_step(args.fsdp2_memory, stage, device, args, "bf16", "all")
    optimizer = torch.optim.AdamW(params, lr=1e-5, fused=device.type == "cuda")
    vocab = step_module.lm.config.vocab_size
    batches = [dense_rows(vocab, args.seq, args.batch, device) for _ in range(2)]
    reset_memory(device)
    for batch in batches:
        loss, count = step_module(batch)
        (loss / count).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    measured = peak_gib(device)
    recipe = Recipe(model=args.fsdp2_memory, data="-", output_dir="-", stages=[stage], precision="bf16",
                    gradient_checkpointing="all", micro_batch_size=args.batch, global_batch_size=args.batch,
                    max_length=args.seq)
    total = torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else 0
    planned = estimate(Shape.of(step_module.lm.config), recipe, stage, plan, "fsdp2", 1, total,
                       tokens=args.seq * args.batch)
    return {"shape": args.fsdp2_memory, "parameters_b": sum(p.numel() for p in params) / 1e9,
            "measured_peak_gib": measured, "planned": planned.as_dict(),
            "planned_vs_measured": planned.total / GIB / measured if measured else None}


def _process_rows(processes: int) -> dict:
    """``xplus-train run`` on the tiny recipe (stage 2 only, one epoch) with N processes vs 1, per strategy."""
    rows = {}
    for strategy in ("ddp", "fsdp2"):
        for count in (1, processes):
            rows[f"{strategy}-{count}"] = _tiny_run(strategy, count)
    ratios = {f"{s}_{processes}_vs_1": rows[f"{s}-{processes}"]["tokens_per_s"] / rows[f"{s}-1"]["tokens_per_s"]
              for s in ("ddp", "fsdp2")}
    return {"device": "cpu", "torch": torch.__version__, "recipe": "training/recipes/xplus-tiny.yaml (stage top)",
            "rows": rows, "ratios": ratios}


def _tiny_run(strategy: str, processes: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={processes}"] \
            if processes > 1 else [sys.executable]
        command = [*launcher, "-m", "xplus_release.training.cli", "run", str(ROOT / "training/recipes/xplus-tiny.yaml"),
                   "--no-progress", "--set", f"output_dir={out}", "--set", f"distributed={strategy}",
                   "--set", "stages=[{name: top, top: 4, skip: [5]}]", "--set", "trackers=[]"]
        subprocess.run(command, check=True, cwd=ROOT, capture_output=True)
        records = [json.loads(line) for line in (Path(out) / "logs" / "metrics.jsonl").read_text().splitlines()]
    steady = records[1:] or records  # the first step includes one-off start-up work
    tokens, seconds = sum(r["tokens"] for r in steady), sum(r["tokens"] / r["tokens_per_s"] for r in steady)
    return {"processes": processes, "steps": len(records), "tokens_per_s": tokens / seconds,
            "final_loss": records[-1]["loss"]}


def _translation(model, stage: StageConfig, device, args, peaks) -> dict:
    lengths = json.loads((Path(__file__).parent / "flores_lengths.json").read_text())["prompt_response"]
    samples = translation_samples(lengths, model.config.vocab_size, args.translation_samples)
    to_device = lambda rows: {k: v.to(device) for k, v in collate(rows, 0).items()}
    single = [to_device([r]) for r in pack(samples[:16], 1, enabled=False)]
    plan = plan_stage(stage, model.config.num_hidden_layers)
    result = {"mean_sample_tokens": statistics.mean(len(s.input_ids) for s in samples)}
    result["naive-one-sample-per-step"] = _safe(lambda: describe(naive_mode(model, stage, single, device, args),
                                                                 single, model, plan, peaks))
    rows = pack(samples, args.seq)
    packed = [to_device(rows[i:i + args.batch]) for i in range(0, len(rows), args.batch)]
    result["packed_micro_batches"] = len(packed)
    result["xplus-packed"] = _safe(lambda: _packed(model, stage, packed, device, args, plan, peaks))
    return result


def _packed(model, stage, packed, device, args, plan, peaks) -> dict:
    """One optimizer step = every packed micro-batch of ``--translation-samples`` samples."""
    reset(model, device)
    params = apply_freezing(model, plan)
    tokens = max(int((b["segments"] > 0).sum()) for b in packed)
    chosen = choose_checkpointed_layers(args.checkpointing, model.config, plan, tokens, params, device, "bf16-pure")
    settings = ForwardSettings(checkpointed=frozenset(chosen))
    optimizer = optimizer_for(params, device)
    total = sum(int((b["targets"] != IGNORE).sum()) for b in packed)

    def step():
        for batch in packed:
            loss, _ = loss_sum(model, batch, plan, settings)
            (loss / total).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    seconds = Timer(device).run(step, 1, max(1, args.steps - 1))
    tokens = sum(int((b["segments"] > 0).sum()) for b in packed)
    response = sum(int((b["targets"] != IGNORE).sum()) for b in packed)
    flops = sum(flops_per_step(model.config, plan, int((b["segments"] > 0).sum()), int((b["targets"] != IGNORE).sum()),
                               b["input_ids"].shape[1]) for b in packed)
    samples = sum(int(b["position_ids"].eq(0).logical_and(b["segments"] > 0).sum()) for b in packed)
    out = {"seconds_per_step": seconds, "tokens_per_s": tokens / seconds, "samples_per_step": samples,
           "response_tokens": response, "peak_gib": peak_gib(device)}
    for name, peak in peaks.items():
        out[f"mfu_{name}"] = flops / seconds / (peak * 1e12)
    return out


def _peaks(device) -> dict:
    if device.type != "cuda":
        return {}
    name = torch.cuda.get_device_name(device)
    from xplus_release.training.steplog import device_peak_tflops

    peaks = {"datasheet": device_peak_tflops(device, None)}
    measured = next((v for k, v in MEASURED_PEAK_TFLOPS.items() if k in name), None)
    if measured:
        peaks["measured_matmul"] = measured
    return {k: v for k, v in peaks.items() if v}


def _safe(fn) -> dict:
    try:
        return fn()
    except Exception as err:  # noqa: BLE001 - a mode that fails (e.g. out of memory) is reported, the others run
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"}


def _ratios(report: dict) -> dict:
    dense, tr = report["dense"], report.get("translation", {})
    get = lambda d, k: d.get(k, {}).get("tokens_per_s")
    ratios = {}
    base = get(dense, "naive-full")
    for mode in ("xplus-stage1", "xplus-stage2", "xplus-full", "xplus-lora", "naive-stage2"):
        if base and get(dense, mode):
            ratios[f"{mode}_vs_naive-full"] = get(dense, mode) / base
    if get(dense, "fsdp2-stage2") and get(dense, "xplus-stage2"):
        ratios["fsdp2-stage2_vs_xplus-stage2"] = get(dense, "fsdp2-stage2") / get(dense, "xplus-stage2")
    if base and get(dense, "fsdp2-stage2"):
        ratios["fsdp2-stage2_vs_naive-full"] = get(dense, "fsdp2-stage2") / base
    if get(dense, "naive-stage2") and get(dense, "xplus-stage2"):
        ratios["xplus-stage2_vs_naive-stage2"] = get(dense, "xplus-stage2") / get(dense, "naive-stage2")
    if get(tr, "naive-one-sample-per-step") and get(tr, "xplus-packed"):
        ratios["translation_packed_vs_one_sample_per_step"] = get(tr, "xplus-packed") / get(tr, "naive-one-sample-per-step")
    return ratios


if __name__ == "__main__":
    sys.exit(main())
