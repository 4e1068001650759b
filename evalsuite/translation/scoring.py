"""Score every direction's generations with the chosen metrics, reusing what a previous run scored."""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from xplus_release.evalsuite.translation.metrics import (
    CORPUS_METRICS,
    bleu_tokenizer,
    corpus_score,
    corpus_statistics,
    signature,
)
from xplus_release.evalsuite.translation.sentence_stats import STATS_METRICS, save_stats, stats_path
from xplus_release.storage import json_hash


def fingerprint(records: list[dict]) -> str:
    """Identifies what a direction's corpus scores were computed on (hypotheses and references)."""
    return json_hash([[r["hypothesis"], r["reference"]] for r in records])


def score_corpus(generations: dict[str, list[dict]], metrics: list[str], spm_tokenizer: str,
                 previous: dict, progress: bool, run_path: Path | None = None) -> tuple[dict[str, dict], dict[str, str]]:
    """Per-direction corpus scores and the signature of every metric used.

    ``previous`` is the suite's last ``scores.json`` entry: a direction whose fingerprint and metric
    signature are unchanged keeps its stored score instead of being recomputed. With ``run_path``, the
    sentence statistics of spBLEU and chrF are kept in the run folder for ``xplus-eval compare``.
    """
    wanted = [m for m in metrics if m in CORPUS_METRICS]
    old_dirs, old_sigs = previous.get("directions", {}), previous.get("signatures", {})
    directions: dict[str, dict] = {}
    signatures: dict[str, str] = {}
    for direction, records in tqdm(generations.items(), desc="translation: scoring", unit="direction",
                                   disable=not progress):
        tgt = direction.split("-")[1]
        fp = fingerprint(records)
        entry = {"segments": len(records), "fingerprint": fp, **_output_counts(records)}
        old = old_dirs.get(direction, {})
        for metric in wanted:
            sig_key = _signature_key(metric, tgt)
            unchanged = old_sigs.get(sig_key) == signature(metric, tgt, spm_tokenizer)  # e.g. another tokenizer
            if unchanged and old.get("fingerprint") == fp and metric in old:
                entry[metric], signatures[sig_key] = old[metric], old_sigs[sig_key]
                continue
            result = _score(metric, records, tgt, spm_tokenizer, fp, run_path)
            entry[metric], signatures[sig_key] = result["score"], result["signature"]
        directions[direction] = entry
    return directions, signatures


def _score(metric: str, records: list[dict], target: str, spm_tokenizer: str, fp: str, run_path: Path | None) -> dict:
    hyps, refs = [r["hypothesis"] for r in records], [r["reference"] for r in records]
    if run_path is None or metric not in STATS_METRICS:
        return corpus_score(metric, hyps, refs, target, spm_tokenizer)
    result, stats = corpus_statistics(metric, hyps, refs, target, spm_tokenizer)
    save_stats(stats_path(run_path, metric, records[0]["direction"]), stats, [r["index"] for r in records], fp,
               result["signature"])
    return result


def _signature_key(metric: str, target: str) -> str:
    # plain BLEU's tokenizer depends on the target language, so its signature does too
    if metric == "bleu":
        return f"bleu:{bleu_tokenizer(target)}"
    return metric


def _output_counts(records: list[dict]) -> dict[str, int]:
    return {
        "empty": sum(1 for r in records if not r["hypothesis"].strip()),
        "truncated": sum(1 for r in records if r.get("finish_reason") == "length"),
    }
