"""The translation suite on ``xplus-tiny`` with the real vLLM engine (the session's shared one): one
batched engine call for every direction, resume, --force, chunked durability, sacrebleu-exact scores,
xCOMET through unbabel-comet in its managed environment, and the ``xplus-eval translation`` CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LID176_PATH

from xplus_release.engines import ChatEngine, SamplingConfig
from xplus_release.evalsuite.base import EvalContext, RunOptions, load_suite
from xplus_release.evalsuite.common import run_suite
from xplus_release.runs import RunFolder

pytestmark = pytest.mark.slow
LANGS = "en,zh,sw"
GREEDY = SamplingConfig()
DIRECTIONS = ["en-zh", "en-sw", "zh-en", "zh-sw", "sw-en", "sw-zh"]


class CountingEngine(ChatEngine):
    """The shared engine, recording how many prompts each ``chat`` call sent; closing it is a no-op."""

    def __init__(self, inner: ChatEngine):
        self.inner, self.model_name, self.calls = inner, inner.model_name, []

    def chat(self, conversations, sampling=GREEDY, chat_template_kwargs=None, progress=True):
        self.calls.append({"prompts": len(conversations), "sampling": sampling, "kwargs": chat_template_kwargs})
        return self.inner.chat(conversations, sampling, chat_template_kwargs, progress=False)

    def describe(self) -> dict:
        return self.inner.describe()


@pytest.fixture(scope="module")
def first_run(vllm_engine, flores_dir, sacrebleu_spm_root, tmp_path_factory) -> tuple[Path, dict, list]:
    """The suite's first run on en,zh,sw (3 sentences): its folder, scores and engine calls."""
    from helpers.translation import point_sacrebleu_at

    folder = tmp_path_factory.mktemp("translation-first-run")
    engine = CountingEngine(vllm_engine)
    with pytest.MonkeyPatch.context() as patch:
        point_sacrebleu_at(patch, sacrebleu_spm_root)
        scores = run_suite(load_suite("translation"), context(folder, engine, flores_dir))
    return folder, scores, engine.calls


@pytest.fixture
def run_dir(first_run, tmp_path) -> Path:
    """A copy of the first run's folder, for one test to resume, rescore or force (tests share no files)."""
    return Path(shutil.copytree(first_run[0], tmp_path / "run"))


def context(run_dir, engine, flores_dir, force=False, **options) -> EvalContext:
    options = {"langs": LANGS, "max_tokens": 8, "metrics": "spbleu,chrf,bleu,offtarget", "lid_model": str(LID176_PATH),
               **options}
    return EvalContext(run=RunFolder.open(run_dir, "xplus-tiny"), model="xplus-tiny", engine_factory=lambda: engine,
                       run_options=RunOptions(limit=3, force=force, data_dir=flores_dir, progress=False),
                       options=options)


