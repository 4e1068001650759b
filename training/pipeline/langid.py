"""Step 4, language ID: both sides through a fastText model; a pair whose predicted languages are not the
labelled ones (or whose top probability is under the threshold) is dropped.

Models: the NLLB LID model ``facebook/fasttext-language-identification`` (labels ``__label__eng_Latn``;
the paper's choice and the default), fastText's ``lid.176`` (``__label__en``), or any fastText
classifier file whose labels ``xplus_release.languages.get_language`` understands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from xplus_release.errors import UnknownLanguageError
from xplus_release.languages import get_language
from xplus_release.lid import NLLB_LID_REPO
from xplus_release.training.pipeline.records import batches



@dataclass
class LangIdConfig:
    model: str = NLLB_LID_REPO  # hub id (from the local HF cache) or a .bin/.ftz path
    threshold: float = 0.5  # minimum top-label probability on each side
    batch_size: int = 2048


def _label_code(label: str) -> str | None:
    try:
        return get_language(label).code
    except UnknownLanguageError:
        return None  # a language the package does not know can only be a mismatch


def _verdict(record: dict, predictions, threshold: float) -> tuple[str | None, dict]:
    (src_label, src_p), (tgt_label, tgt_p) = predictions
    src_code, tgt_code = _label_code(src_label), _label_code(tgt_label)
    detail = {
        "source_label": src_label,
        "source_prob": round(src_p, 4),
        "target_label": tgt_label,
        "target_prob": round(tgt_p, 4),
    }
    src_ok = src_code == record["src"] and src_p >= threshold
    tgt_ok = tgt_code == record["trg"] and tgt_p >= threshold
    if src_ok and tgt_ok:
        return None, detail
    if src_code == record["trg"] and tgt_code == record["src"]:
        return "lid_swapped", detail
    if not src_ok and not tgt_ok:
        return "lid_both_mismatch", detail
    return ("lid_source_mismatch" if not src_ok else "lid_target_mismatch"), detail


def identify_pairs(
    records: Iterable[dict], model, configs_by_pair, batch_size: int = 2048
) -> Iterator[tuple[dict, str | None, dict]]:
    """Yield ``(record, reason or None, detail)``; fastText runs on batches of ``batch_size`` pairs.
    ``configs_by_pair("en-zh")`` gives the pair's ``LangIdConfig`` (its threshold)."""
    for batch in batches(records, batch_size):
        yield from _identify_batch(batch, model, configs_by_pair)


def _identify_batch(batch: list[dict], model, configs_by_pair):
    texts = [r["src_line"].replace("\n", " ") for r in batch] + [
        r["tgt_line"].replace("\n", " ") for r in batch
    ]
    labels, probs = model.predict(texts, k=1)
    top = [(label[0], float(prob[0])) for label, prob in zip(labels, probs)]
    half = len(batch)
    for i, record in enumerate(batch):
        threshold = configs_by_pair(f"{record['src']}-{record['trg']}").threshold
        reason, detail = _verdict(record, (top[i], top[half + i]), threshold)
        yield record, reason, detail
