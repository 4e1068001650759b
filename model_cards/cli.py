"""``xplus-publish``: a model folder and its generated card to the Hub; ``xplus-publish card``: a card alone.

    xplus-publish --model-dir out/xplus-8b --repo-id ORG/NAME --eval-run runs/xplus-8b --dry-run
    xplus-publish --model-dir out/xplus-8b --repo-id ORG/NAME --eval-run runs/xplus-8b --private
    xplus-publish card --paper LLaMAX/Qwen3-XPlus-8B --output cards/Qwen3-XPlus-8B
    xplus-publish card --eval-run runs/xplus-8b --output cards/mine

Every check (repo id, folder completeness, allow-list, secrets, the run's model, the token) runs before
anything is written to the Hub.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xplus_release.cli import run_cli
from xplus_release.errors import ConfigError, ModelFolderError, RunFolderError, XPlusError
from xplus_release.model_cards.card import GENERATED_MARKER, CardInputs, build_card
from xplus_release.model_cards.model_folder import (
    PlannedFile,
    check_model_folder,
    list_folder,
    model_fingerprint,
    scan_for_secrets,
)
from xplus_release.model_cards.publish import (
    PushTarget,
    check_target,
    commit_message,
    human_size,
    push,
    resolve_token,
)
from xplus_release.model_cards.released import paper_card_inputs
from xplus_release.model_cards.run_results import RunResults, read_run
from xplus_release.model_cards.training_recipe import TrainingRecipe, read_training_recipe
from xplus_release.registry import get_spec, resolve_model
from xplus_release.storage import write_atomic

CARD_FILE = "README.md"


def publish_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xplus-publish",
        description="Check a model folder, generate its model card from an xplus-eval run and the trainer's "
                    "training.yaml, and upload both to the Hugging Face Hub. "
                    "`xplus-publish card --help`: write a card without uploading (e.g. from the paper's numbers).",
    )
    parser.add_argument("--model-dir", required=True, type=Path,
                        help="Hugging Face model folder to upload (safetensors, config, tokenizer, chat template)")
    parser.add_argument("--repo-id", required=True, help="target repo, ORG/NAME (created if it does not exist)")
    _add_card_options(parser)
    hub = parser.add_argument_group("upload")
    hub.add_argument("--dry-run", action="store_true",
                     help="check everything, write the card to MODEL_DIR/README.md and print the exact files and sizes "
                          "that would be uploaded; contact nothing")
    hub.add_argument("--ignore", action="append", default=[], metavar="GLOB",
                     help="leave matching files or folders out of the upload (repeatable), e.g. --ignore 'checkpoint-*' "
                          "--ignore logs; secrets are refused even there")
    hub.add_argument("--private", action="store_true", help="create the repo private (an existing repo keeps its visibility)")
    hub.add_argument("--revision", metavar="BRANCH", help="push to this branch (created from main if missing), or to refs/pr/N to add to (or resume) "
                          "an open pull request; default main")
    hub.add_argument("--create-pr", action="store_true", help="open a pull request against main instead of committing to it")
    hub.add_argument("--commit-message", help="commit summary (default: names the model, weight size and evaluated suites)")
    hub.add_argument("--token", help="Hub token with write access (default: $HF_TOKEN, else the token of `hf auth login`)")
    return parser


def card_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xplus-publish card",
        description="Write a model card (README.md) without uploading anything: from the paper's reported numbers "
                    "for a released model, or from an xplus-eval run.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--paper", metavar="MODEL",
                        help="a released model (LLaMAX/Qwen3-XPlus-8B or LLaMAX/Qwen3-XPlus-14B): card filled from the "
                             "paper's reported numbers, marked as such")
    source.add_argument("--eval-run", type=Path, help="xplus-eval run folder whose scores fill the card")
    parser.add_argument("--model-id", help="repo id the card is for (default: the run's model)")
    parser.add_argument("--training-yaml", type=Path, help="the trainer's provenance training.yaml to describe the recipe")
    parser.add_argument("--license", default="apache-2.0", help="license id for the metadata (default apache-2.0)")
    parser.add_argument("--base-model", help="base model id for the metadata (default: from training.yaml or the registry)")
    parser.add_argument("--output", required=True, type=Path, help="folder to write README.md into (created if needed)")
    return parser


def _add_card_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model card")
    group.add_argument("--eval-run", type=Path,
                       help="xplus-eval run folder of this model: its scores become the card's tables and model-index")
    group.add_argument("--training-yaml", type=Path,
                       help="the trainer's training.yaml (default: MODEL_DIR/training.yaml when present)")
    group.add_argument("--license", default="apache-2.0", help="license id for the metadata (default apache-2.0)")
    group.add_argument("--base-model", help="base model id for the metadata (default: from training.yaml or the registry)")


@run_cli
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["card"]:
        return card_main(card_parser().parse_args(argv[1:]))
    return publish_main(publish_parser().parse_args(argv))


def card_main(args: argparse.Namespace) -> int:
    if args.paper:
        inputs = paper_card_inputs(args.paper)
        inputs.license = args.license
        inputs.model_id = args.model_id or inputs.model_id
        inputs.base_model = args.base_model or inputs.base_model
        inputs.recipe = _recipe(args.training_yaml, None) or inputs.recipe
    else:
        results = read_run(args.eval_run)
        inputs = _card_inputs(args.model_id or results.model, results, _recipe(args.training_yaml, None), args)
    text = str(build_card(inputs))
    scan_for_secrets(text, "the generated card", assignments=True)
    args.output.mkdir(parents=True, exist_ok=True)
    write_atomic(args.output / CARD_FILE, text)
    print(f"card for {inputs.model_id} written to {args.output / CARD_FILE}")
    return 0


def publish_main(args: argparse.Namespace) -> int:
    target = PushTarget(args.repo_id, args.revision, args.create_pr, args.private)
    check_target(target)
    ignore = tuple(args.ignore)
    check_model_folder(args.model_dir, ignore)
    _refuse_foreign_readme(args.model_dir)
    results = read_run(args.eval_run) if args.eval_run else None
    if results:
        check_run_model(results, args.model_dir, args.repo_id)
    token = None if args.dry_run else resolve_token(args.token)
    inputs = _card_inputs(args.repo_id, results, _recipe(args.training_yaml, args.model_dir), args)
    text = str(build_card(inputs))
    scan_for_secrets(text, "the generated card", assignments=True)
    write_atomic(args.model_dir / CARD_FILE, text)
    files = check_model_folder(args.model_dir, ignore)
    summary, description = commit_message(args.repo_id, files, list(results.scores) if results else [])
    message = (args.commit_message or summary, description)
    print_plan(args.model_dir, files, target, message[0], left_out=len(list_folder(args.model_dir)) - len(files))
    if args.dry_run:
        print(f"dry run: nothing uploaded; card written to {args.model_dir / CARD_FILE}")
        return 0
    info = push(str(args.model_dir), files, target, token, message)
    print(f"uploaded: {info.pr_url or info.commit_url}")
    return 0


def _card_inputs(model_id: str, results: RunResults | None, recipe: TrainingRecipe | None,
                 args: argparse.Namespace) -> CardInputs:
    base = args.base_model or (recipe.base_model if recipe else None) or get_spec(model_id).base_model
    return CardInputs(model_id=model_id, results=results, recipe=recipe, base_model=base, license=args.license)


def _recipe(explicit: Path | None, model_dir: Path | None) -> TrainingRecipe | None:
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"--training-yaml {explicit} does not exist; pass the training.yaml xplus-train wrote")
        return read_training_recipe(explicit)
    default = model_dir / "training.yaml" if model_dir else None
    return read_training_recipe(default) if default and default.is_file() else None


def _refuse_foreign_readme(model_dir: Path) -> None:
    """The card is generated into MODEL_DIR/README.md: never overwrite one written by hand."""
    readme = model_dir / CARD_FILE
    if readme.is_file() and GENERATED_MARKER not in readme.read_text(encoding="utf-8", errors="replace"):
        raise ModelFolderError(
            f"{readme} was not generated by xplus-publish and would be replaced by the card; move it out of the folder"
        )


def check_run_model(results: RunResults, model_dir: Path, repo_id: str) -> None:
    """The run must have evaluated this very model: by repo id, or by a folder with the same fingerprint.

    Raises:
        RunFolderError: the run evaluated another model, or one that cannot be found on this machine to compare.
    """
    if results.model == repo_id:
        return
    try:
        evaluated = Path(resolve_model(results.model).path)
    except XPlusError:
        evaluated = None
    same = evaluated is not None and evaluated.is_dir() and (
        evaluated.resolve() == model_dir.resolve() or model_fingerprint(evaluated) == model_fingerprint(model_dir))
    if same:
        return
    raise RunFolderError(
        f"{results.source} is a run of {results.model!r}, not of {model_dir} (nor {repo_id}); "
        f"evaluate this folder with `xplus-eval ... --model {model_dir}` and pass that run to --eval-run"
    )


def print_plan(folder: Path, files: list[PlannedFile], target: PushTarget, summary: str, left_out: int = 0) -> None:
    where = "a pull request against main" if target.create_pr else f"branch {target.revision or 'main'}"
    visibility = "private" if target.private else "public"
    print(f"upload plan: {folder} -> {target.repo_id} ({where}; a new repo would be {visibility})")
    width = max(len(str(f.size)) for f in files)
    for f in files:
        note = "  (generated model card)" if f.path == CARD_FILE else ""
        print(f"  {f.size:>{width}}  {human_size(f.size):>9}  {f.path}{note}")
    total = sum(f.size for f in files)
    print(f"  {len(files)} files, {total} bytes ({human_size(total)})"
          + (f"; {left_out} file(s) left out by --ignore" if left_out else ""))
    print(f"commit message: {summary}")


if __name__ == "__main__":
    sys.exit(main())
