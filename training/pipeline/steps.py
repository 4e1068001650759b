"""The pipeline's steps, one record each: its parameters (config model), what it runs (a filter, or the
datatrove stages it needs), its help, what it needs on this machine, which parameters are paths, and
the folder it writes. ``STEPS`` is the only list of steps: the pipeline file's ``steps:``, the
``xplus-data <step>`` commands, the run's stages and the checks before a run all come from it.

A step's folder is its name (``dedup/``), whatever its position, so that adding a step renames nothing;
``migrate_position_folders`` renames the numbered folders of older runs (``03-dedup/``) so they resume.

Adding a filter: a config model and a ``BaseFilter`` taking ``(configs, exclusion_writer)`` in its own
module, and one ``StepRecord`` here, in the position it runs at.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datatrove.io import get_datafolder
from pydantic import Field

from xplus_release.config import AtLeastOne, Config
from xplus_release.errors import ConfigError
from xplus_release.lid import resolve_lid_model
from xplus_release.training.pipeline import quality
from xplus_release.training.pipeline.clean import CleanConfig, CleanFilter
from xplus_release.training.pipeline.dedup import DedupConfig, DedupConflicts, DedupFilter, DedupSignatures
from xplus_release.training.pipeline.instruct import InstructConfig, InstructStep, chat_adapter
from xplus_release.training.pipeline.langid import LangIdConfig, LangIdFilter
from xplus_release.training.pipeline.records import record_adapter
from xplus_release.training.pipeline.unify import UnifyReader


class UnifyConfig(Config):
    section = "unify"
    yaml_keys = True

    shard_size: AtLeastOne = Field(100_000, description="pairs per shard (the unit of parallelism and of resume)")
    error_budget: float = Field(0.01, description="share of malformed lines per input above which the run stops")


@dataclass
class Stage:
    """One datatrove stage: its pipeline and how many ranks run it."""

    name: str
    pipeline: list
    tasks: int
    loads_torch: bool = False  # spawned, not forked: a forked CUDA/OpenMP runtime can hang


@dataclass
class StepPlan:
    """What a step's stages are built from (by ``runner.build_stages``)."""

    name: str
    folder: str  # its output folder (local path or URL)
    read: list  # the reader of the previous step's shards ([] for the first step)
    write: Any  # the writer of its kept records into ``folder``
    drops: Any  # the exclusion writer into ``folder/drops`` (None when drops are not kept)
    configs: Callable  # pair -> its config (``PairConfigs``)
    ranks: int
    inputs: list  # the pipeline's InputSpecs
    data_pairs: Callable[[], list[str]]  # the language pairs unify found (read after unify ran)


@dataclass(frozen=True)
class StepRecord:
    """Everything about one step. ``middle`` is the step's one datatrove step between reader and writer,
    made from ``(configs, drops)``; a step needing more stages gives ``stages`` instead."""

    name: str
    config: type[Config]
    help: str  # what it does (``xplus-data --help``)
    example: str  # one of its parameters, as ``--set`` takes it
    middle: Callable[[Callable, Any], Any] | None = None
    stages: Callable[[StepPlan], list[Stage]] | None = None
    adapter: Callable = record_adapter  # how its writer writes a document
    # checks what it needs that a run does not make (a model, dev files), for one pair or "default"
    check_assets: Callable[[Any, str], None] | None = None
    path_params: frozenset[str] = frozenset()  # paths, read from the pipeline file's folder
    model_params: frozenset[str] = frozenset()  # a path when such a file is beside the pipeline file, else a hub id

    @property
    def folder(self) -> str:
        return self.name

    def build_stages(self, plan: StepPlan) -> list[Stage]:
        if self.stages is not None:
            return self.stages(plan)
        return [Stage(self.name, [*plan.read, self.middle(plan.configs, plan.drops), plan.write], plan.ranks)]


