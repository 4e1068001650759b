"""``xplus-eval sweep SWEEP.yaml``: evaluate many models, each one ``xplus-eval all`` run folder under the
sweep's output folder, then write one leaderboard.

    xplus-eval sweep my-sweep.yaml                              # here, one model after another
    xplus-eval sweep my-sweep.yaml --engine ray                 # one Ray task per model ($RAY_ADDRESS)
    xplus-eval sweep my-sweep.yaml --engine slurm --partition gpu --dry-run   # print the sbatch scripts
    xplus-eval sweep my-sweep.yaml --leaderboard --reference xplus-8b         # only rewrite the leaderboard
    xplus-eval view OUTPUT/                                      # every run of the sweep in the browser

A model that fails does not stop the others; the end lists what failed and why. A rerun runs only the
models that are missing, failed or whose settings changed (``--force NAME`` redoes one), and each of them
resumes inside its run folder. A name without a file is a sweep the package ships: ``paper-table7``
lists the paper's open models of its Tables 7 and 8 (``xplus-eval sweep paper-table7 --engine slurm ...``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    from xplus_release.evalsuite.sweep.engines import ENGINES

    parser = subparsers.add_parser("sweep", help="many models (locally, on Ray or Slurm), one leaderboard",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", type=Path, metavar="SWEEP.yaml",
                        help="the sweep file, or the name of one the package ships (paper-table7)")
    parser.add_argument("--output", "-o", type=Path, help="folder of the run folders (default: the file's output:)")
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="local: one model after another here (default); ray: one Ray task per model on "
                             "$RAY_ADDRESS or a local cluster; slurm: one sbatch array task per model")
    parser.add_argument("--force", action="append", default=[], metavar="NAME",
                        help="redo model NAME from scratch even if it is done (repeatable)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only model NAME (repeatable; what each Slurm array task runs)")
    parser.add_argument("--reference", metavar="NAME",
                        help="model the others are tested against for translation (default: the file's reference:)")
    parser.add_argument("--leaderboard", action="store_true", help="run nothing: rewrite the leaderboard only")
    parser.add_argument("--no-leaderboard", action="store_true", help="do not write the leaderboard at the end")
    ray = parser.add_argument_group("ray")
    ray.add_argument("--ray-cpus", type=int, metavar="N", help="CPUs of a local Ray cluster (default: all)")
    slurm = parser.add_argument_group("slurm (flags win over the file's slurm: block)")
    slurm.add_argument("--partition", help="Slurm partition (required for --engine slurm)")
    slurm.add_argument("--gpus-per-task", type=int, metavar="N",
                       help="GPUs per model (default: each model's tensor × data parallel size)")
    slurm.add_argument("--time", metavar="D-HH:MM:SS", help="time limit per model (sbatch --time)")
    slurm.add_argument("--dry-run", action="store_true", help="print the sbatch scripts, submit nothing")
    parser.set_defaults(func=run_sweep)


def run_sweep(args: argparse.Namespace) -> int:
    """Raises: ConfigError, RunFolderError: bad input, all checked before any model runs."""
    from xplus_release.evalsuite.sweep import engines
    from xplus_release.evalsuite.sweep.config import load_sweep
    from xplus_release.evalsuite.sweep.jobs import check_output, claim_output, is_done, model_job

    sweep = load_sweep(args.sweep)
    if args.output:
        sweep = sweep.model_copy(update={"output": args.output})
    chosen = [sweep.model(name) for name in args.only] or list(sweep.models)
    for name in [*args.force, *([args.reference] if args.reference else [])]:
        sweep.model(name)
    settings = _check_engine(args, sweep, engines)
    check_output(sweep)
    if args.leaderboard:
        return _finish(sweep, args)
    dry = args.engine == "slurm" and args.dry_run
    if not dry:
        claim_output(sweep)
    jobs = [model_job(sweep, m, force=m.name in args.force, write=not dry) for m in chosen]
    pending = [job for job in jobs if job.name in args.force or not is_done(job)]
    for job in jobs:
        if job not in pending:
            print(f"== {job.name}: done earlier, skipped (--force {job.name} redoes it)", file=sys.stderr)
    gpus = {m.name: m.gpus for m in chosen}
    if args.engine == "slurm":
        return _slurm(sweep, args, pending, gpus, settings, engines)
    if args.engine == "ray":
        engines.run_ray(pending, gpus, _report, num_cpus=args.ray_cpus)
    else:
        engines.run_local(pending, _report)
    if args.no_leaderboard:
        return 0 if _all_done(jobs) else 1
    return _finish(sweep, args)


def _check_engine(args: argparse.Namespace, sweep, engines):
    """The engine's own prerequisites, before anything runs: Ray importable; a partition and sbatch."""
    if args.engine == "ray":
        engines.check_ray()
    if args.engine == "slurm":
        settings = engines.slurm_settings(sweep, args.partition, args.gpus_per_task, args.time)
        if not args.dry_run:
            engines.check_sbatch()
        return settings
    return None


def _slurm(sweep, args, pending, gpus, settings, engines) -> int:
    from xplus_release.evalsuite.sweep.config import sweep_path

    if not pending:
        print("every model is done; nothing to submit", file=sys.stderr)
        return 0
    scripts = engines.slurm_scripts(sweep, str(sweep_path(args.sweep).resolve()), pending, gpus, settings)
    if args.dry_run:
        for count, script in scripts.items():
            print(f"# --- array job for models on {count} GPU(s) ---\n{script}")
        return 0
    ids = engines.submit_slurm(scripts, sweep.output)
    print(f"submitted Slurm job(s) {', '.join(ids)} for {len(pending)} model(s); when they end: "
          f"xplus-eval sweep {args.sweep} --leaderboard")
    return 0


def _report(status: dict) -> None:
    line = f"== {status['name']}: {status['status']}"
    if status.get("error"):
        line += f": {status['error']}"
    print(line, file=sys.stderr, flush=True)


def _all_done(jobs) -> bool:
    from xplus_release.evalsuite.sweep.jobs import is_done

    return all(is_done(job) for job in jobs)


def _finish(sweep, args: argparse.Namespace) -> int:
    """Write the leaderboard; list what is not done. Exit 1 when some model failed or is missing."""
    from xplus_release.evalsuite.sweep.jobs import is_done, model_job, read_status
    from xplus_release.evalsuite.sweep.leaderboard import build_leaderboard, write_leaderboard

    statuses = {}
    for model in sweep.models:
        job = model_job(sweep, model, write=False)
        status = read_status(job)
        # a status written for other settings is not done, whatever it says
        statuses[model.name] = {**status, "status": "done" if is_done(job) else status.get("status", "missing")}
    path = write_leaderboard(sweep, build_leaderboard(sweep, statuses, args.reference, progress=False))
    missing = {name: s for name, s in statuses.items() if s["status"] != "done"}
    print(f"{len(statuses) - len(missing)} of {len(statuses)} models done; leaderboard: {path}")
    for name, status in missing.items():
        print(f"error: model {name} {status['status']}" + (f": {status['error']}" if status.get("error") else ""),
              file=sys.stderr)
    return 1 if missing else 0
