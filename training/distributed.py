"""Data parallelism for the trainer: the process group, and wrapping the step module for a strategy.

- ``ddp``: ``DistributedDataParallel`` over the trainable parameters (bucketed all-reduce overlapped with
  backward, ``no_sync`` during gradient accumulation). Frozen weights are replicated.
- ``zero1``: the same DDP, plus ``ZeroRedundancyOptimizer`` sharding the Adam states (see the trainer).
- ``fsdp2``: ``fully_shard`` on every decoder layer and on the root (embeddings, final norm, lm_head), frozen
  and trained layers alike: every rank holds 1/world of every weight, a layer is gathered just before it
  runs and freed after. Frozen layers get no gradients and no optimizer state; the layers below the lowest
  trained one still run under ``no_grad`` (the forward is the trainer's own, see ``forward.SelectiveStep``).
  ``precision: bf16`` becomes a ``MixedPrecisionPolicy``: bf16 gathers and compute, fp32 gradient reduction,
  fp32 sharded master copies of the trained weights. ``fsdp_offload: true`` keeps the trained layers'
  shards, their gradients and their optimizer state in host memory (the optimizer steps on the CPU).

Every rank computes its loss divided by the global number of response tokens, so the gradient of the global
mean is the *sum* over ranks: DDP's and FSDP2's averaging is undone by scaling the loss by the world size.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Dist:
    """Join the process group torchrun sets up (WORLD_SIZE > 1); a no-op otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    return Dist(dist.get_rank(), world, local)


def pick_device(dist_info: Dist) -> torch.device:
    return torch.device("cuda", dist_info.local_rank) if torch.cuda.is_available() else torch.device("cpu")


def wrap_for_strategy(step: torch.nn.Module, layers, strategy: str, dist_info: Dist, precision: str,
                      offload: bool) -> torch.nn.Module:
    """The module the loop calls: ``step`` itself (one process), DDP around it, or ``step`` fully sharded.

    ``layers`` are the decoder layers inside ``step`` (each becomes its own FSDP2 unit)."""
    if dist_info.world == 1:
        return step
    if strategy == "fsdp2":
        return shard_fsdp2(step, layers, precision, offload)
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [dist_info.local_rank] if torch.cuda.is_available() else None
    # init_sync off: every rank loaded the same weights from the same files; broadcasting 8 B frozen
    # parameters at start-up would only cost time.
    return DistributedDataParallel(step, device_ids=device_ids, init_sync=False, broadcast_buffers=False,
                                   gradient_as_bucket_view=True)


def shard_fsdp2(step: torch.nn.Module, layers, precision: str, offload: bool) -> torch.nn.Module:
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) \
        if precision == "bf16" else MixedPrecisionPolicy()
    for layer in layers:
        trained = any(p.requires_grad for p in layer.parameters())
        # Only trained layers are offloaded: frozen shards need no optimizer and stay next to the compute.
        where = CPUOffloadPolicy(pin_memory=torch.cuda.is_available()) if offload and trained else OffloadPolicy()
        fully_shard(layer, mp_policy=policy, offload_policy=where)
    root_trained = any(p.requires_grad for n, p in step.named_parameters() if ".layers." not in n)
    where = CPUOffloadPolicy(pin_memory=torch.cuda.is_available()) if offload and root_trained else OffloadPolicy()
    fully_shard(step, mp_policy=policy, offload_policy=where)
    return step


def all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over every rank, in place (itself in one process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor


def barrier() -> None:
    """Wait for every rank (a no-op in one process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def gradient_sync(wrapped: torch.nn.Module, last_micro_batch: bool):
    """Skip the gradient reduction on every micro-batch but the last (accumulate locally first)."""
    from torch.distributed.fsdp import FSDPModule
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(wrapped, FSDPModule):
        wrapped.set_requires_gradient_sync(last_micro_batch)
        return contextlib.nullcontext()
    if isinstance(wrapped, DistributedDataParallel) and not last_micro_batch:
        return wrapped.no_sync()
    return contextlib.nullcontext()


def is_sharded(wrapped: torch.nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(wrapped, FSDPModule)


def full_value(value) -> float:
    """A float from a tensor that may be a DTensor (FSDP2's gradient norm)."""
    if hasattr(value, "full_tensor"):
        value = value.full_tensor()
    return float(value)
