"""One model of a sweep as a job: the ``xplus-eval all`` command that evaluates it, and its status.

A job is plain data (a command and paths), so every engine runs it the same way: locally, inside a Ray
task, or in a Slurm array task. Its status lives in ``output/.sweep/<name>.json`` (one file per model, so
array tasks never write the same file) with the settings key of the command that produced it: a model is
done when its last run exited 0 with the settings asked for now. A rerun runs the rest; ``xplus-eval all``
resumes inside each run folder, so even a model cut off halfway generates only what is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import yaml

from xplus_release.errors import RunFolderError
from xplus_release.evalsuite.sweep.config import Sweep, SweepModel
from xplus_release.runs import RUN_FILE, read_json, write_json_atomic
from xplus_release.storage import json_hash

SWEEP_FILE = "sweep.json"  # in output/: which sweep the folder belongs to
STATE_DIR = ".sweep"  # in output/: per-model status, suite configs, logs, Slurm scripts


@dataclass(frozen=True)
class ModelJob:
    name: str
    command: tuple[str, ...]
    output: Path  # the sweep's output folder
    key: str  # settings key of the command (without --force)

    @property
    def status_path(self) -> Path:
        return self.output / STATE_DIR / f"{self.name}.json"

    @property
    def log_path(self) -> Path:
        return self.output / STATE_DIR / f"{self.name}.log"


def check_output(sweep: Sweep) -> None:
    """Raises: RunFolderError: ``sweep.output`` holds runs of another sweep, or run folders of no sweep."""
    marker = sweep.output / SWEEP_FILE
    if marker.is_file():
        owner = read_json(marker).get("name")
        if owner != sweep.name:
            raise RunFolderError(f"{sweep.output} holds the runs of sweep {owner!r}, not {sweep.name!r}; "
                                 "set another output: (or --output) for this sweep")
    elif sweep.output.is_dir() and any(sweep.output.glob(f"*/{RUN_FILE}")):
        raise RunFolderError(f"{sweep.output} holds run folders of no sweep; set another output: (or --output)")


def claim_output(sweep: Sweep) -> None:
    """Make ``sweep.output`` this sweep's folder (created if need be); ``check_output`` first."""
    marker = sweep.output / SWEEP_FILE
    (sweep.output / STATE_DIR).mkdir(parents=True, exist_ok=True)
    write_json_atomic(marker, {"name": sweep.name, "models": [m.name for m in sweep.models]})


def model_job(sweep: Sweep, model: SweepModel, force: bool = False, write: bool = True) -> ModelJob:
    """The job of ``model``; with ``write``, writes the suite options it reads (``.sweep/<name>.suites.yaml``)."""
    config = sweep.output.resolve() / STATE_DIR / f"{model.name}.suites.yaml"
    suites = sweep.suite_config(model)
    if write:
        config.write_text(yaml.safe_dump(suites, sort_keys=True), encoding="utf-8")
    command = [sys.executable, "-m", "xplus_release.evalsuite.cli", "all", "--model", model.model_id,
               "--output", str(sweep.output.resolve() / model.name), "--suites", ",".join(suites), "--config", str(config),
               "--tensor-parallel-size", str(model.tensor_parallel_size),
               "--data-parallel-size", str(model.data_parallel_size), "--no-progress"]
    for flag, value in (("--endpoint", model.endpoint), ("--max-model-len", model.max_model_len),
                        ("--limit", sweep.limit), ("--data-dir", sweep.data_dir)):
        if value is not None:
            command += [flag, str(value)]
    key = json_hash({"command": command[1:], "suites": suites})  # the interpreter's path may differ per node
    return ModelJob(model.name, tuple(command + (["--force"] if force else [])), sweep.output, key)


def read_status(job: ModelJob) -> dict:
    return read_json(job.status_path) if job.status_path.is_file() else {}


def is_done(job: ModelJob) -> bool:
    status = read_status(job)
    return status.get("status") == "done" and status.get("key") == job.key


def run_job(job: ModelJob) -> dict:
    """Run one model's ``xplus-eval all`` (output to its log); record and return its status
    ``{"name", "status" (done/failed), "exit_code", "error", "seconds", "key"}``. Never raises for the
    model's own failure: that is what the status says."""
    write_json_atomic(job.status_path, {"name": job.name, "status": "running", "key": job.key})
    start = time.perf_counter()
    env = {**os.environ, "XPLUS_VERBOSE_ERRORS": "0"}  # one error line per failure in the log
    with open(job.log_path, "ab") as log:
        log.write(f"$ {' '.join(job.command)}\n".encode())
        log.flush()
        code = subprocess.call(list(job.command), stdout=log, stderr=subprocess.STDOUT, env=env)
    status = {"name": job.name, "status": "done" if code == 0 else "failed", "exit_code": code,
              "error": None if code == 0 else failure_reason(job.log_path, code),
              "seconds": round(time.perf_counter() - start, 3), "key": job.key}
    write_json_atomic(job.status_path, status)
    return status


def failure_reason(log_path: Path, code: int) -> str:
    """The last ``error:`` line of the model's log (what ``xplus-eval`` printed), else its last line."""
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        tail = [line.strip() for line in deque(handle, maxlen=200) if line.strip()]
    errors = [line for line in tail if line.startswith("error:")]
    line = (errors or tail or [f"exit status {code}"])[-1]
    return f"{line.removeprefix('error: ')} (exit {code}; log: {log_path})"

