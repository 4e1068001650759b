"""lm-eval as a client of a vLLM OpenAI server: task configs, the two API backends, one evaluation call.

Multiple-choice tasks need loglikelihoods: ``local-completions`` sends the tokenised context+continuation
to ``/v1/completions`` with ``echo=True, logprobs=1, max_tokens=1`` and sums the returned prompt-token
logprobs of the continuation. Generation tasks go through ``local-chat-completions`` with the model's chat
template (applied by the server), greedy, thinking off unless asked for; HumanEval+ continues its
function heads through ``local-completions``, as lm-eval defines the task.

Tasks come from lm-eval's own task folders and, for xIFEval, XGPQA and xMGSM, from BenchMAX's folders,
which join lm-eval's index as its ``include_path`` (``benchmax.py``); their YAML and ``!function``
modules run as they are.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from xplus_release.errors import ConfigError, MissingAssetError
from xplus_release.evalsuite.fetch import hub_snapshot
from xplus_release.evalsuite.multilingual.benchmax import COMMIT as BENCHMAX_COMMIT
from xplus_release.evalsuite.multilingual.benchmax import BenchmaxCheckout
from xplus_release.evalsuite.multilingual.data import check_cached, local_copy, point_at_local_copy
from xplus_release.evalsuite.multilingual.offline_assets import use_fetched_modules
from xplus_release.evalsuite.multilingual.tasks import TaskSpec
from xplus_release.internals import load_lm_eval_yaml


@dataclass
class HarnessConfig:
    endpoint: str  # OpenAI base URL, …/v1
    model: str  # served model name
    tokenizer: str  # local folder or hub id of the model's tokenizer (for context lengths)
    api_key: str | None = None
    max_length: int = 2048
    concurrency: int = 8
    limit: int | None = None
    max_gen_toks: int | None = None  # overrides every generation task's own limit (smoke runs)
    chat_template_kwargs: dict = field(default_factory=dict)
    data_dir: Path | None = None
    benchmax: BenchmaxCheckout | None = None  # where BenchMAX's task folders are (BenchMAX tasks only)

    def request_signature(self) -> dict:
        """What, besides the model, decides a task's numbers; a stored task is reused only if it matches."""
        return {"limit": self.limit, "max_gen_toks": self.max_gen_toks,
                "chat_template_kwargs": self.chat_template_kwargs, "max_length": self.max_length,
                "data_dir": str(self.data_dir) if self.data_dir else None,
                "benchmax": self.benchmax.source if self.benchmax else None}


