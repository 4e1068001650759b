"""Corpus metrics with sacrebleu: spBLEU (SentencePiece BLEU), chrF, and BLEU with the tokenizer sacrebleu
recommends for the target language. Each score is returned with sacrebleu's own signature string.

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
CORPUS_METRICS = ("spbleu", "chrf", "bleu")


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
    from sacrebleu.metrics import BLEU, CHRF

    metric = CHRF() if kind == "chrf" else BLEU(tokenize=tokenizer)
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
    return _metric("chrf", "")


def signature(name: str, target_code: str, spm_tokenizer: str) -> str:
    return str(metric_object(name, target_code, spm_tokenizer).get_signature())


def corpus_score(name: str, hypotheses: list[str], references: list[str], target_code: str,
                 spm_tokenizer: str) -> dict:
    """``{"score": float, "signature": str}`` for one direction, exactly as sacrebleu computes it."""
    metric = metric_object(name, target_code, spm_tokenizer)
    score = metric.corpus_score(hypotheses, [references])
    return {"score": round(float(score.score), 4), "signature": signature(name, target_code, spm_tokenizer)}
