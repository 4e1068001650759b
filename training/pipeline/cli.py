"""``xplus-data``: build training data from raw parallel corpora with the paper's six steps.

xplus-data run pipeline.yaml                         # the whole pipeline (resumable), on this machine
xplus-data run pipeline.yaml --engine ray            # on the Ray cluster at $RAY_ADDRESS (or a local one)
xplus-data run pipeline.yaml --engine slurm --partition cpu --dry-run   # print the sbatch scripts
xplus-data run pipeline.yaml --set steps.dedup.hamming=4   # any key of the YAML
xplus-data clean pairs.jsonl -o clean.jsonl          # one step on one file, to try it
xplus-data unify --format tsv --src en --trg de raw.tsv -o pairs.jsonl
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from xplus_release.cli import run_cli
from xplus_release.config import add_flags, given_flags, parse_overrides
from xplus_release.errors import ConfigError
from xplus_release.training.pipeline.config import PipelineConfig, SlurmConfig, load_pipeline
from xplus_release.training.pipeline.records import PipelineDataError
from xplus_release.training.pipeline.runner import PipelineRun, summary_table
from xplus_release.training.pipeline.steps import STEPS, step_dir
from xplus_release.training.pipeline.unify import InputSpec


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xplus-data",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a pipeline YAML end to end (finished shards are skipped on rerun)")
    run.add_argument(
        "pipeline", type=Path, help="pipeline YAML (see training/pipeline/examples/flores-demo.yaml)"
    )
    # flags left out keep the YAML's values: they are put on top of the file, not of the defaults
    add_flags(run, PipelineConfig, exclude=set(PipelineConfig.model_fields) - set(PipelineConfig.FLAG_FIELDS))
    add_flags(run, SlurmConfig)
    run.add_argument(
        "--dry-run", action="store_true", help="slurm: print the sbatch scripts instead of submitting them"
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a key of the pipeline YAML (dotted, YAML values; repeatable), e.g. "
                     "--set steps.dedup.hamming=4 --set slurm.mem_per_cpu_gb=4; wins over the flags above")
    for step in STEPS:
        _add_step_parser(sub, step)
    return parser


_NOT_UNIFY_FLAGS = ("path", "name", "columns")  # the positional input; a fixed name; tsv columns stay 0,1


def _add_step_parser(sub, step: str) -> None:
    what, example = STEPS[step].help, STEPS[step].example
    p = sub.add_parser(step, help=what, description=what)
    p.add_argument(
        "input",
        type=Path,
        nargs="?" if step == "unify" else None,
        help="input file" + (" (not for --format moses)" if step == "unify" else ": pair-record JSONL"),
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="output JSONL")
    p.add_argument("--drops", type=Path, help="write dropped (or malformed) lines here, each with its reason")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"a {step} parameter, as in the pipeline YAML (repeatable), e.g. {example}")
    if step == "unify":
        add_flags(p, InputSpec, exclude=_NOT_UNIFY_FLAGS, required=("format",))


def run_pipeline_command(args) -> int:
    given = {**given_flags(PipelineConfig, args),
             **{f"slurm.{key}": value for key, value in given_flags(SlurmConfig, args).items()}}
    config = load_pipeline(args.pipeline, args.set, given)
    if args.dry_run and config.engine != "slurm":
        raise ConfigError("--dry-run prints Slurm scripts: use it with --engine slurm")
    report = PipelineRun(config, progress=not args.no_progress, dry_run=args.dry_run).run()
    if "submitted" in report:  # slurm: the scripts (dry run), or the jobs were submitted
        for number, (sbatch_args, script) in enumerate(report["submitted"], 1):
            print(f"# job {number}: sbatch {' '.join(sbatch_args)}\n{script}")
        if not args.dry_run:
            print(f"submitted; each stage waits for the one before (see {config.output}/logs/<stage>/)")
        return 0
    print(summary_table(report))
    print(f"report: {config.output}/report.json   data: {config.output}/train.jsonl")
    return 0


def run_step_command(args) -> int:
    """One step on one file: a one-input pipeline in a scratch folder, outputs copied where asked."""
    params = parse_overrides(args.set)
    STEPS[args.command].config.build(params)  # a bad parameter is reported before any work
    with tempfile.TemporaryDirectory(prefix="xplus-data-") as scratch:
        scratch = Path(scratch)
        # The input of a later step is pair-record JSONL: unify reads it as is. For unify, its own
        # parameters replace this default.
        steps = {"unify": {"error_budget": 1.0}, args.command: params}
        config = PipelineConfig.build(
            {"output": str(scratch / "run"), "inputs": [_single_input(args)], "steps": steps,
             "write_drops": bool(args.drops)}
        )
        try:
            report = PipelineRun(config, progress=False).run()
        except PipelineDataError as err:  # the scratch folder goes away: keep the malformed lines
            if args.command != "unify" or not args.drops:
                raise
            malformed = Path(step_dir(str(scratch / "run"), "unify")) / "malformed"
            _concat(sorted(malformed.glob("*.jsonl")), args.drops)
            raise PipelineDataError(
                f"{str(err).split('; see ')[0]}; the malformed lines are in {args.drops}; fix "
                f"the input or pass --set error_budget=FRACTION"
            ) from None
        _copy_outputs(config, args)
    print(summary_table({"steps": {args.command: report["steps"][args.command]}}))
    return 0


def _single_input(args) -> InputSpec:
    if args.command != "unify":
        return InputSpec.build({"format": "jsonl", "path": str(args.input), "name": "input"})
    given = given_flags(InputSpec, args, exclude=_NOT_UNIFY_FLAGS)
    return InputSpec.build({"path": str(args.input) if args.input else None, "name": "input", **given})


def _copy_outputs(config: PipelineConfig, args) -> None:
    folder = Path(step_dir(config.output, args.command))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    _concat(sorted(folder.glob("*.jsonl")), args.output)
    if args.drops:
        aside = "malformed" if args.command == "unify" else "drops"
        _concat(sorted((folder / aside).glob("*.jsonl")), args.drops)


def _concat(parts: list[Path], target: Path) -> None:
    with open(target, "wb") as out:
        for part in parts:
            with open(part, "rb") as source:
                shutil.copyfileobj(source, out)


@run_cli
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return run_pipeline_command(args)
    return run_step_command(args)


if __name__ == "__main__":
    sys.exit(main())
