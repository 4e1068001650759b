"""The reasoning suite: OpenCompass 0.5.4 really runs, in its managed env, against the vLLM server.

The data are tiny files in OpenCompass's own layout (tests/data/reasoning/opencompass/data): the real
MATH-500 (rule-scored) and MBPP (executes the model's code) task configs read them.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

from xplus_release.errors import ConfigError
from xplus_release.evalsuite.cli import main
from xplus_release.evalsuite.reasoning.config import ModelSettings, render_config
from xplus_release.evalsuite.reasoning.harness import OPENCOMPASS_ENV
from xplus_release.evalsuite.reasoning.suite import SAMPLE_DATA as REASONING_DATA
from xplus_release.evalsuite.reasoning.tasks import TASKS, select_tasks
from xplus_release.managed_env import WORKER_MODULES


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="choose from: bbeh, aime2024"):
        select_tasks("math,nope", judge_available=False)


def test_judge_tasks_need_a_judge_when_named_and_are_skipped_by_default():
    with pytest.raises(ConfigError, match="aime2025 are scored by an LLM judge; pass --judge-endpoint"):
        select_tasks("math,aime2025", judge_available=False)
    tasks, notes = select_tasks(None, judge_available=False)
    assert {t.name for t in tasks} == {n for n, t in TASKS.items() if not t.judge}
    assert len(notes) == 2 and all("--judge-endpoint" in n for n in notes)
    assert {t.name for t in select_tasks(None, judge_available=True)[0]} == set(TASKS)


def test_config_points_model_and_judge_at_their_servers(tmp_path):
    model = ModelSettings("xplus-tiny", "http://127.0.0.1:9/v1", "k", "/tok", thinking=False, max_out_len=16)
    judge = ModelSettings("judge-model", "http://judge:8000/v1", None, "gpt-4", thinking=False,
                          max_out_len=4096)
    text = render_config([TASKS["math"], TASKS["aime2025"]], model, judge, limit=3, work_dir=tmp_path)
    compile(text, "config.py", "exec")  # valid Python, as OpenCompass will exec it
    assert "'enable_thinking': False" in text and "openai_api_base='http://127.0.0.1:9/v1'" in text
    assert "path='judge-model'" in text and "_LIMIT = 3" in text
    assert "aime2025.aime2025_cascade_eval_gen_5e9f4f import aime2025_datasets as _aime2025" in text


def test_cli_bad_inputs_fail_before_any_server_starts(capsys, tmp_path):
    assert main(["reasoning", "--tasks", "olymmath", "-o", str(tmp_path / "r")]) == 2
    assert "olymmath are scored by an LLM judge" in capsys.readouterr().err
    assert main(["reasoning", "--tasks", "math,bogus", "-o", str(tmp_path / "r")]) == 2
    assert "unknown reasoning task bogus; choose from:" in capsys.readouterr().err
    assert main(["reasoning", "--judge-endpoint", "http://x/v1", "-o", str(tmp_path / "r")]) == 2
    assert "--judge-endpoint needs --judge-model" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing written for a command that never started


def test_scoring_sandbox_limits_memory_in_the_opencompass_env():
    """The limits oc_worker applies before scoring stop a program that allocates past them."""
    worker = Path(__file__).parents[1] / "evalsuite" / "reasoning"
    code = (f"import sys; sys.path[:0] = [{str(worker)!r}, {str(WORKER_MODULES)!r}]; import oc_worker;"
            "oc_worker.apply_limits({'memory_gb': 1})\n"
            "try:\n    bytearray(3 * 1024 ** 3)\nexcept MemoryError:\n    print('blocked')")
    out = subprocess.run([str(OPENCOMPASS_ENV.ensure()), "-c", code], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.stdout.strip() == "blocked", out.stderr


@pytest.mark.slow
def test_missing_data_is_one_line_naming_fetch_data(vllm_server, tmp_path, capsys):
    code = main(["reasoning", "--model", "xplus-tiny", "--endpoint", vllm_server.base_url, "--api-key", "test-key",
                 "--tasks", "math", "--data-dir", str(tmp_path), "-o", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and "reasoning data missing: math" in err and "xplus-eval fetch-data" in err


@pytest.mark.slow
def test_opencompass_runs_math_and_mbpp_against_the_server(vllm_server, tmp_path):
    out = tmp_path / "run"
    code = main(["reasoning", "--model", "xplus-tiny", "--endpoint", vllm_server.base_url, "--api-key", "test-key",
                 "--tasks", "math,mbpp", "--limit", "2", "--max-tokens", "16", "--thinking", "off",
                 "--data-dir", str(REASONING_DATA), "-o", str(out), "--no-progress"])
    assert code == 0
    scores = json.loads((out / "scores.json").read_text())["reasoning"]
    assert set(scores["tasks"]) == {"math", "mbpp"} and scores["failed"] == {}
    summary = _summary(Path(scores["tasks"]["math"]["summary"]))
    assert scores["tasks"]["math"]["score"] == pytest.approx(summary["math__math-500"])
    assert scores["tasks"]["mbpp"]["score"] == pytest.approx(summary["mbpp__mbpp"])
    # OpenCompass's own per-item results agree with the score: MBPP's code really ran (and 2 items only)
    details = json.loads((out / "opencompass" / "run" / "results" / "model" / "mbpp__mbpp.json").read_text())
    assert details["score"] == pytest.approx(scores["tasks"]["mbpp"]["score"])
    assert details["pass"] + details["failed"] + details["timeout"] + details["wrong_answer"] == 2
    assert scores["tasks"]["mbpp"]["datasets"]["mbpp"]["failed"] == details["failed"]
    predictions = json.loads((out / "opencompass" / "run" / "predictions" / "model" / "math__math-500.json").read_text())
    assert len(predictions) == 2 and all(isinstance(p["prediction"], str) for p in predictions.values())
    config = (out / "opencompass" / "xplus_config.py").read_text()
    assert "'enable_thinking': False" in config and "_MAX_OUT_LEN = 16" in config
    report = (out / "report.md").read_text()
    assert "## Reasoning (OpenCompass)" in report and "| MBPP | pass@1 |" in report
    fidelity = scores["fidelity"]["math"]
    assert fidelity["task_source"] == "opencompass.configs.datasets.math.math_500_gen"
    assert fidelity["thinking"] == "off" and any("--limit 2" in d for d in fidelity["differences"])
    assert "### Fidelity" in report and "opencompass.configs.datasets.mbpp.mbpp_gen_830460" in report


# --- HumanEval+ through EvalPlus, in its own environment ------------------------------------------------

EVALPLUS_DATA = Path(__file__).parent / "data" / "evalplus_data"  # <data_dir>/evalplus/, fetch-data's layout


def test_evalplus_scores_planted_solutions_in_its_sandbox_under_our_limits(tmp_path):
    """EvalPlus's own evaluator on the two test problems: one solution right, one that passes only the
    original (base) tests and fails the extra (plus) ones, which is what HumanEval+ adds."""
    from xplus_release.evalsuite.reasoning.humaneval_plus import EVALPLUS_ENV, WORKER

    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/0", "solution": "def add_one(x: int) -> int:\n    return x + 1\n"})
                       + "\n" + json.dumps({"task_id": "HumanEval/1", "solution": "def largest(xs: list) -> int:\n"
                                            "    return sorted(xs)[-1] if xs[0] >= 0 else 0\n"}) + "\n")
    code = (f"import json, sys; sys.path[:0] = [{str(WORKER.parent)!r}, {str(WORKER_MODULES)!r}]; "
            "import evalplus_worker; "
            f"print(json.dumps(evalplus_worker.score({str(samples)!r}, {{'memory_gb': 4, 'cpu_seconds': 60}})))")
    env = {**os.environ, "HUMANEVAL_OVERRIDE_PATH": str(EVALPLUS_DATA / "evalplus" / "HumanEvalPlus-v0.1.10.jsonl"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = subprocess.run([str(EVALPLUS_ENV.ensure()), "-c", code], capture_output=True, text=True, timeout=300,
                         env=env, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [
        {"task_id": "HumanEval/0", "base_status": "pass", "plus_status": "pass"},
        {"task_id": "HumanEval/1", "base_status": "pass", "plus_status": "fail"}]


def test_missing_humaneval_plus_problems_is_one_line_naming_fetch_data(tmp_path, monkeypatch):
    from xplus_release.errors import MissingAssetError
    from xplus_release.evalsuite.reasoning.humaneval_plus import problems_file

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(MissingAssetError) as info:
        problems_file(tmp_path)
    assert "HumanEvalPlus-v0.1.10.jsonl" in str(info.value) and "xplus-eval fetch-data" in str(info.value)
    assert "\n" not in str(info.value)
    assert problems_file(EVALPLUS_DATA) == EVALPLUS_DATA / "evalplus" / "HumanEvalPlus-v0.1.10.jsonl"


@pytest.mark.slow
def test_humaneval_plus_end_to_end_through_evalplus_against_the_server(vllm_server, tmp_path):
    from helpers.recording_proxy import RecordingProxy

    from xplus_release.evalsuite.base import EvalContext, RunOptions, load_suite
    from xplus_release.evalsuite.common import run_suite
    from xplus_release.runs import RunFolder

    run = RunFolder.open(tmp_path / "run", "xplus-tiny")
    with RecordingProxy(vllm_server.base_url, "test-key") as proxy:
        ctx = EvalContext(run=run, model="xplus-tiny", engine_factory=lambda: None, endpoint=proxy.base_url,
                          api_key="test-key", run_options=RunOptions(data_dir=EVALPLUS_DATA), options={"tasks": "humaneval_plus"})
        scores = run_suite(load_suite("reasoning"), ctx)
        requests = proxy.take()
        again = run_suite(load_suite("reasoning"), ctx)  # done: nothing is asked again
        assert proxy.take() == [] and again["tasks"]["humaneval_plus"] == scores["tasks"]["humaneval_plus"]
    entry = scores["tasks"]["humaneval_plus"]
    assert scores["failed"] == {} and entry["n"] == 2
    # EvalPlus's own prompt, one greedy request per problem, reached the server through its OpenAI backend
    prompts = [body["messages"][-1]["content"] for path, body in requests if path == "/chat/completions"]
    assert len(prompts) == 2 and all(p.startswith("Please provide a self-contained Python script") for p in prompts)
    assert any("def largest(xs: list) -> int:" in p for p in prompts)
    results = json.loads(Path(entry["summary"].replace(".jsonl", "_eval_results.json")).read_text())
    passed = sum(r[0]["base_status"] == r[0]["plus_status"] == "pass" for r in results["eval"].values())
    assert entry["score"] == pytest.approx(100 * passed / 2) and len(results["eval"]) == 2
    assert "EvalPlus, not OpenCompass" in scores["fidelity"]["humaneval_plus"]["differences"][0]


def _summary(path: Path) -> dict[str, float]:
    """First (main) metric per dataset from OpenCompass's summary csv."""
    values: dict[str, float] = {}
    with open(path) as handle:
        for row in csv.DictReader(handle):
            values.setdefault(row["dataset"], float(row["model"]))
    return values
