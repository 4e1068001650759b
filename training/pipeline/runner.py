"""Run a pipeline: each step is one or more datatrove stages, run by datatrove's executors (local processes,
a Ray cluster, or Slurm array jobs); a stage's ranks that finished before are skipped (``skip_completed``).

The steps, and the stages each runs, come from their records (``steps.STEPS``). Layout of the output
folder (local or any fsspec URL), one folder per step named after it::

    unify/<input>-<n>.jsonl        pair records (records.py); malformed/<input>.jsonl lines that could not be read
    clean/<shard>.jsonl            each later step: kept records; drops/<shard>.jsonl (with "reason")
    dedup/index/                   signatures (<shard>.npz) and conflict counts (<shard>.conflicts.npy)
    quality/thresholds.json        the dev-loss threshold of each pair
    instruct/<shard>.jsonl         chat JSONL, merged into train.jsonl
    logs/<stage>/                  datatrove's logs, stats/<rank>.json and completions/ of every stage
    report.json                    per step: pairs in, kept, dropped by reason (from datatrove's stats)
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import shutil
import sys

from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from loguru import logger
from tqdm import tqdm

from xplus_release.errors import ConfigError
from xplus_release.internals import recorded_slurm_submissions
from xplus_release.storage import json_hash_forms
from xplus_release.training.pipeline.config import PipelineConfig
from xplus_release.training.pipeline.records import PairReader, PairWriter, PipelineDataError, drop_adapter
from xplus_release.training.pipeline.steps import (
    STEPS,
    Stage,
    StepPlan,
    migrate_position_folders,
    step_dir,
)

FINAL_FILE = "train.jsonl"
_QUIET = open(os.devnull, "w")  # noqa: SIM115 - datatrove logs every rank to stderr; task logs keep it all


def check_assets(config: PipelineConfig) -> None:
    """Everything a run needs that is not produced by it, checked before any work: the input files, and
    what each step's record checks (a LID or quality model, dev files) for every pair the inputs declare.

    Raises:
        MissingAssetError: a LID or quality model is not on this machine.
        ConfigError: a quality dev file is missing for a pair the inputs declare.
        PipelineDataError: an input file does not exist.
    """
    for path in (p for spec in config.inputs for p in spec.files() if not p.is_file()):
        raise PipelineDataError(f"input file {path} does not exist; fix the path in the pipeline YAML")
    declared = {f"{s.src}-{s.trg}" for s in config.inputs if s.src and s.trg}
    for pair in sorted(declared) + ["default"]:
        for step in config.steps.names():
            if STEPS[step].check_assets is not None:
                STEPS[step].check_assets(config.step_config(step, pair), pair)


# ---------------------------------------------------------------- stages


def build_stages(config: PipelineConfig) -> list[Stage]:
    """The datatrove stages of the configured steps, in order, ending with the merge into train.jsonl."""
    stages, previous = [], None
    for step in config.steps.names():
        record, folder = STEPS[step], step_dir(config.output, step)
        plan = StepPlan(
            name=step, folder=folder, read=[PairReader(previous)] if previous else [],
            write=PairWriter(folder, record.adapter),
            # the filters' exclusion writer: <step>/drops/<shard>.jsonl, when drops are kept
            drops=PairWriter(f"{folder}/drops", adapter=drop_adapter) if config.write_drops else None,
            configs=config.pair_configs(step), ranks=config.ranks, inputs=config.inputs,
            data_pairs=functools.partial(data_pairs, config.output))
        stages += record.build_stages(plan)
        previous = folder
    stages.append(Stage("merge", [MergeStep(config.output, previous, list(config.steps.names()))], 1))
    return stages


class MergeStep(PipelineStep):
    """The last step's shards, in shard order, into ``train.jsonl``; then ``report.json``."""

    name = "merge"
    type = "xplus"

    def __init__(self, output: str, last_folder: str, steps: list[str]):
        super().__init__()
        self.output, self.last_folder, self.steps = output, last_folder, steps

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        source, target = get_datafolder(self.last_folder), get_datafolder(self.output)
        with target.open(FINAL_FILE, "wb") as merged:
            for name in sorted(source.list_files(recursive=False, glob_pattern="*.jsonl")):
                with source.open(name, "rb") as shard:
                    merged.write(shard.read())
        write_report(self.output, build_report(self.output, self.steps))
        yield from ()


# ---------------------------------------------------------------- executors


