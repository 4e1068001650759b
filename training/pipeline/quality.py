"""Step 5, quality filter: the conditional loss of the target given the source under a small seq2seq
translation model (facebook/nllb-200-distilled-600M by default, any local seq2seq folder), compared with
the losses of the FLORES dev set of the same pair: a pair above the ``percentile`` (90) of the dev
losses is dropped.

The loss is the mean token cross-entropy of the target tokens (teacher forcing). Pairs are scored in
batches of similar length (fewer pad tokens) on the GPU when there is one. Dev losses are computed once
per (model, pair, dev files, max_length) and cached as JSON under ``<cache>/quality-dev-losses/``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
from datatrove.data import Document
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter
from pydantic import Field, model_validator

from xplus_release.config import Config
from xplus_release.errors import ConfigError, MissingAssetError
from xplus_release.languages import get_language
from xplus_release.paths import cache_dir
from xplus_release.storage import write_json_atomic
from xplus_release.training.pipeline.records import PairStats, pair_name

NLLB_600M = "facebook/nllb-200-distilled-600M"


class QualityConfig(Config):
    section = "quality"
    yaml_keys = True

    model: str = NLLB_600M  # hub id (from the local HF cache) or a local seq2seq folder
    dev: str | None = None  # FLORES folder: <dev>/<split>/<flores200 code>.<split> (or files directly inside)
    dev_split: str = "dev"
    percentile: float = Field(90.0, gt=0, le=100)
    batch_tokens: int = 8192  # padded source+target tokens per batch
    max_length: int = 256
    device: str = "auto"  # auto (cuda when available), cpu, cuda, cuda:1 ...
    # auto: bfloat16 on GPU, float32 on CPU
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    cache: str | None = None  # where dev losses are cached (default <xplus cache>/quality-dev-losses)
    chunk: int = 4096  # pairs read ahead and sorted by length (bounded memory)

    @model_validator(mode="after")
    def _needs_dev(self) -> QualityConfig:
        if self.dev is None:
            raise ValueError("the quality step needs dev: a FLORES folder with <split>/<code>.<split> files")
        return self


def resolve_seq2seq(model: str) -> Path:
    """A local folder for ``model`` (a path, or a hub id in the HF cache).

    Raises:
        MissingAssetError: not on this machine; the message names the download command.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if model.startswith((".", "/", "~")):
        raise MissingAssetError(
            f"quality model folder {path} does not exist; set quality.model to a seq2seq "
            f"model folder or a hub id such as {NLLB_600M}"
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model, local_files_only=True))
    except Exception:  # noqa: BLE001 - any hub failure offline means: not cached here
        raise MissingAssetError(
            f"quality model {model} is not in the Hugging Face cache; on a connected machine "
            f"run `hf download {model}`, or set quality.model to a local folder"
        ) from None


def dev_files(config: QualityConfig, src: str, trg: str) -> tuple[Path, Path]:
    """The dev files of a pair.

    Raises:
        ConfigError: a file is missing (the message names where it was looked for).
    """
    found = []
    for code in (src, trg):
        flores = get_language(code).flores200
        base = Path(config.dev).expanduser()
        candidates = [
            base / config.dev_split / f"{flores}.{config.dev_split}",
            base / f"{flores}.{config.dev_split}",
        ]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            raise ConfigError(
                f"no FLORES {config.dev_split} file for {code} (looked for {candidates[0]} and "
                f"{candidates[1]}); point quality.dev at a FLORES-200 folder"
            )
        found.append(hit)
    return found[0], found[1]


