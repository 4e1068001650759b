"""Which layers a stage trains, and freezing everything else.

The model must have the decoder structure of Qwen3/Llama-style causal LMs in transformers:
``model.model.embed_tokens``, ``model.model.layers`` (a ModuleList), ``model.model.norm``,
``model.model.rotary_emb`` and ``model.lm_head``. The trainer runs these parts itself so that the frozen
prefix below the lowest trained layer never enters autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

from xplus_release.errors import ConfigError
from xplus_release.training.config import StageConfig

REQUIRED_PARTS = ("embed_tokens", "layers", "norm", "rotary_emb")


@dataclass(frozen=True)
class LayerPlan:
    """What one stage trains. ``first_grad_layer`` is the lowest layer autograd must see: everything
    below it (and the embedding, unless trained) runs under ``no_grad``."""

    method: str
    trainable_layers: tuple[int, ...]
    num_layers: int
    train_embeddings: bool
    train_norm: bool
    train_lm_head: bool

    @property
    def first_grad_layer(self) -> int:
        if self.method != "layers" or self.train_embeddings:
            return 0
        if self.trainable_layers:
            return min(self.trainable_layers)
        return self.num_layers  # only the norm and/or lm_head train


def decoder_parts(model):
    """(inner model, layers, lm_head) of a causal LM.

    Raises:
        ConfigError: the model lacks the expected decoder structure.
    """
    inner = getattr(model, "model", None)
    missing = [p for p in REQUIRED_PARTS if inner is None or not hasattr(inner, p)]
    if missing or not hasattr(model, "lm_head"):
        raise ConfigError(
            f"model {type(model).__name__} does not have the decoder layout the trainer needs "
            f"(model.model.{{{', '.join(REQUIRED_PARTS)}}} and model.lm_head; missing: "
            f"{', '.join(missing) or 'lm_head'}); use a Qwen3/Llama-style causal LM"
        )
    return inner, inner.layers, model.lm_head


def select_layers(stage: StageConfig, num_layers: int) -> tuple[int, ...]:
    """The layer indices a ``method: layers`` stage trains.

    ``bottom: k`` = layers 0..k-1, ``top: m`` = the m highest layers not in ``skip``, ``layers`` =
    explicit; they may be combined (union), and ``skip`` is removed from all of them.

    Raises:
        ConfigError: an index out of range, a selector larger than the model, or an empty selection.
    """
    skip = set(stage.skip)
    _check_range(stage, "skip", stage.skip, num_layers)
    chosen: set[int] = set()
    if stage.bottom is not None:
        _check_count(stage, "bottom", stage.bottom, num_layers)
        chosen |= {i for i in range(stage.bottom) if i not in skip}
    if stage.top is not None:
        _check_count(stage, "top", stage.top, num_layers)
        candidates = [i for i in reversed(range(num_layers)) if i not in skip]
        if stage.top > len(candidates):
            raise ConfigError(f"stage {stage.name!r}: top {stage.top} but only {len(candidates)} layers are not skipped")
        chosen |= set(candidates[: stage.top])
    if stage.layers is not None:
        _check_range(stage, "layers", stage.layers, num_layers)
        chosen |= set(stage.layers) - skip
    if not chosen:
        raise ConfigError(f"stage {stage.name!r} selects no layer (after skip {sorted(skip)}); widen its selection")
    return tuple(sorted(chosen))


def _check_count(stage: StageConfig, key: str, count: int, num_layers: int) -> None:
    if not 1 <= count <= num_layers:
        raise ConfigError(f"stage {stage.name!r}: {key} must be between 1 and {num_layers} (the model's layers), got {count}")


def _check_range(stage: StageConfig, key: str, indices: list[int], num_layers: int) -> None:
    bad = [i for i in indices if not 0 <= i < num_layers]
    if bad:
        raise ConfigError(f"stage {stage.name!r}: {key} index {bad[0]} is out of range; the model has layers 0..{num_layers - 1}")


def plan_stages(stages: list[StageConfig], num_layers: int) -> list[LayerPlan]:
    """Plans for every stage. Two ``layers`` stages may not train the same layer: the paper's stages are
    disjoint (bottom, then top), and an overlap is nearly always a wrong index.

    Raises:
        ConfigError: see ``select_layers``; overlapping stages.
    """
    plans = [plan_stage(s, num_layers) for s in stages]
    seen: dict[int, str] = {}
    for stage, plan in zip(stages, plans):
        if stage.method != "layers":
            continue
        for index in plan.trainable_layers:
            if index in seen:
                raise ConfigError(f"stages {seen[index]!r} and {stage.name!r} both train layer {index}; "
                                  "make the stages disjoint (e.g. bottom: 4 then top: 15)")
            seen[index] = stage.name
    return plans


def plan_stage(stage: StageConfig, num_layers: int) -> LayerPlan:
    if stage.method == "layers":
        layers = select_layers(stage, num_layers)
        return LayerPlan("layers", layers, num_layers, stage.train_embeddings, stage.train_norm, stage.train_lm_head)
    everything = stage.method == "full"
    return LayerPlan(stage.method, tuple(range(num_layers)), num_layers,
                     everything or stage.train_embeddings, everything or stage.train_norm,
                     everything or stage.train_lm_head)


def apply_freezing(model, plan: LayerPlan) -> list:
    """Set ``requires_grad`` from the plan (LoRA adapters are set by peft) and return the trainable
    parameters. A tied lm_head shares the embedding's weight: training one trains both."""
    inner, layers, lm_head = decoder_parts(model)
    if plan.method != "lora":
        model.requires_grad_(False)
        for index in plan.trainable_layers:
            layers[index].requires_grad_(True)
    inner.embed_tokens.requires_grad_(plan.train_embeddings)
    inner.norm.requires_grad_(plan.train_norm)
    if plan.train_lm_head or plan.train_embeddings:
        lm_head.requires_grad_(plan.train_lm_head or lm_head.weight is inner.embed_tokens.weight)
    return [p for p in model.parameters() if p.requires_grad]
