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

from xplus_release.errors import ConfigError, EndpointError, MissingAssetError
from xplus_release.evalsuite.base import EvalContext, RunOptions, load_suite
from xplus_release.evalsuite.cli import main as xplus_eval
from xplus_release.evalsuite.common import run_suite
from xplus_release.evalsuite.multilingual.suite import required_datasets
from xplus_release.evalsuite.multilingual.tasks import TASKS, resolve_tasks, select
from xplus_release.runs import RunFolder

API_KEY = "test-key"
from xplus_release.evalsuite.multilingual.suite import SAMPLE_DATA as MULTILINGUAL_DATA

# a task folder in BenchMAX's layout, written for the tests (see its README): stands in for a checkout
BENCHMAX_LAYOUT = Path(__file__).parent / "data" / "benchmax_layout"


def _context(run, server, **options) -> EvalContext:
    limit = options.pop("limit", None)
    model = options.pop("model", "xplus-tiny")
    return EvalContext(run=run, model=model, engine_factory=lambda: None, endpoint=server.base_url,
                       api_key=API_KEY, run_options=RunOptions(limit=limit, data_dir=MULTILINGUAL_DATA, concurrency=4),
                       options=options)


def _samples(run: RunFolder, task: str) -> list[dict]:
    path = run.path / "generations" / "multilingual" / f"{task}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- no server needed -----------------------------------------------------------------------------------

def test_task_table_matches_installed_lm_eval():
    """Every lm-eval task we name exists in the pinned lm-eval; BenchMAX's names follow its folders' layout."""
    from xplus_release.evalsuite.multilingual.benchmax import BenchmaxCheckout
    from xplus_release.evalsuite.multilingual.harness import task_manager

    known = set(task_manager().all_tasks)
    missing = [t for spec in TASKS.values() if not spec.benchmax_folder for _, t in spec.subtasks() if t not in known]
    assert missing == []
    layout = set(task_manager(tuple(BenchmaxCheckout(BENCHMAX_LAYOUT, None).include_paths())).all_tasks)
    for name in ("xgpqa", "mgsm"):
        assert {t for _, t in TASKS[name].subtasks({"en", "de"})} <= layout
    assert [spec.name for spec in TASKS.values() if spec.benchmax_folder] == ["mgsm", "xifeval", "xgpqa"]
    assert TASKS["mgsm-lmeval"].lm_eval_task == "mgsm_native_cot_{lang}" and not TASKS["mgsm-lmeval"].benchmax_folder


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
    from xplus_release.evalsuite.multilingual.benchmax import BenchmaxCheckout

    assert required_datasets("xnli,xgpqa", "en,sw") == [("facebook/xnli", "en"), ("facebook/xnli", "sw")]
    assert ("juletxara/mgsm", "ja") in required_datasets("mgsm-lmeval")
    checkout = BenchmaxCheckout(BENCHMAX_LAYOUT, None)  # BenchMAX's YAML names the dataset, read from the folder
    assert required_datasets("xnli,xgpqa", "en,de", checkout=checkout, benchmax_only=True) == [
        ("LLaMAX/BenchMAX_Science", "en"), ("LLaMAX/BenchMAX_Science", "de")]


def test_the_task_table_names_the_dataset_each_task_reads():
    """The core's task table is what model cards file a score under: its dataset is the one lm-eval's task
    (or BenchMAX's YAML, in the layout we test with) reads, for every language of every task."""
    from xplus_release.evalsuite.multilingual.benchmax import FOLDERS, BenchmaxCheckout

    checkout = BenchmaxCheckout(BENCHMAX_LAYOUT, None)
    laid_out = set(task_manager_tasks(checkout))
    for spec in TASKS.values():
        langs = "en,de" if spec.benchmax_folder else "all"
        if spec.benchmax_folder and not {t for _, t in spec.subtasks({"en", "de"})} <= laid_out:
            continue  # a BenchMAX folder the test layout does not hold (xIFEval)
        read = {path for path, _ in required_datasets(spec.name, langs, checkout=checkout)}
        # lm-eval 0.4.13 reads MathQA from a script-free copy; the card names the original dataset
        assert read == {"regisss/math_qa" if spec.dataset == "allenai/math_qa" else spec.dataset}, spec.name
    assert set(FOLDERS) == {"ifeval", "gpqa", "mgsm"}  # derived from the table's benchmax_folder