def _unify_stages(plan: StepPlan) -> list[Stage]:
    unify = plan.configs("default")
    reader = UnifyReader(plan.inputs, plan.folder, unify.shard_size, unify.error_budget)
    return [Stage(plan.name, [reader, plan.write], len(plan.inputs))]


def _dedup_stages(plan: StepPlan) -> list[Stage]:
    index = f"{plan.folder}/index"
    return [Stage("dedup-signatures", [*plan.read, DedupSignatures(index, plan.configs)], plan.ranks),
            Stage("dedup-conflicts", [DedupConflicts(index, plan.configs)], 1),
            Stage(plan.name, [*plan.read, DedupFilter(index, plan.configs, plan.drops), plan.write], plan.ranks)]


def _quality_stages(plan: StepPlan) -> list[Stage]:
    thresholds = quality.QualityThresholds(plan.folder, plan.data_pairs, plan.configs)
    filtered = quality.QualityFilter(plan.folder, plan.configs, plan.drops)
    return [Stage("quality-thresholds", [thresholds], 1, loads_torch=True),
            Stage(plan.name, [*plan.read, filtered, plan.write], plan.ranks, loads_torch=True)]


def _langid_assets(config: LangIdConfig, pair: str) -> None:
    resolve_lid_model(config.model, setting="langid.model")


def _quality_assets(config: quality.QualityConfig, pair: str) -> None:
    quality.resolve_seq2seq(config.model)
    if pair != "default":
        quality.dev_files(config, *pair.split("-"))


_RECORDS = (
    StepRecord("unify", UnifyConfig, "read one raw input (nllb, opus100, tsv, moses, jsonl) into pair-record JSONL",
               "error_budget=0.05", stages=_unify_stages),
    StepRecord("clean", CleanConfig,
               "remove invalid characters, normalise Unicode and punctuation spacing, drop empty pairs",
               "normalization=NFKC", middle=CleanFilter),
    StepRecord("dedup", DedupConfig, "length rules, then SimHash near-duplicate removal (per language pair)",
               "hamming=4", stages=_dedup_stages),
    StepRecord("langid", LangIdConfig, "fastText language ID of both sides; drop mismatches",
               "model=tests/data/lid/lid.176.ftz", middle=LangIdFilter, check_assets=_langid_assets,
               model_params=frozenset({"model"})),
    StepRecord("quality", quality.QualityConfig,
               "drop pairs whose target loss under a seq2seq model is above the FLORES dev percentile",
               "dev=/data/flores200", stages=_quality_stages, check_assets=_quality_assets,
               path_params=frozenset({"dev", "cache"}), model_params=frozenset({"model"})),
    StepRecord("instruct", InstructConfig,
               "wrap pairs in training instruction templates (chat JSONL for xplus-train)", "directions=forward",
               middle=lambda configs, drops: InstructStep(configs), adapter=chat_adapter),
)
# name -> record, in the order the steps run
STEPS: dict[str, StepRecord] = {record.name: record for record in _RECORDS}


def step_dir(output: str, step: str) -> str:
    return f"{output.rstrip('/')}/{STEPS[step].folder}"


def migrate_position_folders(output: str) -> list[tuple[str, str]]:
    """Rename step folders named by position (``05-quality``, as runs made them before steps had stable
    folders) to the step's folder, so that an older run resumes. Returns the (old, new) names moved.

    Raises:
        ConfigError: both the numbered and the stable folder of a step exist.
    """
    out = get_datafolder(output)
    if not out.isdir(""):
        return []
    moved = []
    for name in sorted(out.ls("", detail=False)):
        name = name.rstrip("/").rsplit("/", 1)[-1]
        match = re.fullmatch(r"\d\d-(\w+)", name)
        if not match or match.group(1) not in STEPS or not out.isdir(name):
            continue
        stable = STEPS[match.group(1)].folder
        if out.exists(stable):
            raise ConfigError(f"{output} holds both {name}/ and {stable}/: keep one (the older is {name}/)")
        out.mv(name, stable, recursive=True)
        moved.append((name, stable))
    return moved
