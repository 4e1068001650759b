"""The work of one shard of one step, as picklable top-level tasks: the local process pool and the
datatrove executor run exactly these functions. A task writes its outputs atomically and then its
``stats/<shard>.json``; that file's existence is what "this shard is done" means on a rerun.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np

from xplus_release.runs import write_json_atomic
from xplus_release.training.pipeline import dedup, quality
from xplus_release.training.pipeline.clean import clean_pairs
from xplus_release.training.pipeline.config import build_step_config
from xplus_release.training.pipeline.instruct import format_pairs
from xplus_release.lid import load_lid_model, resolve_lid_model
from xplus_release.training.pipeline.langid import identify_pairs
from xplus_release.training.pipeline.records import PipelineDataError, ShardOutput, read_records
from xplus_release.training.pipeline.unify import InputSpec, pair_record, read_input


def stats_path(step_dir: Path, shard: str) -> Path:
    return step_dir / "stats" / f"{shard}.json"


def write_stats(step_dir: Path, shard: str, stats: dict) -> None:
    path = stats_path(step_dir, shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, stats)


def shard_done(step_dir: Path, shard: str) -> bool:
    return stats_path(step_dir, shard).is_file()


def configs_by_pair(step: str, params: dict):
    """``pair -> typed config`` for a step, from ``PipelineConfig.params_for`` (memoised per pair)."""

    @functools.lru_cache(maxsize=None)
    def lookup(pair: str):
        return build_step_config(step, {**params["default"], **params["pairs"].get(pair, {})})

    return lookup


def _shard_output(step_dir: Path, shard: str, write_drops: bool, malformed: bool = False) -> ShardOutput:
    return ShardOutput(
        step_dir / f"{shard}.jsonl",
        step_dir / "drops" / f"{shard}.jsonl" if write_drops else None,
        step_dir / "malformed" / f"{shard}.jsonl" if malformed else None,
    )


# ---------------------------------------------------------------- unify (one task per input)


def unify_input(spec: dict, step_dir: str, params: dict, write_drops: bool) -> None:
    """Read one input and write its shards ``<name>-<n>.jsonl`` (and malformed lines aside).

    Raises:
        PipelineDataError: the input's malformed share is over ``error_budget``, or a file is missing.
    """
    spec, step_dir = InputSpec(**spec), Path(step_dir)
    config = build_step_config("unify", params["default"])
    if shard_done(step_dir, spec.name):
        return
    counts, malformed, shards = Counter(), Counter(), []
    writer = None
    for row in read_input(spec):
        if writer is None or writer.kept.count >= config.shard_size:
            writer = _next_unify_shard(writer, step_dir, spec.name, shards)
        if row.bad:
            malformed[row.bad] += 1
            writer.bad_line(row.bad, f"{spec.files()[0]}:{row.line}", row.raw)
            continue
        record = pair_record(row, spec, f"{shards[-1]}:{writer.kept.count}")
        counts[f"{record['src']}-{record['trg']}"] += 1
        writer.kept.write(record)
    if writer is not None:
        writer.commit()
    _check_error_budget(spec, malformed, sum(counts.values()), config.error_budget, step_dir)
    for shard in shards:
        write_stats(step_dir, shard, {"shard": shard})
    write_stats(
        step_dir,
        spec.name,
        {
            "input": spec.name,
            "in": sum(counts.values()) + sum(malformed.values()),
            "kept": sum(counts.values()),
            "dropped": {},
            "malformed": dict(malformed),
            "pairs": dict(counts),
            "shards": shards,
        },
    )


def _next_unify_shard(
    writer: ShardOutput | None, step_dir: Path, name: str, shards: list[str]
) -> ShardOutput:
    if writer is not None:
        writer.commit()
    shards.append(f"{name}-{len(shards):05d}")
    return _shard_output(step_dir, shards[-1], write_drops=False, malformed=True)


def _check_error_budget(
    spec: InputSpec, malformed: Counter, good: int, budget: float, step_dir: Path
) -> None:
    bad = sum(malformed.values())
    if bad and bad > budget * (bad + good):
        reasons = ", ".join(f"{k}={v}" for k, v in malformed.most_common())
        raise PipelineDataError(
            f"input {spec.name}: {bad} of {bad + good} lines are malformed ({reasons}), "
            "over the error budget "
            f"{budget:g}; see {step_dir / 'malformed'}, fix the input or raise unify.error_budget"
        )


# ---------------------------------------------------------------- per-shard filters


def _write_results(results: Iterator[tuple[dict, str | None, dict]], out: ShardOutput, stats: dict) -> None:
    dropped, kept = Counter(), 0
    for record, reason, detail in results:
        if reason is None:
            out.kept.write(record)
            kept += 1
        else:
            dropped[reason] += 1
            out.drop(record, reason, **detail)
    stats.update(kept=kept, dropped=dict(dropped))


def _counting(records, stats: dict):
    for record in records:
        stats["in"] += 1
        yield record


def run_shard(
    step: str, step_dir: str, in_path: str, params: dict, write_drops: bool, extra: dict | None = None
) -> None:
    """One shard of clean, langid, quality, instruct, or phase 3 of dedup."""
    step_dir, in_path = Path(step_dir), Path(in_path)
    shard = in_path.stem
    if shard_done(step_dir, shard):
        return
    stats, counters = {"shard": shard, "in": 0}, Counter()
    out = _shard_output(step_dir, shard, write_drops)
    try:
        records = _counting(read_records(in_path), stats)
        _write_results(
            _STEP_RESULTS[step](records, step_dir, shard, params, extra or {}, counters), out, stats
        )
    except BaseException:
        out.abort()
        raise
    out.commit()
    stats["counters"] = dict(counters)
    write_stats(step_dir, shard, stats)


def _clean_results(records, step_dir, shard, params, extra, counters):
    lookup = configs_by_pair("clean", params)
    for record in records:
        for cleaned, reason in clean_pairs([record], lookup(f"{record['src']}-{record['trg']}"), counters):
            yield cleaned, reason, {}


@functools.lru_cache(maxsize=4)
def _lid_model(model: str):
    return load_lid_model(resolve_lid_model(model, setting="langid.model"))


def _langid_results(records, step_dir, shard, params, extra, counters):
    lookup = configs_by_pair("langid", params)
    default = lookup("default")
    yield from identify_pairs(records, _lid_model(default.model), lookup, default.batch_size)


@functools.lru_cache(maxsize=2)
def _scorer(model: str, params_json: str):
    config = build_step_config("quality", json.loads(params_json))
    return quality.LossScorer(quality.resolve_seq2seq(model), config)


def _quality_results(records, step_dir, shard, params, extra, counters):
    config = build_step_config("quality", params["default"])
    scorer = _scorer(config.model, json.dumps(params["default"], sort_keys=True))
    yield from quality.filter_pairs(records, scorer, extra["thresholds"], config.chunk)


def _instruct_results(records, step_dir, shard, params, extra, counters):
    lookup = configs_by_pair("instruct", params)
    for record in records:
        for formatted in format_pairs([record], lookup(f"{record['src']}-{record['trg']}")):
            yield formatted, None, {}


def _dedup_results(records, step_dir, shard, params, extra, counters):
    index_path = step_dir / "index" / f"{shard}.npz"
    index = dedup.load_index(index_path)
    conflicts = np.load(dedup.conflicts_path(index_path))
    yield from dedup.filter_shard(records, index, conflicts, configs_by_pair("dedup", params))


_STEP_RESULTS = {
    "clean": _clean_results,
    "langid": _langid_results,
    "quality": _quality_results,
    "instruct": _instruct_results,
    "dedup": _dedup_results,
}


# ---------------------------------------------------------------- dedup phases 1 and 2


def dedup_index_shard(step_dir: str, in_path: str, params: dict) -> None:
    """Phase 1: the shard's fingerprints and length-rule statuses, ``index/<shard>.npz``."""
    in_path = Path(in_path)
    target = Path(step_dir) / "index" / f"{in_path.stem}.npz"
    if target.is_file():
        return
    index = dedup.shard_index(read_records(in_path), configs_by_pair("dedup", params))
    dedup.save_index(target, index)


def dedup_conflicts(step_dir: str, shards: list[str], params: dict) -> None:
    """Phase 2: conflicts over every shard of every pair (one task; memory = the index)."""
    step_dir = Path(step_dir)
    marker = step_dir / "index" / "conflicts.json"
    if marker.is_file():
        return
    paths = [step_dir / "index" / f"{shard}.npz" for shard in shards]
    summary = dedup.count_conflicts(paths, configs_by_pair("dedup", params), step_dir / "index")
    write_json_atomic(marker, summary)
