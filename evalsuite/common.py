"""The one runner of every ``xplus-eval`` suite command: ``translation``, ``multilingual``, ``reasoning``
and ``all`` are each ``run_suites`` with one or more suites, one set of run options (``RunOptions``), one
output-folder rule (``default_output``) and one model lifecycle (``open_backend``).

The runner is the only writer of ``run.json`` and ``scores.json``: suites return their scores and timings.
A suite that raises does not stop the others: its error is recorded (run.json ``failed``, a report
section) and the exit status names it. A suite that finished with the same settings in an earlier
invocation is not run again (``--force`` reruns everything); a suite that was cut off resumes itself.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from xplus_release.config import Config
from xplus_release.engines import ChatEngine
from xplus_release.errors import ConfigError, UnknownLanguageError, XPlusError
from xplus_release.evalsuite.base import (
    EvalContext,
    RunOptions,
    Suite,
    load_suite,
    suite_options,
    write_report,
)
from xplus_release.evalsuite.plots import comparison_plot
from xplus_release.options import ModelOptions
from xplus_release.runs import RunFolder
from xplus_release.storage import json_hash_forms

MODEL_FIELDS = tuple(ModelOptions.model_fields)  # flags of their own group (``add_model_arguments``)


def default_output(model: str, command: str) -> Path:
    """The one output-folder rule: ``runs/<model>-<command>`` (``/`` and odd characters become ``_``)."""
    return Path("runs") / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', model.strip('/'))}-{command}"


def run_suites(run_opts: RunOptions, options: Mapping[str, Config], command: str, title: str) -> int:
    """Run the suites named by ``options`` (in order) against one model; write scores.json, report.md and
    plots into the run folder. Returns the exit code.

    Raises:
        UnknownModelError, MissingAssetError: no endpoint, and the model is not on this machine (checked first).
        ConfigError: a bad suite option (checked before any model loads or server starts).
        RunFolderError: the output folder holds a run of another model.
        EndpointError, ServerStartError: no usable server.
        EngineGaveUpError: the server this command started exited more often than --max-restarts allows.
    """
    if run_opts.endpoint is None:  # a model that is not here is one line before anything else is checked
        from xplus_release.registry import resolve_model

        resolve_model(run_opts.model, max_model_len=run_opts.max_model_len)
    suites = {name: load_suite(name) for name in options}
    for name, suite in suites.items():
        suite.check_options(options[name], run_opts.model, run_opts.data_dir)
    run = RunFolder.open(run_opts.output or default_output(run_opts.model, command), run_opts.model)
    done = run.meta.get("suites_done", {})
    keys = {name: _settings_key(run_opts, opts) for name, opts in options.items()}
    pending = [n for n in suites if run_opts.force or done.get(n) not in keys[n]]
    failed = _run_pending(run_opts, run, suites, pending, options, keys) if pending else {}
    report = _write_outputs(run, suites, failed, title)
    if failed and len(suites) == 1:  # one suite: its error is the command's, one line
        print(f"error: {next(iter(failed.values()))}", file=sys.stderr)
        return 1
    _print_summaries(run, suites, report)
    if failed:
        print(f"error: suites failed: {', '.join(failed)} (see {report}); rerun to retry them", file=sys.stderr)
        return 1
    return 0


def run_suite(suite: Suite, ctx: EvalContext) -> dict:
    """Run one suite in ``ctx`` and store what it returns: ``scores.json[<name>]``, and its signatures and
    timings in run.json. Returns the scores. Whatever the suite raises propagates (after timing it)."""
    if isinstance(ctx.options, Mapping):
        ctx.options = suite_options(suite.name).build(ctx.options)
    ctx.checkpoint = lambda scores: ctx.run.write_scores(suite.name, scores)
    start = time.perf_counter()
    timings: dict[str, float] = {}
    try:
        result = suite.run(ctx)
        timings = {k: round(v, 3) for k, v in result.timings.items()}
        ctx.run.write_scores(suite.name, result.scores)
        if result.signatures is not None:
            ctx.run.update(signatures={suite.name: result.signatures})
        return result.scores
    finally:
        ctx.run.update(timings={suite.name: {**timings, "total_s": round(time.perf_counter() - start, 3)}})


@contextlib.contextmanager
def open_backend(run_opts: RunOptions, needs_server: bool) -> Iterator[tuple[Callable[[], ChatEngine], object]]:
    """What generates for this command: the given ``--endpoint``, a vLLM server started for the command
    when some suite needs one, else vLLM in this process (loaded on first use). Yields an engine factory
    (one engine, shared by the suites) and the endpoint (None in process)."""
    if run_opts.endpoint or needs_server or run_opts.needs_own_server:
        from xplus_release.evalsuite.endpoint import serve_or_attach

        with serve_or_attach(run_opts) as endpoint:
            yield functools.cache(lambda: endpoint.engine(run_opts.client_concurrency)), endpoint
        return
    engine = functools.cache(lambda: open_in_process_engine(run_opts))  # opened on first call, then shared
    try:
        yield engine, None
    finally:
        if engine.cache_info().currsize:  # it was opened
            engine().close()


def open_in_process_engine(run_opts: RunOptions) -> ChatEngine:
    return run_opts.open_engine()  # no endpoint here: vLLM in this process


def _run_pending(run_opts: RunOptions, run: RunFolder, suites: dict[str, Suite], pending: list[str],
                 options: Mapping[str, Config], keys: dict) -> dict[str, str]:
    failed: dict[str, str] = {}
    started = time.perf_counter()
    with open_backend(run_opts, any(suites[n].needs_server for n in pending)) as (engine, endpoint):
        if endpoint is not None:
            run.update(engine=endpoint.describe, timings={"engine_start_s": round(endpoint.started_s, 3)})
        for name in pending:
            ctx = EvalContext(
                run=run, model=endpoint.model if endpoint else run_opts.model, engine_factory=engine,
                options=options[name], endpoint=endpoint.base_url if endpoint else None,
                api_key=endpoint.api_key if endpoint else None, run_options=run_opts)
            attempt = functools.partial(_run_one, suites[name], ctx, several=len(suites) > 1)
            # a server this command started is supervised: a suite it died under resumes once it is back
            error = endpoint.rerun_after_restarts(f"suite {name}", attempt) if endpoint else attempt()
            if error:
                failed[name] = error
            else:
                run.update(suites_done={name: keys[name][0]})
    run.update(failed=failed, timings={"total_s": round(time.perf_counter() - started, 3)})
    return failed


def _run_one(suite: Suite, ctx: EvalContext, several: bool) -> str | None:
    """Run one suite; return its error as one line, or None. Bad input is not a suite failure: it stops
    the command (one line, exit 2), as it would have before the run if it could be checked then."""
    if several:
        print(f"== {suite.name}", file=sys.stderr)
    try:
        run_suite(suite, ctx)
        return None
    except (ConfigError, UnknownLanguageError):
        raise
    except XPlusError as err:
        error = _one_line(str(err))
    except Exception as err:  # noqa: BLE001 - a bug in one suite must not lose the others' results
        traceback.print_exc()
        error = f"{type(err).__name__}: {err}"
    if several:
        print(f"error: suite {suite.name} failed: {error}", file=sys.stderr)
    return error


def _one_line(message: str) -> str:
    """The first line, plus the last line of a log tail the message may carry (where the cause usually is)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) > 1:
        return f"{lines[0]} {lines[-1]}"
    return lines[0] if lines else message


