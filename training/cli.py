"""``xplus-train``: run a recipe, show its plan, analyse layers, sweep single layers.

    xplus-train run training/recipes/xplus-tiny.yaml
    xplus-train plan training/recipes/qwen3-xplus-8b.yaml
    xplus-train plan training/recipes/qwen3-8b-full.yaml --gpus 8 --gpu-memory 80
    xplus-train analyze --model Qwen/Qwen3-8B --data pairs.jsonl --out analysis/
    xplus-train sweep-layers training/recipes/xplus-tiny.yaml --out sweep/ --layers 0-7

Multi-GPU: launch ``run`` under ``torchrun --nproc-per-node N -m xplus_release.training.cli run ...`` (see
README).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xplus_release.cli import run_cli
from xplus_release.errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xplus-train", description="Two-stage layer-selective training "
                                     "(plus full fine-tuning and LoRA baselines) and layer analysis.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train every stage of a recipe (resumes an interrupted run)")
    _recipe_args(run)
    run.add_argument("--stop-after-steps", type=int, metavar="N",
                     help="stop cleanly after N optimizer steps, saving a checkpoint (for time-limited jobs); "
                          "the same command resumes")
    plan = sub.add_parser("plan", help="validate a recipe and print which layers each stage trains; with --gpus, "
                          "the memory per GPU of each distributed strategy, which fit, and the one to use")
    _recipe_args(plan)
    plan.add_argument("--gpus", type=int, help="number of GPUs (all nodes together)")
    plan.add_argument("--gpu-memory", type=float, default=80.0, metavar="GB",
                      help="memory of one GPU in GB (default 80)")
    plan.add_argument("--json", action="store_true", help="print the memory plan as JSON")
    analyze = sub.add_parser("analyze", help="per-layer nuclear norm of Q/K/V gradients (paper Figure 5)")
    analyze.add_argument("--model", required=True, help="registered name, local folder or hub id")
    analyze.add_argument("--data", required=True, help="chat JSONL (rows of {\"messages\": [...]})")
    analyze.add_argument("--out", required=True, help="folder for qkv_grad_nuclear_norm.csv and .png")
    analyze.add_argument("--samples", type=int, default=64, help="samples to accumulate gradients over (default 64)")
    analyze.add_argument("--max-length", type=int, default=2048, help="longer samples are skipped (default 2048)")
    analyze.add_argument("--precision", choices=["bf16", "fp32"], default="bf16",
                         help="bf16 (default; GPU) or fp32 (CPU, tiny models)")
    sweep = sub.add_parser("sweep-layers", help="single-layer tuning sweep (paper Figure 4): one run per layer, "
                           "one table")
    _recipe_args(sweep)
    sweep.add_argument("--out", required=True, help="folder for the per-layer runs and sweep.csv / sweep.md")
    sweep.add_argument("--layers", help="layers to sweep, e.g. 0-35 or 0,4,20 (default: every layer)")
    sweep.add_argument("--eval-command", help="shell command run on each swept model ({model} = its folder); its "
                       "last stdout line must be a number or {\"score\": number}. Without it the table holds the "
                       "held-out loss on the recipe's eval_data")
    return parser


def _recipe_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe YAML (see training/recipes/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe key, e.g. --set optim.learning_rate=2e-5 --set output_dir=runs/x")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")


@run_cli
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from xplus_release.training.config import load_recipe

    if args.command == "analyze":
        return _analyze(args)
    recipe = load_recipe(args.recipe, args.overrides)
    if args.command == "plan":
        return _memory_plan(recipe, args) if args.gpus is not None else _plan(recipe)
    if args.command == "sweep-layers":
        return _sweep(recipe, args)
    from xplus_release.training.trainer import run_recipe

    final = run_recipe(recipe, stop_after_steps=args.stop_after_steps, progress=not args.no_progress)
    print(f"stopped after {args.stop_after_steps} steps; rerun the same command to resume" if final is None
          else f"model: {final}")
    return 0


def _plan(recipe) -> int:
    from xplus_release.training.layers import plan_stages
    from xplus_release.training.planner import num_layers

    for stage, plan in zip(recipe.stages, plan_stages(recipe.stages, num_layers(recipe.model))):
        print(json.dumps({"stage": stage.name, "method": plan.method, "layers": list(plan.trainable_layers),
                          "frozen_prefix": plan.first_grad_layer, "optim": recipe.stage_optim(stage).model_dump()}))
    return 0


def _memory_plan(recipe, args) -> int:
    from xplus_release.training.planner import header_line, load_config, plan_recipe

    report = plan_recipe(recipe, load_config(recipe.model), args.gpus, args.gpu_memory)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{recipe.model} on {args.gpus} x {args.gpu_memory:g} GB ({report['usable_gib']} GiB usable per GPU); "
          "GiB per GPU, the stage with the highest peak:")
    columns = ("frozen_weights", "trained_weights", "gradients", "optimizer", "gathered", "activations", "logits",
               "peak")
    print(f"{'strategy':<14}" + "".join(f"{c:>16}" for c in columns) + "  fits")
    for name, entry in report["strategies"].items():
        worst = max(entry["stages"], key=lambda e: e["peak"])
        print(f"{name:<14}" + "".join(f"{worst.get(c, 0):>16}" for c in columns) + f"  {'yes' if entry['fits'] else 'no'}")
    print(header_line(report).lstrip("# "))
    return 0


def _analyze(args) -> int:
    from xplus_release.training.analyze import gradient_nuclear_norms, write_norms

    rows = gradient_nuclear_norms(args.model, args.data, args.samples, args.max_length, args.precision)
    csv_path, png_path = write_norms(rows, Path(args.out), f"{args.model}: Q/K/V gradient nuclear norm")
    print(f"wrote {csv_path} and {png_path}")
    return 0


def _sweep(recipe, args) -> int:
    from xplus_release.training.analyze import sweep_layers

    table = sweep_layers(recipe, parse_layers(args.layers, recipe), Path(args.out), args.eval_command,
                         progress=not args.no_progress)
    print(table.with_suffix(".md").read_text(), end="")
    return 0


def parse_layers(text: str | None, recipe) -> list[int]:
    """``0-7`` / ``0,4,20`` / None (every layer of the recipe's model)."""
    if text is None:
        from xplus_release.training.planner import num_layers

        return list(range(num_layers(recipe.model)))
    layers: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            layers += list(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise ConfigError(f"--layers {text!r}: use a range like 0-35 or a list like 0,4,20") from None
    return layers


if __name__ == "__main__":
    sys.exit(main())
