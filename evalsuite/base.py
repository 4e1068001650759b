"""What every benchmark suite shares: the context a suite runs in, the suite interface, the registry.

A suite (translation, multilingual, reasoning) is one small unit: ``run`` generates into the run folder
(resuming what is there) and returns its scores; ``report`` turns scores into a Markdown section (and
may write plots beside it). ``xplus-eval all`` runs several suites against one engine and concatenates
their sections into one report.
"""

from __future__ import annotations

import dataclasses
import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from xplus_release.engines import ChatEngine
from xplus_release.errors import ConfigError
from xplus_release.registry import is_test_model
from xplus_release.runs import RunFolder, write_json_atomic

# suite name -> "module:Class"; each suite module adds its line here.
SUITES: dict[str, str] = {
    "translation": "xplus_release.evalsuite.translation.suite:TranslationSuite",
    "multilingual": "xplus_release.evalsuite.multilingual.suite:MultilingualSuite",
    "reasoning": "xplus_release.evalsuite.reasoning.suite:ReasoningSuite",
}


@dataclass
class EvalContext:
    """Everything a suite needs to run. ``engine()`` opens the chat engine once, on first use."""

    run: RunFolder
    model: str  # registry or served model name
    engine_factory: Callable[[], ChatEngine]
    endpoint: str | None = None  # OpenAI base URL (…/v1) of a server, for harnesses that are its clients
    api_key: str | None = None
    limit: int | None = None  # items per task, for smoke runs
    force: bool = False  # regenerate and rescore what the run folder already has
    data_dir: Path | None = None
    progress: bool = True
    options: dict = field(default_factory=dict)  # suite-specific options, by name
    _engine: ChatEngine | None = field(default=None, repr=False)

    def engine(self) -> ChatEngine:
        if self._engine is None:
            self._engine = self.engine_factory()
        return self._engine


def with_sample_defaults(ctx: EvalContext, sample_dir: Path, **option_defaults) -> EvalContext:
    """For the built-in test model without --data-dir: the suite's embedded sample data and option defaults
    that fit it, so a smoke run (``xplus-eval all --model xplus-tiny``) works offline on a fresh machine.
    Options the user gave still win; any other model is left as it is."""
    if ctx.data_dir is not None or not is_test_model(ctx.model):
        return ctx
    given = {key: value for key, value in ctx.options.items() if value is not None}
    return dataclasses.replace(ctx, data_dir=sample_dir, options={**option_defaults, **given})


class Suite(ABC):
    name: str

    @abstractmethod
    def run(self, ctx: EvalContext) -> dict:
        """Generate what is missing, score, write ``scores.json[<name>]`` and return the scores."""

    @abstractmethod
    def report(self, run: RunFolder, scores: dict) -> str:
        """A Markdown section for report.md (plots may be written into ``run.path``)."""


def load_suite(name: str) -> Suite:
    """Instantiate a registered suite (imported on use, so one suite's heavy imports never slow another).

    Raises:
        ConfigError: unknown suite name; the message lists the valid ones.
    """
    if name not in SUITES:
        raise ConfigError(f"unknown suite {name!r}; choose from: {', '.join(SUITES)}")
    module, _, attr = SUITES[name].partition(":")
    return getattr(importlib.import_module(module), attr)()


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


__all__ = ["EvalContext", "Suite", "SUITES", "load_suite", "write_report", "write_json_atomic"]
