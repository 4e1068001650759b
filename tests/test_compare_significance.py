"""``xplus-eval compare`` on a grid: sacrebleu's paired tests (the same p-values as ``PairedTest``), 95%
intervals per direction and per average, and Holm / Benjamini-Hochberg corrections across directions,
checked by hand. Real sacrebleu and statsmodels; run folders are written as the suite writes them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.translation import make_run

from xplus_release.evalsuite.translation.compare import compare_runs

DIRECTIONS = ("en-de", "en-fr", "en-es", "de-en", "fr-en")
FILES = {"de": "deu_Latn", "fr": "fra_Latn", "es": "spa_Latn", "en": "eng_Latn"}


def _segments(flores_dir, lang: str, n: int = 100) -> list[str]:
    """``n`` segments of one language: each FLORES line cut into its two halves (the excerpt has 60 lines)."""
    out = []
    for line in (flores_dir / "devtest" / f"{FILES[lang]}.devtest").read_text(encoding="utf-8").splitlines():
        words = line.split()
        out += [" ".join(words[: len(words) // 2]), " ".join(words[len(words) // 2:])]
    return out[:n]


def _degraded(refs: list[str]) -> list[str]:
    return [" ".join(r.split()[:-1]) or r for r in refs]  # the last word missing: a good, imperfect system


@pytest.fixture(scope="module")
def grid_runs(tmp_path_factory, flores_dir):
    """Run A and run B = A with 10 of 100 hypotheses changed in three directions (better, worse, slightly)."""
    root = tmp_path_factory.mktemp("grid")
    refs = {d: _segments(flores_dir, d.split("-")[1]) for d in DIRECTIONS}
    hyps_a = {d: _degraded(r) for d, r in refs.items()}
    hyps_b = {d: list(h) for d, h in hyps_a.items()}
    for i in range(10):
        hyps_b["en-de"][i * 10] = refs["en-de"][i * 10]  # ten repaired
        hyps_b["en-fr"][i * 10] = "rien"  # ten ruined
        hyps_b["de-en"][i * 10] = hyps_a["de-en"][i * 10] + " the"  # ten barely changed
    return make_run(root / "a", "m", hyps_a, refs), make_run(root / "b", "m", hyps_b, refs), refs, hyps_a, hyps_b


def _holm(p: list[float]) -> list[float]:
    order = sorted(range(len(p)), key=p.__getitem__)
    out, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def _bh(p: list[float]) -> list[float]:
    order = sorted(range(len(p)), key=p.__getitem__, reverse=True)
    out, running = [0.0] * len(p), 1.0
    for rank, i in enumerate(order):
        running = min(running, p[i] * len(p) / (len(p) - rank))
        out[i] = running
    return out


@pytest.mark.parametrize("correction, by_hand", [("holm", _holm), ("bh", _bh)])
def test_corrected_p_values_are_holm_and_bh_of_the_raw_ones(grid_runs, correction, by_hand):
    a, b, *_ = grid_runs
    rows = compare_runs(a, b, ["chrf"], n_samples=300, progress=False, correction=correction)["rows"]
    raw = [r["p_value"] for r in rows]
    assert [r["p_corrected"] for r in rows] == pytest.approx(by_hand(raw), abs=1e-12)
    by_direction = {r["direction"]: r for r in rows}
    assert by_direction["en-de"]["outcome"] == "better" and by_direction["en-fr"]["outcome"] == "worse"
    assert by_direction["en-es"]["p_value"] == 1.0 and by_direction["en-es"]["outcome"] == "same"
    assert all(c >= r for c, r in zip(by_hand(raw), raw))  # a correction never makes a test more significant


def test_p_values_equal_sacrebleus_paired_tests(grid_runs, sacrebleu_home):
    """Same seed, same draws: each direction's p-value is sacrebleu's PairedTest's, bootstrap and AR."""
    from sacrebleu.significance import PairedTest

    from xplus_release.evalsuite.translation.metrics import metric_object

    a, b, refs, hyps_a, hyps_b = grid_runs
    for test, samples in (("bs", 200), ("ar", 300)):
        rows = compare_runs(a, b, ["spbleu", "chrf"], n_samples=samples, progress=False, test=test)["rows"]
        for row in (r for r in rows if r["direction"] in ("en-de", "en-fr", "de-en")):
            metric = metric_object(row["metric"], "", "flores200")
            _, results = PairedTest([("A", hyps_a[row["direction"]]), ("B", hyps_b[row["direction"]])],
                                    {row["metric"]: metric}, [refs[row["direction"]]], test_type=test,
                                    n_samples=samples)()
            (base, system), = [v for k, v in results.items() if k != "System"]
            assert row["p_value"] == system.p_value, (test, row["direction"], row["metric"])
            assert (row["a"], row["b"]) == (round(base.score, 4), round(system.score, 4))
            if test == "bs":  # sacrebleu's interval of B: mean ± ci
                assert row["ci_b"] == pytest.approx([system.mean - system.ci, system.mean + system.ci], abs=1e-4)


