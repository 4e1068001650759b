"""The multilingual suite, for real: lm-eval against the session's vLLM server (xplus-tiny) over a few local
items per task in each task's own dataset format (tests/data/multilingual, see its README).

Random weights make scores meaningless, so the tests check what the scores must be given the logged
loglikelihoods and generations, and that the loglikelihood path returns real numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from xplus_release.evalsuite.base import EvalContext, load_suite
from xplus_release.evalsuite.common import run_suite
from xplus_release.evalsuite.cli import main as xplus_eval
from xplus_release.evalsuite.multilingual import required_datasets, resolve_tasks
from xplus_release.evalsuite.multilingual.tasks import TASKS, select

from xplus_release.errors import ConfigError, EndpointError, MissingAssetError
from xplus_release.runs import RunFolder

API_KEY = "test-key"
from xplus_release.evalsuite.multilingual.suite import SAMPLE_DATA as MULTILINGUAL_DATA  # noqa: E402


def _context(run, server, **options) -> EvalContext:
    limit = options.pop("limit", None)
    model = options.pop("model", "xplus-tiny")
    return EvalContext(run=run, model=model, engine_factory=lambda: None, endpoint=server.base_url,
                       api_key=API_KEY, limit=limit, data_dir=MULTILINGUAL_DATA, concurrency=4, options=options)


def _samples(run: RunFolder, task: str) -> list[dict]:
    path = run.path / "generations" / "multilingual" / f"{task}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- no server needed -----------------------------------------------------------------------------------

def test_task_table_matches_installed_lm_eval():
    """Every lm-eval task we name exists in the pinned lm-eval (or in our own task folder)."""
    from lm_eval.tasks import TaskManager
    from xplus_release.evalsuite.multilingual.tasks import LM_TASKS_DIR

    known = set(TaskManager(include_path=str(LM_TASKS_DIR)).all_tasks)
    missing = [t for spec in TASKS.values() for _, t in spec.subtasks() if t not in known]
    assert missing == []


def test_language_selection():
    pairs = dict(select("xwinograd", "paper"))[TASKS["xwinograd"]]
    assert pairs == [("en", "xwinograd_en"), ("fr", "xwinograd_fr"), ("ja", "xwinograd_jp"),
                     ("ru", "xwinograd_ru"), ("zh", "xwinograd_zh")]  # pt is not one of the 17
    assert len(dict(select("xnli", "all"))[TASKS["xnli"]]) == 15
    assert dict(select("xnli,mathqa", "en,sw"))[TASKS["xnli"]] == [("en", "xnli_en"), ("sw", "xnli_sw")]
    with pytest.raises(ConfigError, match="has none of the languages"):
        select("mathqa", "sw")
    with pytest.raises(ConfigError, match="unknown language 'xx'"):
        select("xnli", "en,xx")


def test_unknown_task_lists_valid_ones():
    with pytest.raises(ConfigError, match="unknown multilingual task 'xnl'.*xnli, xstorycloze"):
        resolve_tasks("xnli,xnl")


def test_required_datasets_name_hub_datasets():
    assert required_datasets("xnli,xgpqa", "en,sw") == [
        ("facebook/xnli", "en"), ("facebook/xnli", "sw"),
        ("LLaMAX/BenchMAX_Science", "en"), ("LLaMAX/BenchMAX_Science", "sw")]
    assert ("juletxara/mgsm", "ja") in required_datasets("mgsm")


def test_data_dir_with_a_fetched_hub_cache(tmp_path):
    """``--data-dir`` as ``xplus-eval fetch-data`` fills it: a hub cache under hf/hub, read from its snapshot."""
    import shutil

    import datasets
    from xplus_release.evalsuite.multilingual.harness import Harness, HarnessConfig

    repo = tmp_path / "hf" / "hub" / "datasets--facebook--xnli"
    snapshot = repo / "snapshots" / "0123abcd"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    (snapshot / "en").mkdir(parents=True)
    for split in ("train", "validation"):
        shutil.copy(MULTILINGUAL_DATA / "facebook" / "xnli" / "en" / "validation.jsonl", snapshot / "en" / f"{split}.jsonl")
    (snapshot / "README.md").write_text(
        "---\nconfigs:\n- config_name: en\n  data_files:\n  - split: train\n    path: en/train.jsonl\n"
        "  - split: validation\n    path: en/validation.jsonl\n---\n")

    cfg = Harness(HarnessConfig(endpoint="", model="", tokenizer="", data_dir=tmp_path)).task_config("xnli_en")
    assert cfg["dataset_path"] == str(snapshot)
    rows = datasets.load_dataset(cfg["dataset_path"], cfg["dataset_name"])[cfg["validation_split"]]
    assert rows[3]["hypothesis"] == "He visited Paris last year." and len(rows) == 5


def test_local_copy_without_the_evaluated_split(tmp_path):
    from xplus_release.evalsuite.multilingual.harness import Harness, HarnessConfig

    (tmp_path / "facebook" / "xnli" / "en").mkdir(parents=True)
    (tmp_path / "facebook" / "xnli" / "en" / "train.jsonl").write_text('{"premise": "a", "hypothesis": "b", "label": 0}\n')
    harness = Harness(HarnessConfig(endpoint="", model="", tokenizer="", data_dir=tmp_path))
    with pytest.raises(MissingAssetError, match=r"has no validation.jsonl, which task xnli_en evaluates on"):
        harness.task_config("xnli_en")


def test_xifeval_without_nltk_data_names_the_fix(tmp_path, monkeypatch):
    import nltk
    from xplus_release.evalsuite.multilingual.harness import Harness, HarnessConfig

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])  # a machine that never fetched punkt_tab
    harness = Harness(HarnessConfig(endpoint="", model="", tokenizer="", data_dir=MULTILINGUAL_DATA))
    with pytest.raises(MissingAssetError, match=r"punkt_tab.*python -m nltk.downloader punkt_tab"):
        harness.task_config("xifeval_en")


def test_cli_unknown_task_is_one_line(capsys):
    code = xplus_eval(["multilingual", "--endpoint", "http://127.0.0.1:9/v1", "--tasks", "xnli,nope"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: unknown multilingual task 'nope'; choose from: xnli,")
    assert len(err.strip().splitlines()) == 1


# --- against the vLLM server ----------------------------------------------------------------------------

@pytest.mark.slow
def test_multiple_choice_scores_follow_loglikelihoods(vllm_server, tmp_path):
    run = RunFolder.open(tmp_path / "run", "xplus-tiny")
    scores = run_suite(load_suite("multilingual"), _context(run, vllm_server, tasks="xnli", langs="en,sw"))

    xnli = scores["tasks"]["xnli"]
    samples = _samples(run, "xnli")
    assert {s["lang"] for s in samples} == {"en", "sw"}
    assert sum(s["lang"] == "en" for s in samples) == 5 and xnli["languages"]["en"]["n"] == 5
    for lang in ("en", "sw"):
        rows = [s for s in samples if s["lang"] == lang]
        correct = 0
        for row in rows:
            lls = [resp[0][0] for resp in row["resps"]]
            assert len(lls) == 3  # entailment / neutral / contradiction continuations
            assert all(math.isfinite(ll) and ll < 0 for ll in lls)
            assert len(set(lls)) > 1  # the options really were scored, not echoed back as one value
            correct += max(range(3), key=lls.__getitem__) == row["target"]
        assert xnli["languages"][lang]["score"] == pytest.approx(100 * correct / len(rows))
    assert xnli["score"] == pytest.approx((xnli["languages"]["en"]["score"] + xnli["languages"]["sw"]["score"]) / 2)
    assert xnli["signature"]["backend"] == "local-completions"
    first = samples[0]
    for (context, continuation), resp in zip(first["arguments"], first["resps"]):
        assert resp[0][0] == pytest.approx(_server_loglikelihood(vllm_server, context, continuation), abs=1e-3)
    assert json.loads((run.path / "scores.json").read_text())["multilingual"]["tasks"]["xnli"] == xnli


@pytest.mark.slow
def test_generation_tasks_score_their_outputs_and_resume(vllm_server, tmp_path):
    run = RunFolder.open(tmp_path / "run", "xplus-tiny")
    suite = load_suite("multilingual")
    ctx = _context(run, vllm_server, tasks="mgsm,xgpqa", langs="en,de", limit=3, max_tokens=24)
    scores = run_suite(suite, ctx)

    mgsm = scores["tasks"]["mgsm"]
    assert set(mgsm["languages"]) == {"en", "de"}
    assert set(scores["tasks"]["xgpqa"]["languages"]) == {"en", "de"}
    for task in ("mgsm", "xgpqa"):
        entry = scores["tasks"][task]
        for lang, result in entry["languages"].items():
            rows = [s for s in _samples(run, task) if s["lang"] == lang and s["filter"] == "flexible-extract"]
            assert len(rows) == result["n"] == 3
            for row in rows:
                output = row["resps"][0][0]
                assert isinstance(output, str) and output  # the model's chat answer
                extracted = row["filtered_resps"][0]
                assert row["exact_match"] == float(_normalise(extracted) == _normalise(row["target"]))
            assert result["score"] == pytest.approx(100 * sum(r["exact_match"] for r in rows) / 3)
    gpqa_row = next(s for s in _samples(run, "xgpqa"))
    prompt = json.dumps(gpqa_row["arguments"], ensure_ascii=False)
    assert gpqa_row["doc"]["Question"] in prompt and gpqa_row["doc"]["Correct Answer"] in prompt
    correct_letter = "ABCD"[gpqa_row["doc"]["choices"].index(gpqa_row["doc"]["Correct Answer"])]
    assert gpqa_row["target"] == f"({correct_letter})"

    lines_before = len(_samples(run, "mgsm"))
    again = run_suite(suite, ctx)  # everything is stored: nothing is asked again
    assert again == scores
    assert len(_samples(run, "mgsm")) == lines_before


@pytest.mark.slow
def test_report_beside_paper_numbers(vllm_server, tmp_path, capsys):
    out = tmp_path / "cli-run"
    code = xplus_eval(["multilingual", "--model", "xplus-tiny", "--endpoint", vllm_server.base_url,
                       "--api-key", API_KEY, "--tasks", "xnli", "--langs", "en", "--limit", "2",
                       "--data-dir", str(MULTILINGUAL_DATA), "--output", str(out)])
    assert code == 0
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| XNLI | acc | 1 |" in report
    assert "42.44" in report and "44.79" in report  # Table 2: Qwen3-8B and Qwen3-XPlus-8B on XNLI
    assert (out / "multilingual.png").read_bytes()[:4] == b"\x89PNG"
    xnli_en = json.loads((out / "scores.json").read_text())["multilingual"]["tasks"]["xnli"]["languages"]["en"]
    assert f"- XNLI: en {xnli_en['score']:.1f}" in report
    assert "XNLI" in capsys.readouterr().out


@pytest.mark.slow
def test_missing_dataset_offline_names_it(vllm_server, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    run = RunFolder.open(tmp_path / "run", "xplus-tiny")
    with pytest.raises(MissingAssetError, match=r"dataset facebook/xnli \(config fr\).*xplus-eval fetch-data"):
        run_suite(load_suite("multilingual"), _context(run, vllm_server, tasks="xnli", langs="en,fr"))
    assert not (run.path / "scores.json").exists()  # nothing was run before the gap was found


@pytest.mark.slow
def test_endpoint_not_serving_the_model(vllm_server, tmp_path):
    run = RunFolder.open(tmp_path / "run", "LLaMAX/Qwen3-XPlus-8B")
    with pytest.raises(EndpointError, match="serves xplus-tiny, not 'LLaMAX/Qwen3-XPlus-8B'"):
        run_suite(load_suite("multilingual"), _context(run, vllm_server, tasks="xnli", langs="en",
                                                model="LLaMAX/Qwen3-XPlus-8B"))


def _server_loglikelihood(server, context: str, continuation: str) -> float:
    """The continuation's loglikelihood from vLLM's own ``prompt_logprobs`` (not the echo path lm-eval uses),
    tokenised as lm-eval does: an empty context becomes the BOS (else EOS) token."""
    import httpx
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(server.model.path)
    if context:
        whole = tokenizer.encode(context + continuation, add_special_tokens=False)
        context_ids = tokenizer.encode(context, add_special_tokens=False)
    else:
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        context_ids = [prefix]
        whole = context_ids + tokenizer.encode(continuation, add_special_tokens=False)
    response = httpx.post(f"{server.base_url}/completions", headers={"Authorization": f"Bearer {API_KEY}"},
                          json={"model": "xplus-tiny", "prompt": whole, "max_tokens": 1, "temperature": 0,
                                "prompt_logprobs": 0}, timeout=60)
    positions = response.json()["choices"][0]["prompt_logprobs"]
    return sum(positions[i][str(whole[i])]["logprob"] for i in range(len(context_ids), len(whole)))


def _normalise(text: str) -> str:
    """lm-eval's exact_match with ignore_case and ignore_punctuation."""
    import string

    return str(text).lower().translate(str.maketrans("", "", string.punctuation))
