"""Shared helpers of the translation tests: a SentencePiece model where sacrebleu looks for its
flores200/flores101 models (a real one cannot be downloaded here), and hand-made run folders."""

from __future__ import annotations

import os
from pathlib import Path

from xplus_release.runs import RunFolder


def train_sacrebleu_spm(root: Path, flores_dir: Path) -> Path:
    """Train a small SentencePiece model on the FLORES test lines and place it under ``root/models/``
    with the file names sacrebleu 2.6.0 uses for flores200 and flores101; returns ``root``."""
    import sentencepiece as spm
    from sacrebleu.tokenizers import tokenizer_spm

    models = root / "models"
    models.mkdir(parents=True, exist_ok=True)
    corpus = root / "corpus.txt"
    corpus.write_text("".join(p.read_text(encoding="utf-8") for p in sorted((flores_dir / "devtest").iterdir())),
                      encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(root / "tiny"), vocab_size=4000,
                                   character_coverage=1.0, model_type="unigram", minloglevel=2)
    for key in ("flores200", "flores101"):
        name = os.path.basename(tokenizer_spm.SPM_MODELS[key]["url"])
        (models / name).write_bytes((root / "tiny.model").read_bytes())
    return root


def point_sacrebleu_at(monkeypatch, root: Path) -> None:
    """sacrebleu reads $SACREBLEU once, at import: patch the module constant as well as the variable."""
    from sacrebleu.tokenizers import tokenizer_spm

    from xplus_release.evalsuite.translation import metrics

    monkeypatch.setenv("SACREBLEU", str(root))
    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(root))
    metrics._metric.cache_clear()  # metric objects hold the SentencePiece model they loaded


def make_run(path: Path, model: str, hypotheses: dict[str, list[str]], references: dict[str, list[str]]) -> Path:
    """A run folder holding translation records, as ``xplus-eval translation`` writes them."""
    run = RunFolder.open(path, model)
    for direction, hyps in hypotheses.items():
        run.generations("translation", direction).append([
            {"item_id": f"{direction}:{i}", "model": model, "prompt_hash": "h", "direction": direction, "index": i,
             "source": f"source {i}", "reference": ref, "output": hyp, "hypothesis": hyp, "finish_reason": "stop"}
            for i, (hyp, ref) in enumerate(zip(hyps, references[direction]))
        ])
    return path
