"""Running suites against one server into one run folder: what ``all`` and the single-suite commands share.

A suite that raises does not stop the others: its error is recorded (run.json ``failed``, a report
section) and the exit status names it. A suite that finished with the same settings in an earlier
invocation is not run again (``--force`` reruns everything); a suite that was cut off resumes itself.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import sys
import time
import traceback
from pathlib import Path

from xplus_release.evalsuite.base import EvalContext, Suite, load_suite, write_report
from xplus_release.evalsuite.endpoint import serve_or_attach
from xplus_release.evalsuite.plots import comparison_plot

from xplus_release.engines.supervisor import DEFAULT_MAX_RESTARTS
from xplus_release.errors import XPlusError
from xplus_release.runs import RunFolder


def add_run_arguments(parser: argparse.ArgumentParser, default_output: str) -> None:
    group = parser.add_argument_group("run")
    group.add_argument("--output", "-o", default=default_output, metavar="DIR",
                       help=f"run folder; rerunning into it resumes (default: {default_output})")
    group.add_argument("--limit", type=int, metavar="N", help="items per task: a smoke run, not comparable with the paper")
    group.add_argument("--force", action="store_true", help="regenerate and rescore what the run folder already has")
    group.add_argument("--data-dir", type=Path, metavar="DIR",
                       help="datasets fetched by `xplus-eval fetch-data` (default: the HF and OpenCompass caches)")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")
    group.add_argument("--max-restarts", type=int, default=DEFAULT_MAX_RESTARTS, metavar="N",
                       help="when the vLLM server this command started exits, restart it and resume the suite, at "
                            f"most N times within 10 minutes; past that, exit 1 keeping what was generated "
                            f"(default {DEFAULT_MAX_RESTARTS})")


def run_suites(args: argparse.Namespace, names: list[str], options: dict[str, dict], title: str) -> int:
    """Run ``names`` in order against one server; write scores.json, report.md and plots. Returns the exit code.

    Raises:
        ConfigError: an unknown suite or a bad suite option (checked before any server starts), --limit < 1,
            --max-restarts < 0.
        RunFolderError: --output holds a run of another model.
        EndpointError, ServerStartError: no usable server.
        EngineGaveUpError: the server this command started exited more often than --max-restarts allows.
    """
    if args.limit is not None and args.limit < 1:
        from xplus_release.errors import ConfigError

        raise ConfigError("--limit must be at least 1")
    if getattr(args, "max_restarts", 0) < 0:
        from xplus_release.errors import ConfigError

        raise ConfigError("--max-restarts must be 0 or more")
    suites = {name: load_suite(name) for name in names}
    for name, suite in suites.items():
        if hasattr(suite, "check_options"):
            suite.check_options(options.get(name, {}))
    run = RunFolder.open(args.output, args.model)
    done = run.meta.get("suites_done", {})
    keys = {name: _settings_key(args, options.get(name, {})) for name in names}
    pending = [n for n in names if args.force or done.get(n) != keys[n]]
    failed: dict[str, str] = {}
    if pending:
        failed = _run_pending(args, run, suites, pending, options, keys)
    _write_outputs(run, suites, names, failed, title)
    print(f"report: {run.path / 'report.md'}", file=sys.stderr)
    if failed:
        print(f"error: suites failed: {', '.join(failed)} (see {run.path / 'report.md'}); rerun to retry them",
              file=sys.stderr)
        return 1
    return 0


def _run_pending(args, run: RunFolder, suites: dict[str, Suite], pending: list[str], options: dict,
                 keys: dict) -> dict[str, str]:
    failed: dict[str, str] = {}
    started = time.perf_counter()
    with serve_or_attach(args) as endpoint:
        run.update(engine=endpoint.describe, timings={"engine_start_s": round(endpoint.started_s, 3)})
        for name in pending:
            ctx = EvalContext(run=run, model=endpoint.model, engine_factory=lambda: endpoint.engine(args.concurrency),
                              endpoint=endpoint.base_url, api_key=endpoint.api_key, limit=args.limit,
                              force=args.force, data_dir=args.data_dir, progress=not args.no_progress,
                              options=options.get(name, {}))
            error = endpoint.rerun_after_restarts(f"suite {name}", functools.partial(_run_one, run, suites[name], ctx))
            if error:
                failed[name] = error
            else:
                run.update(suites_done={name: keys[name]})
    run.update(failed=failed, timings={"total_s": round(time.perf_counter() - started, 3)})
    return failed


def _run_one(run: RunFolder, suite: Suite, ctx: EvalContext) -> str | None:
    """Run one suite; return its error as one line, or None. Time it (the suite may add its own split)."""
    print(f"== {suite.name}", file=sys.stderr)
    start = time.perf_counter()
    try:
        suite.run(ctx)
        error = None
    except XPlusError as err:
        error = _one_line(str(err))
    except Exception as err:  # noqa: BLE001 - a bug in one suite must not lose the others' results
        traceback.print_exc()
        error = f"{type(err).__name__}: {err}"
    total = time.perf_counter() - start
    split = dict(run.meta.get("timings", {}).get(suite.name, {}))
    split["total_s"] = round(total, 3)
    run.update(timings={suite.name: split})
    if error:
        print(f"error: suite {suite.name} failed: {error}", file=sys.stderr)
    return error


def _one_line(message: str) -> str:
    """The first line, plus the last line of a log tail the message may carry (where the cause usually is)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) > 1:
        return f"{lines[0]} {lines[-1]}"
    return lines[0] if lines else message


def _write_outputs(run: RunFolder, suites: dict[str, Suite], names: list[str], failed: dict, title: str) -> None:
    scores = run.read_scores()
    sections = []
    for name in names:
        if name in failed:
            sections.append(f"## {name}: FAILED\n\n{failed[name]}\n")
        if name in scores:
            sections.append(suites[name].report(run, scores[name]))
            _plot(run, suites[name], scores[name])
    write_report(run, title, sections)


def _plot(run: RunFolder, suite: Suite, scores: dict) -> None:
    if not hasattr(suite, "paper_comparison"):
        return
    rows = suite.paper_comparison(run, scores)
    if rows:
        comparison_plot(rows, run.path / f"{suite.name}_vs_paper.png", title=f"{suite.name}: {run.meta.get('model')}")


def _settings_key(args: argparse.Namespace, options: dict) -> str:
    """What must match for a finished suite to count as done: the options that change its scores."""
    settings = {"limit": args.limit, "data_dir": str(args.data_dir) if args.data_dir else None, **options}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
