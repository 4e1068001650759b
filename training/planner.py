"""``xplus-train plan --gpus N --gpu-memory GB``: per-GPU memory of each stage under each strategy.

For every stage of a recipe and every strategy (``ddp``, ``zero1``, ``fsdp2``, ``fsdp2`` with
``fsdp_offload``) it counts, per GPU:

- ``frozen_weights``: weights that do not train (bf16, or fp32 for ``precision: fp32``); replicated under
  DDP/ZeRO-1, sharded under FSDP2;
- ``trained_weights``: the weights that train, kept in fp32 as their own master copy (``precision: bf16``);
- ``gradients``: one per trained weight, same dtype; only FSDP2 shards them;
- ``optimizer``: AdamW's two moments per trained weight; ZeRO-1 and FSDP2 shard them; offload moves
  trained weights, gradients and moments to host memory;
- ``gathered``: FSDP2 only: the bf16 copies of the root (embeddings, final norm, lm_head: gathered for the
  whole step) and of two decoder layers (the running one and the next, prefetched) with their gradients;
- ``activations``: what backward keeps from the layers that need gradients (see ``memory.py``); with
  ``gradient_checkpointing: auto`` as many layers keep theirs as fit, the others keep only their input,
  plus one layer being recomputed; the frozen prefix keeps nothing;
- ``logits``: fp32 logits and their log-softmax at the response positions of one micro-batch.

These do not all live at once. The peak is the resident part (weights, optimizer state, gathered copies)
plus the larger of what backward needs at its start (activations and logits, plus the gradients already
accumulated when a step runs several micro-batches) and the gradients themselves at the optimizer step.
(Checked against measured peaks: Qwen3-4B shapes under FSDP2 on one H200, xplus-tiny on CPU.)

A micro-batch is counted at its largest, ``micro_batch_size x max_length`` tokens. A strategy fits when the
peak is at most ``memory.MARGIN`` of the GPU's memory (the rest is the CUDA context, the allocator's
fragmentation and communication buffers). The recommendation is the first that fits, in the order of
least communication: ddp, zero1, fsdp2, fsdp2 with offload.

A model that is not on this machine is planned from its published config when it is one of
``KNOWN_CONFIGS`` (no weights are needed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xplus_release.errors import ConfigError, MissingAssetError, UnknownModelError
from xplus_release.training.layers import LayerPlan, plan_stages
from xplus_release.training.memory import MARGIN, activation_bytes_per_layer

GIB = 2**30
LOGITS_BYTES_PER_VOCAB_TOKEN = 8  # fp32 logits and log-softmax
STRATEGY_ORDER = ("ddp", "zero1", "fsdp2", "fsdp2+offload")

# config.json of the paper's base models (the fields the planner reads), for planning without a download.
KNOWN_CONFIGS = {
    "Qwen/Qwen3-8B": {"hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36, "num_attention_heads": 32,
                          "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936, "tie_word_embeddings": False},
    "Qwen/Qwen3-14B": {"hidden_size": 5120, "intermediate_size": 17408, "num_hidden_layers": 40, "num_attention_heads": 40,
                           "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936, "tie_word_embeddings": False},
}


@dataclass
class Shape:
    hidden: int
    intermediate: int
    layers: int
    q_dim: int
    kv_dim: int
    head_dim: int
    vocab: int
    tied: bool

    @classmethod
    def of(cls, config) -> Shape:
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        return cls(config.hidden_size, config.intermediate_size, config.num_hidden_layers,
                   config.num_attention_heads * head_dim, config.num_key_value_heads * head_dim, head_dim,
                   config.vocab_size, bool(getattr(config, "tie_word_embeddings", False)))

    def layer_params(self) -> int:
        """Q/K/V/O and the MLP, the two RMSNorms, and Qwen3's per-head q_norm and k_norm."""
        attention = self.hidden * (2 * self.q_dim + 2 * self.kv_dim)
        return attention + 3 * self.hidden * self.intermediate + 2 * self.hidden + 2 * self.head_dim

    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    def root_params(self) -> int:
        """Embeddings, final norm and (untied) lm_head."""
        return self.embedding_params() * (1 if self.tied else 2) + self.hidden

    def lora_params(self, rank: int, targets: list[str]) -> int:
        """LoRA A and B of every targeted linear layer of one decoder layer."""
        dims = {"q_proj": (self.hidden, self.q_dim), "k_proj": (self.hidden, self.kv_dim),
                "v_proj": (self.hidden, self.kv_dim), "o_proj": (self.q_dim, self.hidden),
                "gate_proj": (self.hidden, self.intermediate), "up_proj": (self.hidden, self.intermediate),
                "down_proj": (self.intermediate, self.hidden)}
        return sum(rank * (dims[t][0] + dims[t][1]) for t in targets if t in dims)


