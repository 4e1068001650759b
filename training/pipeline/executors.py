"""Where tasks run: this machine's process pool, or datatrove's executors.

A task is ``(function name in steps.py, kwargs)``: plain data, so it pickles for a process pool, for
datatrove's workers and for a Slurm job alike. Tasks record their own completion (``steps.shard_done``),
so every executor resumes the same way.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm
from xplus_release.training.pipeline import steps

Task = tuple[str, dict]


def run_task(task: Task) -> None:
    name, kwargs = task
    getattr(steps, name)(**kwargs)


class LocalExecutor:
    """``workers`` processes on this machine (inline when 1). Steps that load torch use ``spawn``
    (a forked CUDA/OpenMP runtime can hang); the others ``fork``, which starts in milliseconds."""

    def __init__(self, workers: int = 1, progress: bool = True):
        self.workers = max(1, workers)
        self.progress = progress

    def run(self, label: str, tasks: list[Task], needs_torch: bool = False) -> None:
        bar = tqdm(
            total=len(tasks),
            desc=label,
            unit="shard",
            disable=not self.progress or not tasks,
            file=sys.stderr,
        )
        if self.workers == 1 or len(tasks) <= 1:
            for task in tasks:
                run_task(task)
                bar.update()
        else:
            context = multiprocessing.get_context("spawn" if needs_torch else "fork")
            with ProcessPoolExecutor(min(self.workers, len(tasks)), mp_context=context) as pool:
                for _ in pool.map(run_task, tasks):
                    bar.update()
        bar.close()


class DatatroveExecutor:
    """Each batch of tasks runs as one datatrove pipeline: a ``TaskStep`` whose rank *r* of *n* runs tasks
    r, r+n, r+2n, ... (``LocalPipelineExecutor`` with ``tasks`` ranks on ``workers`` processes here; the
    same step runs under datatrove's Slurm or Ray executors on a cluster)."""

    def __init__(self, logging_dir: Path, tasks: int = 2, workers: int = 2):
        self.logging_dir = logging_dir
        self.tasks = tasks
        self.workers = workers

    def run(self, label: str, tasks: list[Task], needs_torch: bool = False) -> None:
        if not tasks:
            return
        from datatrove.executor import LocalPipelineExecutor
        from xplus_release.training.pipeline.datatrove_step import TaskStep

        ranks = max(1, min(self.tasks, len(tasks)))
        executor = LocalPipelineExecutor(
            pipeline=[TaskStep(tasks)],
            tasks=ranks,
            workers=min(self.workers, ranks),
            logging_dir=str(self.logging_dir / label),
            skip_completed=False,
            start_method="spawn" if needs_torch else "fork",
        )
        executor.run()
        failed = [t for t in tasks if not _task_finished(t)]
        if failed:
            raise RuntimeError(
                f"datatrove ran {label} but {len(failed)} task(s) did not finish; "
                f"see the logs under {self.logging_dir / label}"
            )


def _task_finished(task: Task) -> bool:
    name, kwargs = task
    step_dir = Path(kwargs["step_dir"])
    if name == "dedup_index_shard":
        return (step_dir / "index" / f"{Path(kwargs['in_path']).stem}.npz").is_file()
    if name == "dedup_conflicts":
        return (step_dir / "index" / "conflicts.json").is_file()
    if name == "unify_input":
        return steps.shard_done(step_dir, kwargs["spec"]["name"])
    return steps.shard_done(step_dir, Path(kwargs["in_path"]).stem)


def default_workers() -> int:
    return max(1, (os.cpu_count() or 1))
