"""``xplus-eval view`` on two real runs of the translation suite (xplus-tiny on the session's vLLM engine)
and a real lm-eval run (the session's vLLM server), driven through ``gradio_client`` as the page drives it,
plus a headless Chromium screenshot and the ``xplus-serve --runs`` mount behind the API key.

xCOMET: the spans shown are those of ``generations/translation/xcomet/<dir>.jsonl``. This module writes
that file for one direction in the stored format (the fields and keys ``xcomet.score_xcomet`` writes)
with spans over known parts of the real hypotheses, rather than building the comet environment a second
time; ``test_translation_suite`` checks that unbabel-comet itself writes files of this format.
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.serve import run_serve

from xplus_release.engines.server import free_port
from xplus_release.errors import ConfigError
from xplus_release.evalsuite.base import EvalContext, RunOptions, load_suite
from xplus_release.evalsuite.common import run_suite
from xplus_release.runs import RunFolder

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / ".artifacts"
DIRECTIONS = ["en-zh", "en-sw", "zh-en", "zh-sw", "sw-en", "sw-zh"]
SPAN_DIRECTION = "en-zh"
COMET_MODEL = "Unbabel/XCOMET-XL"
API_KEY = "test-key"
ROW = re.compile(r"<tr data-index='(\d+)'>")
MARK = re.compile(r'<mark class="xcomet-span" data-severity="(\w+)"[^>]*>(.*?)</mark>', re.DOTALL)


def _translate(path: Path, engine, flores_dir: Path, max_tokens: int) -> RunFolder:
    run = RunFolder.open(path, "xplus-tiny")
    ctx = EvalContext(run=run, model="xplus-tiny", engine_factory=lambda: engine,
                      run_options=RunOptions(limit=5, data_dir=flores_dir, progress=False), options={"langs": "en,zh,sw", "max_tokens": max_tokens,
                                               "metrics": "spbleu,chrf"})
    run_suite(load_suite("translation"), ctx)  # the runner writes scores.json, as every command does
    return run


def _records(run: Path, direction: str, sub: str = "") -> list[dict]:
    path = run / "generations" / "translation" / sub / f"{direction}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write_xcomet(run: RunFolder) -> None:
    """Stored-format xCOMET records for SPAN_DIRECTION: a minor and a major span per long hypothesis."""
    from xplus_release.evalsuite.translation.xcomet import segment_key

    records = []
    for r in _records(run.path, SPAN_DIRECTION):
        hyp = r["hypothesis"]
        spans = [] if len(hyp) < 8 else [
            {"text": hyp[0:3], "confidence": 0.4, "severity": "minor", "start": 0, "end": 3},
            {"text": hyp[4:8], "confidence": 0.9, "severity": "major", "start": 4, "end": 8}]
        records.append({"item_id": r["item_id"], "model": COMET_MODEL,
                        "prompt_hash": segment_key(r["source"], hyp, r["reference"]),
                        "score": 10.0 + r["index"], "error_spans": spans})
    run.generations("translation", f"xcomet/{SPAN_DIRECTION}").append(records)


def _samples_run(path: Path, server) -> None:
    from xplus_release.evalsuite.multilingual.suite import SAMPLE_DATA

    ctx = EvalContext(run=RunFolder.open(path, "xplus-tiny"), model="xplus-tiny", engine_factory=lambda: None,
                      endpoint=server.base_url, api_key=API_KEY,
                      run_options=RunOptions(limit=2, data_dir=SAMPLE_DATA, progress=False, concurrency=4), options={"tasks": "xnli", "langs": "en"})
    run_suite(load_suite("multilingual"), ctx)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, vllm_engine, vllm_server, flores_dir, sacrebleu_spm_root):
    """Run A (8 new tokens) and run B (24): different outputs of the same sentences; B has xCOMET spans
    for one direction, A has lm-eval samples."""
    from helpers.translation import point_sacrebleu_at

    from xplus_release.evalsuite.view import segments

    root = tmp_path_factory.mktemp("view")
    with pytest.MonkeyPatch.context() as patch:
        point_sacrebleu_at(patch, sacrebleu_spm_root)
        segments._sentence_bleu.cache_clear()
        run_a = _translate(root / "run-a", vllm_engine, flores_dir, max_tokens=8)
        run_b = _translate(root / "run-b", vllm_engine, flores_dir, max_tokens=24)
        _write_xcomet(run_b)
        _samples_run(root / "run-a", vllm_server)
        yield run_a.path, run_b.path
        segments._sentence_bleu.cache_clear()


@pytest.fixture(scope="module")
def app(runs):
    """The app over both runs, served on a local port; a gradio_client Client of it."""
    from gradio_client import Client

    from xplus_release.evalsuite.view.app import build_view

    blocks = build_view(list(runs))
    port = free_port()
    blocks.launch(server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False), port
    finally:
        blocks.close()


def _page(client, direction=SPAN_DIRECTION, sort="sentence", metric="chrf", run="run-a", descending=False,
          outputs="all", search="", page=1, size=50) -> str:
    return client.predict(direction, sort, metric, run, descending, outputs, search, page, size,
                          api_name="/direction_page")


def _order(page: str) -> list[int]:
    return [int(i) for i in ROW.findall(page)]


def _sentence_chrf(run: Path, direction: str) -> dict[int, float]:
    """BenchMAX's chrF (whitespace included), which the suite and the viewer score with."""
    from sacrebleu.metrics import CHRF

    return {r["index"]: CHRF(whitespace=True).sentence_score(r["hypothesis"], [r["reference"]]).score
            for r in _records(run, direction)}


