"""The two-stage layer-selective trainer (and its full fine-tuning and LoRA baselines).

``run_recipe`` trains the recipe's stages in order; stage n+1 starts from the Hugging Face folder stage n
wrote, so a rerun after a crash skips finished stages and resumes the interrupted one from its latest
checkpoint. Under ``torchrun`` every rank takes its slice of each global batch and gradients are summed
across ranks before the step (``distributed: zero1`` also shards the optimizer states of the trainable
parameters; frozen weights are replicated either way).

Output layout (``output_dir``)::

    recipe.yaml                    the recipe as run (a different recipe in the same folder is refused)
    stage-<i>-<name>/              Hugging Face folder after stage i, with training.yaml (provenance)
    final -> stage-<n>-<name>      the last stage's folder
    checkpoints/stage-<i>-<name>/  mid-stage checkpoints (save_every), removed once the stage is done
    logs/metrics.jsonl             one record per step (plus TensorBoard / W&B when installed)
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from pathlib import Path

import torch
import yaml

from xplus_release.errors import ConfigError, RunFolderError
from xplus_release.registry import resolve_model
from xplus_release.runs import package_versions
from xplus_release.storage import write_atomic
from xplus_release.training import checkpoint as ckpt
from xplus_release.training.config import Recipe, StageConfig
from xplus_release.training.dataset import DatasetReport, Sample, collate, load_samples, pack, sample_order
from xplus_release.training.distributed import (
    Dist,
    all_sum,
    barrier,
    full_value,
    gradient_sync,
    init_distributed,
    is_sharded,
    pick_device,
    wrap_for_strategy,
)
from xplus_release.training.forward import ForwardSettings, SelectiveStep, flops_per_step
from xplus_release.training.layers import LayerPlan, apply_freezing, decoder_parts, plan_stages
from xplus_release.training.memory import choose_checkpointed_layers
from xplus_release.training.planner import num_layers
from xplus_release.training.steplog import StepLogger

RECIPE_FILE = "recipe.yaml"


def load_model(path: str, precision: str, device: torch.device):
    """A causal LM in the dtype its frozen weights keep (bf16, or fp32 for precision fp32)."""
    from transformers import AutoModelForCausalLM

    dtype = torch.float32 if precision == "fp32" else torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="sdpa")
    return model.to(device)


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def run_recipe(recipe: Recipe, stop_after_steps: int | None = None, progress: bool = True) -> Path | None:
    """Train every stage; return the final folder, or None when ``stop_after_steps`` ended the run early
    (a checkpoint is saved; the same call again resumes).

    Raises:
        ConfigError: bad recipe, data or layer selection. RunFolderError: output_dir holds another recipe.
    """
    dist_info = init_distributed()
    check_world_size(recipe, dist_info.world)
    out = Path(recipe.output_dir)
    base = resolve_model(recipe.model).path
    tokenizer = load_tokenizer(base)
    samples, report = load_samples(recipe.data, tokenizer, recipe.max_length, recipe.overlong)
    eval_samples = _eval_samples(recipe, tokenizer)
    plans = plan_stages(recipe.stages, num_layers(base))
    _claim_output_dir(out, recipe, dist_info)  # only once the recipe, data and layers are known to be valid
    logger = StepLogger(out / "logs", recipe, enabled=dist_info.main, progress=progress)
    logger.info(f"data {recipe.data}: {report.summary()}")
    start, budget = base, stop_after_steps
    for index, (stage, plan) in enumerate(zip(recipe.stages, plans), 1):
        folder = out / f"stage-{index}-{stage.name}"
        if not ckpt.is_complete(folder):
            job = StageJob(recipe, stage, plan, index, start, folder, dist_info, logger)
            budget = job.run(tokenizer, samples, report, eval_samples, budget)
            if budget is not None and budget <= 0 and not ckpt.is_complete(folder):
                logger.close()
                return None
        start = str(folder)
    logger.close()
    final = out / "final"
    if dist_info.main:
        _link_final(final, Path(start))
    return final


def check_world_size(recipe: Recipe, world: int) -> None:
    """Every rank must run the same number of micro-batches (FSDP2 gathers weights collectively in each).

    Raises:
        ConfigError: global_batch_size is not a multiple of the number of processes.
    """
    if recipe.global_batch_size % world:
        raise ConfigError(f"global_batch_size {recipe.global_batch_size} is not a multiple of the {world} processes; "
                          f"set global_batch_size to a multiple of {world}")


def _claim_output_dir(out: Path, recipe: Recipe, dist_info: Dist) -> None:
    """Record the recipe in output_dir, or refuse a folder that another recipe wrote."""
    path = out / RECIPE_FILE
    if path.is_file():
        existing = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if existing.get("recipe_hash") not in recipe.training_hash_forms():
            raise RunFolderError(f"{out} was written by another recipe (its {RECIPE_FILE} differs in what shapes "
                                 "training); choose a new output_dir or restore that recipe")
        return
    if dist_info.main:
        out.mkdir(parents=True, exist_ok=True)
        body = {"recipe_hash": recipe.training_hash(), **recipe.model_dump()}
        write_atomic(path, yaml.safe_dump(body, sort_keys=False, allow_unicode=True))


def _link_final(final: Path, last_stage: Path) -> None:
    if final.is_symlink():
        final.unlink()
    elif final.exists():
        shutil.rmtree(final)
    final.symlink_to(last_stage.name, target_is_directory=True)


def _eval_samples(recipe: Recipe, tokenizer) -> list[Sample]:
    if not recipe.eval_data:
        return []
    samples, _ = load_samples(recipe.eval_data, tokenizer, recipe.max_length, "drop", limit=recipe.eval_samples)
    return samples


class StageJob:
    """One stage: model from its starting folder, freezing, wrapping for the ``distributed`` strategy,
    optimizer, schedule, loop, output folder."""

    def __init__(self, recipe: Recipe, stage: StageConfig, plan: LayerPlan, index: int, start: str,
                 folder: Path, dist_info: Dist, logger: StepLogger):
        self.recipe, self.stage, self.plan, self.index = recipe, stage, plan, index
        self.start, self.folder, self.dist, self.logger = start, folder, dist_info, logger
        self.optim = recipe.stage_optim(stage)
        self.device = pick_device(dist_info)
        self.ckpt_dir = folder.parent / "checkpoints" / folder.name

    def run(self, tokenizer, samples: list[Sample], report: DatasetReport, eval_samples, budget: int | None):
        torch.manual_seed(self.recipe.seed + self.index)
        self.model, self.causal_lm = self._build_model()
        apply_freezing(self.causal_lm, self.plan)
        self.settings = self._forward_settings()
        self.step_module = SelectiveStep(self.model, self.causal_lm, self.plan, self.settings)
        self.runner = wrap_for_strategy(self.step_module, decoder_parts(self.causal_lm)[1], self.recipe.distributed,
                                        self.dist, self.recipe.precision, self.recipe.fsdp_offload)
        trainable = self._trainable()
        self._choose_checkpointing(trainable, samples)
        optimizer, scheduler, total = self._optimizer(trainable, len(samples))
        step = self._resume(optimizer, scheduler)
        order = sample_order(len(samples), total * self.recipe.global_batch_size, self.recipe.seed + self.index)
        n_trainable = sum(math.prod(p.shape) for p in trainable)  # a DTensor's shape is the whole parameter's
        self.logger.stage_start(self.stage, self.plan, total, step, n_trainable, self.settings)
        last_loss = None
        while step < total and (budget is None or budget > 0):
            last_loss = self._train_step(step, total, order, samples, optimizer, scheduler, tokenizer.pad_token_id)
            step += 1
            budget = None if budget is None else budget - 1
            if self._should_save(step, total, budget):
                self._save(optimizer, scheduler, step)
        if step < total:
            return budget
        eval_loss = self._eval_loss(eval_samples, tokenizer.pad_token_id)
        self._finish(tokenizer, report, total, last_loss, eval_loss)
        return budget

    # -- setup -------------------------------------------------------------------------------------
    def _sharded(self) -> bool:
        return self.recipe.distributed == "fsdp2" and self.dist.world > 1

    def _build_model(self, where: torch.device | None = None):
        """(the trained module: the peft wrapper for LoRA, else the causal LM; the causal LM)."""
        # FSDP2 moves each shard to the device as it shards: loading on the host first means no rank ever
        # holds the whole model on its accelerator.
        where = where or (torch.device("cpu") if self._sharded() else self.device)
        causal_lm = load_model(self.start, self.recipe.precision, where)
        decoder_parts(causal_lm)
        if self.plan.method != "lora":
            return causal_lm, causal_lm
        return wrap_lora(causal_lm, self.stage.lora), causal_lm

    def _forward_settings(self) -> ForwardSettings:
        if self.recipe.precision == "bf16":
            for param in self.model.parameters():  # fp32 master weights: bf16 cannot hold updates of lr 1e-5
                if param.requires_grad:
                    param.data = param.data.float()
        autocast = torch.bfloat16 if self.recipe.precision.startswith("bf16") else None
        self._maybe_compile()
        return ForwardSettings(autocast_dtype=autocast)

    def _choose_checkpointing(self, trainable, samples) -> None:
        chosen = choose_checkpointed_layers(self.recipe.gradient_checkpointing, self.causal_lm.config, self.plan,
                                            self._micro_tokens(samples), trainable, self.device,
                                            self.recipe.precision, shards=self.dist.world if self._sharded() else 1)
        self.settings.checkpointed = frozenset(chosen)

    def _micro_tokens(self, samples) -> int:
        longest = max(len(s.input_ids) for s in samples)
        if self.recipe.pack:
            return min(self.recipe.max_length, longest * self.recipe.micro_batch_size) * max(
                1, math.ceil(longest * self.recipe.micro_batch_size / self.recipe.max_length))
        return longest * self.recipe.micro_batch_size

    def _maybe_compile(self) -> None:
        wanted = self.recipe.compile == "on" or (self.recipe.compile == "auto" and self.device.type == "cuda")
        if wanted:
            raise_recompile_limit()
            for layer in decoder_parts(self.causal_lm)[1]:
                layer.compile()

    def _optimizer(self, trainable, n_samples: int):
        total = max(1, math.ceil(n_samples * self.optim.epochs / self.recipe.global_batch_size))
        kwargs = {"lr": self.optim.learning_rate, "betas": (self.optim.adam_beta1, self.optim.adam_beta2),
                  "eps": self.optim.adam_epsilon, "weight_decay": self.optim.weight_decay}
        if all(p.device.type == "cuda" for p in trainable):  # offloaded shards step on the host
            kwargs["fused"] = True
        if self.recipe.distributed == "zero1" and self.dist.world > 1:
            from torch.distributed.optim import ZeroRedundancyOptimizer

            optimizer = ZeroRedundancyOptimizer(trainable, optimizer_class=torch.optim.AdamW, **kwargs)
        else:
            optimizer = torch.optim.AdamW(trainable, **kwargs)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_floor(self.optim, total))
        return optimizer, scheduler, total

    def _resume(self, optimizer, scheduler) -> int:
        latest = ckpt.latest_checkpoint(self.ckpt_dir)
        if latest is None:
            return 0
        if ckpt.is_sharded_checkpoint(latest):
            state = ckpt.load_sharded_checkpoint(latest, self.runner, optimizer, scheduler,
                                                 self.recipe.training_hash_forms(), self._trainable_names())
        else:
            state = ckpt.load_checkpoint(latest, self.model, optimizer, scheduler,
                                         self.recipe.training_hash_forms())
        self.logger.info(f"stage {self.stage.name}: resumed from {latest} at step {state['step']}")
        return int(state["step"])

    # -- loop --------------------------------------------------------------------------------------
    def _micro_batches(self, step: int, order: list[int], samples: list[Sample], pad_id: int):
        size = self.recipe.global_batch_size
        draws = order[step * size:(step + 1) * size][self.dist.rank::self.dist.world]
        micro = self.recipe.micro_batch_size
        for begin in range(0, len(draws), micro):
            chunk = [samples[i] for i in draws[begin:begin + micro]]
            rows = pack(chunk, self.recipe.max_length, self.recipe.pack)
            yield {k: v.to(self.device) for k, v in collate(rows, pad_id).items()}

    def _train_step(self, step, total, order, samples, optimizer, scheduler, pad_id) -> float:
        started = time.perf_counter()
        batches = list(self._micro_batches(step, order, samples, pad_id))
        local = [int((b["targets"] != -100).sum()) for b in batches]
        counts = all_sum(torch.tensor([sum(local), sum(int((b["segments"] > 0).sum()) for b in batches)],
                                       dtype=torch.float64, device=self.device))
        response_tokens, tokens = int(counts[0]), int(counts[1])
        # DDP and FSDP2 average gradients over ranks, but each rank's loss already divides by the global
        # token count: scaling by the world size turns the average into the wanted sum. (FSDP2's divide
        # factor would need PREMUL_SUM, which gloo lacks.)
        scale = self.dist.world / response_tokens
        total_loss = torch.zeros((), dtype=torch.float64, device=self.device)
        for number, batch in enumerate(batches, 1):
            with gradient_sync(self.runner, last_micro_batch=number == len(batches)):
                loss, _ = self.runner(batch)
                (loss * scale).backward()
            total_loss += loss.detach().double()
        grad_norm = self._clip()
        optimizer.step()
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        mean_loss = float(all_sum(total_loss)) / response_tokens
        seq_len = max(int(b["input_ids"].shape[1]) for b in batches)
        flops = flops_per_step(self.causal_lm.config, self.plan, tokens, response_tokens, seq_len)
        self.logger.step(self.stage.name, step + 1, total, loss=mean_loss, lr=lr, tokens=tokens,
                         seconds=time.perf_counter() - started, flops=flops, world=self.dist.world,
                         grad_norm=grad_norm, device=self.device)
        return mean_loss

    def _clip(self) -> float:
        params = self._trainable()
        if self.optim.max_grad_norm > 0:
            return full_value(torch.nn.utils.clip_grad_norm_(params, self.optim.max_grad_norm))
        return full_value(torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None]))

    def _trainable(self) -> list:
        return [p for p in self.step_module.parameters() if p.requires_grad]

    def _trainable_names(self) -> list[str]:
        return [n for n, p in self.step_module.named_parameters() if p.requires_grad]

    def _should_save(self, step: int, total: int, budget: int | None) -> bool:
        if step >= total:
            return False
        periodic = self.recipe.save_every > 0 and step % self.recipe.save_every == 0
        return periodic or (budget is not None and budget <= 0)

    def _save(self, optimizer, scheduler, step: int) -> None:
        meta = {"recipe_hash": self.recipe.training_hash(), "stage": self.stage.name, "world_size": self.dist.world}
        if hasattr(optimizer, "consolidate_state_dict"):  # zero1: one file, consolidated on rank 0
            optimizer.consolidate_state_dict(to=0)
            path = self.ckpt_dir / f"step-{step:07d}"
            if self.dist.main:
                path = ckpt.save_checkpoint(self.ckpt_dir, self.model, optimizer, scheduler, step, meta,
                                            keep=self.recipe.keep_checkpoints)
            barrier()
        else:
            path = ckpt.save_sharded_checkpoint(self.ckpt_dir, self.runner, optimizer, scheduler, step, meta,
                                                self.recipe.keep_checkpoints, self._trainable_names(), self.dist.main)
        self.logger.info(f"checkpoint {path}")

    def _eval_loss(self, eval_samples: list[Sample], pad_id: int) -> float | None:
        if not eval_samples:
            return None
        # FSDP2 must run through its root (it gathers the embeddings there); DDP needs no gradient hooks here.
        step = self.runner if is_sharded(self.runner) else self.step_module
        return held_out_loss(step, eval_samples, self.recipe, pad_id, self.device)

    # -- output ------------------------------------------------------------------------------------
    def _finish(self, tokenizer, report: DatasetReport, total: int, last_loss, eval_loss) -> None:
        full = self._full_state() if is_sharded(self.runner) else None  # every rank takes part in the gather
        if self.dist.main:
            model = self._model_to_save(full)
            dtype = torch.float32 if self.recipe.precision == "fp32" else torch.bfloat16
            provenance = self._provenance(report, total, last_loss, eval_loss)
            ckpt.save_hf_folder(model, tokenizer, self.folder, dtype, provenance)
            shutil.rmtree(self.ckpt_dir, ignore_errors=True)
            self.logger.info(f"stage {self.stage.name}: wrote {self.folder}"
                             + (f" (held-out loss {eval_loss:.4f})" if eval_loss is not None else ""))
        barrier()

    def _full_state(self) -> dict:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_model_state_dict(self.runner, options=options)

    def _model_to_save(self, full: dict | None):
        """The unsharded model to write: this rank's own, or (FSDP2) a host copy filled from the gathered state."""
        model = self.model
        if full is not None:
            model, _ = self._build_model(torch.device("cpu"))
            model.load_state_dict({k.removeprefix("lm."): v for k, v in full.items() if k.startswith("lm.")})
        return model.merge_and_unload() if self.plan.method == "lora" else model

    def _provenance(self, report: DatasetReport, total: int, last_loss, eval_loss) -> str:
        body = {
            "stage": {"index": self.index, "name": self.stage.name, "method": self.plan.method,
                      "trainable_layers": list(self.plan.trainable_layers),
                      "train_embeddings": self.plan.train_embeddings, "train_norm": self.plan.train_norm,
                      "train_lm_head": self.plan.train_lm_head, "started_from": self.start,
                      "optim": self.optim.model_dump(), "steps": total,
                      "final_train_loss": last_loss, "held_out_loss": eval_loss,
                      "checkpointed_layers": sorted(self.settings.checkpointed)},
            "data": dataclasses.asdict(report),
            "recipe_hash": self.recipe.training_hash(),
            "recipe": self.recipe.model_dump(),
            "world_size": self.dist.world,
            "versions": package_versions(("xplus-release", "torch", "transformers", "peft")),
        }
        header = "# Provenance of this model: the xplus-train recipe and stage that produced it.\n"
        return header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


