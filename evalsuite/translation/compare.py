"""``xplus-eval compare RUN_A RUN_B``: per-direction deltas between two translation runs, with sacrebleu's
paired tests (``significance``: bootstrap or approximate randomization) for spBLEU, chrF and xCOMET, 95%
confidence intervals per direction and for the paper's x→L / L→x averages and the grid average, and a
multiple-testing correction across directions (Holm by default).

Only segments both runs generated for the same source and reference are compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from xplus_release.errors import ConfigError, RunFolderError
from xplus_release.evalsuite.translation import significance as sig
from xplus_release.evalsuite.translation.metrics import check_spm_model, metric_object
from xplus_release.evalsuite.translation.scoring import fingerprint
from xplus_release.evalsuite.translation.sentence_stats import extract_pair, load_stats, stats_path
from xplus_release.evalsuite.translation.xcomet import segment_key
from xplus_release.markdown import markdown_table
from xplus_release.runs import RUN_FILE, SCORES_FILE, GenerationStore, read_json, write_json_atomic

COMPARE_METRICS = ("spbleu", "chrf", "xcomet")


def load_run_generations(path: Path) -> dict[str, dict[int, dict]]:
    """A run's translation records: direction -> sentence index -> record (of the run's own model).

    Raises:
        RunFolderError: not a run folder, or it has no translation generations.
    """
    if not (path / RUN_FILE).is_file():
        raise RunFolderError(f"{path} is not a run folder (no {RUN_FILE}); pass the --output of xplus-eval translation")
    model = read_json(path / RUN_FILE).get("model")
    folder = path / "generations" / "translation"
    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    if not files:
        raise RunFolderError(f"{path} has no translation generations; run xplus-eval translation into it first")
    return {file.stem: {r["index"]: r for r in GenerationStore(file).records().values() if r["model"] == model}
            for file in files}


class Paired(NamedTuple):
    """One direction both runs translated, aligned by sentence."""

    direction: str
    indices: list[int]
    hyps_a: list[str]
    hyps_b: list[str]
    refs: list[str]
    sources: list[str]


def paired_rows(a: dict[str, dict[int, dict]], b: dict[str, dict[int, dict]]):
    """A ``Paired`` for every direction both runs share, on the sentences with the same source and reference."""
    for direction in [d for d in a if d in b]:
        run_a, run_b = a[direction], b[direction]
        common = sorted(i for i in run_a if i in run_b and run_a[i]["source"] == run_b[i]["source"]
                        and run_a[i]["reference"] == run_b[i]["reference"])
        if common:
            yield Paired(direction, common, [run_a[i]["hypothesis"] for i in common],
                         [run_b[i]["hypothesis"] for i in common], [run_a[i]["reference"] for i in common],
                         [run_a[i]["source"] for i in common])


def compare_runs(path_a: Path, path_b: Path, metrics: list[str], tokenizer: str = "flores200",
                 n_samples: int = 1000, progress: bool = True, test: str = "bs", correction: str = "holm") -> dict:
    """``{"rows": [...], "aggregates": [...]}``: one row per (direction, metric) and per (average, metric)
    with A, B, delta (B - A), 95% intervals, the raw and the corrected p-value and the outcome.

    Raises:
        RunFolderError: either path is not a translation run.
        ConfigError: an unknown metric, test or correction; the runs share no direction; xCOMET asked for
            but not scored in both runs with one model.
        MissingAssetError: spBLEU's SentencePiece model is missing.
    """
    a, b = load_run_generations(path_a), load_run_generations(path_b)
    return compare_generations(a, b, metrics, tokenizer, n_samples, progress, names=(str(path_a), str(path_b)),
                               test=test, correction=correction, folders=(path_a, path_b))


def compare_generations(a: dict[str, dict[int, dict]], b: dict[str, dict[int, dict]], metrics: list[str],
                        tokenizer: str = "flores200", n_samples: int = 1000, progress: bool = True,
                        names: tuple[str, str] = ("A", "B"), test: str = "bs", correction: str = "holm",
                        folders: tuple[Path, Path] | None = None) -> dict:
    """``compare_runs`` on generations already read (direction -> sentence index -> record); ``folders``
    (the two run folders) supplies stored sentence statistics and xCOMET segment scores.

    Raises:
        ConfigError: an unknown metric, test or correction, or the runs share no direction.
        MissingAssetError: spBLEU's SentencePiece model is missing.
    """
    from tqdm.auto import tqdm

    _check_settings(metrics, test, correction)
    pairs = list(paired_rows(a, b))
    if not pairs:
        raise ConfigError(f"{names[0]} and {names[1]} share no translated direction and sentence; nothing to compare")
    if "spbleu" in metrics:
        check_spm_model(tokenizer)
    comet = _xcomet_scores(folders, names, pairs) if "xcomet" in metrics else {}
    seed = sig.sacrebleu_seed()
    draws = sig.Draws(n_samples, seed)
    ci_draws = draws if test == "bs" else sig.Draws(sig.DEFAULT_SAMPLES["bs"], seed)
    rows, samples = [], {}
    for paired in tqdm(pairs, desc=f"compare: {test} test", unit="direction", disable=not progress):
        for metric in (m for m in COMPARE_METRICS if m in metrics):
            stats = _paired_stats(metric, paired, tokenizer, folders, comet, (a, b))
            row, samples[paired.direction, metric] = sig.paired_test(stats, draws, test, ci_draws)
            rows.append(row)
    aggregates = _aggregate_rows(samples, [m for m in COMPARE_METRICS if m in metrics])
    for metric in metrics:
        sig.correct([r for r in rows if r["metric"] == metric], correction)
        sig.correct([r for r in aggregates if r["metric"] == metric], correction)
    return {"rows": rows, "aggregates": aggregates}


def _check_settings(metrics: list[str], test: str, correction: str) -> None:
    bad = [m for m in metrics if m not in COMPARE_METRICS]
    if bad or not metrics:
        raise ConfigError(f"compare supports the metrics {', '.join(COMPARE_METRICS)}, not {', '.join(bad) or '(none)'}")
    if test not in sig.TESTS:
        raise ConfigError(f"--test must be one of {', '.join(sig.TESTS)} (bs: paired bootstrap, ar: approximate "
                          f"randomization), not {test!r}")
    if correction not in sig.CORRECTIONS:
        raise ConfigError(f"--correction must be one of {', '.join(sig.CORRECTIONS)}, not {correction!r}")


def _paired_stats(metric: str, paired: Paired, tokenizer: str, folders, comet, runs) -> sig.PairedStats:
    """Both runs' sentence statistics: stored by the scoring step when still valid, else computed now."""
    import numpy as np

    direction = paired.direction
    if metric == "xcomet":
        stats = [np.array([[comet[side][direction][i], 1.0] for i in paired.indices]) for side in (0, 1)]
        return sig.PairedStats(direction, metric, stats[0], stats[1], sig.mean_scorer)
    obj = metric_object(metric, "", tokenizer)
    stored = [_stored_stats(folder, metric, paired, run, obj) for folder, run in zip(folders or (None, None), runs)]
    if stored[0] is None or stored[1] is None:
        stored = list(extract_pair(obj, paired.hyps_a, paired.hyps_b, paired.refs))
    return sig.PairedStats(direction, metric, stored[0], stored[1], sig.sacrebleu_scorer(obj))


