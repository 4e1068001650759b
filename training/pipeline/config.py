"""The pipeline YAML, parsed into typed step configs (``xplus_release.config``); unknown keys are errors
before any work starts.

# xplus-data run pipeline.yaml
output: runs/my-data          # a folder or any fsspec URL datatrove accepts (s3://...); --output overrides
workers: 2                    # ranks running at once (local processes, Ray actors, Slurm array tasks)
tasks: 4                      # ranks per stage (shard files are spread over them); default: workers
write_drops: true             # dropped pairs go to <step>/drops/ with their reason
engine: local                 # local, ray or slurm (datatrove's executors; see README)
slurm: {partition: cpu, time: "04:00:00", cpus_per_task: 1, mem_per_cpu_gb: 2}  # ray reads the last two
inputs:                       # paths relative to this file
  - {format: nllb, path: raw/eng_Latn-zho_Hans.gz}
  - {format: moses, src_path: raw/x.en, trg_path: raw/x.de, src: en, trg: de}
steps:                        # in this order; any subset that starts with unify
  - unify: {shard_size: 100000, error_budget: 0.01}
  - clean: {}
  - dedup: {hamming: 3, max_conflicts: 2, exact_duplicates: keep_first}
  - langid: {model: facebook/fasttext-language-identification, threshold: 0.5}
  - quality: {model: facebook/nllb-200-distilled-600M, dev: /data/flores200, percentile: 90}
  - instruct: {directions: both, seed: 0}
pairs:                        # per language pair: step parameters that differ from the above
  en-sw: {langid: {threshold: 0.3}}

``--set steps.dedup.hamming=4`` (or ``workers=4``, ``slurm.partition=cpu``) overrides a key of the file.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, create_model, field_validator, model_validator

from xplus_release.config import AtLeastOne, Config, load_yaml_mapping, merge_assignments, parse_overrides
from xplus_release.errors import ConfigError
from xplus_release.training.pipeline.steps import STEPS
from xplus_release.training.pipeline.unify import InputSpec


class PipelineSection(Config):
    """A part of a pipeline file: its errors read as the file's (``steps.dedup.hamming``)."""

    section = "pipeline"
    yaml_keys = True


class _StepsBase(PipelineSection):
    """The steps a pipeline runs, always in ``STEPS`` order; a step left out is None."""

    @model_validator(mode="after")
    def _starts_with_unify(self) -> _StepsBase:
        if getattr(self, STEP_ORDER[0]) is None:
            raise ValueError(f"steps must start with unify and keep the order {', '.join(STEP_ORDER)}")
        return self

    def names(self) -> tuple[str, ...]:
        return tuple(name for name in STEP_ORDER if getattr(self, name) is not None)

    def params(self, step: str) -> dict:
        """The parameters the file gives ``step`` (defaults left out)."""
        return getattr(self, step).model_dump(exclude_unset=True)


STEP_ORDER = tuple(STEPS)
# one optional field per step record: ``steps.dedup.hamming`` is checked by the dedup step's own model
Steps = create_model("Steps", __base__=_StepsBase,
                     **{name: (record.config | None, None) for name, record in STEPS.items()})


class SlurmConfig(PipelineSection):
    """Where and how big each array task is (Slurm); Ray reserves ``cpus_per_task`` and the memory too.
    Each field is also an ``xplus-data run`` flag (``--partition``)."""

    partition: str | None = Field(None, description="slurm: the partition (default: the YAML's slurm.partition)")
    time: str = Field("04:00:00", description="slurm: time limit per array task, e.g. 04:00:00")
    cpus_per_task: AtLeastOne = Field(1, description="slurm and ray: CPUs reserved per rank")
    mem_per_cpu_gb: float = Field(2, description="slurm and ray: memory per CPU, in GB")
    venv_path: str | None = Field(None, description=(
        "slurm: the virtual environment each job activates (default: this interpreter's)"))


class PairConfigs:
    """``pair -> typed config`` of one step, memoised; plain data, so it pickles into Ray and Slurm jobs."""

    def __init__(self, step: str, params: dict):
        self.step, self.params, self._cache = step, params, {}

    def __call__(self, pair: str):
        if pair not in self._cache:
            merged = {**self.params["default"], **self.params["pairs"].get(pair, {})}
            self._cache[pair] = STEPS[self.step].config.build(merged)
        return self._cache[pair]


