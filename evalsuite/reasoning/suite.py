"""The reasoning suite: the paper's reasoning benchmarks through OpenCompass (HumanEval+ through EvalPlus),
against the vLLM server.

Options: ``ReasoningOptions`` (``options.py``), which also make the ``xplus-eval reasoning`` flags.

Resumable per task: a task already in ``scores.json`` is not rerun (``--force`` reruns it), OpenCompass
itself reuses the predictions a killed run left in ``opencompass/run/``, and EvalPlus the samples in
``evalplus/``. ``scores.json["reasoning"]["fidelity"]`` says, per task, how it was run beside the paper.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from statistics import mean

from xplus_release.errors import ConfigError, MissingAssetError, UnknownModelError, XPlusError
from xplus_release.evalsuite.base import EvalContext, Suite, SuiteResult, with_sample_defaults
from xplus_release.evalsuite.fidelity import render_fidelity
from xplus_release.evalsuite.reasoning.config import ABBR_SEP, ModelSettings, render_config
from xplus_release.evalsuite.reasoning.fidelity import task_fidelity
from xplus_release.evalsuite.reasoning.harness import (
    OPENCOMPASS_VERSION,
    opencompass_env,
    run_opencompass,
)
from xplus_release.evalsuite.reasoning.humaneval_plus import fetch_problems, problems_file, run_humaneval_plus
from xplus_release.evalsuite.reasoning.options import ReasoningOptions
from xplus_release.evalsuite.reasoning.tasks import TASKS, ReasoningTask, select_tasks
from xplus_release.markdown import markdown_table, score_cell
from xplus_release.paper import load_table
from xplus_release.registry import get_spec, hub_offline, resolve_model
from xplus_release.runs import RunFolder

# Tiny MATH-500 and MBPP files in OpenCompass's data layout (see its README): what xplus-tiny runs on.
SAMPLE_DATA = Path(__file__).parent / "sample_data"
SAMPLE_DEFAULTS = {"tasks": "math,mbpp"}


class ReasoningTaskError(XPlusError):
    """OpenCompass ran but produced no score for some tasks; the message names them and their logs."""


class ReasoningSuite(Suite):
    name = "reasoning"

    def run(self, ctx: EvalContext) -> SuiteResult:
        """Run every pending task through OpenCompass and return the suite's scores.

        Raises:
            ConfigError: no endpoint, an unknown task, a judge task without --judge-endpoint, a bad option.
            MissingAssetError: a selected task's data is not on this machine.
            ManagedEnvError: OpenCompass itself failed (its last log lines are in the message).
            ReasoningTaskError: some tasks got no score (the others are kept in scores.json; rerun retries).
        """
        if not ctx.endpoint:
            raise ConfigError("the reasoning suite runs OpenCompass against a server: pass --endpoint URL, "
                              "or run it through xplus-eval reasoning/all, which start one")
        ctx = with_sample_defaults(ctx, SAMPLE_DATA, **SAMPLE_DEFAULTS)
        opts: ReasoningOptions = ctx.options
        tasks, notes = select_tasks(opts.tasks, judge_available=bool(opts.judge_endpoint))
        tasks, notes = _drop_remote_scorers(tasks, notes, explicit=bool(opts.tasks))
        signature = _signature(ctx)
        previous = ctx.run.read_scores().get(self.name, {})
        work_dir, evalplus_dir = ctx.run.path / "opencompass", ctx.run.path / "evalplus"
        if ctx.force or previous.get("signature", signature) != signature:
            # the harnesses would reuse predictions made with other settings: start their folders afresh
            previous = {}
            shutil.rmtree(work_dir, ignore_errors=True)
            shutil.rmtree(evalplus_dir, ignore_errors=True)
        done = {n: s for n, s in previous.get("tasks", {}).items() if n in {t.name for t in tasks}}
        pending = [t for t in tasks if t.name not in done]
        scores = {"tasks": done, "failed": {}, "skipped": notes, "signature": signature,
                  "fidelity": {t.name: task_fidelity(t, signature) for t in tasks}}
        timings = {"generation_s": 0.0, "scoring_s": 0.0, "harness_start_s": 0.0}
        opencompass_tasks = [t for t in pending if t.harness == "opencompass"]
        if pending:
            data_root, hf_cache = _data_locations(ctx.data_dir)
            _check_data(opencompass_tasks, data_root, hf_cache)
            problems = problems_file(ctx.data_dir) if len(opencompass_tasks) < len(pending) else None
            if opencompass_tasks:
                rows, timings = self._opencompass(ctx, opencompass_tasks, work_dir, data_root, hf_cache)
                _collect(opencompass_tasks, rows, scores, work_dir)
            if problems is not None:
                self._humaneval_plus(ctx, problems, evalplus_dir, scores)
        if scores["failed"]:
            ctx.checkpoint(scores)  # the tasks that did finish are kept
            raise ReasoningTaskError(f"reasoning tasks failed: {'; '.join(f'{k}: {v}' for k, v in scores['failed'].items())}")
        return SuiteResult(scores, timings=timings)

    def report(self, run: RunFolder, scores: dict) -> str:
        return render_report(run, scores)

    def paper_comparison(self, run: RunFolder, scores: dict) -> list[dict]:
        """Rows for the combined report's bar plot: our score beside the paper's, where the paper has one."""
        paper = _paper_scores()
        return [{"task": t["paper_name"], "ours": t["score"], "paper": paper.get(t["paper_name"], {})}
                for t in scores.get("tasks", {}).values() if t.get("score") is not None]

    @property
    def hf_datasets(self) -> tuple[str, ...]:
        """Hub datasets some tasks load through `datasets` (``xplus-eval fetch-data`` downloads them)."""
        return tuple(dict.fromkeys(d for t in TASKS.values() for d in t.hf_datasets))

    def check_options(self, options: ReasoningOptions, model: str, data_dir: Path | None) -> None:
        """Check the task names before a server starts (same errors as ``run``)."""
        select_tasks(options.tasks, judge_available=bool(options.judge_endpoint))

    def summary(self, scores: dict) -> str:
        lines = [f"{t['paper_name']:<14} {t['score']:6.2f}  ({t['metric']})" for t in scores["tasks"].values()]
        return "\n".join([*lines, f"{len(scores['tasks'])} reasoning tasks scored"])

    def fetch_data(self, out_dir: Path) -> list[str]:
        """Download OpenCompass's data archives into ``out_dir/opencompass`` (OpenCompass's own downloader).

        Returns the paths that could not be fetched, with the reason.
        """
        from xplus_release.evalsuite.reasoning.harness import OPENCOMPASS_ENV

        root = out_dir / "opencompass"
        root.mkdir(parents=True, exist_ok=True)
        paths = list(dict.fromkeys(p for t in TASKS.values() for p in t.data))
        worker = Path(__file__).with_name("oc_fetch_worker.py")
        root = root.resolve()  # the worker runs in root: whatever OpenCompass leaves where it starts stays there
        rows = OPENCOMPASS_ENV.run_worker(worker, [{"path": p} for p in paths], env={"COMPASS_DATA_CACHE": str(root)},
                                          cwd=root)
        failures = [f"{r['path']}: {r['error'] or 'not found after download'}" for r in rows if not r["ok"]]
        return failures + fetch_problems(out_dir)

    def _humaneval_plus(self, ctx: EvalContext, problems: Path, work_dir: Path, scores: dict) -> None:
        """HumanEval+ through EvalPlus; a failure is recorded like an OpenCompass task's, the others kept."""
        from xplus_release.managed_env import ManagedEnvError

        try:
            scores["tasks"]["humaneval_plus"] = run_humaneval_plus(
                ctx.model, ctx.endpoint, ctx.api_key, work_dir, problems, ctx.limit,
                {**_sandbox_limits(ctx.options), "parallel": 1}, ctx.options.score_timeout)
        except ManagedEnvError as err:
            scores["failed"]["humaneval_plus"] = str(err).splitlines()[0]

    def _opencompass(self, ctx: EvalContext, tasks: list[ReasoningTask], work_dir: Path, data_root: Path | None,
                     hf_cache: Path | None) -> tuple[list[dict], dict[str, float]]:
        opts: ReasoningOptions = ctx.options
        work_dir.mkdir(parents=True, exist_ok=True)
        config = work_dir / "xplus_config.py"
        in_process = ctx.limit is not None if opts.in_process is None else opts.in_process
        config.write_text(render_config(tasks, _model_settings(ctx), _judge_settings(opts), ctx.limit, work_dir,
                                        in_process=in_process), encoding="utf-8")
        return run_opencompass(config, work_dir, opencompass_env(data_root, hf_cache), _sandbox_limits(opts),
                               opts.score_timeout)