def _stored_stats(folder: Path | None, metric: str, paired: Paired, run: dict, obj):
    """The scoring step's statistics of the compared sentences, if they were computed on these very texts."""
    if folder is None:
        return None
    found = load_stats(stats_path(folder, metric, paired.direction), str(obj.get_signature()))
    if found is None:
        return None
    stats, stored_index, stored_fp = found
    records, indices = run[paired.direction], paired.indices
    if any(i not in records for i in stored_index) or fingerprint([records[i] for i in stored_index]) != stored_fp:
        return None
    position = {index: row for row, index in enumerate(stored_index)}
    if any(i not in position for i in indices):
        return None
    return stats[[position[i] for i in indices]]


def _xcomet_scores(folders, names, pairs: list[Paired]) -> tuple[dict, dict]:
    """Each run's xCOMET segment scores, side -> direction -> sentence index -> score.

    Raises:
        ConfigError: a run has no xCOMET scores, another xCOMET model than the other, or misses a segment.
    """
    if folders is None:
        raise ConfigError("xCOMET comparison needs the run folders (their segment scores)")
    models = [read_json(f / SCORES_FILE).get("translation", {}).get("settings", {}).get("comet_model")
              if (f / SCORES_FILE).is_file() else None for f in folders]
    if None in models or models[0] != models[1]:
        raise ConfigError(f"xCOMET needs both runs scored with one xCOMET model (found {models[0]} in {names[0]}, "
                          f"{models[1]} in {names[1]}); drop xcomet from --metrics or score both runs with it")
    out: tuple[dict, dict] = ({}, {})
    for side, folder in enumerate(folders):
        for paired in pairs:
            out[side][paired.direction] = _segment_scores(folder, paired, side, models[0], names[side])
    return out


def _segment_scores(folder: Path, paired: Paired, side: int, model: str, name: str) -> dict[int, float]:
    store = GenerationStore(folder / "generations" / "translation" / "xcomet" / f"{paired.direction}.jsonl")
    hyps = paired.hyps_a if side == 0 else paired.hyps_b
    scored = {}
    for index, source, hyp, ref in zip(paired.indices, paired.sources, hyps, paired.refs):
        item = store.get(f"{paired.direction}:{index}", model, segment_key(source, hyp, ref))
        if item is None:
            raise ConfigError(f"{name} has no xCOMET score for {paired.direction} sentence {index}; score it "
                              "with xplus-eval translation --metrics spbleu,xcomet (or drop xcomet from --metrics)")
        scored[index] = item["score"]
    return scored


