"""One log line per optimizer step from rank 0, a progress bar, metrics.jsonl, TensorBoard/W&B if there.

A line reads ``stage-2 step 12/500 | loss 1.2345 | lr 9.98e-06 | 15,210 tok/s | MFU 64.1% | mem 58.2 GiB``:
tokens/s counts non-padding tokens of all ranks; MFU divides the FLOPs the step needs (see
``forward.flops_per_step``, no recomputation counted) by the elapsed time and the devices' dense bf16 peak.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

import torch

# Dense bf16 peak, TFLOP/s, from the vendors' datasheets (no sparsity).
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "H800": 989.0, "A100": 312.0, "A800": 312.0, "L40S": 362.0,
               "A10": 125.0, "4090": 165.0, "B200": 2250.0, "GH200": 989.0}


def device_peak_tflops(device: torch.device, configured: float | None) -> float | None:
    if configured:
        return configured
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in sorted(PEAK_TFLOPS.items(), key=lambda kv: -len(kv[0])) if k in name), None)


def memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


class StepLogger:
    def __init__(self, folder: Path, recipe, enabled: bool = True, progress: bool = True):
        self.enabled, self.progress, self.recipe = enabled, progress, recipe
        self.folder, self.bar, self.trackers = folder, None, []
        if enabled:
            folder.mkdir(parents=True, exist_ok=True)
            self.metrics = (folder / "metrics.jsonl").open("a", encoding="utf-8")
            self.trackers = _open_trackers(folder, recipe)

    def info(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def stage_start(self, stage, plan, total: int, step: int, n_trainable: int, settings) -> None:
        if not self.enabled:
            return
        layers = plan.trainable_layers if plan.method == "layers" else plan.method
        self.info(f"stage {stage.name}: {plan.method}, layers {_short(layers)}, {n_trainable:,} trainable parameters, "
                  f"{total} steps, activation checkpointing on {len(settings.checkpointed)} layers")
        if self.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=step, desc=stage.name, unit="step", file=sys.stderr, leave=False)

    def step(self, stage: str, step: int, total: int, *, loss, lr, tokens, seconds, flops, world, grad_norm, device):
        if not self.enabled:
            return
        peak = device_peak_tflops(device, self.recipe.peak_tflops)
        mfu = flops / seconds / (peak * 1e12 * world) if peak else None
        record = {"stage": stage, "step": step, "steps": total, "loss": loss, "lr": lr, "grad_norm": grad_norm,
                  "tokens": tokens, "tokens_per_s": tokens / seconds, "mfu": mfu, "mem_gib": memory_gib(device)}
        self.metrics.write(json.dumps(record) + "\n")
        self.metrics.flush()
        mfu_text = f"MFU {100 * mfu:.1f}%" if mfu is not None else "MFU -"
        self.info(f"{stage} step {step}/{total} | loss {loss:.4f} | lr {lr:.2e} | {record['tokens_per_s']:,.0f} tok/s "
                  f"| {mfu_text} | mem {record['mem_gib']:.2f} GiB")
        for tracker in self.trackers:
            tracker(stage, step, record)
        if self.bar is not None:
            self.bar.update(1)
            if step >= total:
                self.bar.close()
                self.bar = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.enabled:
            self.metrics.close()


def _short(layers) -> str:
    if isinstance(layers, str):
        return layers
    return ",".join(map(str, layers)) if len(layers) < 8 else f"{layers[0]}..{layers[-1]} ({len(layers)})"


def _open_trackers(folder: Path, recipe) -> list:
    trackers = []
    if "tensorboard" in recipe.trackers:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            pass
        else:
            writer = SummaryWriter(str(folder / "tensorboard"))
            trackers.append(lambda stage, step, rec: [writer.add_scalar(f"{stage}/{k}", v, step)
                                                      for k, v in rec.items() if isinstance(v, float)])
    if "wandb" in recipe.trackers and (os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE")):
        try:
            import wandb
        except ImportError:
            pass
        else:
            run = wandb.init(project=os.environ.get("WANDB_PROJECT", "xplus-train"), dir=str(folder),
                             config={"output_dir": recipe.output_dir, "model": recipe.model})
            trackers.append(lambda stage, step, rec: run.log({f"{stage}/{k}": v for k, v in rec.items()
                                                              if isinstance(v, float)}))
    return trackers