def _sandbox_limits(opts: ReasoningOptions) -> dict:
    """Limits on the scoring process and every process it spawns (model-written code runs there)."""
    return {"memory_gb": opts.code_memory_gb, "cpu_seconds": opts.code_cpu_seconds}


def _model_settings(ctx: EvalContext) -> ModelSettings:
    opts: ReasoningOptions = ctx.options
    return ModelSettings(
        served_name=ctx.model, base_url=ctx.endpoint, api_key=ctx.api_key,
        tokenizer=_absolute_if_local(opts.tokenizer or _tokenizer_for(ctx.model)), thinking=opts.thinking == "on",
        max_out_len=opts.max_tokens,
        # the served context length: OpenCompass cuts each item's max_out_len to fit it, where vLLM would
        # reject the request outright
        max_seq_len=ctx.max_model_len or get_spec(ctx.model).max_model_len or 32768,
        concurrency=ctx.concurrency,
    )


def _judge_settings(opts: ReasoningOptions) -> ModelSettings | None:
    if not opts.judge_endpoint:
        return None
    return ModelSettings(served_name=opts.judge_model, base_url=opts.judge_endpoint,
                         api_key=opts.judge_api_key, tokenizer="gpt-4", thinking=False, max_out_len=4096)


def _tokenizer_for(model: str) -> str:
    """The model's local folder, so OpenCompass never fetches a tokenizer; a hub id when it is not local."""
    try:
        return resolve_model(model).path
    except (MissingAssetError, UnknownModelError):
        return model


