"""Translation suite parts that need no model: options, FLORES loading, sacrebleu metrics, the paper's
aggregation, the report beside the paper, and ``xplus-eval compare`` (real sacrebleu throughout)."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers.translation import make_run, point_sacrebleu_at

from xplus_release.errors import ConfigError, MissingAssetError, UnknownLanguageError
from xplus_release.evalsuite.translation.aggregate import aggregate
from xplus_release.evalsuite.translation.data import load_flores
from xplus_release.evalsuite.translation.options import TranslationOptions, resolve_grid
from xplus_release.languages import get_language, parse_language_list


def grid(**options):
    langs, pairs = resolve_grid(TranslationOptions.build(options))
    return [lang.code for lang in langs], [f"{s.code}-{t.code}" for s, t in pairs]


# --- options and directions -------------------------------------------------------------------------

def test_all_directions_is_the_full_ordered_grid():
    langs, pairs = grid()
    assert len(langs) == 17 and len(pairs) == 17 * 16 and pairs[0] == "en-zh"
    assert grid(langs="en,zh,sw") == (["en", "zh", "sw"], ["en-zh", "en-sw", "zh-en", "zh-sw", "sw-en", "sw-zh"])


def test_english_centric_and_explicit_directions():
    assert grid(langs="en,zh,sw", directions="en-x")[1] == ["en-zh", "en-sw"]
    assert grid(langs="en,zh,sw", directions="x-en,sw-zh")[1] == ["zh-en", "sw-en", "sw-zh"]
    # explicit pairs may name languages outside --langs (any of their codes); they join the grid
    assert grid(langs="en,zh", directions="eng_Latn-swh_Latn") == (["en", "sw"], ["en-sw"])


@pytest.mark.parametrize("options, error, words", [
    ({"langs": "en,xx"}, UnknownLanguageError, "unknown language 'xx'"),
    ({"langs": "en,zh", "directions": "en-en"}, ConfigError, "into itself"),
    ({"langs": "en,zh", "directions": "sw-x"}, ConfigError, "needs sw among --langs"),
    ({"langs": "en,zh", "directions": "enzh"}, ConfigError, "is not SRC-TGT"),
    ({"langs": "en"}, ConfigError, "no directions"),
    ({"metrics": "spbleu,meteor"}, ConfigError, "unknown metric"),
    ({"tokenizer": "13a"}, ConfigError, "flores200 or flores101"),
    ({"max_tokens": 0}, ConfigError, "max-tokens must be at least 1"),
    ({"beam": 4}, ConfigError, "unknown translation option(s): beam"),
])
def test_bad_options_are_one_clear_error(options, error, words):
    with pytest.raises(error) as info:
        grid(**options)
    assert words in str(info.value) and "\n" not in str(info.value)


# --- FLORES data ------------------------------------------------------------------------------------

def test_local_flores200_and_flores101_layouts(flores_dir, tmp_path):
    langs = parse_language_list("en,zh,sw")
    texts = load_flores(langs, "local", flores_dir, limit=5)
    assert [len(v) for v in texts.values()] == [5, 5, 5]
    assert texts["en"][0] == (flores_dir / "devtest" / "eng_Latn.devtest").read_text(encoding="utf-8").split("\n")[0]
    for lang in langs:  # the same files under FLORES-101 names, without the devtest/ level
        shutil.copy(flores_dir / "devtest" / f"{lang.flores200}.devtest", tmp_path / f"{lang.flores101}.devtest")
    assert load_flores(langs, "local", tmp_path, limit=5) == texts


def test_missing_and_unaligned_files_are_clear_errors(flores_dir, tmp_path):
    langs = parse_language_list("en,sw")
    (tmp_path / "devtest").mkdir()
    shutil.copy(flores_dir / "devtest" / "eng_Latn.devtest", tmp_path / "devtest")
    with pytest.raises(MissingAssetError, match=r"no FLORES devtest file for Swahili .*swh_Latn\.devtest"):
        load_flores(langs, "local", tmp_path)
    lines = (flores_dir / "devtest" / "swh_Latn.devtest").read_text(encoding="utf-8").splitlines()
    (tmp_path / "devtest" / "swh_Latn.devtest").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not aligned .*en: 60, sw: 59"):
        load_flores(langs, "local", tmp_path)


def test_builtin_sample_is_the_flores_devtest_head(flores_dir):
    texts = load_flores(parse_language_list("all"), "flores200-sample")
    assert len(texts) == 17 and all(len(v) == 80 for v in texts.values())
    # tests/data holds devtest lines 101-160; the sample holds lines 1-80 of the same aligned files
    assert texts["zh"][0] != texts["en"][0] and texts["en"][0].startswith('"We now have 4-month-old mice')


def test_hub_dataset_offline_is_one_line_with_the_fetch_command(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(MissingAssetError) as info:
        load_flores([get_language("sw")], "benchmax")
    assert "hf download --repo-type dataset LLaMAX/BenchMAX_General_Translation" in str(info.value)


# --- metrics ----------------------------------------------------------------------------------------

def test_spbleu_equals_sacrebleus_own_corpus_bleu(sacrebleu_home, flores_dir):
    import sacrebleu

    from xplus_release.evalsuite.translation.metrics import corpus_score

    refs = (flores_dir / "devtest" / "zho_Hans.devtest").read_text(encoding="utf-8").splitlines()[:20]
    hyps = refs[1:] + refs[:1]  # shifted references: a real, low but non-zero score
    hyps[3] = refs[3]
    for tokenizer in ("flores200", "flores101"):
        ours = corpus_score("spbleu", hyps, refs, "zh", tokenizer)
        theirs = sacrebleu.corpus_bleu(hyps, [refs], tokenize=tokenizer)
        assert ours["score"] == pytest.approx(theirs.score, abs=1e-4) and 0 < ours["score"] < 100
        assert f"tok:{tokenizer}" in ours["signature"]


def _shifted(flores_dir, file: str, n: int = 20) -> tuple[list[str], list[str]]:
    refs = (flores_dir / "devtest" / file).read_text(encoding="utf-8").splitlines()[:n]
    hyps = refs[1:] + refs[:1]
    hyps[3] = refs[3]
    return hyps, refs


def test_chrf_is_benchmaxs_whitespace_chrf_and_equals_the_sacrebleu_cli(flores_dir, tmp_path):
    import subprocess
    import sys

    import sacrebleu

    from xplus_release.evalsuite.translation.metrics import corpus_score

    hyps, refs = _shifted(flores_dir, "deu_Latn.devtest")
    ours = corpus_score("chrf", hyps, refs, "de", "flores200")
    benchmax = sacrebleu.corpus_chrf(hyps, [refs], remove_whitespace=False).score  # BenchMAX's get_chrf
    assert ours["score"] == pytest.approx(benchmax, abs=1e-4) and "space:yes" in ours["signature"]
    assert ours["score"] != pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score, abs=1e-3)
    (tmp_path / "hyp.txt").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    (tmp_path / "ref.txt").write_text("\n".join(refs) + "\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "sacrebleu", str(tmp_path / "ref.txt"), "-i", str(tmp_path / "hyp.txt"), "-m", "chrf",
                          "--chrf-whitespace", "-b", "-w", "4"], capture_output=True, text=True, check=True).stdout
    assert ours["score"] == pytest.approx(float(out), abs=1e-4)


def test_ter_is_benchmaxs_and_chrfpp_is_sacrebleus(flores_dir):
    import sacrebleu

    from xplus_release.evalsuite.translation.metrics import corpus_score

    hyps, refs = _shifted(flores_dir, "zho_Hans.devtest")
    ter = corpus_score("ter", hyps, refs, "zh", "flores200")
    theirs = sacrebleu.corpus_ter(hyps, [refs], normalized=True, asian_support=True)  # BenchMAX's get_ter
    assert ter["score"] == pytest.approx(theirs.score, abs=1e-4) and 0 < ter["score"]
    assert ter["score"] != pytest.approx(sacrebleu.corpus_ter(hyps, [refs]).score, abs=1e-3)  # settings matter
    assert "norm:yes" in ter["signature"] and "asian:yes" in ter["signature"]
    chrfpp = corpus_score("chrfpp", hyps, refs, "zh", "flores200")
    assert chrfpp["score"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs], word_order=2).score, abs=1e-4)
    assert "nw:2" in chrfpp["signature"]


def test_bleu_uses_sacrebleus_tokenizer_for_zh_ja_ko():
    from xplus_release.evalsuite.translation.metrics import corpus_score

    refs, hyps = ["今日はいい天気です。", "猫が好きです。"], ["今日はいい天気です。", "犬が好きです。"]
    ja = corpus_score("bleu", hyps, refs, "ja", "flores200")
    assert "tok:ja-mecab" in ja["signature"] and 0 < ja["score"] < 100
    assert "tok:zh" in corpus_score("bleu", hyps, refs, "zh", "flores200")["signature"]
    assert "tok:ko-mecab" in corpus_score("bleu", ["고양이"], ["고양이"], "ko", "flores200")["signature"]
    assert "tok:13a" in corpus_score("bleu", ["a cat"], ["a cat"], "de", "flores200")["signature"]


def test_missing_sentencepiece_model_offline(monkeypatch, tmp_path):
    from xplus_release.evalsuite.translation.metrics import check_spm_model

    point_sacrebleu_at(monkeypatch, tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingAssetError) as info:
        check_spm_model("flores200")
    message = str(info.value)
    assert str(tmp_path / "models" / "flores200sacrebleuspm") in message and "curl -L -o" in message


# --- aggregation ------------------------------------------------------------------------------------

def test_aggregation_is_the_papers_mean_into_and_out_of_each_language():
    scores = {"en-zh": {"spbleu": 30.0}, "en-sw": {"spbleu": 20.0}, "zh-en": {"spbleu": 25.0},
              "zh-sw": {"spbleu": 10.0}, "sw-en": {"spbleu": 35.0}, "sw-zh": {"spbleu": 5.0, "xcomet": 50.0}}
    agg = aggregate(scores, ["en", "zh", "sw"], ["spbleu", "xcomet"])
    assert agg["en-x"] == {"spbleu": 25.0, "directions": 2}  # (30 + 20) / 2
    assert agg["x-en"] == {"spbleu": 30.0, "directions": 2}  # (25 + 35) / 2
    assert agg["x-zh"] == {"spbleu": 17.5, "xcomet": 50.0, "directions": 2}  # (30 + 5) / 2; one xCOMET
    assert agg["sw-x"] == {"spbleu": 20.0, "xcomet": 50.0, "directions": 2}  # (35 + 5) / 2
    assert agg["x-sw"]["spbleu"] == 15.0 and agg["zh-x"]["spbleu"] == 17.5


# --- report -----------------------------------------------------------------------------------------

def test_report_puts_the_run_beside_the_paper_with_deltas(tmp_path):
    from xplus_release.evalsuite.translation.suite import TranslationSuite
    from xplus_release.runs import RunFolder

    run = RunFolder.open(tmp_path / "run", "LLaMAX/Qwen3-XPlus-8B")
    directions = {"en-sw": {"spbleu": 40.0, "xcomet": 90.0, "empty": 2, "truncated": 0},
                  "sw-en": {"spbleu": 40.02, "xcomet": 90.0, "empty": 0, "truncated": 1}}
    scores = {"settings": {"dataset": "local", "langs": ["en", "sw"], "metrics": ["spbleu", "xcomet"],
                           "segments_per_direction": 10, "max_tokens": 512},
              "signatures": {"spbleu": "nrefs:1|tok:flores200"}, "directions": directions,
              "aggregates": aggregate(directions, ["en", "sw"], ["spbleu", "xcomet"])}
    text = TranslationSuite().report(run, scores)
    own_row = next(line for line in text.splitlines() if line.startswith("| **Qwen3-XPlus-8B**"))
    assert "38.02 (+2.00)" in own_row  # paper x-en spBLEU 38.02; this run's x-en is 40.02
    assert "> **Warning:** 2 empty hypotheses" in text and "1 outputs cut at the max-tokens limit" in text
    assert "| Qwen3-8B |" in text  # every model the paper reports, not just this one
    for metric in ("spbleu", "xcomet"):
        assert (run.path / f"translation_{metric}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- compare ----------------------------------------------------------------------------------------

def test_compare_finds_the_better_run_significant(sacrebleu_home, flores_dir, tmp_path):
    from xplus_release.evalsuite.cli import main

    refs = (flores_dir / "devtest" / "deu_Latn.devtest").read_text(encoding="utf-8").splitlines()
    worse = [" ".join(r.split()[: len(r.split()) // 2]) for r in refs]  # half of each sentence
    a = make_run(tmp_path / "a", "m", {"en-de": worse, "en-fr": refs[:30]}, {"en-de": refs, "en-fr": refs[:30]})
    b = make_run(tmp_path / "b", "m", {"en-de": refs, "en-fr": refs[:30]}, {"en-de": refs, "en-fr": refs[:30]})
    assert main(["compare", str(a), str(b), "--samples", "200", "--no-progress"]) == 0
    stored = json.loads((b / "compare-a" / "compare.json").read_text())
    rows = stored["rows"]
    de = {r["metric"]: r for r in rows if r["direction"] == "en-de"}
    assert de["spbleu"]["delta"] > 10 and de["spbleu"]["p_corrected"] < 0.05 and de["chrf"]["p_corrected"] < 0.05
    assert de["spbleu"]["outcome"] == "better" and stored["correction"] == "holm"
    fr = [r for r in rows if r["direction"] == "en-fr"]
    assert all(r["delta"] == 0 and r["p_value"] == r["p_corrected"] == 1.0 and r["outcome"] == "same" for r in fr)
    assert stored["summary"]["spbleu"] == {"better": 1, "worse": 0, "same": 1}
    assert (b / "compare-a" / "compare_spbleu.png").is_file()
    md = (b / "compare-a" / "compare.md").read_text()
    assert "| en-de | spbleu | 60 |" in md and "1 directions improve, 0 worsen, 1 do not differ" in md


def test_compare_bad_inputs(tmp_path, capsys):
    from xplus_release.evalsuite.cli import main

    assert main(["compare", str(tmp_path / "nope"), str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err
    a = make_run(tmp_path / "a", "m", {"en-de": ["x"]}, {"en-de": ["y"]})
    b = make_run(tmp_path / "b", "m", {"en-fr": ["x"]}, {"en-fr": ["y"]})
    assert main(["compare", str(a), str(b), "--metrics", "chrf"]) == 2
    assert "share no translated direction" in capsys.readouterr().err


def test_stored_scores_are_reused_only_for_the_same_input_and_signature(sacrebleu_home, flores_dir):
    from xplus_release.evalsuite.translation.scoring import score_corpus

    refs = (flores_dir / "devtest" / "deu_Latn.devtest").read_text(encoding="utf-8").splitlines()[:10]
    gens = {"en-de": [{"hypothesis": h, "reference": r} for h, r in zip(refs[1:] + refs[:1], refs)]}
    first, sigs = score_corpus(gens, ["spbleu"], "flores200", {}, progress=False)
    planted = {"directions": {"en-de": {**first["en-de"], "spbleu": 99.0}}, "signatures": sigs}
    assert score_corpus(gens, ["spbleu"], "flores200", planted, False)[0]["en-de"]["spbleu"] == 99.0
    # another tokenizer, or other hypotheses: computed afresh
    assert score_corpus(gens, ["spbleu"], "flores101", planted, False)[0]["en-de"]["spbleu"] == first["en-de"]["spbleu"]
    gens["en-de"][0] = {"hypothesis": refs[0], "reference": refs[0]}
    assert score_corpus(gens, ["spbleu"], "flores200", planted, False)[0]["en-de"]["spbleu"] != 99.0


def test_chrf_stored_under_another_setting_is_rescored(flores_dir):
    """A scores.json written with whitespace-free chrF (space:no) is not reused for BenchMAX's chrF."""
    import sacrebleu

    from xplus_release.evalsuite.translation.scoring import score_corpus

    refs = (flores_dir / "devtest" / "deu_Latn.devtest").read_text(encoding="utf-8").splitlines()[:10]
    gens = {"en-de": [{"hypothesis": h, "reference": r} for h, r in zip(refs[1:] + refs[:1], refs)]}
    first, sigs = score_corpus(gens, ["chrf"], "flores200", {}, progress=False)
    old_chrf = sacrebleu.CHRF()
    old_score = old_chrf.corpus_score([g["hypothesis"] for g in gens["en-de"]], [refs])
    old_sigs = {"chrf": str(old_chrf.get_signature())}
    assert "space:no" in old_sigs["chrf"] and old_sigs["chrf"] != sigs["chrf"]
    stored = {"directions": {"en-de": {**first["en-de"], "chrf": round(old_score.score, 4)}}, "signatures": old_sigs}
    rescored, new_sigs = score_corpus(gens, ["chrf"], "flores200", stored, False)
    assert rescored["en-de"]["chrf"] == first["en-de"]["chrf"] != stored["directions"]["en-de"]["chrf"]
    assert new_sigs == sigs


