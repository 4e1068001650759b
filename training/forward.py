"""The layer-selective forward pass: frozen prefix without autograd, logits only where there is a loss.

Instead of the model's own ``forward`` the trainer runs its parts: the embedding and every layer below
the lowest trained one under ``torch.no_grad`` (no activations kept, nothing to recompute, so no
checkpointing there either), then the remaining layers with autograd (each optionally checkpointed or
compiled), then the final norm and lm_head on the response positions only. Skipping the lm_head on prompt
tokens matters: for a 150k vocabulary it is a large share of the FLOPs of a short translation sample.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from xplus_release.training.dataset import IGNORE, attention_mask
from xplus_release.training.layers import LayerPlan, decoder_parts
from xplus_release.training.planner import Shape


@dataclass
class ForwardSettings:
    """How to run the grad region: which layers to checkpoint, the autocast dtype (None = off)."""

    checkpointed: frozenset[int] = field(default_factory=frozenset)
    autocast_dtype: torch.dtype | None = None


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def hidden_states(model, batch: dict, plan: LayerPlan, settings: ForwardSettings) -> torch.Tensor:
    """Final hidden states [B, T, H] (before the final norm)."""
    inner, layers, _ = decoder_parts(model)
    ids, positions = batch["input_ids"], batch["position_ids"]
    mask = attention_mask(batch["segments"])
    first = plan.first_grad_layer
    with _autocast(ids.device, settings.autocast_dtype):
        with torch.no_grad() if first > 0 else contextlib.nullcontext():
            hidden = inner.embed_tokens(ids)
            rotary = inner.rotary_emb(hidden, positions)
            for index in range(min(first, len(layers))):
                hidden = layers[index](hidden, attention_mask=mask, position_ids=positions, position_embeddings=rotary)
        for index in range(first, len(layers)):
            hidden = _run_layer(layers[index], hidden, mask, positions, rotary, index in settings.checkpointed)
    return hidden


def _run_layer(layer, hidden, mask, positions, rotary, checkpointed: bool):
    if checkpointed:
        return checkpoint(layer, hidden, attention_mask=mask, position_ids=positions,
                          position_embeddings=rotary, use_reentrant=False)
    return layer(hidden, attention_mask=mask, position_ids=positions, position_embeddings=rotary)


def response_logits(model, hidden: torch.Tensor, targets: torch.Tensor, settings: ForwardSettings):
    """(logits [N, V] in float32, targets [N]) at the N positions that have a target."""
    inner, _, lm_head = decoder_parts(model)
    where = targets != IGNORE
    with _autocast(hidden.device, settings.autocast_dtype):
        logits = lm_head(inner.norm(hidden[where]))
    return logits.float(), targets[where]


def loss_sum(model, batch: dict, plan: LayerPlan, settings: ForwardSettings) -> tuple[torch.Tensor, int]:
    """(summed token cross-entropy over the response positions, number of those positions)."""
    hidden = hidden_states(model, batch, plan, settings)
    logits, targets = response_logits(model, hidden, batch["targets"], settings)
    return F.cross_entropy(logits, targets, reduction="sum"), int(targets.numel())


class SelectiveStep(torch.nn.Module):
    """The layer-selective loss as one module: ``step(batch)`` = ``loss_sum(lm, batch, ...)``.

    Data-parallel wrappers hook a module's ``forward``: DDP prepares its gradient buckets there, and an
    FSDP2 root gathers the parameters it owns (embeddings, final norm, lm_head) before the call and frees
    them after. Running the parts by hand outside such a module would bypass both.
    """

    def __init__(self, lm, causal_lm, plan: LayerPlan, settings: ForwardSettings):
        super().__init__()
        self.lm = lm  # the trained module (the peft wrapper for LoRA): its parameter names are the checkpoint's
        self.causal_lm, self.plan, self.settings = [causal_lm], plan, settings  # list: not registered twice

    def forward(self, batch: dict) -> tuple[torch.Tensor, int]:
        return loss_sum(self.causal_lm[0], batch, self.plan, self.settings)


def per_sample_losses(model, batch: dict, plan: LayerPlan, settings: ForwardSettings) -> list[float]:
    """Mean response loss of each sample in the batch, in row-major sample order (packing-independent)."""
    with torch.no_grad():
        hidden = hidden_states(model, batch, plan, settings)
        logits, targets = response_logits(model, hidden, batch["targets"], settings)
        token_loss = F.cross_entropy(logits, targets, reduction="none")
    segments = batch["segments"] + batch["segments"].shape[1] * torch.arange(
        batch["segments"].shape[0], device=batch["segments"].device)[:, None]
    owner = segments[batch["targets"] != IGNORE]
    _, inverse = torch.unique_consecutive(owner, return_inverse=True)
    sums = torch.zeros(int(inverse.max()) + 1, dtype=token_loss.dtype, device=token_loss.device)
    counts = torch.zeros_like(sums)
    sums.index_add_(0, inverse, token_loss)
    counts.index_add_(0, inverse, torch.ones_like(token_loss))
    return (sums / counts).tolist()


def flops_per_step(config, plan: LayerPlan, tokens: int, response_tokens: int, seq_len: int) -> float:
    """Matrix-multiply FLOPs one step needs (no recomputation counted): forward through every layer,
    input gradients from the top down to the lowest trained layer, weight gradients of trained layers,
    lm_head forward and input gradient on the response positions only. Attention scores count causally."""
    shape = Shape.of(config)
    hidden, layers = shape.hidden, shape.layers
    layer_params = hidden * (2 * shape.q_dim + 2 * shape.kv_dim) + 3 * hidden * shape.intermediate
    attention = 2 * shape.q_dim * seq_len  # QK^T and AV, causal half of 2 * 2 * T * d
    per_layer_fwd = 2 * layer_params + attention
    lm_head = 2 * hidden * shape.vocab
    forward = tokens * layers * per_layer_fwd + response_tokens * lm_head
    grad_layers = layers - min(plan.first_grad_layer, layers)
    input_grads = tokens * grad_layers * per_layer_fwd + (response_tokens * lm_head if grad_layers else 0)
    trained = len(plan.trainable_layers) if plan.method != "lora" else 0
    weight_grads = tokens * trained * 2 * layer_params
    return float(forward + input_grads + weight_grads)