def _absolute_if_local(path_or_id: str) -> str:
    """A local folder as an absolute path (OpenCompass runs in its work folder), a hub id as it is."""
    path = Path(path_or_id).expanduser()
    return str(path.resolve()) if path.exists() else path_or_id


def _drop_remote_scorers(tasks, notes, explicit: bool):
    if not hub_offline():
        return tasks, notes
    remote = [t for t in tasks if t.remote_scorer]
    if remote and explicit:
        raise ConfigError(f"{', '.join(t.name for t in remote)} are scored by a remote service "
                          f"({remote[0].remote_scorer}), unreachable offline; leave them out of --tasks")
    notes = notes + [f"{t.name}: skipped, scored by {t.remote_scorer}, unreachable offline" for t in remote]
    return [t for t in tasks if not t.remote_scorer], notes


def _data_locations(data_dir: Path | None) -> tuple[Path, Path | None]:
    """OpenCompass data root and hub cache: ``--data-dir`` (fetch-data's layout) or their own defaults."""
    if data_dir is None:
        return Path(os.environ.get("COMPASS_DATA_CACHE") or Path.home() / ".cache" / "opencompass"), None
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise MissingAssetError(f"--data-dir {data_dir} is not a folder; create it with xplus-eval fetch-data")
    hf = data_dir / "hf" / "hub"
    return data_dir / "opencompass", hf if hf.is_dir() else None