@dataclass
class Estimate:
    """Bytes per GPU for one stage under one strategy."""

    strategy: str
    stage: str
    parts: dict[str, float] = field(default_factory=dict)
    checkpointed_layers: int = 0
    accumulating: bool = False  # several micro-batches per step: gradients live through backward

    @property
    def total(self) -> float:
        """The peak (see the module docstring)."""
        return self.resident + max(self.backward, self.parts["gradients"])

    @property
    def resident(self) -> float:
        return sum(self.parts.get(k, 0) for k in ("frozen_weights", "trained_weights", "optimizer", "gathered"))

    @property
    def backward(self) -> float:
        held = self.parts["gradients"] if self.accumulating else 0
        return self.parts["activations"] + self.parts["logits"] + held

    def as_dict(self) -> dict:
        return {"strategy": self.strategy, "stage": self.stage, "checkpointed_layers": self.checkpointed_layers,
                **{k: round(v / GIB, 2) for k, v in self.parts.items()}, "peak": round(self.total / GIB, 2)}


def load_config(model: str):
    """The model's config: from its folder or the HF cache, else the published one for a known model
    (no download is tried for those).

    Raises:
        ConfigError: neither is available.
    """
    from pathlib import Path

    from transformers import AutoConfig, Qwen3Config

    from xplus_release.registry import resolve_model

    try:
        path = resolve_model(model).path
    except (MissingAssetError, UnknownModelError):
        path = None
    if path and Path(path).is_dir():
        return AutoConfig.from_pretrained(path)
    if model in KNOWN_CONFIGS:
        return Qwen3Config(**KNOWN_CONFIGS[model])
    try:
        return AutoConfig.from_pretrained(path or model)
    except (OSError, ValueError):
        raise ConfigError(f"no config for model {model!r} here; fetch it (hf download {model} config.json) "
                          f"or plan one of {', '.join(KNOWN_CONFIGS)}") from None


def num_layers(model: str) -> int:
    """The number of decoder layers of ``model`` (its config, see ``load_config``).

    Raises:
        ConfigError: no config, or one without num_hidden_layers (not a decoder-only LM).
    """
    layers = getattr(load_config(model), "num_hidden_layers", None)
    if not isinstance(layers, int):
        raise ConfigError(f"model {model} has no num_hidden_layers in its config; the trainer needs a decoder-only LM")
    return layers


def estimate(shape: Shape, recipe, stage, plan: LayerPlan, strategy: str, gpus: int, gpu_bytes: float,
             tokens: int | None = None) -> Estimate:
    """Per-GPU bytes of one stage under ``strategy`` (one of STRATEGY_ORDER) on ``gpus`` GPUs."""
    trained, frozen = _parameter_counts(shape, stage, plan)
    weight_bytes = 4 if recipe.precision == "fp32" else 2
    master_bytes = 2 if recipe.precision == "bf16-pure" else 4
    sharded = strategy.startswith("fsdp2")
    offload = strategy == "fsdp2+offload"
    shard = gpus if sharded else 1
    state_shard = gpus if sharded or strategy == "zero1" else 1
    on_gpu = 0 if offload else trained
    parts = {"frozen_weights": frozen * weight_bytes / shard,
             "trained_weights": on_gpu * master_bytes / shard,
             "gradients": on_gpu * master_bytes / shard,
             "optimizer": on_gpu * 2 * master_bytes / state_shard}
    if sharded:
        parts["gathered"] = _gathered_bytes(shape, trained, weight_bytes)
    tokens = tokens or recipe.micro_batch_size * recipe.max_length
    parts["logits"] = LOGITS_BYTES_PER_VOCAB_TOKEN * shape.vocab * tokens
    accumulating = recipe.global_batch_size > gpus * recipe.micro_batch_size
    held = parts["gradients"] if accumulating else 0
    budget = gpu_bytes * MARGIN - sum(parts.values()) + parts["gradients"] - held
    parts["activations"], checkpointed = _activations(shape, recipe, plan, tokens, budget)
    return Estimate(strategy, stage.name, parts, checkpointed, accumulating)