# --- the translation pages ----------------------------------------------------------------------------------

def test_direction_page_shows_every_segment_and_each_runs_output(app, runs):
    client, _ = app
    page = _page(client)
    a, b = (_records(run, SPAN_DIRECTION) for run in runs)
    assert _order(page) == [r["index"] for r in a] == list(range(5))
    for ra, rb in zip(a, b):
        assert ra["source"] == rb["source"]
        for text in (ra["source"], ra["reference"], ra["hypothesis"]):
            assert html.escape(text) in page
        # B's hypothesis is split by its <mark>s, so look for its unmarked tail
        assert html.escape(rb["hypothesis"][8:]) in page
    assert "5 segments match; page 1 of 1" in page
    assert len(ROW.findall(_page(client, size=2, page=3))) == 1  # pages of two: 2, 2, 1


def test_sort_by_sentence_score_and_by_difference_between_runs(app, runs):
    client, _ = app
    chrf_a, chrf_b = (_sentence_chrf(run, "zh-en") for run in runs)
    by_score = _order(_page(client, "zh-en", sort="score", run="run-b", descending=True))
    assert [round(chrf_b[i], 2) for i in by_score] == sorted((round(v, 2) for v in chrf_b.values()), reverse=True)
    by_difference = _order(_page(client, "zh-en", sort="difference"))
    deltas = [round(chrf_b[i], 2) - round(chrf_a[i], 2) for i in by_difference]
    assert deltas == sorted(deltas) and sorted(by_difference) == list(range(5))


def test_filters_split_empty_and_truncated_outputs_and_search_finds_text(app, runs):
    client, _ = app
    flagged = {r["index"] for run in runs for r in _records(run, "sw-en")
               if not r["hypothesis"].strip() or r["finish_reason"] == "length"}
    shown = set(_order(_page(client, "sw-en", outputs="empty or truncated")))
    hidden = set(_order(_page(client, "sw-en", outputs="hide empty and truncated")))
    assert shown == flagged and hidden == set(range(5)) - flagged
    source = _records(runs[0], "sw-en")[3]["source"]
    word = max(source.split(), key=len)
    expected = {r["index"] for r in _records(runs[0], "sw-en") if word.casefold() in r["source"].casefold()
                or word.casefold() in r["reference"].casefold()
                or any(word.casefold() in x["hypothesis"].casefold() for run in runs for x in _records(run, "sw-en")
                       if x["index"] == r["index"])}
    assert 3 in expected and set(_order(_page(client, "sw-en", search=word.upper()))) == expected