class Harness:
    """One lm-eval task manager and the two API models, built once and reused for every task."""

    def __init__(self, config: HarnessConfig):
        self.config = config

    @property
    def manager(self):
        return task_manager(tuple(self.config.benchmax.include_paths()) if self.config.benchmax else ())

    def task_config(self, lm_task: str) -> dict:
        """The full lm-eval config of one task, pointed at a local copy when ``--data-dir`` has one.

        Raises:
            ConfigError: lm-eval does not know the task (a different lm-eval version is installed).
            MissingAssetError: the dataset is neither in the data dir nor (offline) in the cache.
        """
        entry = self.manager.task_index.get(lm_task)
        if entry is None or entry.yaml_path is None:
            where = (f"the BenchMAX folders under {self.config.benchmax.root} do not define" if self.config.benchmax
                     else "lm-eval does not define")
            raise ConfigError(f"{where} task {lm_task!r}; install the pinned lm-eval (pip install "
                              f"'lm-eval[api]==0.4.13') and use BenchMAX at {BENCHMAX_COMMIT}")
        use_fetched_modules(self.config.data_dir)  # before a task's module imports evaluate (HumanEval+)
        cfg = _load_with_functions(entry.yaml_path, lm_task)
        for key in ("tag", "group"):
            cfg.pop(key, None)
        folder = local_copy(self.config.data_dir, cfg["dataset_path"], cfg.get("dataset_name"))
        if folder is not None:
            return point_at_local_copy(cfg, folder)
        snapshot = hub_snapshot(self.config.data_dir, cfg["dataset_path"])
        if snapshot is not None:
            cfg["dataset_path"] = str(snapshot)  # datasets reads a snapshot's README configs like the Hub's
            return cfg
        check_cached(cfg["dataset_path"], cfg.get("dataset_name"), lm_task)
        return cfg

    def dataset_of(self, lm_task: str) -> tuple[str, str | None]:
        cfg = load_lm_eval_yaml(self.manager.task_index[lm_task].yaml_path, resolve_functions=False)
        return cfg["dataset_path"], cfg.get("dataset_name")

    @cached_property
    def completions_lm(self):
        return self._api_model("local-completions", "completions", tokenizer=self.config.tokenizer,
                               tokenizer_backend="huggingface")

    @cached_property
    def chat_lm(self):
        return self._api_model("local-chat-completions", "chat/completions", think_end_token="</think>")

    def _api_model(self, name: str, route: str, **extra):
        from lm_eval.api.registry import get_model

        args = {
            "model": self.config.model,
            "base_url": f"{self.config.endpoint.rstrip('/')}/{route}",
            "num_concurrent": self.config.concurrency,
            "max_retries": 3,
            "max_length": self.config.max_length,
            "header": {"Authorization": f"Bearer {self.config.api_key or 'EMPTY'}"},
            **extra,
        }
        return get_model(name).create_from_arg_obj(args)

    def evaluate(self, spec: TaskSpec, lm_tasks: list[str]) -> dict:
        """Run lm-eval on ``lm_tasks`` (languages of one of our tasks); returns lm-eval's result dict."""
        import lm_eval

        configs = [self._with_generation_overrides(self.task_config(t), spec) for t in lm_tasks]
        chat = spec.kind == "chat"
        with _code_eval_allowed(spec.unsafe_code):
            try:
                return lm_eval.simple_evaluate(
                    model=self.chat_lm if chat else self.completions_lm,
                    tasks=configs,
                    limit=self.config.limit,
                    log_samples=True,
                    apply_chat_template=chat,
                    confirm_run_unsafe_code=spec.unsafe_code,
                    task_manager=self.manager,
                    bootstrap_iters=0,
                )
            except (FileNotFoundError, ConnectionError) as err:
                raise MissingAssetError(f"task {spec.name}: {err}; run `xplus-eval fetch-data` on a "
                                        f"connected machine, or pass --data-dir") from None

    def _with_generation_overrides(self, cfg: dict, spec: TaskSpec) -> dict:
        if spec.kind == "loglikelihood":
            return cfg
        gen = dict(cfg.get("generation_kwargs") or {})
        if self.config.max_gen_toks is not None:
            gen["max_gen_toks"] = self.config.max_gen_toks
        if spec.kind == "chat" and self.config.chat_template_kwargs:
            gen["chat_template_kwargs"] = self.config.chat_template_kwargs
        cfg["generation_kwargs"] = gen
        return cfg


def _load_with_functions(path: Path, lm_task: str) -> dict:
    """Load a task YAML, importing the functions it names, whose modules have needs of their own.

    Raises:
        ConfigError: a Python package the task's code imports is not installed.
        MissingAssetError: a metric HumanEval+ loads from the Hub at import is not cached.
    """
    try:
        return load_lm_eval_yaml(path, resolve_functions=True)
    except ModuleNotFoundError as err:
        raise ConfigError(f"task {lm_task} needs the Python package {err.name!r}; install it "
                          f"(pip install 'lm-eval[api,ifeval]==0.4.13')") from None
    except FileNotFoundError as err:  # evaluate.load("code_eval") offline, in lm-eval's humaneval utils
        raise MissingAssetError(
            f"task {lm_task} scores with Hugging Face evaluate's code_eval metric, which is not cached ({err}); on a "
            "connected machine run `xplus-eval fetch-data --output DIR` and pass --data-dir DIR, or `python -c \"import evaluate; "
            "evaluate.load('code_eval')\"`") from None


@functools.cache
def task_manager(include_paths: tuple[str, ...] = ()):
    """lm-eval's task index plus BenchMAX's folders; building it parses every task YAML lm-eval ships, so
    once per process and set of folders."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=list(include_paths) or None)


@contextlib.contextmanager
def _code_eval_allowed(allowed: bool) -> Iterator[None]:
    """HumanEval+ executes model code through HF ``evaluate``'s code_eval, which requires this opt-in."""
    previous = os.environ.get("HF_ALLOW_CODE_EVAL")
    if allowed:
        os.environ["HF_ALLOW_CODE_EVAL"] = "1"
    try:
        yield
    finally:
        if allowed and previous is None:
            os.environ.pop("HF_ALLOW_CODE_EVAL", None)
        elif allowed:
            os.environ["HF_ALLOW_CODE_EVAL"] = previous


def jsonable(value):
    """lm-eval samples hold numpy numbers and tuples; make them plain JSON."""
    from lm_eval.utils import handle_non_serializable

    return json.loads(json.dumps(value, default=handle_non_serializable, ensure_ascii=False))