def _write_outputs(run: RunFolder, suites: dict[str, Suite], failed: dict, title: str) -> Path:
    scores = run.read_scores()
    sections = []
    for name, suite in suites.items():
        if name in failed:
            sections.append(f"## {name}: FAILED\n\n{failed[name]}\n")
        if name in scores:
            sections.append(suite.report(run, scores[name]))
            rows = suite.paper_comparison(run, scores[name])
            if rows:
                comparison_plot(rows, run.path / f"{name}_vs_paper.png", title=f"{name}: {run.meta.get('model')}")
    return write_report(run, title, sections)


def _print_summaries(run: RunFolder, suites: dict[str, Suite], report: Path) -> None:
    """Each suite's summary on stdout; the report's path after the last line."""
    scores = run.read_scores()
    lines = [line for name, suite in suites.items() if name in scores
             for line in suite.summary(scores[name]).splitlines()]
    if lines:
        lines[-1] += f"; report: {report}"
        print("\n".join(lines))
    else:
        print(f"report: {report}", file=sys.stderr)


def _settings_key(run_opts: RunOptions, options: Config) -> tuple[str, str]:
    """What must match for a finished suite to count as done: the options that change its scores (hashed;
    the key as stored now, then as stored by earlier versions, which a finished suite may still carry)."""
    settings = {"limit": run_opts.limit, "data_dir": str(run_opts.data_dir) if run_opts.data_dir else None,
                **options.model_dump()}
    return json_hash_forms(settings)