def task_manager_tasks(checkout) -> list[str]:
    from xplus_release.evalsuite.multilingual.harness import task_manager

    return task_manager(tuple(checkout.include_paths())).all_tasks


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

    from xplus_release.evalsuite.multilingual.suite import locate_benchmax

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])  # a machine that never fetched punkt_tab
    (tmp_path / "bmx" / "tasks" / "ifeval").mkdir(parents=True)
    with pytest.raises(MissingAssetError) as info:
        locate_benchmax([TASKS["xifeval"]], tmp_path / "bmx", None)
    message = str(info.value)
    assert "punkt_tab" in message and "python -m nltk.downloader punkt_tab" in message and "\n" not in message
    (tmp_path / "data" / "nltk_data" / "tokenizers" / "punkt_tab").mkdir(parents=True)  # as fetch-data lays it out
    _place_flores101_model(monkeypatch, tmp_path / "data")
    assert locate_benchmax([TASKS["xifeval"]], tmp_path / "bmx", tmp_path / "data").root == tmp_path / "bmx"


def _place_flores101_model(monkeypatch, data_dir: Path) -> Path:
    """A file where fetch-data puts sacrebleu's FLORES-101 model; sacrebleu's own folder left empty."""
    import os

    from sacrebleu.tokenizers import tokenizer_spm

    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(data_dir / "elsewhere"))
    monkeypatch.setenv("SACREBLEU", str(data_dir / "elsewhere"))
    name = os.path.basename(tokenizer_spm.SPM_MODELS["flores101"]["url"])
    model = data_dir / "sacrebleu" / "models" / name
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(b"model")
    return model


def test_xifeval_checks_the_flores101_model_and_points_sacrebleu_at_fetched_data(tmp_path, monkeypatch):
    """BenchMAX's Thai word count loads sacrebleu's FLORES-101 SentencePiece model: checked before a run,
    found where fetch-data puts it, and sacrebleu (which read $SACREBLEU at import) pointed there."""
    from sacrebleu.tokenizers import tokenizer_spm

    from xplus_release.evalsuite.multilingual.offline_assets import check_flores101_spm

    model = _place_flores101_model(monkeypatch, tmp_path / "data")
    with pytest.raises(MissingAssetError) as info:
        check_flores101_spm(tmp_path / "other")
    message = str(info.value)
    assert "FLORES-101 SentencePiece model" in message and "xplus-eval fetch-data" in message and "\n" not in message
    check_flores101_spm(tmp_path / "data")
    assert Path(tokenizer_spm.SACREBLEU_DIR) / "models" / model.name == model


def test_xifeval_checker_libraries_count_thai_and_korean_sentences_offline(monkeypatch):
    """The calls BenchMAX's count_thai_sentences / count_korean_sentences make, on the pinned libraries,
    with the Hub unreachable (pythainlp's crfcut model and kss ship in their wheels)."""
    import importlib.util

    from xplus_release.evalsuite.multilingual.offline_assets import CHECKER_MODULES

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert all(importlib.util.find_spec(module) for module in CHECKER_MODULES)
    import kss
    from pythainlp import sent_tokenize

    thai = "วันนี้อากาศดีมาก ฉันจะไปเดินเล่นที่สวนสาธารณะ แล้วตอนเย็นจะกลับบ้านไปทำอาหาร"
    assert len(sent_tokenize(thai)) >= 2
    assert kss.split_sentences("오늘은 날씨가 좋습니다. 공원에 갑니다. 저녁에는 집에 옵니다.") == [
        "오늘은 날씨가 좋습니다.", "공원에 갑니다.", "저녁에는 집에 옵니다."]


def test_missing_checker_library_is_one_line_naming_the_fix(tmp_path, monkeypatch):
    import importlib.util

    from xplus_release.evalsuite.multilingual import offline_assets

    (tmp_path / "data" / "nltk_data" / "tokenizers" / "punkt_tab").mkdir(parents=True)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "kss" else real(name, *a))
    with pytest.raises(MissingAssetError, match=r"import kss, which is not installed; reinstall the package"):
        offline_assets.check_xifeval_assets(tmp_path / "data")