class LossScorer:
    """Conditional target loss under one seq2seq model, batched by length."""

    def __init__(self, model_dir: Path, config: QualityConfig):
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.config = config
        auto_device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(auto_device if config.device == "auto" else config.device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        auto_dtype = "bfloat16" if self.device.type == "cuda" else "float32"
        dtype = getattr(torch, auto_dtype if config.dtype == "auto" else config.dtype)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()

    def _batch_losses(self, src_texts, tgt_texts, src, trg) -> list[float]:
        import torch

        tokenizer = self.tokenizer
        if hasattr(tokenizer, "src_lang"):  # NLLB/M2M tokenizers prefix the language codes
            tokenizer.src_lang = get_language(src).flores200
            tokenizer.tgt_lang = get_language(trg).flores200
        enc = tokenizer(src_texts, text_target=tgt_texts, max_length=self.config.max_length, truncation=True,
                        padding=True, return_tensors="pt").to(self.device)
        labels = enc["labels"].masked_fill(enc["labels"] == tokenizer.pad_token_id, -100)
        with torch.inference_mode():
            logits = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                labels=labels).logits.float()
        token_loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, reduction="none")
        counts = (labels != -100).sum(dim=1).clamp(min=1)
        return (token_loss.sum(dim=1) / counts).tolist()

    def batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices grouped so that (longest in batch) x (batch size) stays under ``batch_tokens``."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        batches, current, longest = [], [], 0
        for i in order:
            longest_if_added = max(longest, lengths[i])
            if current and longest_if_added * (len(current) + 1) > self.config.batch_tokens:
                batches.append(current)
                current, longest_if_added = [], lengths[i]
            current.append(i)
            longest = longest_if_added
        if current:
            batches.append(current)
        return batches

    def losses(self, src_texts: list[str], tgt_texts: list[str], src: str, trg: str) -> list[float]:
        # Character length is a cheap stand-in for token length when grouping.
        lengths = [
            min(self.config.max_length * 2, (len(s) + len(t)) // 2 + 2) for s, t in zip(src_texts, tgt_texts)
        ]
        result = np.zeros(len(src_texts))
        for batch in self.batches(lengths):
            texts = [src_texts[i] for i in batch], [tgt_texts[i] for i in batch]
            result[batch] = self._batch_losses(*texts, src, trg)
        return result.tolist()


def _file_digest(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _model_identity(model_dir: Path) -> str:
    config = model_dir / "config.json"
    weights = sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin"))
    stats = [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in [config, *weights] if p.exists()]
    return f"{model_dir.resolve()}|{'|'.join(stats)}"


def dev_cache_path(config: QualityConfig, model_dir: Path, src: str, trg: str) -> Path:
    src_file, trg_file = dev_files(config, src, trg)
    key = hashlib.sha256(
        f"{_model_identity(model_dir)}|{src}-{trg}|{_file_digest([src_file, trg_file])}|"
        f"{config.max_length}".encode()
    ).hexdigest()[:20]
    root = Path(config.cache).expanduser() if config.cache else cache_dir() / "quality-dev-losses"
    return root / f"{src}-{trg}-{key}.json"


def dev_threshold(config: QualityConfig, model_dir: Path, src: str, trg: str, scorer_factory) -> dict:
    """The loss threshold of a pair: cached dev losses, or computed now (``scorer_factory()`` is called only
    on a cache miss) and cached."""
    path = dev_cache_path(config, model_dir, src, trg)
    cached = path.is_file()
    if cached:
        losses = json.loads(path.read_text(encoding="utf-8"))["losses"]
    else:
        src_file, trg_file = dev_files(config, src, trg)
        src_lines = src_file.read_text(encoding="utf-8").splitlines()
        tgt_lines = trg_file.read_text(encoding="utf-8").splitlines()
        losses = scorer_factory().losses(src_lines, tgt_lines, src, trg)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(
            path,
            {
                "model": str(model_dir),
                "pair": f"{src}-{trg}",
                "files": [str(src_file), str(trg_file)],
                "max_length": config.max_length,
                "losses": losses,
            },
        )
    threshold = float(np.percentile(losses, config.percentile))
    return {
        "threshold": threshold,
        "percentile": config.percentile,
        "dev_pairs": len(losses),
        "cache": str(path),
        "from_cache": cached,
    }


@functools.lru_cache(maxsize=2)
def scorer_for(config: QualityConfig) -> LossScorer:
    """One scorer per process and config (a frozen model, hashable): a rank's batches, and every pair's dev
    set, share it."""
    return LossScorer(resolve_seq2seq(config.model), config)


class QualityThresholds(PipelineStep):
    """One task before the filter: ``thresholds.json``, the dev-loss threshold of each pair unify counted."""

    name = "quality-thresholds"
    type = "xplus"

    def __init__(self, step_folder: str, pairs_source, configs):
        super().__init__()
        self.folder = get_datafolder(step_folder)
        self.pairs_source = pairs_source  # () -> the language pairs of the data
        self.configs = configs

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        result = {}
        for pair in sorted(self.pairs_source()):
            config = self.configs(pair)
            model_dir = resolve_seq2seq(config.model)
            with self.track_time():
                result[pair] = dev_threshold(
                    config, model_dir, *pair.split("-"), lambda c=config: scorer_for(c)
                )
        with self.folder.open("thresholds.json", "w") as handle:
            json.dump(result, handle, indent=2)
        yield from ()


class QualityFilter(PairStats, BaseFilter):
    """Scores ``chunk`` pairs at a time (grouped by language pair, batched by length); drops
    ``quality_loss_above_dev_percentile`` with the loss and the threshold as detail."""

    name = "quality"

    def __init__(self, step_folder: str, configs, exclusion_writer=None):
        super().__init__(exclusion_writer, batch_size=configs("default").chunk)
        self.folder = get_datafolder(step_folder)
        self.configs = configs
        self._thresholds = None

    def filter_batch(self, batch: list[Document]) -> list:
        if self._thresholds is None:
            with self.folder.open("thresholds.json", "r") as handle:
                self._thresholds = {p: t["threshold"] for p, t in json.load(handle).items()}
        by_pair: dict[str, list[int]] = {}
        for i, doc in enumerate(batch):
            by_pair.setdefault(pair_name(doc), []).append(i)
        losses = np.zeros(len(batch))
        scorer = scorer_for(self.configs("default"))
        for pair, indices in by_pair.items():
            texts = [batch[i].text for i in indices], [batch[i].metadata["target"] for i in indices]
            losses[indices] = scorer.losses(*texts, *pair.split("-"))
        return [self._verdict(doc, loss) for doc, loss in zip(batch, losses.tolist())]

    def _verdict(self, doc: Document, loss: float):
        threshold = self._thresholds[pair_name(doc)]
        doc.metadata["detail"] = {"loss": round(loss, 4), "threshold": round(threshold, 4)}
        return (False, "quality_loss_above_dev_percentile") if loss > threshold else True
