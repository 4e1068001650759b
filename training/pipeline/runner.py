"""Run a pipeline: the steps in order, each over every shard, resuming whatever a previous run finished.

Layout of the output folder::

    01-unify/<input>-<n>.jsonl     pair records (records.py); malformed/ lines that could not be read
    02-clean/<shard>.jsonl         each later step: kept records; drops/ (with "reason"); stats/<shard>.json
    03-dedup/index/                fingerprints (<shard>.npz) and conflict counts (<shard>.conflicts.npy)
    05-quality/thresholds.json     the dev-loss threshold of each pair
    06-instruct/<shard>.jsonl      chat JSONL, merged into train.jsonl
    report.json                    per step: pairs in, kept, dropped by reason, malformed by reason

A step folder holds ``step.json`` with the parameters it ran with; rerunning with other parameters is an
error that names the folder to delete, never a silent mix of old and new outputs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from xplus_release.training.pipeline import quality, steps
from xplus_release.training.pipeline.config import STEP_ORDER, PipelineConfig
from xplus_release.training.pipeline.executors import LocalExecutor
from xplus_release.lid import resolve_lid_model

from xplus_release.errors import ConfigError
from xplus_release.runs import write_json_atomic

FINAL_FILE = "train.jsonl"


def step_dir(output: Path, step: str) -> Path:
    return output / f"{STEP_ORDER.index(step) + 1:02d}-{step}"


def check_assets(config: PipelineConfig) -> None:
    """Everything a run needs that is not produced by it, checked before any work.

    Raises:
        MissingAssetError: a LID or quality model is not on this machine.
        ConfigError: a quality dev file is missing for a pair the inputs declare.
        PipelineDataError: an input file does not exist.
    """
    from xplus_release.training.pipeline.records import PipelineDataError

    for spec in config.inputs:
        for path in spec.files():
            if not path.is_file():
                raise PipelineDataError(
                    f"input file {path} does not exist; fix the path in the pipeline YAML"
                )
    declared = {f"{s.src}-{s.trg}" for s in config.inputs if s.src and s.trg}
    for pair in sorted(declared) + ["default"]:
        if "langid" in config.steps:
            resolve_lid_model(config.step_config("langid", pair).model, setting="langid.model")
        if "quality" in config.steps:
            q = config.step_config("quality", pair)
            quality.resolve_seq2seq(q.model)
            if pair != "default":
                quality.dev_files(q, *pair.split("-"))


def _signature(config: PipelineConfig, step: str, upstream: str) -> str:
    payload = {"step": step, "params": config.params_for(step), "upstream": upstream}
    if step == "unify":
        payload["inputs"] = [asdict(spec) for spec in config.inputs]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _claim_step_dir(folder: Path, signature: str, params: dict) -> None:
    marker = folder / "step.json"
    if marker.is_file():
        if json.loads(marker.read_text(encoding="utf-8")).get("signature") != signature:
            raise ConfigError(
                f"{folder} was made with other parameters or inputs; delete it and the step folders "
                f"after it to redo them, or choose another output folder"
            )
        return
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(marker, {"signature": signature, "params": params})


class PipelineRun:
    def __init__(self, config: PipelineConfig, executor=None, progress: bool = True):
        self.config = config
        self.executor = executor or LocalExecutor(config.workers, progress)
        self.progress = progress
        self.processed: Counter = Counter()  # tasks that did work in this run, by step

    def run(self) -> dict:
        """Run every step; return the report (also written to ``report.json``)."""
        check_assets(self.config)
        out = self.config.output
        out.mkdir(parents=True, exist_ok=True)
        upstream = ""
        for step in self.config.steps:  # every folder checked before any work
            upstream = _signature(self.config, step, upstream)
            _claim_step_dir(step_dir(out, step), upstream, self.config.params_for(step))
        shards: list[str] = []
        for step in self.config.steps:
            shards = self._run_step(step, step_dir(out, step), shards)
        last = step_dir(out, list(self.config.steps)[-1])
        self._merge_final(last, shards)
        report = build_report(self.config, shards, self.processed)
        write_json_atomic(out / "report.json", report)
        return report

    def _run_step(self, step: str, folder: Path, shards: list[str]) -> list[str]:
        if step == "unify":
            return self._unify(folder)
        previous = step_dir(self.config.output, self._previous(step))
        if step == "dedup":
            self._dedup(folder, previous, shards)
        else:
            extra = {"thresholds": self._thresholds(folder, shards)} if step == "quality" else {}
            tasks = [
                (
                    "run_shard",
                    {
                        "step": step,
                        "step_dir": str(folder),
                        "in_path": str(previous / f"{s}.jsonl"),
                        "params": self.config.params_for(step),
                        "write_drops": self.config.write_drops,
                        "extra": extra,
                    },
                )
                for s in shards
                if not steps.shard_done(folder, s)
            ]
            self._execute(step, tasks, needs_torch=step == "quality")
        return shards

    def _previous(self, step: str) -> str:
        names = list(self.config.steps)
        return names[names.index(step) - 1]

    def _execute(self, label: str, tasks: list, needs_torch: bool = False) -> None:
        self.processed[label] += len(tasks)
        self.executor.run(label, tasks, needs_torch=needs_torch)

    def _unify(self, folder: Path) -> list[str]:
        params = self.config.params_for("unify")
        tasks = [
            (
                "unify_input",
                {
                    "spec": asdict(spec),
                    "step_dir": str(folder),
                    "params": params,
                    "write_drops": self.config.write_drops,
                },
            )
            for spec in self.config.inputs
            if not steps.shard_done(folder, spec.name)
        ]
        self._execute("unify", tasks)
        shards = []
        for spec in self.config.inputs:
            shards += json.loads(steps.stats_path(folder, spec.name).read_text(encoding="utf-8"))["shards"]
        return sorted(shards)

    def _dedup(self, folder: Path, previous: Path, shards: list[str]) -> None:
        params = self.config.params_for("dedup")
        index_tasks = [
            (
                "dedup_index_shard",
                {"step_dir": str(folder), "in_path": str(previous / f"{s}.jsonl"), "params": params},
            )
            for s in shards
            if not (folder / "index" / f"{s}.npz").is_file()
        ]
        self._execute("dedup-index", index_tasks)
        if not (folder / "index" / "conflicts.json").is_file():
            self._execute(
                "dedup-conflicts",
                [("dedup_conflicts", {"step_dir": str(folder), "shards": shards, "params": params})],
            )
        filter_tasks = [
            (
                "run_shard",
                {
                    "step": "dedup",
                    "step_dir": str(folder),
                    "in_path": str(previous / f"{s}.jsonl"),
                    "params": params,
                    "write_drops": self.config.write_drops,
                },
            )
            for s in shards
            if not steps.shard_done(folder, s)
        ]
        self._execute("dedup", filter_tasks)

    def _thresholds(self, folder: Path, shards: list[str]) -> dict[str, float]:
        """Dev-loss thresholds of every pair in the data (computed in this process, once; then cached)."""
        path = folder / "thresholds.json"
        if path.is_file():
            return {pair: t["threshold"] for pair, t in json.loads(path.read_text(encoding="utf-8")).items()}
        pairs = sorted(pair_counts(self.config.output, step_dir(self.config.output, "unify")))
        result, scorer = {}, {}
        for pair in pairs:
            config = self.config.step_config("quality", pair)
            model_dir = quality.resolve_seq2seq(config.model)

            def factory(model_dir=model_dir, config=config):
                key = (str(model_dir), json.dumps(asdict(config), sort_keys=True))
                if key not in scorer:
                    scorer[key] = quality.LossScorer(model_dir, config)
                return scorer[key]

            result[pair] = quality.dev_threshold(config, model_dir, *pair.split("-"), factory)
        write_json_atomic(path, result)
        return {pair: t["threshold"] for pair, t in result.items()}

    def _merge_final(self, last: Path, shards: list[str]) -> None:
        final = self.config.output / FINAL_FILE
        newest = max(((last / f"{s}.jsonl").stat().st_mtime for s in shards), default=0.0)
        if final.is_file() and final.stat().st_mtime >= newest:
            return
        tmp = final.with_name(f".{final.name}.tmp")
        with open(tmp, "wb") as target:
            for shard in shards:
                with open(last / f"{shard}.jsonl", "rb") as source:
                    shutil.copyfileobj(source, target)
        tmp.replace(final)
        self.processed["merge"] += 1


def pair_counts(output: Path, unify_dir: Path) -> Counter:
    counts = Counter()
    for stats_file in (unify_dir / "stats").glob("*.json"):
        counts.update(json.loads(stats_file.read_text(encoding="utf-8")).get("pairs", {}))
    return counts


def build_report(config: PipelineConfig, shards: list[str], processed: Counter) -> dict:
    report = {
        "output": str(config.output),
        "shards": len(shards),
        "processed_this_run": dict(processed),
        "steps": {},
    }
    for step in config.steps:
        folder = step_dir(config.output, step)
        names = [spec.name for spec in config.inputs] if step == "unify" else shards
        totals = {"in": 0, "kept": 0, "dropped": Counter(), "malformed": Counter(), "counters": Counter()}
        for name in names:
            stats = json.loads(steps.stats_path(folder, name).read_text(encoding="utf-8"))
            totals["in"] += stats.get("in", 0)
            totals["kept"] += stats.get("kept", 0)
            for key in ("dropped", "malformed", "counters"):
                totals[key].update(stats.get(key, {}))
        report["steps"][step] = {k: dict(v) if isinstance(v, Counter) else v for k, v in totals.items()}
    return report


def summary_table(report: dict) -> str:
    """The report as a fixed-width table: one row per step."""
    rows = [("step", "in", "kept", "dropped", "reasons")]
    for step, s in report["steps"].items():
        reasons = {**s["dropped"], **{f"malformed:{k}": v for k, v in s["malformed"].items()}}
        dropped = sum(s["dropped"].values()) + sum(s["malformed"].values())
        rows.append(
            (
                step,
                str(s["in"]),
                str(s["kept"]),
                str(dropped),
                ", ".join(f"{k}={v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])) or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}  {r[4]}"
        for r in rows
    )