def logs_dir(output: str, stage: str) -> str:
    return f"{output.rstrip('/')}/logs/{stage}"


def make_executor(config: PipelineConfig, stage: Stage, depends=None):
    """datatrove's executor for one stage, on ``config.engine``."""
    common = {"pipeline": stage.pipeline, "tasks": stage.tasks, "workers": min(config.workers, stage.tasks),
              "logging_dir": logs_dir(config.output, stage.name)}
    cluster = config.slurm
    sized = {**common, "cpus_per_task": cluster.cpus_per_task, "mem_per_cpu_gb": cluster.mem_per_cpu_gb}
    if config.engine == "ray":
        from datatrove.executor import RayPipelineExecutor

        return RayPipelineExecutor(**sized)
    if config.engine == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        venv = cluster.venv_path or os.path.join(sys.prefix, "bin", "activate")
        return SlurmPipelineExecutor(**sized, time=cluster.time, partition=cluster.partition,
                                     job_name=f"xplus-data-{stage.name}", venv_path=venv, depends=depends)
    from datatrove.executor import LocalPipelineExecutor

    start = "spawn" if stage.loads_torch else "fork"
    return LocalPipelineExecutor(**common, start_method=start)


def _run_local_or_ray(config: PipelineConfig, stages: list[Stage], progress: bool) -> dict[str, int]:
    """Each stage after the one before; returns how many ranks each stage ran in this run.

    Raises:
        PipelineDataError: a stage ended with ranks that did not complete (Ray retries, then gives up).
    """
    processed = {}
    for stage in tqdm(stages, desc="xplus-data", unit="stage", disable=not progress, file=sys.stderr):
        executor = make_executor(config, stage)
        processed[stage.name] = len(executor.get_incomplete_ranks())
        if processed[stage.name]:
            with contextlib.redirect_stderr(_QUIET):
                logger.remove()  # the sinks datatrove adds from here on write to the redirected stderr
                logger.add(sys.stderr)
                executor.run()
        if left := executor.get_incomplete_ranks():
            raise PipelineDataError(
                f"stage {stage.name}: {len(left)} of {stage.tasks} ranks did not finish; see the logs "
                f"under {logs_dir(config.output, stage.name)}/logs and rerun (finished ranks are kept)"
            )
    return processed


def launch_slurm(config: PipelineConfig, stages: list[Stage], dry_run: bool) -> list[tuple[list, str]]:
    """Submit one array job per stage, each depending on the one before (``afterok``); with ``dry_run``
    nothing is submitted and the (sbatch arguments, script) pairs are returned instead.

    Raises:
        ConfigError: no partition, or no sbatch to submit with.
    """
    if not config.slurm.partition:
        raise ConfigError("the slurm engine needs a partition: pass --partition or set slurm.partition")
    executor = None
    for stage in stages:
        executor = make_executor(config, stage, depends=executor)
    if not dry_run:
        if not shutil.which("sbatch"):
            raise ConfigError("sbatch is not on PATH: run on a Slurm login node, or pass --dry-run")
        executor.run()
        return []
    with recorded_slurm_submissions() as submitted:
        executor.run()
    return submitted


# ---------------------------------------------------------------- report


def stage_totals(output: str, stage: str, step_name: str) -> dict[str, float]:
    """Totals of one step's datatrove stats (``stats/<rank>.json``) over every rank of its stage."""
    folder, totals = get_datafolder(logs_dir(output, stage)), {}
    if not folder.isdir("stats"):
        return totals
    for name in sorted(folder.list_files("stats")):
        with folder.open(name, "r") as handle:
            blocks = json.load(handle)
        for block in blocks:
            if block["name"].endswith(f": {step_name}"):
                for label, value in block["stats"].items():  # a metric is saved as its total or a dict
                    totals[label] = totals.get(label, 0) + (
                        value["total"] if isinstance(value, dict) else value
                    )
    return totals


def data_pairs(output: str) -> list[str]:
    """The language pairs the unify stage found."""
    totals = stage_totals(output, "unify", "unify")
    return sorted(label.removeprefix("pairs_") for label in totals if label.startswith("pairs_"))


_NOT_COUNTERS = ("total", "forwarded", "dropped", "batches", "dropped_", "malformed_", "pairs_")


