"""Layer analysis: the paper's Figure 5 (gradient nuclear norms) and Figure 4 (single-layer sweep).

``gradient_nuclear_norms`` accumulates the gradient of the mean response loss over a data sample with
respect to each layer's Q, K and V projection weights and reports the nuclear norm (sum of singular
values) of each: how strongly the data pulls on that layer. ``sweep_layers`` trains one single-layer
stage per layer from the same recipe and gathers one table: held-out loss (and, if given, the score a
user command prints for each swept model).
"""

from __future__ import annotations

import csv
import json
import shlex
import subprocess
from pathlib import Path

import torch
import yaml

from xplus_release.errors import ConfigError
from xplus_release.markdown import markdown_table
from xplus_release.registry import resolve_model
from xplus_release.training.config import Recipe, StageConfig
from xplus_release.training.dataset import collate, load_samples, pack
from xplus_release.training.forward import ForwardSettings, SelectiveStep, loss_sum
from xplus_release.training.layers import LayerPlan, decoder_parts
from xplus_release.training.trainer import (
    Dist,
    held_out_loss,
    load_model,
    load_tokenizer,
    pick_device,
    run_recipe,
)

PROJECTIONS = ("q_proj", "k_proj", "v_proj")


def gradient_nuclear_norms(model_name: str, data: str, samples: int = 64, max_length: int = 2048,
                           precision: str = "bf16", progress: bool = True) -> list[dict]:
    """One row per layer: ``{"layer": i, "q_proj": ..., "k_proj": ..., "v_proj": ...}``.

    Raises:
        ConfigError: unreadable data, or a model without the decoder layout.
    """
    path = resolve_model(model_name).path
    device = pick_device(Dist())
    tokenizer = load_tokenizer(path)
    rows, _ = load_samples(data, tokenizer, max_length, "drop", limit=samples)
    model = load_model(path, precision, device)
    _, layers, _ = decoder_parts(model)
    model.requires_grad_(False)
    weights = [[getattr(layer.self_attn, name).weight for name in PROJECTIONS] for layer in layers]
    for group in weights:
        for weight in group:
            weight.requires_grad_(True)
    plan = LayerPlan("layers", tuple(range(len(layers))), len(layers), False, False, False)
    settings = ForwardSettings(autocast_dtype=torch.bfloat16 if precision.startswith("bf16") else None)
    _accumulate(model, rows, plan, settings, tokenizer.pad_token_id, max_length, device, progress)
    return [{"layer": i, **{name: _nuclear(w) for name, w in zip(PROJECTIONS, group)}}
            for i, group in enumerate(weights)]


def _accumulate(model, rows, plan, settings, pad_id, max_length, device, progress) -> None:
    from tqdm.auto import tqdm

    total = sum(r.response_tokens for r in rows)
    chunks = [rows[i:i + 16] for i in range(0, len(rows), 16)]
    for chunk in tqdm(chunks, desc="gradients", disable=not progress):
        batch = {k: v.to(device) for k, v in collate(pack(chunk, max_length), pad_id).items()}
        loss, _ = loss_sum(model, batch, plan, settings)
        (loss / total).backward()


def _nuclear(weight: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(weight.grad.float(), ord="nuc"))


def write_norms(rows: list[dict], out: Path, title: str) -> tuple[Path, Path]:
    """CSV (layer, q_proj, k_proj, v_proj) and a PNG line plot like the paper's Figure 5."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = out / "qkv_grad_nuclear_norm.csv", out / "qkv_grad_nuclear_norm.png"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["layer", *PROJECTIONS])
        writer.writeheader()
        writer.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    for name in PROJECTIONS:
        ax.plot([r["layer"] for r in rows], [r[name] for r in rows], marker="o", ms=3, label=name[0].upper())
    ax.set_xlabel("layer")
    ax.set_ylabel("gradient nuclear norm")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return csv_path, png_path


def sweep_recipes(recipe: Recipe, layers: list[int], out: Path) -> list[tuple[int, Recipe]]:
    """One single-stage recipe per layer, trained on the recipe's data with its first stage's optim."""
    optim = recipe.stages[0].optim
    return [(index, recipe.model_copy(update={
        "stages": [StageConfig(name=f"layer-{index}", method="layers", layers=[index], optim=optim)],
        "output_dir": str(out / f"layer-{index:03d}")})) for index in layers]


def sweep_layers(recipe: Recipe, layers: list[int], out: Path, eval_command: str | None = None,
                 progress: bool = True) -> Path:
    """Train every single-layer recipe (finished ones are skipped on a rerun), evaluate, write the table.

    Raises:
        ConfigError: no eval_data in the recipe and no eval command; a failing eval command.
    """
    if not recipe.eval_data and not eval_command:
        raise ConfigError("sweep-layers needs a measure: set eval_data in the recipe (held-out loss) and/or "
                          "pass --eval-command")
    out.mkdir(parents=True, exist_ok=True)
    rows = [_base_row(recipe, eval_command)]
    for index, swept in sweep_recipes(recipe, layers, out):
        final = run_recipe(swept, progress=progress)
        provenance = yaml.safe_load((final / "training.yaml").read_text(encoding="utf-8"))
        row = {"layer": index, "model": str(final.resolve()), "held_out_loss": provenance["stage"]["held_out_loss"]}
        if eval_command:
            row["score"] = run_eval_command(eval_command, str(final.resolve()))
        rows.append(row)
    return _write_table(rows, out)


def _base_row(recipe: Recipe, eval_command: str | None) -> dict:
    path = resolve_model(recipe.model).path
    row = {"layer": "base", "model": path, "held_out_loss": None}
    if recipe.eval_data:
        device = pick_device(Dist())
        tokenizer = load_tokenizer(path)
        samples, _ = load_samples(recipe.eval_data, tokenizer, recipe.max_length, "drop", limit=recipe.eval_samples)
        model = load_model(path, recipe.precision, device)
        plan = LayerPlan("layers", (), model.config.num_hidden_layers, False, False, False)
        settings = ForwardSettings(autocast_dtype=torch.bfloat16 if recipe.precision.startswith("bf16") else None)
        step = SelectiveStep(model, model, plan, settings)
        row["held_out_loss"] = held_out_loss(step, samples, recipe, tokenizer.pad_token_id, device)
    if eval_command:
        row["score"] = run_eval_command(eval_command, path)
    return row


def run_eval_command(template: str, model_path: str) -> float:
    """Run the user's command with ``{model}`` replaced; its last stdout line must be a number or a JSON
    object with a numeric ``score``.

    Raises:
        ConfigError: the command fails or prints no score.
    """
    command = template.replace("{model}", shlex.quote(model_path))
    done = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ConfigError(f"eval command failed ({done.returncode}) on {model_path}: "
                          f"{(done.stderr.strip().splitlines() or [''])[-1]}")
    last = (done.stdout.strip().splitlines() or [""])[-1]
    try:
        value = json.loads(last)
    except json.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        value = value.get("score")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ConfigError(f"eval command printed {last!r} last; it must print a number or {{\"score\": number}}")
    return float(value)


def _write_table(rows: list[dict], out: Path) -> Path:
    base = rows[0].get("held_out_loss")
    for row in rows:
        loss = row.get("held_out_loss")
        row["loss_change"] = (loss - base) if loss is not None and base is not None else None
    fields = ["layer", "held_out_loss", "loss_change", *(["score"] if "score" in rows[0] else []), "model"]
    path = out / "sweep.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = markdown_table(fields[:-1], ([_cell(row.get(f)) for f in fields[:-1]] for row in rows))
    (out / "sweep.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _cell(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
