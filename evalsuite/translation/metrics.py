"""Corpus metrics with sacrebleu: spBLEU (SentencePiece BLEU), chrF, chrF++, TER, and BLEU with the tokenizer
sacrebleu recommends for the target language. Each score is returned with sacrebleu's own signature string.

chrF and TER are scored as BenchMAX's ``tasks/translation/metrics.py`` scores them (pinned commit):
``corpus_chrf(..., remove_whitespace=False)`` -- whitespace counted as a character, ``space:yes`` in the
signature -- and ``corpus_ter(..., normalized=True, asian_support=True)``. chrF++ (BenchMAX has none) is
sacrebleu's own ``chrF++`` (word bigrams, whitespace removed), as ``sacrebleu -m chrf --chrf-word-order 2``.

spBLEU's ``flores200``/``flores101`` tokenizers load a SentencePiece model from ``$SACREBLEU/models/``,
which sacrebleu downloads on first use; offline, a missing model is one clear error before any work.
"""

from __future__ import annotations

import functools
import os

from xplus_release.errors import MissingAssetError
from xplus_release.registry import hub_offline

# sacrebleu's tokenizer per target language for plain BLEU (its README: zh, ja-mecab, ko-mecab; 13a else).
BLEU_TOKENIZERS = {"zh": "zh", "ja": "ja-mecab", "ko": "ko-mecab"}
CORPUS_METRICS = ("spbleu", "chrf", "chrfpp", "ter", "bleu")
# sacrebleu's constructor arguments per metric kind: BenchMAX's settings for chrF and TER
METRIC_SETTINGS = {
    "chrf": {"whitespace": True},
    "chrfpp": {"word_order": 2},
    "ter": {"normalized": True, "asian_support": True},
}
# what BenchMAX calls, for the fidelity record
BENCHMAX_CALLS = {
    "spbleu": 'corpus_bleu(tokenize="flores200", force=True)',
    "bleu": 'corpus_bleu(tokenize=13a | zh | ja-mecab | ko-mecab, force=True)',
    "chrf": "corpus_chrf(remove_whitespace=False)",
    "ter": "corpus_ter(normalized=True, asian_support=True)",
}
LOWER_IS_BETTER = frozenset({"ter"})


def bleu_tokenizer(target_code: str) -> str:
    return BLEU_TOKENIZERS.get(target_code, "13a")


def spm_model_path(tokenizer: str) -> str:
    """Where sacrebleu (this installed version) looks for the SentencePiece model of ``tokenizer``."""
    from sacrebleu.tokenizers import tokenizer_spm

    url = tokenizer_spm.SPM_MODELS[tokenizer]["url"]
    return os.path.join(tokenizer_spm.SACREBLEU_DIR, "models", os.path.basename(url))


def check_spm_model(tokenizer: str) -> None:
    """Make sure spBLEU's SentencePiece model is on disk (sacrebleu fetches it when online).

    Raises:
        MissingAssetError: the model is missing and cannot be downloaded; the message has the fetch command.
    """
    from sacrebleu.tokenizers import tokenizer_spm

    path = spm_model_path(tokenizer)
    if os.path.exists(path):
        return
    url = tokenizer_spm.SPM_MODELS[tokenizer]["url"]
    fix = (f"fetch it on a connected machine with: mkdir -p {os.path.dirname(path)} && "
           f"curl -L -o {path} {url} (or set $SACREBLEU to a folder holding models/{os.path.basename(path)})")
    if hub_offline():
        raise MissingAssetError(f"sacrebleu's {tokenizer} SentencePiece model is not at {path} and HF_HUB_OFFLINE=1; {fix}")
    try:
        _metric("spbleu", tokenizer)
    except Exception as err:  # noqa: BLE001 -- sacrebleu's download raises whatever urllib raised
        raise MissingAssetError(f"cannot download sacrebleu's {tokenizer} SentencePiece model ({err}); {fix}") from None


@functools.cache
def _metric(kind: str, tokenizer: str):
    from sacrebleu.metrics import BLEU, CHRF, TER

    if kind == "ter":
        metric = TER(**METRIC_SETTINGS["ter"])
    elif kind in ("chrf", "chrfpp"):
        metric = CHRF(**METRIC_SETTINGS[kind])
    else:
        metric = BLEU(tokenize=tokenizer)
    # sacrebleu's signature lists the reference count, known only after a first evaluation; every score
    # here has one reference, so settle it now and signatures can be compared before scoring.
    metric.corpus_score(["."], [["."]])
    return metric


def metric_object(name: str, target_code: str, spm_tokenizer: str):
    """The sacrebleu metric object that computes ``name`` for a target language (cached, reused)."""
    if name == "spbleu":
        return _metric("spbleu", spm_tokenizer)
    if name == "bleu":
        return _metric("bleu", bleu_tokenizer(target_code))
    if name not in METRIC_SETTINGS:
        raise ValueError(f"unknown corpus metric {name!r}; one of {', '.join(CORPUS_METRICS)}")
    return _metric(name, "")


def signature(name: str, target_code: str, spm_tokenizer: str) -> str:
    return str(metric_object(name, target_code, spm_tokenizer).get_signature())


def corpus_score(name: str, hypotheses: list[str], references: list[str], target_code: str,
                 spm_tokenizer: str) -> dict:
    """``{"score": float, "signature": str}`` for one direction, exactly as sacrebleu computes it."""
    metric = metric_object(name, target_code, spm_tokenizer)
    score = metric.corpus_score(hypotheses, [references])
    return {"score": round(float(score.score), 4), "signature": signature(name, target_code, spm_tokenizer)}


def corpus_statistics(name: str, hypotheses: list[str], references: list[str], target_code: str,
                      spm_tokenizer: str) -> tuple[dict, list]:
    """``corpus_score`` and the sentence statistics it summed (sacrebleu's ``corpus_score``, in two steps)."""
    metric = metric_object(name, target_code, spm_tokenizer)
    stats = metric._extract_corpus_statistics(hypotheses, [references])
    score = metric._aggregate_and_compute(stats)
    return {"score": round(float(score.score), 4), "signature": signature(name, target_code, spm_tokenizer)}, stats