def test_highlighted_spans_are_the_stored_xcomet_spans(app, runs):
    client, _ = app
    page = _page(client, run="run-b")
    stored = {r["item_id"]: r for r in _records(runs[1], SPAN_DIRECTION, "xcomet")}
    expected = []
    for r in _records(runs[1], SPAN_DIRECTION):
        expected += [(s["severity"], r["hypothesis"][s["start"]:s["end"]]) for s in stored[r["item_id"]]["error_spans"]]
    assert expected  # the fixture gave long hypotheses spans
    assert [(sev, html.unescape(text)) for sev, text in MARK.findall(page)] == expected
    for r in _records(runs[1], SPAN_DIRECTION):
        assert f"xCOMET {stored[r['item_id']]['score']:.1f}" in page
    by_xcomet = _order(_page(client, sort="score", metric="xcomet", run="run-b", descending=True))
    assert by_xcomet == [4, 3, 2, 1, 0]  # stored scores are 10 + index


def test_heatmap_cells_are_the_runs_scores_and_a_cell_opens_its_direction(app, runs):
    from xplus_release.evalsuite.view.app import Explorer
    from xplus_release.evalsuite.view.reading import open_runs

    client, _ = app
    scores = json.loads((runs[0] / "scores.json").read_text())["translation"]["directions"]
    table = client.predict("chrf", "run-a", api_name="/heatmap")
    assert table["headers"] == ["source \\ target", "en", "zh", "sw"]
    cells = {f"{row[0]}-{table['headers'][j]}": value for row in table["data"] for j, value in enumerate(row) if j}
    assert {d: cells[d] for d in DIRECTIONS} == {d: f"{scores[d]['chrf']:.1f}" for d in DIRECTIONS}
    assert cells["en-en"] == "" and "background-color" in table["metadata"]["styling"][0][2]
    explorer = Explorer(open_runs(list(runs)))
    assert explorer.cell_direction(0, 2) == "en-zh" and explorer.cell_direction(2, 2) == "sw-zh"
    assert explorer.cell_direction(1, 2) is None and explorer.cell_direction(0, 0) is None  # diagonal, names


def test_difference_heatmap_marks_what_compare_finds_significant(runs, sacrebleu_home):
    from xplus_release.evalsuite.translation.compare import compare_runs, write_comparison
    from xplus_release.evalsuite.view.app import Explorer
    from xplus_release.evalsuite.view.reading import open_runs

    explorer = Explorer(open_runs(list(runs)))
    marks, note = explorer.significance(200, "holm", ["chrf"])
    comparison = compare_runs(runs[0], runs[1], ["chrf"], n_samples=200, progress=False)
    rows = comparison["rows"]
    assert marks["chrf"] == {r["direction"]: r["p_corrected"] for r in rows}
    assert note.startswith("Paired bootstrap (200 resamples")
    counts = {key: sum(r["outcome"] == key for r in rows) for key in ("better", "worse", "same")}
    assert f"{counts['better']} directions improve, {counts['worse']} worsen, {counts['same']} do not differ" in note
    data = explorer.heatmap("chrf", explorer.difference_view(), marks).data
    langs = list(data.columns[1:])
    for r in rows:
        src, tgt = r["direction"].split("-")
        cell = data.loc[langs.index(src), tgt]
        scores = [json.loads((run / "scores.json").read_text())["translation"]["directions"][r["direction"]]["chrf"]
                  for run in runs]
        assert cell.rstrip("*") == f"{scores[1] - scores[0]:+.1f}"
        assert cell.endswith("*") == (r["p_corrected"] < 0.05)
    # what `xplus-eval compare` wrote is picked up when the page opens
    write_comparison(comparison, runs[0], runs[1], runs[1] / f"compare-{runs[0].name}", 200)
    reopened = Explorer(open_runs(list(runs)))
    assert reopened.stored_significance() == marks
    assert f"{counts['better']} directions improve" in reopened.stored_note()


def test_downloads_direction_csv_and_figures(app, runs):
    client, _ = app
    path = client.predict("zh-sw", "sentence", "chrf", "run-a", False, "all", "", 1, 2, api_name="/direction_csv")
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["run-b:hypothesis"] for r in rows] == [r["hypothesis"] for r in _records(runs[1], "zh-sw")]
    assert len(rows) == 5  # every matching segment, not one page
    files = client.predict("chrf", "difference: run-b − run-a", api_name="/figures")
    assert sorted(Path(f).suffix for f in files) == [".png", ".svg"]
    assert Path(next(f for f in files if f.endswith(".png"))).read_bytes()[:4] == b"\x89PNG"
    assert "<svg" in Path(next(f for f in files if f.endswith(".svg"))).read_text()


