"""Parity with the reference harness: the multilingual suite sends the server exactly the requests the plain
``lm_eval`` CLI sends for the same task files, model arguments and data, and reports the same scores.

Three task kinds: a multiple-choice one (lm-eval's XNLI, loglikelihoods through /v1/completions), a
generation one (lm-eval's MGSM, chat), and one from a BenchMAX-layout task folder (tests/data/benchmax_layout,
its own YAML and ``!function`` module; chat). Both clients talk to the session's vLLM server through a
loopback proxy that records every request body.

The only file the CLI gets that the suite does not is a YAML per task that ``include``s the task's own file
and points ``dataset_path`` at the same local JSONL rows the suite reads with ``--data-dir`` (lm-eval's CLI
has no flag for a local copy of a Hub dataset).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.recording_proxy import RecordingProxy

from xplus_release.evalsuite.base import EvalContext, RunOptions, load_suite
from xplus_release.evalsuite.common import run_suite
from xplus_release.evalsuite.multilingual.benchmax import BenchmaxCheckout
from xplus_release.evalsuite.multilingual.harness import task_manager
from xplus_release.evalsuite.multilingual.suite import SAMPLE_DATA
from xplus_release.runs import RunFolder

API_KEY = "test-key"
BENCHMAX_LAYOUT = Path(__file__).parent / "data" / "benchmax_layout"
LIMIT = 2
MAX_GEN_TOKS = 16
# (our task, language, lm-eval task, local data file, split key the task evaluates)
CASES = [
    ("xnli", "en", "xnli_en", "facebook/xnli/en/validation.jsonl", "validation_split"),
    ("mgsm-lmeval", "de", "mgsm_native_cot_de", "juletxara/mgsm/de/test.jsonl", "test_split"),
    ("xgpqa", "de", "xgpqa_main_native_cot_zeroshot_de", "LLaMAX/BenchMAX_Science/de/train.jsonl",
     "validation_split"),
]


@pytest.mark.slow
def test_suite_sends_and_scores_what_the_lm_eval_cli_does(vllm_server, tiny_model, tmp_path):
    with RecordingProxy(vllm_server.base_url, API_KEY) as proxy:
        ours = _run_suite(proxy, tmp_path / "run")
        ours_requests = proxy.take()
        cli_scores = _run_cli(proxy, tiny_model.path, tmp_path / "cli")
        cli_requests = proxy.take()

    for route in ("/completions", "/chat/completions"):
        mine = sorted(json.dumps(b, sort_keys=True) for path, b in ours_requests if path == route)
        theirs = sorted(json.dumps(b, sort_keys=True) for path, b in cli_requests if path == route)
        assert mine and mine == theirs, route
    chat_bodies = [b for path, b in ours_requests if path == "/chat/completions"]
    assert any("Wähle eine." in b["messages"][-1]["content"] for b in chat_bodies)  # the layout folder's prompt
    assert all(b["chat_template_kwargs"] == {"enable_thinking": False} for b in chat_bodies)
    for task, lang, lm_task, _, _ in CASES:
        metric = ours["tasks"][task]["metric"]
        assert ours["tasks"][task]["languages"][lang]["score"] == pytest.approx(100 * cli_scores[f"parity_{lm_task}"][metric])


def _run_suite(proxy: RecordingProxy, out: Path) -> dict:
    run = RunFolder.open(out, "xplus-tiny")
    scores = {}
    for task, lang, *_ in CASES:
        ctx = EvalContext(run=run, model="xplus-tiny", engine_factory=lambda: None, endpoint=proxy.base_url,
                          api_key=API_KEY, run_options=RunOptions(limit=LIMIT, data_dir=SAMPLE_DATA, concurrency=2),
                          options={"tasks": task, "langs": lang, "max_tokens": MAX_GEN_TOKS,
                                   "benchmax_dir": BENCHMAX_LAYOUT})
        scores = run_suite(load_suite("multilingual"), ctx)
    return scores


def _run_cli(proxy: RecordingProxy, tokenizer: str, out: Path) -> dict:
    """``python -m lm_eval run`` twice (completions for XNLI, chat for the rest); its results by task."""
    tasks_dir = out / "tasks"
    tasks_dir.mkdir(parents=True)
    for _, _, lm_task, data_file, split_key in CASES:
        _write_local_data_task(tasks_dir, lm_task, SAMPLE_DATA / data_file, split_key)
    common = {"model": "xplus-tiny", "num_concurrent": 2, "max_retries": 3, "max_length": 2048}
    completions = {**common, "base_url": f"{proxy.base_url}/completions", "tokenizer": tokenizer,
                   "tokenizer_backend": "huggingface"}
    chat = {**common, "base_url": f"{proxy.base_url}/chat/completions", "think_end_token": "</think>"}
    results = _cli(["--model", "local-completions", "--model_args", json.dumps(completions),
                    "--tasks", "parity_xnli_en"], tasks_dir, out / "mc")
    results |= _cli(["--model", "local-chat-completions", "--model_args", json.dumps(chat),
                     "--tasks", "parity_mgsm_native_cot_de", "parity_xgpqa_main_native_cot_zeroshot_de",
                     "--apply_chat_template",
                     "--gen_kwargs", f"max_gen_toks={MAX_GEN_TOKS}", "chat_template_kwargs={'enable_thinking': False}"],
                    tasks_dir, out / "gen")
    return results


def _cli(args: list, tasks_dir: Path, out: Path) -> dict:
    cmd = [sys.executable, "-m", "lm_eval", "run", *map(str, args), "--include_path", str(tasks_dir),
           "--limit", str(LIMIT), "--output_path", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "OPENAI_API_KEY": API_KEY})
    assert done.returncode == 0, done.stderr[-3000:]
    result_file = next(out.rglob("results_*.json"))
    return json.loads(result_file.read_text(encoding="utf-8"))["results"]


def _write_local_data_task(tasks_dir: Path, lm_task: str, data_file: Path, split_key: str) -> None:
    """A YAML that includes the task's own file and reads its evaluated split from ``data_file``."""
    include_paths = tuple(BenchmaxCheckout(BENCHMAX_LAYOUT, None).include_paths()) if "xgpqa" in lm_task else ()
    original = task_manager(include_paths).task_index[lm_task].yaml_path
    split = data_file.stem
    others = {k: None for k in ("training_split", "validation_split", "test_split", "fewshot_split") if k != split_key}
    lines = [f"include: {original}", f"task: parity_{lm_task}", "dataset_path: json", "dataset_name: null",
             f"dataset_kwargs: {json.dumps({'data_files': {split: str(data_file)}})}", f"{split_key}: {split}",
             *(f"{key}: null" for key in others)]
    (tasks_dir / f"parity_{lm_task}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- one OpenCompass task against the plain `opencompass` CLI, in its managed environment -----------------

OC_CONFIG = """\
from mmengine.config import read_base
from opencompass.models import OpenAISDK
from opencompass.utils.text_postprocessors import extract_non_reasoning_content

with read_base():
    from opencompass.configs.datasets.math.math_500_gen import math_datasets

math_datasets[0]['reader_cfg']['test_range'] = '[0:{limit}]'
math_datasets[0]['infer_cfg']['inferencer']['max_out_len'] = {max_out}
datasets = math_datasets
models = [dict(type=OpenAISDK, abbr='model', path='xplus-tiny', openai_api_base='{base_url}', key='{key}',
               tokenizer_path='{tokenizer}', max_seq_len=2048, max_out_len={max_out}, batch_size=16,
               query_per_second=16, retry=3, temperature=0.0,
               extra_body={{'chat_template_kwargs': {{'enable_thinking': False}}}},
               pred_postprocessor=dict(type=extract_non_reasoning_content))]
"""


@pytest.mark.slow
def test_reasoning_suite_sends_and_scores_what_the_opencompass_cli_does(vllm_server, tiny_model, tmp_path):
    """MATH-500 (OpenCompass's own config, the suite's sample rows): the suite against a config a user
    would write for the plain ``opencompass`` CLI with the same model settings."""
    import csv

    from xplus_release.evalsuite.reasoning.harness import OPENCOMPASS_ENV, opencompass_env
    from xplus_release.evalsuite.reasoning.suite import SAMPLE_DATA as REASONING_DATA

    with RecordingProxy(vllm_server.base_url, API_KEY) as proxy:
        run = RunFolder.open(tmp_path / "run", "xplus-tiny")
        ctx = EvalContext(run=run, model="xplus-tiny", engine_factory=lambda: None, endpoint=proxy.base_url,
                          api_key=API_KEY, run_options=RunOptions(limit=LIMIT, data_dir=REASONING_DATA, concurrency=16),
                          options={"tasks": "math", "max_tokens": MAX_GEN_TOKS, "thinking": "off"})
        ours = run_suite(load_suite("reasoning"), ctx)["tasks"]["math"]
        ours_requests = proxy.take()
        config = tmp_path / "cli_config.py"
        config.write_text(OC_CONFIG.format(limit=LIMIT, max_out=MAX_GEN_TOKS, base_url=proxy.base_url, key=API_KEY,
                                           tokenizer=tiny_model.path), encoding="utf-8")
        cli = OPENCOMPASS_ENV.path / "bin" / "opencompass"
        env = {**os.environ, **opencompass_env(REASONING_DATA / "opencompass", None)}
        done = subprocess.run([str(cli), str(config), "--work-dir", str(tmp_path / "cli"), "--debug"], env=env,
                              capture_output=True, text=True, timeout=900, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        cli_requests = proxy.take()

    mine = sorted(json.dumps(b, sort_keys=True) for p, b in ours_requests if p == "/chat/completions")
    theirs = sorted(json.dumps(b, sort_keys=True) for p, b in cli_requests if p == "/chat/completions")
    assert len(mine) == LIMIT and mine == theirs
    summary = next((tmp_path / "cli").rglob("summary_*.csv"))
    with open(summary, encoding="utf-8") as handle:
        row = next(r for r in csv.DictReader(handle) if r["dataset"] == "math-500")
    assert ours["score"] == pytest.approx(float(row["model"]))