def raise_recompile_limit(limit: int = 64) -> None:
    """Every layer shares one compiled graph per (grad mode, requires_grad, checkpointing, shape) variant;
    the default limit of 8 variants would silently drop later layers back to eager mode."""
    import torch._dynamo

    torch._dynamo.config.recompile_limit = max(limit, torch._dynamo.config.recompile_limit)


def cosine_with_floor(optim, total: int):
    """Linear warmup over warmup_ratio of the steps, then cosine from learning_rate to min_learning_rate."""
    warmup = math.ceil(total * optim.warmup_ratio)
    floor = optim.min_learning_rate / optim.learning_rate

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def held_out_loss(step, samples: list[Sample], recipe: Recipe, pad_id: int, device) -> float:
    """Mean response-token loss over ``samples`` (packed, no gradients) through a step module
    (``forward.SelectiveStep``, possibly sharded)."""
    total, count = 0.0, 0
    with torch.no_grad():
        for begin in range(0, len(samples), 64):
            rows = pack(samples[begin:begin + 64], recipe.max_length, True)
            batch = {k: v.to(device) for k, v in collate(rows, pad_id).items()}
            loss, n = step(batch)
            total, count = total + float(loss), count + n
    return total / max(count, 1)


def wrap_lora(causal_lm, lora):
    """The peft model with LoRA adapters of the stage's ``lora`` settings on ``causal_lm``."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=list(lora.target_modules), bias="none", task_type="CAUSAL_LM")
    return get_peft_model(causal_lm, config)


