"""The automatic activation-checkpointing policy: checkpoint only as many layers as memory requires.

Recomputation costs about a third more compute on every checkpointed layer, so ``auto`` keeps activations
of as many grad-region layers as fit and checkpoints the rest (lowest first: their recomputation is the
same, and the top layers' activations are needed first in backward). The frozen prefix never needs it:
it runs without autograd and keeps no activations. On CPU nothing is checkpointed (host memory is the
limit and the user sets it with ``gradient_checkpointing: all``).

The estimate is deliberately simple: weights + gradients and Adam states of the trainable parameters +
per-layer activations of ``2 * (18 * hidden + 6 * intermediate)`` bytes per token in bf16 (measured on
Qwen3-8B shapes with SDPA: ~300 KB per token per layer) + a 10% margin.
"""

from __future__ import annotations

import math

import torch

from xplus_release.training.layers import LayerPlan

MARGIN = 0.90


def activation_bytes_per_layer(hidden: int, intermediate: int, tokens: int) -> int:
    return 2 * (18 * hidden + 6 * intermediate) * tokens


def choose_checkpointed_layers(policy: str, config, plan: LayerPlan, micro_tokens: int, trainable, device,
                               precision: str, shards: int = 1) -> list[int]:
    """The grad-region layers to checkpoint. ``shards``: ranks the trainable parameters are sharded over
    (FSDP2); parameters kept in host memory (offload) cost the device nothing."""
    grad_layers = list(range(plan.first_grad_layer, config.num_hidden_layers))
    if policy == "none" or not grad_layers:
        return []
    if policy == "all":
        return grad_layers
    if device.type != "cuda":
        return []
    _, total = torch.cuda.mem_get_info(device)
    used_by_weights = torch.cuda.memory_allocated(device)
    state_bytes = 2 if precision == "bf16-pure" else 4
    on_device = sum(math.prod(p.shape) for p in trainable if p.device.type == "cuda") / shards
    optimizer = on_device * state_bytes * 3  # grad + two Adam moments
    budget = total * MARGIN - used_by_weights - optimizer - logits_bytes(config.vocab_size, micro_tokens)
    per_layer = activation_bytes_per_layer(config.hidden_size, config.intermediate_size, micro_tokens)
    keep = max(0, min(len(grad_layers), int(budget // per_layer)))
    return grad_layers[: len(grad_layers) - keep]


def logits_bytes(vocab: int, tokens: int) -> int:
    return 4 * 3 * vocab * tokens  # fp32 logits, their softmax and gradient