def _check_data(tasks: list[ReasoningTask], data_root: Path, hf_cache: Path | None) -> None:
    """Fail before any generation if a task's data is missing (offline, OpenCompass would try to download)."""
    missing = [f"{t.name} ({data_root / p})" for t in tasks for p in t.data if not (data_root / p).exists()]
    if hub_offline():
        cached = _cached_datasets(hf_cache)
        missing += [f"{t.name} (hub dataset {d})" for t in tasks for d in t.hf_datasets if d not in cached]
    if missing:
        raise MissingAssetError(
            f"reasoning data missing: {'; '.join(missing)}; run `xplus-eval fetch-data --output DIR` on a "
            "connected machine, copy DIR here and pass --data-dir DIR"
        )


def _cached_datasets(hf_cache: Path | None) -> set[str]:
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(hf_cache)  # None: the default cache
    except CacheNotFound:  # no cache folder at all: nothing is cached
        return set()
    return {r.repo_id for r in info.repos if r.repo_type == "dataset"}


def _collect(tasks: list[ReasoningTask], rows: list[dict], scores: dict, work_dir: Path) -> None:
    """Turn OpenCompass's summary rows into per-task scores; a task without numbers is recorded as failed."""
    summary = next((r["summary"] for r in rows if "summary" in r), None)
    by_task: dict[str, dict[str, dict[str, float]]] = {}
    for row in rows:
        if "dataset" not in row or ABBR_SEP not in row["dataset"]:
            continue
        task, _, dataset = row["dataset"].partition(ABBR_SEP)
        value = _number(row["value"])
        if value is not None:
            by_task.setdefault(task, {}).setdefault(dataset, {})[row["metric"]] = value
    for task in tasks:
        datasets = by_task.get(task.name)
        if not datasets:
            scores["failed"][task.name] = (f"OpenCompass produced no score (summary: {summary}); "
                                           f"see the logs under {work_dir / 'run' / 'logs'}")
            continue
        # the summary lists a dataset's main metric first; a task's score is the mean over its datasets
        primary = {name: next(iter(metrics.values())) for name, metrics in datasets.items()}
        scores["tasks"][task.name] = {
            "paper_name": task.paper_name, "metric": task.metric, "score": round(mean(primary.values()), 4),
            "datasets": datasets, "summary": summary,
        }


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None  # OpenCompass writes "-" for a dataset it could not score


def _signature(ctx: EvalContext) -> dict:
    opts: ReasoningOptions = ctx.options
    return {
        "harness": f"opencompass=={OPENCOMPASS_VERSION}", "thinking": opts.thinking,
        "max_out_len": opts.max_tokens, "limit": ctx.limit,
        "judge": opts.judge_model if opts.judge_endpoint else None,
    }


def _paper_scores() -> dict[str, dict[str, float]]:
    """Paper numbers by benchmark name: Table 5 reports Qwen3-8B on the code tasks (Figure 7 is a plot)."""
    return {row["benchmark"]: {"Qwen3-8B": float(row["qwen3_8b"])} for row in load_table("code_tasks")}


def render_report(run: RunFolder, scores: dict) -> str:
    paper = _paper_scores()
    sig = scores.get("signature", {})
    lines = ["## Reasoning (OpenCompass)", "",
             f"{sig.get('harness')}, thinking {sig.get('thinking')}, max_out_len {sig.get('max_out_len') or 'dataset default'}"
             + (f", limit {sig['limit']} items per dataset (smoke run: not comparable)" if sig.get("limit") else ""),
             ""]
    lines += markdown_table(["task", "metric", "score", "paper Qwen3-8B"], (
        [t["paper_name"], t["metric"], f"{t['score']:.2f}", score_cell(paper.get(t["paper_name"], {}).get("Qwen3-8B"))]
        for t in scores.get("tasks", {}).values()), 2)
    for name, reason in scores.get("failed", {}).items():
        lines.append(f"- **{name} failed**: {reason}")
    for note in scores.get("skipped", []):
        lines.append(f"- {note}")
    lines += ["", ("Paper numbers: Table 5 (code tasks, Qwen3-8B); the other reasoning results are only "
                   "plotted (Figure 7)."), ""]
    lines += render_fidelity(scores.get("fidelity", {}))
    return "\n".join(lines)