def test_missing_xcomet_model_is_one_line_with_the_fetch_command(monkeypatch, tmp_path):
    from xplus_release.evalsuite.translation.xcomet import resolve_checkpoint

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingAssetError) as info:
        resolve_checkpoint("Unbabel/XCOMET-XXL")
    message = str(info.value)
    assert "hf download Unbabel/XCOMET-XXL && hf download facebook/xlm-roberta-xxl" in message and "\n" not in message
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(MissingAssetError, match="has no checkpoints/model.ckpt"):
        resolve_checkpoint(str(tmp_path / "not-a-model"))


# --- plots ---------------------------------------------------------------------------------------------

@pytest.fixture
def saved_figures(monkeypatch) -> list:
    """Every matplotlib figure saved during a test, as it was when saved (the code closes it afterwards)."""
    from matplotlib.figure import Figure

    saved, save = [], Figure.savefig

    def record(figure, *args, **kwargs):
        saved.append(figure)
        return save(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return saved


def test_score_axes_start_at_zero_on_a_run_of_zeros(saved_figures, tmp_path):
    """Bars of a run that scored 0 everywhere sit on a 0-100 axis, and the heatmaps' colour scales (the
    report's and the explorer's) run from 0, never centred on 0 as matplotlib does with an empty range."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    from xplus_release.evalsuite.multilingual.report import paper_comparison_rows
    from xplus_release.evalsuite.plots import comparison_plot
    from xplus_release.evalsuite.translation.report import write_heatmap
    from xplus_release.evalsuite.view.figures import _cell_colours

    tasks = {"xnli": {"paper_name": "XNLI", "score": 0.0}, "mgsm": {"paper_name": "MGSM", "score": 0.0}}
    rows = paper_comparison_rows(tasks, {"Qwen3-8B": {"XNLI": 45.1}}, ["Qwen3-8B", "Qwen3-XPlus-8B"])
    assert rows[0]["paper"] == {"Qwen3-8B": 45.1} and rows[1]["paper"] == {}
    comparison_plot(rows, tmp_path / "bars.png", "zeros")
    comparison_plot([{"task": "MATH", "ours": 0.0, "paper": {}}], tmp_path / "alone.png", "zeros")
    assert [figure.axes[0].get_ylim() for figure in saved_figures] == [(0.0, 100.0), (0.0, 100.0)]

    zeros = {"en-zh": {"spbleu": 0.0}, "zh-en": {"spbleu": 0.0}}
    write_heatmap(tmp_path, zeros, ["en", "zh"], "spbleu")
    heatmap, colourbar = saved_figures[-1].axes
    assert (heatmap.images[0].norm.vmin, heatmap.images[0].norm.vmax) == (0.0, 1.0)
    assert colourbar.get_ylim() == (0.0, 1.0)
    write_heatmap(tmp_path, {"en-zh": {"spbleu": 20.0}, "zh-en": {"spbleu": 30.0}}, ["en", "zh"], "spbleu")
    assert (saved_figures[-1].axes[0].images[0].norm.vmin, saved_figures[-1].axes[0].images[0].norm.vmax) == (0, 30)

    bottom, top = to_hex(colormaps["viridis"](0.0)), to_hex(colormaps["viridis"](1.0))
    assert [c.split(";")[0] for c in _cell_colours([[None, 0.0], [0.0, None]], diverging=False)[0]] == [
        "background-color: #f3f4f6", f"background-color: {bottom}"]
    weak = _cell_colours([[None, 10.0], [20.0, None]], diverging=False)  # 10 is half of the top, not the bottom
    assert weak[1][0].startswith(f"background-color: {top}") and not weak[0][1].startswith(f"background-color: {bottom}")
