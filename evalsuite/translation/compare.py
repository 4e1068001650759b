"""``xplus-eval compare RUN_A RUN_B``: per-direction deltas between two translation runs, with sacrebleu's
paired bootstrap resampling (``sacrebleu.significance.PairedTest``, test_type "bs") for significance.

Only segments both runs generated for the same source and reference are compared.
"""

from __future__ import annotations

from pathlib import Path

from xplus_release.evalsuite.translation.metrics import check_spm_model, metric_object

from xplus_release.errors import ConfigError, RunFolderError
from xplus_release.markdown import markdown_table
from xplus_release.runs import RUN_FILE, GenerationStore, read_json, write_json_atomic

COMPARE_METRICS = ("spbleu", "chrf")


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


def paired_rows(a: dict[str, dict[int, dict]], b: dict[str, dict[int, dict]]):
    """(direction, hyps_a, hyps_b, refs) for every direction both runs share, aligned by sentence."""
    for direction in [d for d in a if d in b]:
        common = sorted(i for i in a[direction] if i in b[direction]
                        and a[direction][i]["source"] == b[direction][i]["source"]
                        and a[direction][i]["reference"] == b[direction][i]["reference"])
        if common:
            yield (direction, [a[direction][i]["hypothesis"] for i in common],
                   [b[direction][i]["hypothesis"] for i in common], [a[direction][i]["reference"] for i in common])


def compare_runs(path_a: Path, path_b: Path, metrics: list[str], tokenizer: str = "flores200",
                 n_samples: int = 1000, progress: bool = True) -> list[dict]:
    """One row per (direction, metric): A, B, delta (B - A), p-value of the paired bootstrap test.

    Raises:
        RunFolderError: either path is not a translation run.
        ConfigError: an unknown metric, or the runs share no direction.
        MissingAssetError: spBLEU's SentencePiece model is missing.
    """
    return compare_generations(load_run_generations(path_a), load_run_generations(path_b), metrics, tokenizer,
                               n_samples, progress, names=(str(path_a), str(path_b)))


def compare_generations(a: dict[str, dict[int, dict]], b: dict[str, dict[int, dict]], metrics: list[str],
                        tokenizer: str = "flores200", n_samples: int = 1000, progress: bool = True,
                        names: tuple[str, str] = ("A", "B")) -> list[dict]:
    """``compare_runs`` on generations already read (direction -> sentence index -> record).

    Raises:
        ConfigError: an unknown metric, or the runs share no direction.
        MissingAssetError: spBLEU's SentencePiece model is missing.
    """
    from sacrebleu.significance import PairedTest
    from tqdm.auto import tqdm

    bad = [m for m in metrics if m not in COMPARE_METRICS]
    if bad or not metrics:
        raise ConfigError(f"compare supports the metrics {', '.join(COMPARE_METRICS)}, not {', '.join(bad) or '(none)'}")
    pairs = list(paired_rows(a, b))
    if not pairs:
        raise ConfigError(f"{names[0]} and {names[1]} share no translated direction and sentence; nothing to compare")
    if "spbleu" in metrics:
        check_spm_model(tokenizer)
    # the suite's own metric objects, in COMPARE_METRICS order whatever the order asked for
    objects = {metric: metric_object(metric, "", tokenizer)
               for metric in COMPARE_METRICS if metric in metrics}
    rows = []
    for direction, hyps_a, hyps_b, refs in tqdm(pairs, desc="compare: bootstrap", unit="direction", disable=not progress):
        for metric, obj in objects.items():
            if hyps_a == hyps_b:
                # sacrebleu's test gives identical systems p = 1/(n+1); there is no difference to test
                score = obj.corpus_score(hyps_a, [refs]).score
                rows.append(_row(direction, metric, len(refs), score, score, 1.0))
                continue
            _, results = PairedTest([("A", hyps_a), ("B", hyps_b)], {metric: obj}, [refs],
                                    test_type="bs", n_samples=n_samples)()
            (res_a, res_b), = [v for k, v in results.items() if k != "System"]
            rows.append(_row(direction, metric, len(refs), res_a.score, res_b.score, res_b.p_value))
    return rows


def _row(direction: str, metric: str, segments: int, a: float, b: float, p_value: float) -> dict:
    return {"direction": direction, "metric": metric, "segments": segments, "a": round(a, 4), "b": round(b, 4),
            "delta": round(b - a, 4), "p_value": p_value}


def write_comparison(rows: list[dict], path_a: Path, path_b: Path, output: Path, n_samples: int) -> Path:
    """compare.json, compare.md and one compare_<metric>.png of deltas into ``output``; returns the .md."""
    output.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output / "compare.json", {"a": str(path_a), "b": str(path_b), "bootstrap_samples": n_samples,
                                                "rows": rows})
    lines = ["# Compare translation runs", "", f"- A: `{path_a}`", f"- B: `{path_b}`",
             f"- paired bootstrap resampling (sacrebleu), {n_samples} resamples; * = p < 0.05", ""]
    lines += markdown_table(["direction", "metric", "segments", "A", "B", "Δ (B − A)", "p"], (
        [r["direction"], r["metric"], str(r["segments"]), f"{r['a']:.2f}", f"{r['b']:.2f}",
         f"{r['delta']:+.2f}" + ("*" if r["p_value"] < 0.05 else ""), f"{r['p_value']:.4f}"] for r in rows), 2)
    for metric in dict.fromkeys(r["metric"] for r in rows):
        png = _delta_plot(output, [r for r in rows if r["metric"] == metric], metric)
        lines += ["", f"![{metric} deltas]({png.name})"]
    md = output / "compare.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return md


def _delta_plot(output: Path, rows: list[dict], metric: str) -> Path:
    from xplus_release.evalsuite.plots import pyplot, save_figure

    fig, ax = pyplot().subplots(figsize=(7, 1.2 + 0.25 * len(rows)))
    colours = ["tab:green" if r["delta"] > 0 and r["p_value"] < 0.05 else
               "tab:red" if r["delta"] < 0 and r["p_value"] < 0.05 else "tab:gray" for r in rows]
    ax.barh([r["direction"] for r in rows], [r["delta"] for r in rows], color=colours)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric}: B − A (coloured: p < 0.05)")
    path = output / f"compare_{metric}.png"
    save_figure(fig, [path], dpi=110)
    return path