def _parameter_counts(shape: Shape, stage, plan: LayerPlan) -> tuple[int, int]:
    """(trained, frozen) parameter counts of a stage."""
    layer = shape.layer_params()
    everything = shape.root_params() + shape.layers * layer
    if plan.method == "lora":
        trained = shape.layers * shape.lora_params(stage.lora.rank, list(stage.lora.target_modules))
        return trained, everything
    trained = len(plan.trainable_layers) * layer
    trained += shape.embedding_params() if plan.train_embeddings else 0
    trained += shape.embedding_params() if plan.train_lm_head and not shape.tied else 0
    trained += shape.hidden if plan.train_norm else 0
    return trained, everything - trained


def _gathered_bytes(shape: Shape, trained: int, weight_bytes: int) -> float:
    layer = shape.layer_params()
    root = shape.root_params() * weight_bytes
    layers = 2 * layer * weight_bytes
    grads = 4 * layer if trained else 0  # unsharded fp32 gradient of the layer being reduced
    return root + layers + grads


def fp32_activation_bytes(hidden: int, intermediate: int) -> int:
    """Per token and layer in float32 (measured on xplus-tiny on CPU: everything saved at 4 bytes, but none
    of the fp32 upcasts that bf16 adds)."""
    return 4 * (14 * hidden + 5 * intermediate)


def _activations(shape: Shape, recipe, plan: LayerPlan, tokens: int, budget: float) -> tuple[float, int]:
    """(bytes, layers checkpointed) for the grad region under the recipe's checkpointing policy."""
    grad_layers = shape.layers - min(plan.first_grad_layer, shape.layers)
    if grad_layers == 0:
        return 0.0, 0
    if recipe.precision == "fp32":
        full = fp32_activation_bytes(shape.hidden, shape.intermediate) * tokens
        kept_input = tokens * shape.hidden * 4
    else:
        full = activation_bytes_per_layer(shape.hidden, shape.intermediate, tokens)
        kept_input = tokens * shape.hidden * 2
    if recipe.gradient_checkpointing == "none":
        keep = grad_layers
    elif recipe.gradient_checkpointing == "all":
        keep = 0
    else:  # auto: keep as many whole layers as the memory left allows
        floor = grad_layers * kept_input + full
        keep = max(0, min(grad_layers, int((budget - floor) // max(1, full - kept_input))))
    checkpointed = grad_layers - keep
    recompute = full if checkpointed else 0
    return keep * full + checkpointed * kept_input + recompute, checkpointed


def plan_recipe(recipe, config, gpus: int, gpu_memory_gb: float) -> dict:
    """Every stage under every strategy, which fit, and the recommended strategy (None if none fits)."""
    if gpus < 1 or gpu_memory_gb <= 0:
        raise ConfigError(f"--gpus must be at least 1 and --gpu-memory above 0 (got {gpus}, {gpu_memory_gb})")
    shape = Shape.of(config)
    plans = plan_stages(recipe.stages, shape.layers)
    gpu_bytes = gpu_memory_gb * 1e9
    strategies = {}
    for strategy in STRATEGY_ORDER:
        per_stage = [estimate(shape, recipe, stage, plan, strategy, gpus, gpu_bytes)
                     for stage, plan in zip(recipe.stages, plans)]
        peak = max(per_stage, key=lambda e: e.total)
        strategies[strategy] = {"peak_gib": round(peak.total / GIB, 1),
                                "fits": all(e.total <= gpu_bytes * MARGIN for e in per_stage),
                                "stages": [e.as_dict() for e in per_stage]}
    recommended = next((s for s in STRATEGY_ORDER if strategies[s]["fits"]), None)
    return {"model": recipe.model, "gpus": gpus, "gpu_memory_gb": gpu_memory_gb,
            "usable_gib": round(gpu_bytes * MARGIN / GIB, 1), "strategies": strategies, "recommended": recommended}


def header_line(report: dict) -> str:
    """The line a shipped recipe carries about the hardware it needs (checked by the tests)."""
    rec = report["recommended"]
    peaks = ", ".join(f"{s} {v['peak_gib']}" + ("" if v["fits"] else " (no fit)")
                      for s, v in report["strategies"].items())
    return (f"# {report['gpus']} x {report['gpu_memory_gb']:g} GB: {rec or 'no strategy fits'} "
            f"(xplus-train plan; peak GiB per GPU: {peaks})")