def test_intervals_hold_the_estimate_and_shrink_with_more_sentences(tmp_path, grid_runs):
    _, _, refs, hyps_a, hyps_b = grid_runs
    widths = {}
    for copies in (1, 4):  # the same sentences four times over: four times the sample
        many = {d: r * copies for d, r in refs.items()}
        a = make_run(tmp_path / f"a{copies}", "m", {d: h * copies for d, h in hyps_a.items()}, many)
        b = make_run(tmp_path / f"b{copies}", "m", {d: h * copies for d, h in hyps_b.items()}, many)
        result = compare_runs(a, b, ["chrf"], n_samples=300, progress=False)
        for row in result["rows"] + result["aggregates"]:
            assert row["ci_a"][0] <= row["a"] <= row["ci_a"][1] and row["ci_b"][0] <= row["b"] <= row["ci_b"][1]
            assert row["ci_delta"][0] <= row["delta"] <= row["ci_delta"][1]
        widths[copies] = {r["direction"]: r["ci_b"][1] - r["ci_b"][0] for r in result["rows"]}
        grid = next(r for r in result["aggregates"] if r["aggregate"] == "grid")
        widths[copies]["grid"] = grid["ci_b"][1] - grid["ci_b"][0]
    for key, wide in widths[1].items():
        assert 0 < widths[4][key] < 0.7 * wide, key  # about half: the interval narrows as 1/sqrt(n)


def test_averages_are_the_papers_and_tested_over_sentences(grid_runs):
    a, b, *_ = grid_runs
    result = compare_runs(a, b, ["chrf"], n_samples=200, progress=False)
    rows = {r["direction"]: r for r in result["rows"]}
    averages = {r["aggregate"]: r for r in result["aggregates"]}
    assert set(averages) == {"grid", "x-de", "x-fr", "x-es", "x-en", "en-x", "de-x", "fr-x"}
    en_x = [rows[d] for d in ("en-de", "en-fr", "en-es")]
    assert averages["en-x"]["directions"] == 3
    assert averages["en-x"]["b"] == pytest.approx(np.mean([r["b"] for r in en_x]), abs=1e-3)
    assert averages["grid"]["delta"] == pytest.approx(np.mean([r["delta"] for r in rows.values()]), abs=1e-3)
    assert averages["x-de"]["outcome"] == "better" and averages["x-fr"]["outcome"] == "worse"
    assert averages["x-es"]["p_value"] == 1.0 and averages["x-es"]["delta"] == 0  # en-es alone, unchanged
    assert all(0 < r["p_corrected"] <= 1 and r["p_corrected"] >= r["p_value"] for r in averages.values())


def test_stored_sentence_statistics_give_the_same_result_and_stale_ones_are_ignored(tmp_path, grid_runs):
    import shutil

    from xplus_release.evalsuite.translation.scoring import score_corpus
    from xplus_release.evalsuite.translation.sentence_stats import stats_path
    from xplus_release.runs import GenerationStore

    a, b, *_ = grid_runs
    fresh = compare_runs(a, b, ["chrf"], n_samples=200, progress=False)
    copies = [shutil.copytree(run, tmp_path / run.name) for run in (a, b)]
    for run in copies:  # what the suite's scoring step keeps
        gens = {d: sorted(GenerationStore(run / "generations" / "translation" / f"{d}.jsonl").records().values(),
                          key=lambda r: r["index"]) for d in DIRECTIONS}
        score_corpus(gens, ["chrf"], "flores200", {}, progress=False, run_path=run)
    assert stats_path(copies[0], "chrf", "en-de").is_file()
    assert compare_runs(*copies, ["chrf"], n_samples=200, progress=False) == fresh
    # statistics of other hypotheses (a planted stale file) must not be used
    stale = stats_path(copies[1], "chrf", "en-de")
    shutil.copy(stats_path(copies[1], "chrf", "en-fr"), stale)
    assert compare_runs(*copies, ["chrf"], n_samples=200, progress=False) == fresh
    stale.write_bytes(b"not an npz")  # a damaged file is recomputed
    assert compare_runs(*copies, ["chrf"], n_samples=200, progress=False) == fresh


