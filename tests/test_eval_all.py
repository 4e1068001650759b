"""``xplus-eval all``: one server, several suites, one run folder; resume after a kill; failure isolation.

Runs the real reasoning suite (OpenCompass, MATH-500 format, 2 items) beside small suites registered here
(tests/evalsuite_test_suites.py) against the session's vLLM server.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xplus_release.evalsuite.cli import main
from xplus_release.evalsuite.fetch import fetch

TESTS = Path(__file__).parent
from xplus_release.evalsuite.reasoning.suite import SAMPLE_DATA as REASONING_DATA


@pytest.fixture
def test_suites(monkeypatch):
    """Register the count and broken suites for one test (they live in tests/evalsuite_test_suites.py)."""
    from xplus_release.evalsuite.base import SUITES, SuiteSpec

    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setitem(SUITES, "count", SuiteSpec("evalsuite_test_suites:CountSuite"))
    monkeypatch.setitem(SUITES, "broken", SuiteSpec("evalsuite_test_suites:BrokenSuite"))


def _all_args(server, out: Path, suites: str, *extra: str) -> list[str]:
    return ["all", "--model", "xplus-tiny", "--endpoint", server.base_url, "--api-key", "test-key",
            "--suites", suites, "--limit", "2", "--reasoning-tasks", "math", "--max-tokens", "8",
            "--data-dir", str(REASONING_DATA), "-o", str(out), "--no-progress", *extra]


def test_unknown_suite_lists_the_valid_ones(capsys, tmp_path):
    assert main(["all", "--suites", "reasoning,nope", "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "unknown suite nope; choose from: " in err and "reasoning" in err.partition("choose from: ")[2]


def test_one_registry_entry_gives_a_suite_its_command_options_and_place_in_all(test_suites, capsys):
    """Each suite is one ``SUITES`` entry: its class, its options (flags of its command and of ``all``) and its
    command module. A suite registered with its class alone runs in ``all`` without a command of its own."""
    from xplus_release.config import Config
    from xplus_release.evalsuite.base import SUITES, load_suite, suite_options
    from xplus_release.evalsuite.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    all_flags = {flag for action in commands["all"]._actions for flag in action.option_strings}
    for name, spec in SUITES.items():
        assert load_suite(name).name == name
        if spec.command is None:  # the test suites: no options, no command, but run by `all --suites`
            assert suite_options(name) is Config and name not in commands
            continue
        options = suite_options(name)
        assert issubclass(options, Config) and options is not Config and name in commands
        suite_flags = {flag for action in commands[name]._actions for flag in action.option_strings}
        for field in options.model_fields:
            assert f"--{field.replace('_', '-')}" in suite_flags
            assert field == "max_tokens" or f"--{name}-{field.replace('_', '-')}" in all_flags
    assert {"count", "broken"} <= set(SUITES) and {"count", "broken"}.isdisjoint(commands)


def test_fetch_data_offline_is_one_clear_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["fetch-data", "--output", str(tmp_path / "d")]) == 2
    assert "run it on a connected machine" in capsys.readouterr().err
    with pytest.raises(Exception, match="HF_HUB_OFFLINE=1"):
        fetch(["reasoning"], tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_fetched_files_are_written_whole_and_a_failed_download_is_a_line(tmp_path, monkeypatch):
    """fetch-data's downloads (here from a local HTTP server: tests never reach the network): the HumanEval+
    release is unpacked in place; a missing file is one failure line naming what and where, and leaves
    nothing behind; the BenchMAX archive fails the same way."""
    import gzip
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from sacrebleu.tokenizers import tokenizer_spm

    from xplus_release.evalsuite.multilingual import benchmax, offline_assets
    from xplus_release.evalsuite.reasoning import humaneval_plus

    site = tmp_path / "site"
    site.mkdir()
    (site / "release.jsonl.gz").write_bytes(gzip.compress(b'{"task_id": "HumanEval/0"}\n'))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        monkeypatch.setattr(humaneval_plus, "RELEASE_URL", f"{root}/missing.jsonl.gz")
        [failure] = humaneval_plus.fetch_problems(tmp_path / "data")
        assert failure.startswith(f"HumanEval+ problems {root}/missing.jsonl.gz: HTTPStatusError") and "404" in failure
        assert not (tmp_path / "data" / "evalplus").exists()
        monkeypatch.setattr(humaneval_plus, "RELEASE_URL", f"{root}/release.jsonl.gz")
        assert humaneval_plus.fetch_problems(tmp_path / "data") == []
        problems = tmp_path / "data" / "evalplus" / humaneval_plus.PROBLEMS_FILE
        assert problems.read_text(encoding="utf-8") == '{"task_id": "HumanEval/0"}\n'
        monkeypatch.setattr(benchmax, "ARCHIVE_URL", f"{root}/missing.tar.gz")
        [failure] = benchmax.fetch_archive(tmp_path / "data")
        assert failure.startswith(f"BenchMAX task folders {root}/missing.tar.gz: HTTPStatusError")
        assert not (tmp_path / "data" / "benchmax").exists()
        (site / "flores101.model").write_bytes(b"spm model bytes")
        monkeypatch.setitem(tokenizer_spm.SPM_MODELS["flores101"], "url", f"{root}/missing/flores101.model")
        [failure] = offline_assets.fetch_flores101_spm(tmp_path / "data")
        assert failure.startswith("sacrebleu's FLORES-101 SentencePiece model") and "404" in failure
        assert not (tmp_path / "data" / "sacrebleu").exists()
        monkeypatch.setitem(tokenizer_spm.SPM_MODELS["flores101"], "url", f"{root}/flores101.model")
        assert offline_assets.fetch_flores101_spm(tmp_path / "data") == []
        assert (tmp_path / "data" / "sacrebleu" / "models" / "flores101.model").read_bytes() == b"spm model bytes"
    finally:
        server.shutdown()


@pytest.mark.slow
def test_endpoint_serving_another_model_is_refused(vllm_server, test_suites, capsys, tmp_path):
    code = main(["all", "--model", "Qwen/Qwen3-8B", "--endpoint", vllm_server.base_url, "--api-key", "test-key",
                 "--suites", "count", "-o", str(tmp_path / "r")])
    assert code == 2
    assert "serves xplus-tiny, not 'Qwen/Qwen3-8B'" in capsys.readouterr().err


def test_a_run_folder_keyed_by_an_earlier_hash_form_resumes_without_redoing_work(test_suites, tmp_path):
    """Earlier versions stored a finished suite's settings key with non-ASCII escaped: such a run folder
    still counts the suite as done (no engine is touched: the endpoint here is closed), while settings
    that differ still rerun it."""
    import hashlib

    data, out = tmp_path / "données", tmp_path / "run"
    data.mkdir()
    out.mkdir()
    settings = {"limit": 2, "data_dir": str(data)}  # the count suite has no options of its own

    def stored_run(settings: dict) -> None:
        key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
        (out / "run.json").write_text(json.dumps({"model": "xplus-tiny", "suites_done": {"count": key}}))
        (out / "scores.json").write_text(json.dumps({"count": {"items": 6, "generated_this_run": 6}}))

    closed = ["--endpoint", "http://127.0.0.1:9/v1"]  # the discard port: nothing listens
    args = ["all", "--model", "xplus-tiny", *closed, "--suites", "count", "--limit", "2", "--data-dir", str(data),
            "-o", str(out), "--no-progress"]
    stored_run(settings)
    assert main(args) == 0
    assert json.loads((out / "scores.json").read_text())["count"]["generated_this_run"] == 6
    stored_run({**settings, "limit": 3})  # other settings: the suite is pending and needs the (closed) server
    assert main(args) != 0
    assert json.loads((out / "scores.json").read_text())["count"] == {"items": 6, "generated_this_run": 6}


@pytest.mark.slow
def test_all_resumes_after_a_kill_and_isolates_failures(vllm_server, test_suites, tmp_path, capsys, monkeypatch):
    """Every run starts in an empty folder holding only ``--output``: nothing else may appear there
    (OpenCompass writes working folders where it is started)."""
    started_in = tmp_path / "cwd"
    started_in.mkdir()
    monkeypatch.chdir(started_in)
    out = started_in / "run"
    # 1. a real kill: `all` in a subprocess, SIGKILLed while the count suite is half way
    script = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); from xplus_release.evalsuite.base import SUITES, SuiteSpec;"
              "SUITES['count'] = SuiteSpec('evalsuite_test_suites:CountSuite');"
              "from xplus_release.evalsuite.cli import main; sys.exit(main(sys.argv[1:]))")
    args = _all_args(vllm_server, out, "reasoning,count")
    env = {**os.environ, "COUNT_SUITE_DELAY": "1.5"}
    proc = subprocess.Popen([sys.executable, "-c", script, *args], env=env, start_new_session=True, cwd=started_in)
    echo = out / "generations" / "count" / "echo.jsonl"
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and proc.poll() is None:
        if echo.exists() and len(echo.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the first run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(echo.read_text().splitlines())
    assert 2 <= before < 6
    summaries = sorted((out / "opencompass" / "run" / "summary").glob("summary_*.csv"))
    assert len(summaries) == 1  # reasoning finished before the kill

    # 2. rerun with a failing suite added: only what is left is done, the failure is named, nothing lost
    code = main(_all_args(vllm_server, out, "reasoning,count,broken"))
    err = capsys.readouterr().err
    assert code == 1 and "suites failed: broken" in err
    scores = json.loads((out / "scores.json").read_text())
    assert scores["count"] == {"items": 6, "generated_this_run": 6 - before}
    assert sorted((out / "opencompass" / "run" / "summary").glob("summary_*.csv")) == summaries  # not rerun
    assert set(scores["reasoning"]["tasks"]) == {"math"}
    report = (out / "report.md").read_text()
    assert "## Reasoning (OpenCompass)" in report and "## count" in report
    assert "## broken: FAILED" in report and "RuntimeError: this suite always fails" in report
    assert (out / "reasoning_vs_paper.png").stat().st_size > 0
    run = json.loads((out / "run.json").read_text())
    assert run["failed"] == {"broken": "RuntimeError: this suite always fails"}
    assert {"generation_s", "scoring_s", "total_s"} <= set(run["timings"]["reasoning"])

    # 3. per task: adding mbpp runs OpenCompass on mbpp only; math's predictions are reused untouched
    math_predictions = out / "opencompass" / "run" / "predictions" / "model" / "math__math-500.json"
    stamp = math_predictions.stat().st_mtime_ns
    args = _all_args(vllm_server, out, "reasoning,count")
    args[args.index("--reasoning-tasks") + 1] = "math,mbpp"
    assert main(args) == 0
    scores = json.loads((out / "scores.json").read_text())
    assert set(scores["reasoning"]["tasks"]) == {"math", "mbpp"}
    assert math_predictions.stat().st_mtime_ns == stamp
    assert scores["count"]["generated_this_run"] == 6 - before  # count was done: not run again
    assert len(sorted((out / "opencompass" / "run" / "summary").glob("summary_*.csv"))) == 2
    assert sorted(p.name for p in started_in.iterdir()) == ["run"]  # only the output folder where it started
