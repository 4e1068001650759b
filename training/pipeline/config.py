"""The pipeline YAML, parsed into typed step configs; unknown keys are errors before any work starts.

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
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from xplus_release.training.pipeline.clean import CleanConfig
from xplus_release.training.pipeline.dedup import DedupConfig
from xplus_release.training.pipeline.instruct import InstructConfig
from xplus_release.training.pipeline.langid import LangIdConfig
from xplus_release.training.pipeline.quality import QualityConfig
from xplus_release.training.pipeline.unify import InputSpec

from xplus_release.errors import ConfigError


@dataclass
class UnifyConfig:
    shard_size: int = 100_000  # pairs per shard (the unit of parallelism and of resume)
    error_budget: float = 0.01  # share of malformed lines per input above which the run stops


STEP_CONFIGS = {
    "unify": UnifyConfig,
    "clean": CleanConfig,
    "dedup": DedupConfig,
    "langid": LangIdConfig,
    "quality": QualityConfig,
    "instruct": InstructConfig,
}
STEP_ORDER = tuple(STEP_CONFIGS)
ENGINES = ("local", "ray", "slurm")
TOP_KEYS = ("output", "workers", "tasks", "write_drops", "engine", "slurm", "inputs", "steps", "pairs")
_PATH_PARAMS = {("quality", "dev"), ("quality", "cache")}
_MODEL_PARAMS = {("langid", "model"), ("quality", "model")}


def _unknown(kind: str, key: str, known) -> ConfigError:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown {kind} {key!r}{hint}; known: {', '.join(known)}")


def build_step_config(step: str, params: dict):
    """The typed config of one step.

    Raises:
        ConfigError: unknown step or parameter, or an invalid value.
    """
    if step not in STEP_CONFIGS:
        raise _unknown("step", step, STEP_ORDER)
    return _typed(STEP_CONFIGS[step], params, step, f"{step} parameter")


def _typed(cls, params: dict, where: str, kind: str):
    names = [f.name for f in dataclasses.fields(cls)]
    for key in params:
        if key not in names:
            raise _unknown(kind, key, names)
    try:
        return cls(**params)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from None


@dataclass
class SlurmConfig:
    """Where and how big each array task is (Slurm); Ray reserves ``cpus_per_task`` and the memory too."""

    partition: str | None = None
    time: str = "04:00:00"
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 2
    venv_path: str | None = None  # activated by each job (default: this interpreter's venv)


class PairConfigs:
    """``pair -> typed config`` of one step, memoised; plain data, so it pickles into Ray and Slurm jobs."""

    def __init__(self, step: str, params: dict):
        self.step, self.params, self._cache = step, params, {}

    def __call__(self, pair: str):
        if pair not in self._cache:
            merged = {**self.params["default"], **self.params["pairs"].get(pair, {})}
            self._cache[pair] = build_step_config(self.step, merged)
        return self._cache[pair]


@dataclass
class PipelineConfig:
    output: str  # a local folder or an fsspec URL
    inputs: list[InputSpec]
    steps: dict[str, dict]  # step -> parameters, in run order
    pairs: dict[str, dict[str, dict]] = field(default_factory=dict)
    workers: int = 1
    tasks: int | None = None
    write_drops: bool = True
    engine: str = "local"
    slurm: SlurmConfig = field(default_factory=SlurmConfig)

    @property
    def ranks(self) -> int:
        return max(1, self.tasks or self.workers)

    def pair_configs(self, step: str) -> PairConfigs:
        return PairConfigs(step, self.params_for(step))

    def step_config(self, step: str, pair: str = "default"):
        return self.pair_configs(step)(pair)

    def params_for(self, step: str) -> dict:
        """Parameters of a step for every pair with overrides (``None`` = the default)."""
        overrides = {pair: steps[step] for pair, steps in self.pairs.items() if step in steps}
        return {"default": self.steps[step], "pairs": overrides}


def _resolve_paths(step: str, params: dict, base: Path) -> dict:
    resolved = dict(params)
    for key, value in params.items():
        if not isinstance(value, str):
            continue
        if (step, key) in _PATH_PARAMS:
            resolved[key] = str((base / Path(value).expanduser()).resolve())
        elif (step, key) in _MODEL_PARAMS and (base / value).exists():
            resolved[key] = str((base / value).resolve())  # a local file next to the YAML; else a hub id
    return resolved


def _step_item(item) -> tuple[str, dict]:
    """``clean`` or ``{clean: {parameters}}`` -> (name, parameters)."""
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict) and len(item) == 1:
        name, params = next(iter(item.items()))
        if params is None or isinstance(params, dict):
            return name, params or {}
    raise ConfigError(f"a step must be a name or {{name: {{parameters}}}}, not {item!r}")


def _parse_steps(raw, base: Path) -> dict[str, dict]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("steps must be a non-empty list such as [unify, clean, dedup]")
    steps: dict[str, dict] = {}
    for item in raw:
        name, params = _step_item(item)
        if name in steps:
            raise ConfigError(f"step {name!r} is listed twice")
        build_step_config(name, params)
        steps[name] = _resolve_paths(name, params, base)
    order = [STEP_ORDER.index(name) for name in steps]
    if order != sorted(order) or order[0] != 0:
        raise ConfigError(f"steps must start with unify and keep the order {', '.join(STEP_ORDER)}")
    return steps


def _parse_inputs(raw, base: Path) -> list[InputSpec]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("inputs must be a non-empty list of {format: ..., path: ...}")
    specs = []
    names = [f.name for f in dataclasses.fields(InputSpec)]
    for item in raw:
        for key in item:
            if key not in names:
                raise _unknown("input key", key, names)
        item = dict(item)
        for key in ("path", "src_path", "trg_path"):
            if item.get(key):
                item[key] = str((base / Path(item[key]).expanduser()).resolve())
        specs.append(InputSpec(**item))
    seen = [spec.name for spec in specs]
    if len(set(seen)) != len(seen):
        raise ConfigError(f"two inputs are named alike ({', '.join(seen)}); give each a distinct name:")
    return specs


def _parse_pairs(raw, steps: dict[str, dict], base: Path) -> dict[str, dict[str, dict]]:
    pairs = {}
    for pair, overrides in (raw or {}).items():
        if not isinstance(overrides, dict):
            raise ConfigError(f"pairs.{pair} must map step names to parameters")
        for step, params in overrides.items():
            if step not in steps:
                raise ConfigError(f"pairs.{pair} overrides {step!r}, which is not in steps")
            build_step_config(step, {**steps[step], **params})
        pairs[pair] = {step: _resolve_paths(step, params, base) for step, params in overrides.items()}
    return pairs


def load_pipeline(path: Path, output: str | None = None) -> PipelineConfig:
    """Parse and validate a pipeline YAML (nothing is read or written besides the YAML).

    Raises:
        ConfigError: missing file, bad YAML, unknown key/step/parameter, invalid value.
    """
    if not path.is_file():
        raise ConfigError(f"pipeline file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    for key in raw:
        if key not in TOP_KEYS:
            raise _unknown("pipeline key", key, TOP_KEYS)
    base = path.parent.resolve()
    steps = _parse_steps(raw.get("steps"), base)
    engine = raw.get("engine", "local")
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    out = output or raw.get("output")
    if not out:
        raise ConfigError("no output folder: set output: in the YAML or pass --output")
    return PipelineConfig(
        output=output_location(str(out)),
        inputs=_parse_inputs(raw.get("inputs"), base),
        steps=steps,
        pairs=_parse_pairs(raw.get("pairs"), steps, base),
        workers=int(raw.get("workers", 1)),
        tasks=raw.get("tasks"),
        write_drops=bool(raw.get("write_drops", True)),
        engine=engine,
        slurm=_parse_slurm(raw.get("slurm")),
    )


def output_location(out: str) -> str:
    """A URL (``s3://...``) as given; a local folder made absolute, so every worker agrees on it."""
    return out if "://" in out else str(Path(out).expanduser().resolve())


def _parse_slurm(raw) -> SlurmConfig:
    return _typed(SlurmConfig, raw or {}, "slurm", "slurm key")