def _add_xcomet(run, comet_model: str, shift: dict[str, float]) -> None:
    """xCOMET segment records as the suite stores them (scores planted: no xCOMET model runs here)."""
    from xplus_release.evalsuite.translation.xcomet import segment_key
    from xplus_release.runs import GenerationStore, read_json, write_json_atomic

    for direction in DIRECTIONS:
        records = GenerationStore(run / "generations" / "translation" / f"{direction}.jsonl").records().values()
        store = GenerationStore(run / "generations" / "translation" / "xcomet" / f"{direction}.jsonl")
        store.append([{"item_id": r["item_id"], "model": comet_model, "error_spans": [],
                       "prompt_hash": segment_key(r["source"], r["hypothesis"], r["reference"]),
                       "score": 50.0 + (r["index"] % 7) + shift.get(direction, 0.0) * (r["index"] % 2)}
                      for r in records])
    scores = read_json(run / "scores.json") if (run / "scores.json").is_file() else {}
    scores["translation"] = {"settings": {"comet_model": comet_model}}
    write_json_atomic(run / "scores.json", scores)


def test_xcomet_segment_scores_get_a_paired_test_and_comets_t_test(tmp_path, grid_runs):
    import shutil

    from scipy.stats import ttest_rel

    copies = [shutil.copytree(run, tmp_path / run.name) for run in grid_runs[:2]]
    _add_xcomet(copies[0], "tiny-xcomet", {})
    _add_xcomet(copies[1], "tiny-xcomet", {"en-de": 4.0})
    rows = {r["direction"]: r for r in compare_runs(*copies, ["xcomet"], n_samples=200, progress=False)["rows"]}
    segments = [50.0 + (i % 7) for i in range(100)]
    assert rows["en-de"]["a"] == pytest.approx(np.mean(segments), abs=1e-4)
    assert rows["en-de"]["delta"] == pytest.approx(2.0, abs=1e-4) and rows["en-de"]["outcome"] == "better"
    expected_t = ttest_rel([s + 4.0 * (i % 2) for i, s in enumerate(segments)], segments).pvalue
    assert rows["en-de"]["t_test_p_value"] == pytest.approx(expected_t)
    assert rows["en-fr"]["p_value"] == 1.0 and rows["en-fr"]["t_test_p_value"] is None


def test_compare_cli_options_and_bad_inputs(grid_runs, tmp_path, capsys):
    from xplus_release.evalsuite.cli import main

    a, b, *_ = grid_runs
    out = tmp_path / "out"
    assert main(["compare", str(a), str(b), "--metrics", "chrf", "--test", "ar", "--samples", "200",
                 "--correction", "bh", "--output", str(out), "--no-progress"]) == 0
    stored = json.loads((out / "compare.json").read_text())
    assert (stored["test"], stored["correction"], stored["samples"]) == ("ar", "bh", 200)
    counts = {key: sum(r["outcome"] == key for r in stored["rows"]) for key in ("better", "worse", "same")}
    assert stored["summary"]["chrf"] == counts and counts["better"] >= 1 and counts["worse"] >= 1
    line = f"chrf: {counts['better']} directions improve, {counts['worse']} worsen, {counts['same']} do not differ"
    assert line in capsys.readouterr().out
    assert "Benjamini-Hochberg" in (out / "compare.md").read_text()
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", str(a), str(b), "--correction", "bonferroni"])
    assert exit_info.value.code == 2 and "invalid choice: 'bonferroni'" in capsys.readouterr().err
    before = (out / "compare.json").read_bytes()
    assert main(["compare", str(a), str(b), "--metrics", "xcomet", "--output", str(out)]) == 2
    assert "xCOMET needs both runs scored with one xCOMET model" in capsys.readouterr().err
    assert (out / "compare.json").read_bytes() == before  # a failed compare leaves the last report alone
