"""The sweep file: which models, which suites with which options, where the run folders go.

    # xplus-eval sweep my-sweep.yaml
    name: my-sweep
    output: sweep-runs/my-sweep
    suites:
      translation: {langs: [en, zh, de]}
      multilingual: {tasks: xnli}
    models:
      - {name: xplus-8b, model: LLaMAX/Qwen3-XPlus-8B, paper_name: Qwen3-XPlus-8B}
      - {name: qwen3-8b, model: Qwen/Qwen3-8B, tensor_parallel_size: 2}

Each suite's options are those of ``xplus-eval all`` (``--translation-langs`` is ``translation: {langs:}``),
validated by the suite's own options model; unknown keys are an error, as everywhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from xplus_release.config import AtLeastOne, Config, load_yaml_mapping
from xplus_release.errors import ConfigError
from xplus_release.evalsuite.base import SUITES, suite_options

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a model's name is its run folder's name


class SweepModel(Config):
    section = "sweep model"
    yaml_keys = True

    name: str = Field(description="the model's row in the leaderboard and its run folder under output/")
    model: str | None = Field(None, description="registry name, local folder or hub id (the served name with endpoint)")
    endpoint: str | None = Field(None, description="an OpenAI-compatible server already serving it")
    thinking: bool | None = Field(None, description="Qwen3 thinking for the multilingual and reasoning suites")
    tensor_parallel_size: AtLeastOne = 1
    data_parallel_size: AtLeastOne = 1
    max_model_len: AtLeastOne | None = None
    paper_name: str | None = Field(None, description="the model's name in the paper's tables (its numbers beside)")

    @field_validator("name")
    @classmethod
    def _folder_name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("must be letters, digits, '.', '_' or '-' (it names a folder)")
        return value

    @model_validator(mode="after")
    def _model_or_endpoint(self):
        if self.model is None and self.endpoint is None:
            raise ValueError(f"model {self.name}: give model (or endpoint with model its served name)")
        return self

    @property
    def model_id(self) -> str:
        return self.model or self.name

    @property
    def gpus(self) -> int:
        """GPUs its vLLM server takes: replicas × GPUs per replica (none when it uses an endpoint)."""
        return 0 if self.endpoint else self.tensor_parallel_size * self.data_parallel_size


class SlurmSettings(Config):
    section = "slurm"
    yaml_keys = True

    partition: str | None = None
    gpus_per_task: AtLeastOne | None = Field(None, description="default: each model's tensor × data parallel size")
    time: str | None = Field(None, description="wall-clock limit per model, as sbatch's --time (e.g. 24:00:00)")
    extra: tuple[str, ...] = Field((), description="more sbatch options, e.g. --mem=200G or --account=X")
    setup: tuple[str, ...] = Field((), description="shell lines before the run (module load, source venv)")


class Sweep(Config):
    section = "sweep"
    yaml_keys = True

    name: str = Field(description="the sweep's name; its output folder holds its runs only")
    output: Path = Field(description="folder of the run folders (one per model) and the leaderboard")
    suites: dict[str, dict[str, Any]] = Field(description="suite -> its options, as in xplus-eval all")
    models: tuple[SweepModel, ...]
    limit: AtLeastOne | None = Field(None, description="items per task: a smoke run")
    data_dir: Path | None = None
    reference: str | None = Field(None, description="the model others are tested against (paired bootstrap)")
    slurm: SlurmSettings = SlurmSettings()

    @field_validator("suites")
    @classmethod
    def _known_suites(cls, value: dict) -> dict:
        unknown = [name for name in value if name not in SUITES]
        if unknown or not value:
            raise ValueError(f"unknown suite {', '.join(unknown) or '(none)'}; choose from: {', '.join(SUITES)}")
        for name, options in value.items():
            suite_options(name).build(options or {})  # a bad option: ConfigError naming it, before anything runs
        return {name: dict(options or {}) for name, options in value.items()}

    @model_validator(mode="after")
    def _unique_names(self):
        names = [m.name for m in self.models]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"models named twice: {', '.join(twice)}; give each model its own name")
        if not names:
            raise ValueError("the sweep lists no models; add some under models:")
        if self.reference is not None and self.reference not in names:
            raise ValueError(f"reference {self.reference!r} is not a model of the sweep ({', '.join(names)})")
        return self

    def model(self, name: str) -> SweepModel:
        """Raises: ConfigError: no model of that name (the message lists them)."""
        for model in self.models:
            if model.name == name:
                return model
        raise ConfigError(f"no model named {name!r} in sweep {self.name}; choose from: "
                          f"{', '.join(m.name for m in self.models)}")

    def suite_config(self, model: SweepModel) -> dict[str, dict]:
        """Each suite's options for one model (its ``thinking`` set where the suite has that option)."""
        config = {name: dict(options) for name, options in self.suites.items()}
        if model.thinking is not None:
            if "multilingual" in config:
                config["multilingual"]["thinking"] = model.thinking
            if "reasoning" in config:
                config["reasoning"]["thinking"] = "on" if model.thinking else "off"
        return config


SHIPPED = Path(__file__).with_name("sweeps")  # sweep files the package ships, by name


def sweep_path(path: Path) -> Path:
    """``path``, or the shipped sweep of that name (``paper-table7``) when no such file exists."""
    shipped = SHIPPED / f"{path.name.removesuffix('.yaml')}.yaml"
    return shipped if not path.exists() and path.parent == Path(".") and shipped.is_file() else path


def load_sweep(path: Path) -> Sweep:
    """Raises: ConfigError: missing file, not YAML, an unknown key or suite, a bad option, a duplicate name."""
    return Sweep.build(load_yaml_mapping(sweep_path(path), "sweep"))
