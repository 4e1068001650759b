"""The pipeline's tasks as a datatrove ``PipelineStep``, so datatrove's executors (local, Slurm, Ray)
schedule them: rank *r* of *n* runs tasks r, r+n, r+2n, ... Each task is the same function the local
executor runs (``steps.py``), so outputs are identical whichever engine ran them.
"""

from __future__ import annotations

from datatrove.pipeline.base import PipelineStep
from xplus_release.training.pipeline.executors import run_task


class TaskStep(PipelineStep):
    name = "xplus-data tasks"
    type = "xplus"

    def __init__(self, tasks: list):
        super().__init__()
        self.tasks = tasks

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        for task in self.tasks[rank::world_size]:
            with self.track_time():
                run_task(task)
            self.stat_update(task[0])
        return None