def step_report(totals: dict[str, float]) -> dict:
    """datatrove's stat names, BaseFilter's included, as the report's: in, kept, dropped and malformed by
    reason, and the step's other counters."""

    def picked(prefix):
        return {k.removeprefix(prefix): int(v) for k, v in totals.items() if k.startswith(prefix)}

    counters = {k: int(v) for k, v in totals.items() if not k.startswith(_NOT_COUNTERS)}
    report = {"in": int(totals.get("total", 0)), "kept": int(totals.get("forwarded", 0))}
    return {**report, "dropped": picked("dropped_"), "malformed": picked("malformed_"), "counters": counters}


def build_report(output: str, steps: list[str]) -> dict:
    return {
        "output": output,
        "steps": {step: step_report(stage_totals(output, step, step)) for step in steps},
    }


def write_report(output: str, report: dict) -> None:
    with get_datafolder(output).open("report.json", "w") as handle:
        json.dump(report, handle, indent=2, ensure_ascii=False)


def summary_table(report: dict) -> str:
    """The report as a fixed-width table: one row per step."""
    rows = [("step", "in", "kept", "dropped", "reasons")]
    for step, s in report["steps"].items():
        reasons = {**s["dropped"], **{f"malformed:{k}": v for k, v in s["malformed"].items()}}
        listed = ", ".join(f"{k}={v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])) or "-"
        rows.append((step, str(s["in"]), str(s["kept"]), str(sum(reasons.values())), listed))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}  {r[4]}"
        for r in rows
    )


# ---------------------------------------------------------------- the run


def _signatures(config: PipelineConfig, form: int) -> list[str]:
    """Each step's signature: its parameters and the signature of the step before it. ``form`` picks the
    hash form of ``json_hash_forms`` (0: today's, 1: what earlier versions stored)."""
    signatures, upstream = [], ""
    for step in config.steps.names():
        payload = {"step": step, "params": config.params_for(step), "upstream": upstream}
        if step == "unify":
            payload["inputs"] = [spec.model_dump() for spec in config.inputs]
        upstream = json_hash_forms(payload)[form]
        signatures.append(upstream)
    return signatures


def claim_step_folders(config: PipelineConfig) -> None:
    """Each step folder's ``step.json`` records the parameters it ran with: rerunning with others would mix
    old and new outputs, so it raises ConfigError naming the folder to delete."""
    out = get_datafolder(config.output)
    steps = zip(config.steps.names(), _signatures(config, 0), _signatures(config, 1))
    for step, upstream, earlier in steps:
        marker = f"{STEPS[step].folder}/step.json"
        if out.isfile(marker):
            with out.open(marker, "r") as handle:
                if json.load(handle).get("signature") not in (upstream, earlier):
                    raise ConfigError(
                        f"{step_dir(config.output, step)} was made with other parameters or inputs; delete it, "
                        f"the step folders after it and logs/, or choose another output folder"
                    )
            continue
        with out.open(marker, "w") as handle:
            json.dump({"signature": upstream, "params": config.params_for(step)}, handle)


class PipelineRun:
    def __init__(self, config: PipelineConfig, progress: bool = True, dry_run: bool = False):
        self.config, self.progress, self.dry_run = config, progress, dry_run

    def run(self) -> dict:
        """Run every stage; return the report (also written to ``report.json``). On Slurm: submit the jobs
        and return ``{"submitted": [(sbatch arguments, script), ...]}`` (the scripts only, when dry)."""
        check_assets(self.config)
        for old, new in migrate_position_folders(self.config.output):
            print(f"renamed {old}/ to {new}/ (step folders are named by step now)", file=sys.stderr)
        claim_step_folders(self.config)
        stages = build_stages(self.config)
        if self.config.engine == "slurm":
            return {"submitted": launch_slurm(self.config, stages, self.dry_run)}
        with _ray_cluster(self.config.engine == "ray"):
            processed = _run_local_or_ray(self.config, stages, self.progress)
        report = build_report(self.config.output, list(self.config.steps.names()))
        report["processed_this_run"] = processed
        write_report(self.config.output, report)
        return report


@contextlib.contextmanager
def _ray_cluster(needed: bool):
    """Connects to the cluster at ``RAY_ADDRESS`` (or starts one on this machine for the run).

    Raises:
        ConfigError: Ray is not installed."""
    try:
        ray = importlib.import_module("ray") if needed else None
    except ImportError:
        raise ConfigError('--engine ray needs Ray: pip install "xplus-release[ray]"') from None
    started = ray is not None and not ray.is_initialized()
    if started:
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        if started:
            ray.shutdown()
