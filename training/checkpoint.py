"""Mid-stage checkpoints (resume exactly) and the final Hugging Face folder (load anywhere).

A checkpoint holds only what the stage changes and what the loop needs to continue: the trainable
parameters, optimizer and scheduler state, every RNG, and the step (which fixes the data position, since
the sample order is a function of the seed). The frozen weights come from the stage's starting point (the
base model, or the previous stage's folder), so a checkpoint of stage 2 of an 8B model is ~3 B parameters,
not 8.

Trainable weights and optimizer state go through ``torch.distributed.checkpoint`` (DCP): every rank writes
its own shards in parallel, keyed by parameter name, and a later run loads them into whatever layout it has
(FSDP2 over 4 ranks, DDP over 2, one process): resuming at another world size gives the same weights.
``distributed: zero1`` keeps the older single-file format (its optimizer state is consolidated on rank 0).

Checkpoints are written to a temporary folder and renamed into place: a kill mid-write leaves the last
complete one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from xplus_release.errors import RunFolderError
from xplus_release.training.distributed import barrier

STATE_FILE = "state.json"
LOOP_FILE = "loop.pt"
SHARDED = "dcp"


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_loop(path: Path, scheduler, optimizer=None) -> None:
    """The scheduler and every RNG (and, in the single-file format, the optimizer) from ``loop.pt``."""
    loop = torch.load(path / LOOP_FILE, weights_only=False)
    if optimizer is not None:
        optimizer.load_state_dict(loop["optimizer"])
    scheduler.load_state_dict(loop["scheduler"])
    state = loop["rng"]
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(folder: Path, model, optimizer, scheduler, step: int, meta: dict, keep: int = 1) -> Path:
    """Write ``folder/step-<step>`` atomically and keep the newest ``keep`` checkpoints."""
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".step-", dir=folder))
    trainable = {n: p.detach().contiguous().cpu() for n, p in model.named_parameters() if p.requires_grad}
    save_file(trainable, str(staging / "trainable.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state()},
               staging / LOOP_FILE)
    (staging / STATE_FILE).write_text(json.dumps({"step": step, **meta}, indent=2))
    return _publish(staging, folder / f"step-{step:07d}", keep)


def _publish(staging: Path, target: Path, keep: int) -> Path:
    """Move a complete checkpoint into place, then prune all but the newest ``keep`` of its folder."""
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    for old in sorted(target.parent.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def save_sharded_checkpoint(folder: Path, wrapped, optimizer, scheduler, step: int, meta: dict, keep: int,
                            trainable: list[str], main: bool) -> Path:
    """Write ``folder/step-<step>`` with DCP, all ranks together (every rank must call this).

    ``trainable`` names the parameters to keep (names in ``wrapped``'s state dict)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    target = folder / f"step-{step:07d}"
    staging = folder / f".step-{step:07d}.partial"
    if main:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    barrier()
    model_state, optim_state = get_state_dict(wrapped, optimizer)
    state = {"model": {k: v for k, v in model_state.items() if k in set(trainable)}, "optim": optim_state}
    dcp.save(state, checkpoint_id=str(staging))
    if main:
        torch.save({"scheduler": scheduler.state_dict(), "rng": rng_state()}, staging / LOOP_FILE)
        body = {"step": step, "format": SHARDED, "trainable": sorted(trainable), **meta}
        (staging / STATE_FILE).write_text(json.dumps(body, indent=2))
        _publish(staging, target, keep)
    barrier()
    return target


def load_sharded_checkpoint(path: Path, wrapped, optimizer, scheduler, expected_hashes: tuple[str, ...],
                            trainable: list[str]) -> dict:
    """Load a DCP checkpoint into this run's layout (any world size); return its state.json.

    Raises:
        RunFolderError: the checkpoint was written by another recipe, or for other trainable parameters.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict

    state = _checked_state(path, expected_hashes)
    if state.get("trainable") != sorted(trainable):
        raise RunFolderError(f"checkpoint {path} holds other trainable parameters than this stage; "
                             "use a new output_dir")
    model_state, optim_state = get_state_dict(wrapped, optimizer)  # the templates DCP fills in this layout
    target = {"model": {k: v for k, v in model_state.items() if k in set(trainable)}, "optim": optim_state}
    dcp.load(target, checkpoint_id=str(path))
    set_state_dict(wrapped, optimizer, model_state_dict=target["model"], optim_state_dict=target["optim"],
                   options=StateDictOptions(strict=False))
    _restore_loop(path, scheduler)
    return state


def is_sharded_checkpoint(path: Path) -> bool:
    return json.loads((path / STATE_FILE).read_text()).get("format") == SHARDED


def _checked_state(path: Path, expected_hashes: tuple[str, ...]) -> dict:
    state = json.loads((path / STATE_FILE).read_text())
    # ``expected_hashes``: the recipe's hash and its earlier stored form (``Recipe.training_hash_forms``)
    if state.get("recipe_hash") not in expected_hashes:
        raise RunFolderError(
            f"checkpoint {path} was written by another recipe (hash {state.get('recipe_hash')} != "
            f"{expected_hashes[0]}); use a new output_dir or restore the recipe it was made with")
    return state


def latest_checkpoint(folder: Path) -> Path | None:
    steps = sorted(p for p in folder.glob("step-*") if (p / STATE_FILE).is_file())
    return steps[-1] if steps else None


def load_checkpoint(path: Path, model, optimizer, scheduler, expected_hashes: tuple[str, ...]) -> dict:
    """Restore a checkpoint into the model/optimizer/scheduler and the RNGs; return its state.json.

    Raises:
        RunFolderError: the checkpoint was written by another recipe, or its parameters do not match.
    """
    state = _checked_state(path, expected_hashes)
    saved = load_file(str(path / "trainable.safetensors"))
    params = dict(model.named_parameters())
    if set(saved) != {n for n, p in params.items() if p.requires_grad}:
        raise RunFolderError(f"checkpoint {path} holds other trainable parameters than this stage; "
                             "use a new output_dir")
    with torch.no_grad():
        for name, tensor in saved.items():
            params[name].copy_(tensor.to(params[name].device))
    _restore_loop(path, scheduler, optimizer)
    return state


def save_hf_folder(model, tokenizer, folder: Path, dtype: torch.dtype, provenance_yaml: str) -> None:
    """Write a Hugging Face model folder (safetensors, config, tokenizer with chat template, generation
    config) plus ``training.yaml``, atomically: the folder appears complete or not at all."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model.to(dtype)
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        if getattr(tokenizer, "chat_template", None) and not (staging / "chat_template.jinja").exists():
            (staging / "chat_template.jinja").write_text(tokenizer.chat_template)
        (staging / "training.yaml").write_text(provenance_yaml, encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def is_complete(folder: Path) -> bool:
    return (folder / "training.yaml").is_file() and any(folder.glob("*.safetensors"))
