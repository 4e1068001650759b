"""The training recipe: typed models (``xplus_release.config``) mirrored by YAML, with the paper's defaults.

A recipe names the base model, the chat JSONL data and a list of stages. Each stage selects what it trains
(``method: layers`` with ``bottom``/``top``/``layers``/``skip``, or ``full``, or ``lora``) and may override
the optimiser and schedule (``optim:``). Unknown keys anywhere are an error, so a typo never silently falls
back to a default.

Defaults are the paper's (Appendix A.4): 1 epoch, learning rate 1e-5 with a cosine schedule to 2e-6, warmup
ratio 0.03, bf16 mixed precision, and a global batch of 16 samples (8 GPUs x per-device 1 x accumulation 2).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import Field, field_serializer, model_validator

from xplus_release.config import AtLeastOne, Config
from xplus_release.storage import json_hash_forms


class RecipeSection(Config):
    """A part of a recipe: its errors read as the recipe's (``stages[0].lora.rank``)."""

    section = "recipe"
    yaml_keys = True


class OptimConfig(RecipeSection):
    epochs: float = Field(1.0, gt=0)
    learning_rate: float = Field(1e-5, gt=0)
    min_learning_rate: float = 2e-6  # floor of the cosine schedule
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0  # 0 disables clipping


class LoraConfig(RecipeSection):
    rank: AtLeastOne = 8  # the paper's LoRA baselines use rank 8 (Appendix A.6)
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])


class StageConfig(RecipeSection):
    name: str
    method: Literal["layers", "full", "lora"] = "layers"
    bottom: int | None = None  # the k layers closest to the embedding
    top: int | None = None  # the m highest layers that are not in ``skip``
    layers: list[int] | None = None  # explicit indices (0-based)
    skip: list[int] = Field(default_factory=list)  # never trained by this stage
    train_embeddings: bool = False
    train_norm: bool = False  # the final norm
    train_lm_head: bool = False
    optim: OptimConfig = OptimConfig()  # the keys set here override the recipe's optim for this stage
    lora: LoraConfig = LoraConfig()

    @model_validator(mode="after")
    def _selects_by_method(self) -> StageConfig:
        selectors = [key for key in ("bottom", "top", "layers") if getattr(self, key) is not None]
        if self.method == "layers" and not selectors:
            raise ValueError(f"stage {self.name!r} selects no layers: give bottom: K, top: M or layers: [...]")
        if self.method != "layers" and selectors:
            raise ValueError(f"stage {self.name!r} is method {self.method}: bottom/top/layers apply to method "
                             "layers only")
        return self

    @field_serializer("optim")
    def _overrides_only(self, optim: OptimConfig) -> dict:
        # What the stage sets, as written: the recipe file, run records and the training hash show overrides.
        return optim.model_dump(exclude_unset=True)


class Recipe(RecipeSection):
    model: str
    data: str
    output_dir: str
    stages: list[StageConfig]
    eval_data: str | None = None  # chat JSONL for the held-out loss written at the end of each stage
    max_length: AtLeastOne = 2048  # longest sample (prompt + response tokens); longer ones are counted, never cut
    overlong: Literal["drop", "error"] = "drop"  # drop (counted and reported) or error
    pack: bool = True  # pack a micro-batch's samples into rows of max_length tokens
    global_batch_size: AtLeastOne = 16  # samples per optimizer step, all ranks together (paper: 8 x 1 x 2)
    micro_batch_size: AtLeastOne = 1  # samples per forward pass on one device
    # bf16: bf16 compute, fp32 trainable weights and states; bf16-pure; fp32
    precision: Literal["bf16", "bf16-pure", "fp32"] = "bf16"
    gradient_checkpointing: Literal["auto", "none", "all"] = "auto"  # auto: only the layers memory requires
    compile: Literal["auto", "on", "off"] = "auto"  # torch.compile each decoder layer: auto = on CUDA only
    # under torchrun: ddp, zero1 (optimizer states sharded), fsdp2 (all sharded)
    distributed: Literal["ddp", "zero1", "fsdp2"] = "ddp"
    fsdp_offload: bool = False  # fsdp2: trained layers' shards, gradients and Adam states in host memory
    seed: int = 42
    save_every: int = 0  # optimizer steps between mid-stage checkpoints; 0 = none
    keep_checkpoints: int = 1
    eval_samples: int = 256
    peak_tflops: float | None = None  # for MFU; default: known GPUs' dense bf16 peak
    trackers: list[str] = Field(default_factory=lambda: ["tensorboard", "wandb"])  # used if installed
    optim: OptimConfig = OptimConfig()

    @model_validator(mode="after")
    def _named_stages(self) -> Recipe:
        if not self.stages:
            raise ValueError("the recipe has no stages; add at least one under stages:")
        names = [stage.name for stage in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        return self

    def stage_optim(self, stage: StageConfig) -> OptimConfig:
        """The recipe's optim with what ``stage`` sets on top."""
        return self.optim.model_copy(update=stage.optim.model_dump(exclude_unset=True))

    def training_hash(self) -> str:
        """Hash of everything that decides the trained weights (not where they go or how fast)."""
        return self.training_hash_forms()[0]

    def training_hash_forms(self) -> tuple[str, str]:
        """``training_hash()`` and the form earlier versions stored (``json_hash_forms``): a stored recipe
        hash matching either is this recipe."""
        shaping = self.model_dump(exclude={"output_dir", "save_every", "keep_checkpoints", "compile",
                                           "gradient_checkpointing", "trackers", "peak_tflops", "eval_data",
                                           "eval_samples", "fsdp_offload"})
        return json_hash_forms(shaping)


def load_recipe(path: str | Path, overrides: Iterable[str] = ()) -> Recipe:
    """Read a recipe YAML; ``overrides`` are ``key=value`` strings (YAML values, dotted keys).

    Relative ``data``/``eval_data``/``output_dir`` paths stay relative to the working directory.

    Raises:
        ConfigError: unreadable YAML, unknown keys, wrong types, or inconsistent stages.
    """
    return Recipe.from_yaml(path, overrides)
