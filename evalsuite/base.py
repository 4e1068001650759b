"""What every benchmark suite shares: the context a suite runs in, the suite interface, the registry.

A suite (translation, multilingual, reasoning) is one small unit: ``run`` generates into the run folder
(resuming what is there) and returns its scores and timings; ``report`` turns scores into a Markdown
section (and may write plots beside it). The runner (``common.run_suites``) is the only writer of
``run.json`` and ``scores.json``; every ``xplus-eval`` suite command goes through it.
"""

from __future__ import annotations

import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from xplus_release.config import AtLeastOne, Config
from xplus_release.engines import ChatEngine
from xplus_release.errors import ConfigError
from xplus_release.options import ModelOptions, ServerOptions
from xplus_release.registry import is_test_model
from xplus_release.runs import RunFolder


@dataclass(frozen=True)
class SuiteSpec:
    """One registered suite, named as ``"module:Class"`` and modules, imported on use (lm-eval's model
    registry does the same) so that one suite's heavy imports never slow another, nor ``--help``."""

    suite: str  # "module:Class" of its ``Suite``
    options: str | None = None  # "module:Class" of its options model, in a light module: its flags come from it
    command: str | None = None  # module whose ``add_parser(subparsers)`` adds its own ``xplus-eval`` command


# The one registry of suites, in the order ``all`` runs them: a new suite adds its line here.
SUITES: dict[str, SuiteSpec] = {
    "translation": SuiteSpec("xplus_release.evalsuite.translation.suite:TranslationSuite",
                             "xplus_release.evalsuite.translation.options:TranslationOptions",
                             "xplus_release.evalsuite.translation.cli"),
    "multilingual": SuiteSpec("xplus_release.evalsuite.multilingual.suite:MultilingualSuite",
                              "xplus_release.evalsuite.multilingual.options:MultilingualOptions",
                              "xplus_release.evalsuite.multilingual.cli"),
    "reasoning": SuiteSpec("xplus_release.evalsuite.reasoning.suite:ReasoningSuite",
                           "xplus_release.evalsuite.reasoning.options:ReasoningOptions",
                           "xplus_release.evalsuite.reasoning.cli"),
}


class RunOptions(ModelOptions, ServerOptions):
    """How a command runs its suites: the model and engine (``ModelOptions``, flags from ``add_model_arguments``),
    a server it starts (``ServerOptions``), and the run itself."""

    section = "run"
    output: Path | None = Field(None, description="run folder; rerunning into it resumes (default: "
                                "runs/<model>-<command>)", json_schema_extra={"short": "-o"})
    limit: AtLeastOne | None = Field(None, description="items per task: a smoke run, not comparable with the paper")
    force: bool = Field(False, description="regenerate and rescore what the run folder already has")
    data_dir: Path | None = Field(None, description=(
        "datasets fetched by `xplus-eval fetch-data` (default: the HF and OpenCompass caches); for translation "
        "also a FLORES folder with devtest/<code>.devtest files"))
    progress: bool = Field(True, description="progress bars")
    @property
    def client_concurrency(self) -> int:
        """Requests a client keeps in flight: ``--concurrency`` as given, else its default per replica (so the
        clients' concurrency scales with ``--data-parallel-size``)."""
        if "concurrency" in self.model_fields_set:
            return self.concurrency
        return self.concurrency * self.data_parallel_size

    @property
    def needs_own_server(self) -> bool:
        """vLLM refuses data parallelism in one process, so several replicas mean a server even for suites
        that would otherwise run in process."""
        return self.endpoint is None and self.data_parallel_size > 1


