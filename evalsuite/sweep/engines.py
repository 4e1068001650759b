"""The engines that run a sweep's jobs: one after another here (``local``), one Ray task per model asking
for its GPUs (``ray``), or one Slurm array task per model (``slurm``, through ``sbatch``).

Each engine is checked before anything runs (``check``): Ray importable, a Slurm partition and ``sbatch``
given. ``run`` returns the statuses of the jobs it ran (local, Ray) or the job ids it submitted (Slurm).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable

from xplus_release.errors import ConfigError
from xplus_release.evalsuite.sweep.config import SlurmSettings, Sweep
from xplus_release.evalsuite.sweep.jobs import STATE_DIR, ModelJob, run_job

ENGINES = ("local", "ray", "slurm")


def run_local(jobs: list[ModelJob], report: Callable[[dict], None]) -> list[dict]:
    """One model after another on this machine; a failing model does not stop the next."""
    statuses = []
    for job in jobs:
        print(f"== {job.name}: running (log: {job.log_path})", file=sys.stderr, flush=True)
        statuses.append(run_job(job))
        report(statuses[-1])
    return statuses


def check_ray() -> None:
    """Raises: ConfigError: Ray is not installed."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ConfigError("--engine ray needs Ray: pip install 'ray[default]==2.60.0' (or the dev extra), "
                          "or use --engine local") from None


def run_ray(jobs: list[ModelJob], gpus: dict[str, int], report: Callable[[dict], None],
            num_cpus: int | None = None) -> list[dict]:
    """One Ray task per model on ``$RAY_ADDRESS`` (a local cluster of ``num_cpus`` CPUs without it), each
    asking for its model's GPUs; tasks run as the cluster has room. On a cluster without GPUs a task asks
    for one CPU. The run folders must be on a file system every node sees.

    Raises:
        ConfigError: the cluster has GPUs, but fewer than a model needs.
    """
    import ray

    address = os.environ.get("RAY_ADDRESS")
    ray.init(address=address or None, num_cpus=None if address else num_cpus, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    try:
        cluster_gpus = int(ray.cluster_resources().get("GPU", 0))
        too_big = [job.name for job in jobs if cluster_gpus and gpus[job.name] > cluster_gpus]
        if too_big:
            raise ConfigError(f"models {', '.join(too_big)} need more GPUs than the Ray cluster has ({cluster_gpus})")
        task = ray.remote(run_job)
        refs = {task.options(name=f"xplus-sweep:{job.name}", max_retries=0,
                             **({"num_gpus": gpus[job.name]} if cluster_gpus and gpus[job.name] else {"num_cpus": 1})
                             ).remote(job): job for job in jobs}
        return _gather(ray, refs, report)
    finally:
        ray.shutdown()


def _gather(ray, refs: dict, report: Callable[[dict], None]) -> list[dict]:
    statuses, waiting = [], list(refs)
    while waiting:
        ready, waiting = ray.wait(waiting, num_returns=1)
        try:
            statuses.append(ray.get(ready[0]))
        except ray.exceptions.RayError as err:  # the task itself died (node lost, killed)
            job = refs[ready[0]]
            statuses.append({"name": job.name, "status": "failed", "error": f"Ray task failed: {str(err).splitlines()[0]}"})
        report(statuses[-1])
    return statuses


def slurm_settings(sweep: Sweep, partition: str | None, gpus_per_task: int | None, time: str | None) -> SlurmSettings:
    """The ``slurm:`` block with the command line's flags on top.

    Raises:
        ConfigError: no partition (neither --partition nor slurm.partition).
    """
    updates = {k: v for k, v in {"partition": partition, "gpus_per_task": gpus_per_task, "time": time}.items()
               if v is not None}
    settings = sweep.slurm.model_copy(update=updates)
    if not settings.partition:
        raise ConfigError("--engine slurm needs a partition: pass --partition NAME or set slurm: {partition: NAME}")
    return settings


def check_sbatch() -> None:
    """Raises: ConfigError: ``sbatch`` is not on PATH."""
    if shutil.which("sbatch") is None:
        raise ConfigError("--engine slurm needs sbatch on PATH (run on a Slurm login node), or pass --dry-run "
                          "to print the scripts")


def slurm_scripts(sweep: Sweep, sweep_file: str, jobs: list[ModelJob], gpus: dict[str, int],
                  settings: SlurmSettings) -> dict[int, str]:
    """One array-job script per GPU count (an array's tasks share their resources): task i runs model i of
    the array with ``xplus-eval sweep SWEEP --engine local --only NAME``, which records its status."""
    groups: dict[int, list[ModelJob]] = {}
    for job in jobs:
        groups.setdefault(settings.gpus_per_task or gpus[job.name], []).append(job)
    return {count: _slurm_script(sweep, sweep_file, group, count, settings) for count, group in groups.items()}


def _slurm_script(sweep: Sweep, sweep_file: str, jobs: list[ModelJob], gpus: int, settings: SlurmSettings) -> str:
    logs = sweep.output.resolve() / STATE_DIR
    lines = ["#!/bin/bash", f"#SBATCH --job-name=xplus-sweep-{sweep.name}", f"#SBATCH --array=0-{len(jobs) - 1}",
             f"#SBATCH --partition={settings.partition}", "#SBATCH --ntasks=1",
             f"#SBATCH --output={logs}/slurm-%A_%a.out"]
    if gpus:
        lines.append(f"#SBATCH --gpus-per-task={gpus}")
    if settings.time:
        lines.append(f"#SBATCH --time={settings.time}")
    lines += [f"#SBATCH {option}" for option in settings.extra]
    lines += ["set -euo pipefail", *settings.setup,
              "MODELS=(" + " ".join(shlex.quote(job.name) for job in jobs) + ")",
              (f"exec {shlex.quote(sys.executable)} -m xplus_release.evalsuite.cli sweep {shlex.quote(sweep_file)} "
               f"--output {shlex.quote(str(sweep.output.resolve()))} --engine local --no-leaderboard "
               '--only "${MODELS[$SLURM_ARRAY_TASK_ID]}"')]
    return "\n".join(lines) + "\n"


def submit_slurm(scripts: dict[int, str], output) -> list[str]:
    """Write each script to ``.sweep/slurm-<gpus>gpu.sbatch`` and submit it; return the job ids.

    Raises:
        ConfigError: sbatch refused a script (its message).
    """
    ids = []
    for gpus, script in scripts.items():
        path = output / STATE_DIR / f"slurm-{gpus}gpu.sbatch"
        path.write_text(script, encoding="utf-8")
        done = subprocess.run(["sbatch", "--parsable", str(path)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ConfigError(f"sbatch refused {path}: {(done.stderr or done.stdout).strip().splitlines()[-1]}")
        ids.append(done.stdout.strip().split(";")[0])
    return ids