def _aggregate_rows(samples: dict[tuple[str, str], tuple], metrics: list[str]) -> list[dict]:
    """The paper's x-L and L-x averages and the grid average, from the directions' resamples."""
    rows = []
    for metric in metrics:
        members = {d: s for (d, m), s in samples.items() if m == metric}
        langs = list(dict.fromkeys(code for d in members for code in d.split("-")))
        groups = {"grid": list(members.values())}
        for lang in langs:
            groups[f"x-{lang}"] = [s for d, s in members.items() if d.split("-")[1] == lang]
            groups[f"{lang}-x"] = [s for d, s in members.items() if d.split("-")[0] == lang]
        rows += [sig.aggregate_row(name, metric, group) for name, group in groups.items() if group]
    return rows


TEST_NAMES = {"bs": "paired bootstrap resampling", "ar": "approximate randomization"}
CORRECTION_NAMES = {"holm": "Holm (family-wise error)", "bh": "Benjamini-Hochberg (false discovery rate)",
                    "none": "none"}


def write_comparison(comparison: dict, path_a: Path, path_b: Path, output: Path, n_samples: int,
                     test: str = "bs", correction: str = "holm") -> Path:
    """compare.json, compare.md and one compare_<metric>.png of deltas into ``output``; returns the .md."""
    output.mkdir(parents=True, exist_ok=True)
    rows, aggregates = comparison["rows"], comparison["aggregates"]
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    summary = {m: sig.outcome_counts([r for r in rows if r["metric"] == m]) for m in metrics}
    write_json_atomic(output / "compare.json", {
        "a": str(path_a), "b": str(path_b), "test": test, "samples": n_samples, "correction": correction,
        "alpha": sig.ALPHA, "seed": sig.sacrebleu_seed(), "summary": summary, "rows": rows, "aggregates": aggregates})
    lines = ["# Compare translation runs", "", f"- A: `{path_a}`", f"- B: `{path_b}`",
             f"- test: {TEST_NAMES[test]} (sacrebleu), {n_samples} samples; 95% intervals: bootstrap over sentences",
             (f"- correction across directions, per metric: {CORRECTION_NAMES[correction]}; "
              f"* = corrected p < {sig.ALPHA}"), ""]
    lines += [f"- {m}: {summary_sentence(summary[m])}" for m in metrics] + [""]
    lines += ["## Averages (the paper's x→L / L→x, and the grid)", ""]
    lines += _table(aggregates, "aggregate", "directions") + ["", "## Per direction", ""]
    lines += _table(rows, "direction", "segments")
    for metric in metrics:
        png = _delta_plot(output, [r for r in rows if r["metric"] == metric], metric)
        lines += ["", f"![{metric} deltas]({png.name})"]
    md = output / "compare.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return md


def summary_sentence(counts: dict[str, int]) -> str:
    return (f"{counts['better']} directions improve, {counts['worse']} worsen, {counts['same']} do not differ "
            "(after correction)")


def _table(rows: list[dict], key: str, size: str) -> list[str]:
    def interval(ci: list[float]) -> str:
        return f"[{ci[0]:.2f}, {ci[1]:.2f}]"

    return markdown_table([key, "metric", size, "A", "B", "Δ (B − A)", "Δ 95% CI", "p", "p corrected"], (
        [r[key], r["metric"], str(r[size]), f"{r['a']:.2f}", f"{r['b']:.2f}",
         f"{r['delta']:+.2f}" + ("*" if r["p_corrected"] < sig.ALPHA else ""), interval(r["ci_delta"]),
         f"{r['p_value']:.4f}", f"{r['p_corrected']:.4f}"] for r in rows), 2)


def _delta_plot(output: Path, rows: list[dict], metric: str) -> Path:
    from xplus_release.evalsuite.plots import pyplot, save_figure

    fig, ax = pyplot().subplots(figsize=(7, 1.2 + 0.25 * len(rows)))
    colours = {"better": "tab:green", "worse": "tab:red", "same": "tab:gray"}
    ax.barh([r["direction"] for r in rows], [r["delta"] for r in rows], color=[colours[r["outcome"]] for r in rows])
    ax.errorbar([r["delta"] for r in rows], range(len(rows)), fmt="none", ecolor="black", elinewidth=0.8,
                xerr=[[r["delta"] - r["ci_delta"][0] for r in rows], [r["ci_delta"][1] - r["delta"] for r in rows]])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric}: B − A, 95% interval (coloured: corrected p < {sig.ALPHA})")
    path = output / f"compare_{metric}.png"
    save_figure(fig, [path], dpi=110)
    return path