def test_missing_benchmax_folder_is_one_line_naming_both_fixes(tmp_path, capsys):
    from xplus_release.evalsuite.multilingual.suite import locate_benchmax

    with pytest.raises(MissingAssetError) as info:
        locate_benchmax([TASKS["xnli"], TASKS["xgpqa"]], None, tmp_path)
    message = str(info.value)
    assert "tasks/gpqa" in message and "--benchmax-dir DIR" in message and "xplus-eval fetch-data" in message
    assert "\n" not in message
    assert locate_benchmax([TASKS["xnli"]], None, None) is None  # lm-eval's own tasks need no checkout
    with pytest.raises(MissingAssetError, match=r"--benchmax-dir .* has no tasks/mgsm"):
        locate_benchmax([TASKS["mgsm"]], tmp_path, None)
    code = xplus_eval(["multilingual", "--model", "xplus-tiny", "--endpoint", "http://127.0.0.1:9/v1",
                       "--tasks", "xgpqa", "--langs", "de", "--output", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1 and "--benchmax-dir" in err
    assert not (tmp_path / "run").exists()  # refused before a server or run folder


def test_fetched_archive_layout_is_found_with_its_commit(tmp_path):
    """fetch-data's extraction of a GitHub archive (one top folder), then the suite finding it in --data-dir."""
    import io
    import tarfile

    from xplus_release.evalsuite.multilingual import benchmax

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(BENCHMAX_LAYOUT.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=f"BenchMAX-{benchmax.COMMIT}/{path.relative_to(BENCHMAX_LAYOUT)}")
        tar.add(BENCHMAX_LAYOUT / "README.md", arcname=f"BenchMAX-{benchmax.COMMIT}/tasks/arenahard/README.md")
    benchmax.extract_task_folders(buffer.getvalue(), tmp_path / "benchmax")
    assert (tmp_path / "benchmax" / "tasks" / "gpqa" / "native_cot_zeroshot" / "choices.py").is_file()
    assert not (tmp_path / "benchmax" / "tasks" / "arenahard").exists()  # only the folders the suite runs
    found = benchmax.locate(None, tmp_path, ["gpqa", "mgsm"], ["xgpqa"])
    assert found.commit == benchmax.COMMIT and found.source == f"CONE-MT/BenchMAX@{benchmax.COMMIT}"


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
    ctx = _context(run, vllm_server, tasks="mgsm,xgpqa", langs="en,de", limit=3, max_tokens=24,
                   benchmax_dir=BENCHMAX_LAYOUT)
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
    choices = [gpqa_row["doc"][f"choice{i}"] for i in range(1, 5)]  # the layout folder's own !function
    assert choices == sorted(choices)
    correct_letter = "ABCD"[choices.index(gpqa_row["doc"]["Correct Answer"])]
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


def test_fetched_code_eval_modules_are_where_evaluate_looks(tmp_path):
    """fetch-data caches the code_eval metric under DATA_DIR/hf/modules; the harness points evaluate there
    before a HumanEval+ task imports it (evaluate reads the location once, at import)."""
    import subprocess
    import sys

    (tmp_path / "hf" / "modules").mkdir(parents=True)
    code = ("import sys; from pathlib import Path; "
            "from xplus_release.evalsuite.multilingual.offline_assets import use_fetched_modules; "
            f"use_fetched_modules(Path({str(tmp_path)!r})); import evaluate.config as c; print(c.HF_MODULES_CACHE)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == str(tmp_path / "hf" / "modules")


def test_all_with_a_wrong_benchmax_dir_fails_before_any_server(tmp_path, capsys):
    code = xplus_eval(["all", "--model", "xplus-tiny", "--suites", "multilingual", "--multilingual-tasks", "xgpqa",
                       "--multilingual-benchmax-dir", str(tmp_path / "no-checkout"), "-o", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert f"--benchmax-dir {tmp_path / 'no-checkout'} has no tasks/gpqa;" in err
    assert "--multilingual-benchmax-dir in `xplus-eval all`" in err
    assert not (tmp_path / "run").exists()


def test_xifeval_checker_run_without_a_checkout_is_one_line(tmp_path, capsys, monkeypatch):
    """The full checker run needs BenchMAX's tasks/ifeval (not shipped: fetched by fetch-data)."""
    from xplus_release.evalsuite.multilingual import xifeval_checkers

    (tmp_path / "data" / "nltk_data" / "tokenizers" / "punkt_tab").mkdir(parents=True)
    _place_flores101_model(monkeypatch, tmp_path / "data")
    assert xifeval_checkers.main(["--benchmax-dir", str(tmp_path / "bmx"), "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "has no instructions_registry.py" in err and err.count("\n") == 1