class PipelineConfig(PipelineSection):
    """The pipeline file; the fields in ``FLAG_FIELDS`` are also ``xplus-data run`` flags."""

    output: str = Field(description="output folder or fsspec URL, e.g. s3://bucket/run (default: the YAML's output:)")
    inputs: list[InputSpec] = Field(min_length=1)
    steps: Steps  # type: ignore[valid-type]
    pairs: dict[str, dict[str, dict]] = Field(default_factory=dict)  # pair -> step -> parameters over the step's own
    workers: AtLeastOne = Field(1, description="ranks running at once (default: the YAML's workers:, else 1)")
    tasks: AtLeastOne | None = Field(None, description="ranks per stage; shard files are spread over them (default: "
                                                       "workers)")
    write_drops: bool = True
    engine: Literal["local", "ray", "slurm"] = Field("local", description=(
        "datatrove executor: local processes, a Ray cluster ($RAY_ADDRESS, else one started here) or Slurm array "
        "jobs (default: the YAML's engine:, else local)"))
    slurm: SlurmConfig = SlurmConfig()

    FLAG_FIELDS: typing.ClassVar[tuple[str, ...]] = ("output", "workers", "engine", "tasks")

    @field_validator("output")
    @classmethod
    def _output_location(cls, out: str) -> str:
        """A URL (``s3://...``) as given; a local folder made absolute, so every worker agrees on it."""
        return out if "://" in out else str(Path(out).expanduser().resolve())

    @field_validator("inputs")
    @classmethod
    def _inputs_beside_file(cls, inputs: list[InputSpec], info: ValidationInfo) -> list[InputSpec]:
        folder = (info.context or {}).get("folder")
        if folder:
            inputs = [spec.model_copy(update={key: _beside(folder, getattr(spec, key))
                                              for key in ("path", "src_path", "trg_path") if getattr(spec, key)})
                      for spec in inputs]
        return inputs

    @field_validator("steps")
    @classmethod
    def _steps_beside_file(cls, steps: _StepsBase, info: ValidationInfo) -> _StepsBase:
        folder = (info.context or {}).get("folder")
        if not folder:
            return steps
        return steps.model_copy(update={name: getattr(steps, name).model_copy(
            update=_relative_paths(name, steps.params(name), folder)) for name in steps.names()})

    @field_validator("pairs")
    @classmethod
    def _pair_overrides(cls, pairs: dict, info: ValidationInfo) -> dict:
        """Each pair's parameters, checked merged over the step's own."""
        steps, folder = info.data.get("steps"), (info.context or {}).get("folder")
        if steps is None:  # its own error is reported
            return pairs
        for pair, overrides in pairs.items():
            for step, params in overrides.items():
                if step not in steps.names():
                    raise ValueError(f"pairs.{pair} overrides {step!r}, which is not in steps")
                try:
                    STEPS[step].config.build({**steps.params(step), **params})
                except ConfigError as err:
                    raise ValueError(f"pairs.{pair}.{step}: {err}") from None
        return {pair: {step: _relative_paths(step, params, folder) for step, params in overrides.items()}
                for pair, overrides in pairs.items()}

    @model_validator(mode="after")
    def _distinct_inputs(self) -> PipelineConfig:
        names = [spec.name for spec in self.inputs]
        if len(set(names)) != len(names):
            raise ValueError(f"two inputs are named alike ({', '.join(names)}); give each a distinct name:")
        return self

    @property
    def ranks(self) -> int:
        return self.tasks or self.workers

    def pair_configs(self, step: str) -> PairConfigs:
        return PairConfigs(step, self.params_for(step))

    def step_config(self, step: str, pair: str = "default"):
        return self.pair_configs(step)(pair)

    def params_for(self, step: str) -> dict:
        """Parameters of a step for every pair with overrides (``None`` = the default)."""
        overrides = {pair: steps[step] for pair, steps in self.pairs.items() if step in steps}
        return {"default": self.steps.params(step), "pairs": overrides}


def _beside(folder: Path, path: str) -> str:
    return str((folder / Path(path).expanduser()).resolve())


def _relative_paths(step: str, params: dict, folder: Path | None) -> dict:
    """Paths in a step's parameters, read from the pipeline file's folder: dev and cache always; a model
    when a file of that name is there (else it is a hub id)."""
    if folder is None:
        return params
    record, resolved = STEPS[step], dict(params)
    for key, value in params.items():
        if isinstance(value, str) and (key in record.path_params or
                                       (key in record.model_params and (folder / value).exists())):
            resolved[key] = _beside(folder, value)
    return resolved


def _step_item(item) -> tuple[str, dict]:
    """``clean`` or ``{clean: {parameters}}`` -> (name, parameters).

    Raises:
        ConfigError: anything else."""
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict) and len(item) == 1:
        name, params = next(iter(item.items()))
        if params is None or isinstance(params, dict):
            return name, params or {}
    raise ConfigError(f"a step must be a name or {{name: {{parameters}}}}, not {item!r}")


def listed_steps(raw) -> dict[str, dict]:
    """The file's list of steps as ``{step: parameters}``, so that ``--set steps.dedup.hamming=4`` reaches a
    step; unknown names are left for the model to report with the closest known one.

    Raises:
        ConfigError: not a list of steps, a step listed twice, or listed out of order.
    """
    if isinstance(raw, Mapping):
        return dict(raw)
    if not isinstance(raw, list) or not raw:
        raise ConfigError("steps must be a non-empty list such as [unify, clean, dedup]")
    steps: dict[str, dict] = {}
    for item in raw:
        name, params = _step_item(item)
        if name in steps:
            raise ConfigError(f"step {name!r} is listed twice")
        steps[name] = params
    order = [STEP_ORDER.index(name) for name in steps if name in STEP_ORDER]
    if order and (order != sorted(order) or order[0] != 0):
        raise ConfigError(f"steps must start with unify and keep the order {', '.join(STEP_ORDER)}")
    return steps


def load_pipeline(path: Path, overrides: Iterable[str] = (), flags: Mapping[str, Any] | None = None,
                  ) -> PipelineConfig:
    """Parse and validate a pipeline YAML (nothing is read or written besides the YAML), with the command's
    ``flags`` (``{"slurm.partition": "cpu"}``), then ``key=value`` ``overrides``, on top.

    Raises:
        ConfigError: missing file, bad YAML, unknown key/step/parameter, invalid value.
    """
    raw = load_yaml_mapping(path, "pipeline")
    raw["steps"] = listed_steps(raw.get("steps"))
    values = merge_assignments(merge_assignments(raw, flags or {}), parse_overrides(overrides))
    values["steps"] = listed_steps(values.get("steps"))  # a whole list may come from --set steps=[...]
    return PipelineConfig.build(values, context={"folder": path.parent.resolve()})