def test_overview_puts_aggregates_beside_the_paper(app, runs):
    client, _ = app
    runs_table, aggregates, spbleu_paper, _xcomet_paper, fidelity = client.predict(api_name="/overview")
    assert [r[0] for r in runs_table["data"]] == ["run-a", "run-b"]
    scores = json.loads((runs[1] / "scores.json").read_text())["translation"]["aggregates"]
    column = aggregates["headers"].index("run-b spBLEU")
    assert {r[0]: r[column] for r in aggregates["data"]} == {k: v["spbleu"] for k, v in scores.items()}
    first_rows = [r[0] for r in spbleu_paper["data"][:3]]
    assert first_rows[:2] == ["this run: run-a", "this run: run-b"] and first_rows[2].startswith("paper: ")
    from xplus_release.evalsuite.fidelity import render_fidelity

    records = json.loads((runs[1] / "scores.json").read_text())["translation"]["fidelity"]
    assert "\n".join(render_fidelity(records)[2:]).strip() in fidelity  # the report's own table


def test_samples_browser_shows_lm_eval_samples(app, runs):
    client, _ = app
    stored = [json.loads(line) for line in
              (runs[0] / "generations" / "multilingual" / "xnli.jsonl").read_text().splitlines()]
    table = client.predict(api_name="/task_scores")
    scores = json.loads((runs[0] / "scores.json").read_text())["multilingual"]["tasks"]
    assert {(r[2], r[3]): r[5] for r in table["data"] if r[0] == "run-a"} == {
        (task, lang): entry["score"] for task, value in scores.items() for lang, entry in value["languages"].items()}
    page = client.predict("run-a", "multilingual/xnli", "", "all", "", 1, api_name="/samples")
    assert f"multilingual/xnli: {len(stored)} samples match" in page
    correct = client.predict("run-a", "multilingual/xnli", "", "correct", "", 1, api_name="/samples")
    assert f"{sum(1 for s in stored if s['acc'])} samples match" in correct
    assert html.escape(stored[0]["doc"]["premise"]) in page


def test_samples_browser_shows_opencompass_predictions_and_results(vllm_server, tmp_path):
    from xplus_release.evalsuite.cli import main
    from xplus_release.evalsuite.reasoning.suite import SAMPLE_DATA
    from xplus_release.evalsuite.view.app import Explorer
    from xplus_release.evalsuite.view.reading import open_runs

    out = tmp_path / "reasoning"
    assert main(["reasoning", "--model", "xplus-tiny", "--endpoint", vllm_server.base_url, "--api-key", API_KEY,
                 "--tasks", "math,mbpp", "--limit", "2", "--max-tokens", "16", "--thinking", "off",
                 "--data-dir", str(SAMPLE_DATA), "-o", str(out), "--no-progress"]) == 0
    explorer = Explorer(open_runs([out]))
    assert explorer.sample_tasks("reasoning") == ["reasoning/math", "reasoning/mbpp"]
    oc = out / "opencompass" / "run"
    predictions = json.loads((oc / "predictions" / "model" / "math__math-500.json").read_text())
    details = json.loads((oc / "results" / "model" / "math__math-500.json").read_text())["details"]
    page = explorer.sample_page("reasoning", "reasoning/math", "", "all", "", 1)
    assert "reasoning/math: 2 samples match" in page
    for item, detail in zip(predictions.values(), details):
        assert html.escape(item["prediction"]) in page and html.escape(detail["pred"][0]) in page
    wrong = sum(1 for d in details if not d["correct"][0])
    assert f"{wrong} samples match" in explorer.sample_page("reasoning", "reasoning/math", "", "wrong", "", 1)


# --- a run still being written, bad input ------------------------------------------------------------------