def lines(run_dir: Path, direction: str, sub: str = "") -> list[dict]:
    path = run_dir / "generations" / "translation" / sub / f"{direction}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_direction_in_one_batched_call_scored_exactly_as_sacrebleu(first_run, flores_dir, sacrebleu_home):
    import sacrebleu

    run_dir, scores, calls = first_run
    assert calls == [{"prompts": 18, "sampling": SamplingConfig(max_tokens=8),
                      "kwargs": {"enable_thinking": False}}]
    assert list(scores["directions"]) == DIRECTIONS
    for direction in DIRECTIONS:
        records = lines(run_dir, direction)
        assert [r["index"] for r in records] == [0, 1, 2]
        assert all(r["completion_tokens"] <= 8 and r["hypothesis"] == r["hypothesis"].strip() for r in records)
        hyps, refs = [r["hypothesis"] for r in records], [r["reference"] for r in records]
        expected = sacrebleu.corpus_bleu(hyps, [refs], tokenize="flores200").score
        assert scores["directions"][direction]["spbleu"] == pytest.approx(expected, abs=1e-4)
    src = (flores_dir / "devtest" / "swh_Latn.devtest").read_text(encoding="utf-8").splitlines()
    assert lines(run_dir, "sw-zh")[2]["source"] == src[2]
    en_x = (scores["directions"]["en-zh"]["chrf"] + scores["directions"]["en-sw"]["chrf"]) / 2
    assert scores["aggregates"]["en-x"]["chrf"] == pytest.approx(en_x, abs=1e-3)
    assert "tok:flores200" in scores["signatures"]["spbleu"] and "bleu:zh" in scores["signatures"]
    assert json.loads((run_dir / "scores.json").read_text())["translation"] == scores
    # every output is in some language: off-target or not, each one is counted once (random weights)
    for entry in scores["directions"].values():
        assert entry["off_target"] + entry["source_copies"] + entry["empty"] <= 3
        assert entry["offtarget"] == pytest.approx(100 * entry["off_target"] / 3, abs=1e-3)
    assert scores["signatures"]["offtarget"].startswith(f"lid:{LID176_PATH}")
    # compare reuses the sentence statistics the scoring step kept
    from xplus_release.evalsuite.translation.sentence_stats import load_stats, stats_path

    stored = load_stats(stats_path(run_dir, "chrf", "en-zh"), scores["signatures"]["chrf"])
    assert stored is not None and stored[1] == [0, 1, 2] and stored[0].shape == (3, 18)
    assert json.loads((run_dir / "run.json").read_text())["signatures"]["translation"] == scores["signatures"]


def test_rerun_redoes_nothing_and_resumes_a_killed_run(vllm_engine, flores_dir, run_dir, sacrebleu_home):
    before = json.loads((run_dir / "scores.json").read_text())["translation"]
    engine = CountingEngine(vllm_engine)
    assert run_suite(load_suite("translation"), context(run_dir, engine, flores_dir)) == before
    assert engine.calls == []
    # a run killed while writing: the last record of one direction is half a line
    path = run_dir / "generations" / "translation" / "en-sw.jsonl"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.rstrip("\n").rfind("\n") + 1] + '{"item_id": "en-sw:2", "mod', encoding="utf-8")
    run_suite(load_suite("translation"), context(run_dir, engine, flores_dir))
    assert [c["prompts"] for c in engine.calls] == [1]
    assert [r["index"] for r in lines(run_dir, "en-sw")] == [0, 1, 2]
    # other decoding settings are other generations, never silently reused
    run_suite(load_suite("translation"), context(run_dir, engine, flores_dir, max_tokens=6, directions="en-zh"))
    assert [c["prompts"] for c in engine.calls] == [1, 3]


def test_force_regenerates_everything_in_durable_chunks(vllm_engine, flores_dir, run_dir, sacrebleu_home):
    engine = CountingEngine(vllm_engine)
    scores = run_suite(load_suite("translation"), context(run_dir, engine, flores_dir, force=True, chunk_size=5))
    assert [c["prompts"] for c in engine.calls] == [5, 5, 5, 3]
    assert all(len(lines(run_dir, d)) == 3 for d in DIRECTIONS)  # the old records are gone, not appended to
    assert len(scores["directions"]) == 6


def test_xcomet_scored_by_unbabel_comet_in_its_environment(vllm_engine, flores_dir, run_dir, tiny_xcomet):
    engine = CountingEngine(vllm_engine)
    ctx = context(run_dir, engine, flores_dir, metrics="xcomet", comet_model=str(tiny_xcomet), comet_batch_size=8)
    suite = load_suite("translation")
    scores = run_suite(suite, ctx)
    assert engine.calls == []  # the generations are reused; only the new metric runs
    assert scores["signatures"]["xcomet"] == f"model:{tiny_xcomet}|unbabel-comet:2.2.7|scale:0-100"
    for direction in DIRECTIONS:
        segments = lines(run_dir, direction, "xcomet")
        assert len(segments) == 3 and all(0.0 <= s["score"] <= 100.0 for s in segments)
        assert scores["directions"][direction]["xcomet"] == pytest.approx(sum(s["score"] for s in segments) / 3,
                                                                         abs=1e-3)
        assert all(isinstance(s["error_spans"], list) for s in segments)
    spans = [span for d in DIRECTIONS for s in lines(run_dir, d, "xcomet") for span in s["error_spans"]]
    assert spans and {"text", "severity", "start", "end", "confidence"} <= set(spans[0])
    assert all(span["severity"] in ("minor", "major", "critical") for span in spans)
    assert run_suite(suite, ctx) == scores  # a rerun scores nothing new
    assert len(lines(run_dir, "en-zh", "xcomet")) == 3
    report = suite.report(ctx.run, scores)
    assert "### Beside the paper: xCOMET" in report and (run_dir / "translation_xcomet.png").is_file()


