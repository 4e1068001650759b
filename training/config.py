"""The training recipe: typed dataclasses mirrored by YAML, with the paper's defaults.

A recipe names the base model, the chat JSONL data and a list of stages. Each stage selects what it trains
(``method: layers`` with ``bottom``/``top``/``layers``/``skip``, or ``full``, or ``lora``) and may override
the optimiser and schedule (``optim:``). Unknown keys anywhere are an error, so a typo never silently falls
back to a default.

Defaults are the paper's (Appendix A.4): 1 epoch, learning rate 1e-5 with a cosine schedule to 2e-6, warmup
ratio 0.03, bf16 mixed precision, and a global batch of 16 samples (8 GPUs x per-device 1 x accumulation 2).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xplus_release.errors import ConfigError

METHODS = ("layers", "full", "lora")
PRECISIONS = ("bf16", "bf16-pure", "fp32")
CHECKPOINTING = ("auto", "none", "all")
COMPILE = ("auto", "on", "off")
OVERLONG = ("drop", "error")
DISTRIBUTED = ("ddp", "zero1", "fsdp2")


@dataclass
class OptimConfig:
    epochs: float = 1.0
    learning_rate: float = 1e-5
    min_learning_rate: float = 2e-6  # floor of the cosine schedule
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0  # 0 disables clipping


@dataclass
class LoraConfig:
    rank: int = 8  # the paper's LoRA baselines use rank 8 (Appendix A.6)
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


@dataclass
class StageConfig:
    name: str
    method: str = "layers"
    bottom: int | None = None  # the k layers closest to the embedding
    top: int | None = None  # the m highest layers that are not in ``skip``
    layers: list[int] | None = None  # explicit indices (0-based)
    skip: list[int] = field(default_factory=list)  # never trained by this stage
    train_embeddings: bool = False
    train_norm: bool = False  # the final norm
    train_lm_head: bool = False
    optim: dict[str, Any] = field(default_factory=dict)  # overrides of the recipe's optim for this stage
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass
class Recipe:
    model: str
    data: str
    output_dir: str
    stages: list[StageConfig]
    eval_data: str | None = None  # chat JSONL for the held-out loss written at the end of each stage
    max_length: int = 2048  # longest sample (prompt + response tokens); longer ones are counted, never cut
    overlong: str = "drop"  # drop (counted and reported) or error
    pack: bool = True  # pack a micro-batch's samples into rows of max_length tokens
    global_batch_size: int = 16  # samples per optimizer step, all ranks together (paper: 8 x 1 x 2)
    micro_batch_size: int = 1  # samples per forward pass on one device
    precision: str = "bf16"  # bf16: bf16 compute, fp32 trainable weights and states; bf16-pure; fp32
    gradient_checkpointing: str = "auto"  # auto: only the layers memory requires; none; all
    compile: str = "auto"  # torch.compile each decoder layer: auto = on CUDA only
    distributed: str = "ddp"  # under torchrun/accelerate: ddp, zero1 (optimizer states sharded), fsdp2 (all sharded)
    fsdp_offload: bool = False  # fsdp2: trained layers' shards, gradients and Adam states in host memory
    seed: int = 42
    save_every: int = 0  # optimizer steps between mid-stage checkpoints; 0 = none
    keep_checkpoints: int = 1
    eval_samples: int = 256
    peak_tflops: float | None = None  # for MFU; default: known GPUs' dense bf16 peak
    trackers: list[str] = field(default_factory=lambda: ["tensorboard", "wandb"])  # used if installed
    optim: OptimConfig = field(default_factory=OptimConfig)

    def stage_optim(self, stage: StageConfig) -> OptimConfig:
        merged = {**dataclasses.asdict(self.optim), **stage.optim}
        return from_dict(OptimConfig, merged, f"stages.{stage.name}.optim")

    def training_hash(self) -> str:
        """Hash of everything that decides the trained weights (not where they go or how fast)."""
        shaping = dataclasses.asdict(self)
        for key in ("output_dir", "save_every", "keep_checkpoints", "compile", "gradient_checkpointing",
                    "trackers", "peak_tflops", "eval_data", "eval_samples", "fsdp_offload"):
            shaping.pop(key)
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read a recipe YAML; ``overrides`` are ``key=value`` strings (YAML values, dotted keys).

    Relative ``data``/``eval_data``/``output_dir`` paths stay relative to the working directory.

    Raises:
        ConfigError: unreadable YAML, unknown keys, wrong types, or inconsistent stages.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {path} does not exist; pass the path of a recipe YAML (see training/recipes/)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"recipe {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {path} must be a YAML mapping with model, data, output_dir and stages")
    for item in overrides or []:
        _apply_override(data, item)
    recipe = from_dict(Recipe, data, "recipe")
    validate_recipe(recipe)
    return recipe


def recipe_to_dict(recipe: Recipe) -> dict:
    return dataclasses.asdict(recipe)


def _apply_override(data: dict, item: str) -> None:
    key, sep, value = item.partition("=")
    if not sep:
        raise ConfigError(f"override {item!r} must look like key=value (e.g. optim.learning_rate=2e-5)")
    *parents, leaf = key.strip().split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part} is not a mapping")
    node[leaf] = yaml.safe_load(value)


def validate_recipe(recipe: Recipe) -> None:
    """Checks that need no model: choices, positive sizes, stage names, layer selectors.

    Raises:
        ConfigError: the first problem found, naming the key to fix.
    """
    _choice("precision", recipe.precision, PRECISIONS)
    _choice("gradient_checkpointing", recipe.gradient_checkpointing, CHECKPOINTING)
    _choice("compile", recipe.compile, COMPILE)
    _choice("overlong", recipe.overlong, OVERLONG)
    _choice("distributed", recipe.distributed, DISTRIBUTED)
    for key in ("max_length", "global_batch_size", "micro_batch_size"):
        if getattr(recipe, key) < 1:
            raise ConfigError(f"{key} must be at least 1, got {getattr(recipe, key)}")
    if not recipe.stages:
        raise ConfigError("the recipe has no stages; add at least one under stages:")
    names = [s.name for s in recipe.stages]
    if len(set(names)) != len(names):
        raise ConfigError(f"stage names must be unique, got {names}")
    for stage in recipe.stages:
        _validate_stage(recipe, stage)


def _validate_stage(recipe: Recipe, stage: StageConfig) -> None:
    _choice(f"stages.{stage.name}.method", stage.method, METHODS)
    selectors = [k for k in ("bottom", "top", "layers") if getattr(stage, k) is not None]
    if stage.method == "layers" and not selectors:
        raise ConfigError(f"stage {stage.name!r} selects no layers: give bottom: K, top: M or layers: [...]")
    if stage.method != "layers" and selectors:
        raise ConfigError(f"stage {stage.name!r} is method {stage.method}: bottom/top/layers apply to method layers only")
    opt = recipe.stage_optim(stage)
    if opt.epochs <= 0 or opt.learning_rate <= 0 or not 0 <= opt.warmup_ratio < 1:
        raise ConfigError(f"stage {stage.name!r}: epochs and learning_rate must be > 0, warmup_ratio in [0, 1)")
    if stage.lora.rank < 1:
        raise ConfigError(f"stage {stage.name!r}: lora.rank must be at least 1")


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")


def from_dict(cls, data: Any, where: str):
    """Build dataclass ``cls`` from a mapping, type-checking each field; unknown keys are an error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)} in {where}; allowed: {', '.join(fields)}")
    missing = [n for n, f in fields.items() if n not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where} is missing required key(s): {', '.join(missing)}")
    values = {name: _coerce(hints[name], value, f"{where}.{name}") for name, value in data.items()}
    return cls(**values)


def _coerce(hint, value: Any, where: str):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        hint = next(a for a in options if a is not type(None))
        origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        (item,) = typing.get_args(hint)
        return [_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    return _scalar(hint, value, where)


def _scalar(hint, value: Any, where: str):
    if hint is Any:
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads 1e-5 (no dot) as a string
        except ValueError:
            pass
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{where} must be {hint.__name__}, got {value!r}")