def test_a_run_being_written_is_read_without_being_touched(runs, tmp_path):
    from xplus_release.evalsuite.view.app import Explorer
    from xplus_release.evalsuite.view.reading import open_runs

    live = shutil.copytree(runs[0], tmp_path / "live")
    path = live / "generations" / "translation" / "en-sw.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:3]) + lines[3][:40], encoding="utf-8")  # the writer is mid-line
    before = path.read_bytes()
    explorer = Explorer(open_runs([live]))
    assert _order(explorer.direction_page("en-sw", "sentence", "chrf", "live", False, "all", "", 1, 50)) == [0, 1, 2]
    assert path.read_bytes() == before  # nothing cut off or rewritten
    path.write_text("".join(lines), encoding="utf-8")  # the writer finished
    assert _order(explorer.direction_page("en-sw", "sentence", "chrf", "live", False, "all", "", 1, 50)) == list(range(5))


def test_bad_inputs_are_one_line_errors(runs, tmp_path):
    from xplus_release.evalsuite.view.app import Explorer
    from xplus_release.evalsuite.view.reading import open_runs

    result = subprocess.run([sys.executable, "-m", "xplus_release.evalsuite.cli", "view", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "is not a run folder" in result.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "xplus_release.evalsuite.cli", "view", str(runs[0]),
                                 "--port", str(port)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2 and "pass another --port" in result.stderr
    RunFolder.open(tmp_path / "r", "xplus-tiny")
    explorer = Explorer(open_runs([tmp_path / "r"]))
    with pytest.raises(ConfigError, match="unknown sort"):
        explorer.direction_page("en-zh", "loudest", "chrf", "r", False, "all", "", 1, 25)


# --- the browser, and the mount in xplus-serve -------------------------------------------------------------

def test_headless_chromium_renders_the_heatmap_and_a_direction_page(runs):
    from PIL import Image

    from xplus_release.evalsuite.view.app import build_view

    blocks = build_view(list(runs), selected="Translation", direction=SPAN_DIRECTION)
    port = free_port()
    blocks.launch(server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        dom = _chromium("--dump-dom", url)
        assert "source \\ target" in dom.stdout and "xcomet-span" in dom.stdout, dom.stderr[-2000:]
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "view-translation.png"
        shot.unlink(missing_ok=True)
        _chromium(f"--screenshot={shot}", url)
    finally:
        blocks.close()
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2200)
    for half in (image.crop((0, 0, 1280, 1100)), image.crop((0, 1100, 1280, 2200))):  # heatmap; segments
        colours = half.getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 50  # rendered, not blank


def _chromium(*args: str) -> subprocess.CompletedProcess:
    from helpers.browser import chromium

    return chromium(*args, window="1280,2200", budget_ms=20000)


def test_xplus_serve_mounts_the_explorer_behind_its_key(runs, tmp_path):
    from fastapi.testclient import TestClient

    from xplus_release.serve.app import build_app, run_folders
    from xplus_release.serve.backend import Backend
    from xplus_release.serve.keys import SingleKey
    from xplus_release.serve.limits import ServeLimits

    shutil.copytree(runs[0], tmp_path / "runs" / "run-a")
    (tmp_path / "runs" / "not-a-run").mkdir()
    folders = run_folders(tmp_path / "runs")
    assert folders == [tmp_path / "runs" / "run-a"]
    # no model behind it: only /runs/ is asked, which never reaches the backend
    backend = Backend("http://127.0.0.1:9", "unused", "xplus-tiny")
    app = build_app(backend, ServeLimits(), SingleKey("k3y"), None, demo=False, runs=folders)
    with TestClient(app) as client:
        refused = client.get("/runs/config")
        assert refused.status_code == 401 and "API key" in refused.json()["error"]
        config = client.get("/runs/config", headers={"Authorization": "Bearer k3y"})
        assert config.status_code == 200
        names = {d.get("api_name") for d in config.json()["dependencies"]}
        assert {"direction_page", "heatmap", "overview"} <= names
    with pytest.raises(ConfigError, match="holds no run folder"):
        run_folders(tmp_path / "runs" / "not-a-run")


def test_xplus_serve_refuses_a_runs_folder_without_runs_before_vllm_starts(tmp_path):
    result = run_serve("--runs", str(tmp_path))
    assert result.returncode == 2 and "holds no run folder" in result.stderr
    assert "starting vLLM" not in result.stderr