def test_cli_writes_a_complete_run_folder_with_the_test_model_defaults(vllm_engine, tmp_path, monkeypatch, capsys):
    """The README's smoke command (fewer sentences and tokens): built-in FLORES sample, chrF and BLEU."""
    from xplus_release.evalsuite import cli, common

    engine = CountingEngine(vllm_engine)
    monkeypatch.setattr(common, "open_in_process_engine", lambda run: engine)  # the session's engine
    out = tmp_path / "run"
    argv = ["translation", "--model", "xplus-tiny", "--langs", LANGS, "--limit", "3", "--max-tokens", "8",
            "--output", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    assert "6 directions scored; report:" in capsys.readouterr().out
    scores = json.loads((out / "scores.json").read_text())["translation"]
    assert scores["settings"]["dataset"] == "flores200-sample" and scores["settings"]["metrics"] == ["chrf", "bleu"]
    report = (out / "report.md").read_text()
    assert report.startswith("# Translation: xplus-tiny") and "| en-x |" in report
    differences = scores["fidelity"]["translation"]["differences"]
    assert any("flores200-sample" in d for d in differences) and any("--limit 3" in d for d in differences)
    assert "spBLEU and xCOMET not both computed" in differences
    assert "### Fidelity" in report and "BenchMAX's flores prompt" in report
    for metric in ("chrf", "bleu"):
        assert (out / f"translation_{metric}.png").read_bytes()[:4] == b"\x89PNG"
    assert cli.main(argv) == 0 and [c["prompts"] for c in engine.calls] == [18]  # the rerun sent nothing


@pytest.mark.parametrize("extra, words", [
    (["--langs", "en,xx"], "error: unknown language 'xx'"),
    (["--directions", "en-en"], "error: direction en-en translates English into itself"),
    (["--dataset", "local"], "error: dataset 'local' needs --data-dir"),
])
def test_cli_bad_inputs_are_one_line_errors_before_any_model_loads(tmp_path, extra, words):
    cmd = [sys.executable, "-m", "xplus_release.evalsuite.cli", "translation", "--output", str(tmp_path / "r"), *extra]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2 and result.stderr.startswith(words)
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="session")
def tiny_xcomet(tmp_path_factory) -> Path:
    """A tiny xCOMET-architecture checkpoint (random weights), built by a script in the comet env."""
    from xplus_release.evalsuite.translation.xcomet import COMET_ENV

    folder = tmp_path_factory.mktemp("tiny-xcomet")
    builder = Path(__file__).parent / "helpers" / "build_tiny_xcomet.py"
    corpus = Path(__file__).parents[1] / "xplus_release" / "assets" / "tiny_corpus.txt"
    subprocess.run([str(COMET_ENV.ensure()), str(builder), str(folder), str(corpus)], check=True,
                   capture_output=True, timeout=900)
    return folder


def test_the_suite_through_a_server_gives_the_in_process_outputs(vllm_engine, endpoint_engine, flores_dir,
                                                                 tmp_path, sacrebleu_home):
    """What `xplus-eval all` does: the same suite, its engine a client of a vLLM server."""
    local = run_suite(load_suite("translation"), context(tmp_path / "local", vllm_engine, flores_dir))
    remote = run_suite(load_suite("translation"), context(tmp_path / "remote", endpoint_engine, flores_dir))
    for direction in DIRECTIONS:
        assert [r["hypothesis"] for r in lines(tmp_path / "remote", direction)] == \
            [r["hypothesis"] for r in lines(tmp_path / "local", direction)]
    assert remote["directions"] == local["directions"]