@dataclass
class EvalContext:
    """Everything a suite needs to run. ``engine()`` opens the chat engine once, on first use.

    ``model``, ``endpoint`` and ``api_key`` are those of the engine actually used (a server the command
    started has its own URL and key); the rest of the command's settings are ``run_options``."""

    run: RunFolder
    model: str  # registry or served model name
    engine_factory: Callable[[], ChatEngine]
    options: Config  # the suite's own options (its ``Options`` model)
    endpoint: str | None = None  # OpenAI base URL (…/v1) of a server, for harnesses that are its clients
    api_key: str | None = None
    run_options: RunOptions = field(default_factory=RunOptions)
    # hands scores of finished tasks to the runner mid-suite, so a killed run keeps them
    checkpoint: Callable[[dict], None] = field(default=lambda scores: None, repr=False)
    _engine: ChatEngine | None = field(default=None, repr=False)

    def engine(self) -> ChatEngine:
        if self._engine is None:
            self._engine = self.engine_factory()
            self.run.update(engine=self._engine.describe())
        return self._engine

    @property
    def limit(self) -> int | None:
        """Items per task, for smoke runs."""
        return self.run_options.limit

    @property
    def force(self) -> bool:
        """Regenerate and rescore what the run folder already has."""
        return self.run_options.force

    @property
    def data_dir(self) -> Path | None:
        return self.run_options.data_dir

    @property
    def progress(self) -> bool:
        return self.run_options.progress

    @property
    def concurrency(self) -> int:
        """Requests a client keeps in flight against the server (scaled with its replicas by default)."""
        return self.run_options.client_concurrency

    @property
    def max_model_len(self) -> int | None:
        """The served context length, where the command set one."""
        return self.run_options.max_model_len


@dataclass
class SuiteResult:
    """What ``Suite.run`` hands the runner: scores for ``scores.json``, and what ``run.json`` records."""

    scores: dict
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase; the runner adds total_s
    signatures: dict | None = None  # metric signatures (sacrebleu's, the metric model's, versions)


def with_sample_defaults(ctx: EvalContext, sample_dir: Path, **option_defaults) -> EvalContext:
    """For the built-in test model without --data-dir: the suite's embedded sample data and option defaults
    that fit it, so a smoke run (``xplus-eval all --model xplus-tiny``) works offline on a fresh machine.
    Options the user gave still win; any other model is left as it is."""
    if ctx.data_dir is not None or not is_test_model(ctx.model):
        return ctx
    unset = {key: value for key, value in option_defaults.items() if getattr(ctx.options, key) is None}
    ctx.run_options = ctx.run_options.model_copy(update={"data_dir": sample_dir})
    ctx.options = ctx.options.model_copy(update=unset)
    return ctx


class Suite(ABC):
    """One benchmark suite. Subclasses set ``name`` (and register in ``SUITES`` with their options) and
    implement ``run`` and ``report``; the other hooks have defaults that fit a suite without them."""

    name: ClassVar[str]
    needs_server: ClassVar[bool] = True  # False: an in-process engine serves it when no server is needed
    hf_datasets: tuple[str, ...] = ()  # Hub datasets ``xplus-eval fetch-data`` downloads for it

    @abstractmethod
    def run(self, ctx: EvalContext) -> SuiteResult:
        """Generate what is missing, score, return the scores (the runner stores them)."""

    @abstractmethod
    def report(self, run: RunFolder, scores: dict) -> str:
        """A Markdown section for report.md (plots may be written into ``run.path``)."""

    def check_options(self, options: Config, model: str, data_dir: Path | None) -> None:
        """Checks beyond the options' types (task names, assets), made before any server starts."""

    def fetch_data(self, out_dir: Path) -> list[str]:
        """Download data its harness fetches its own way into ``out_dir``; return the failures as lines."""
        return []

    def paper_comparison(self, run: RunFolder, scores: dict) -> list[dict]:
        """Rows ``{"task", "ours", "paper": {model: score}}`` for the combined report's bar plot."""
        return []

    def summary(self, scores: dict) -> str:
        """Lines for the terminal after a run; the runner appends the report's path to the last one."""
        return ""


def load_suite(name: str) -> Suite:
    """Instantiate a registered suite (imported on use, so one suite's heavy imports never slow another).

    Raises:
        ConfigError: unknown suite name; the message lists the valid ones.
    """
    if name not in SUITES:
        raise ConfigError(f"unknown suite {name!r}; choose from: {', '.join(SUITES)}")
    return pkgutil.resolve_name(SUITES[name].suite)()


def suite_options(name: str) -> type[Config]:
    """The options model of suite ``name`` (``Config``, no options, for a suite that registers none)."""
    spec = SUITES.get(name)
    return pkgutil.resolve_name(spec.options) if spec and spec.options else Config


def write_report(run: RunFolder, title: str, sections: list[str]) -> Path:
    """report.md: a header naming model and run, then each suite's section."""
    meta = run.meta
    header = [f"# {title}", "", f"- model: `{meta.get('model')}`"]
    if meta.get("revision"):
        header.append(f"- revision: `{meta['revision']}`")
    header += [f"- created: {meta.get('created')}", ""]
    path = run.path / "report.md"
    path.write_text("\n".join(header + sections) + "\n", encoding="utf-8")
    return path
