"""Step 4, language ID: both sides through a fastText model; a pair whose predicted languages are not the
labelled ones (or whose top probability is under the threshold) is dropped.

Models: the NLLB LID model ``facebook/fasttext-language-identification`` (labels ``__label__eng_Latn``;
the paper's choice and the default), fastText's ``lid.176`` (``__label__en``), or any fastText
classifier file whose labels ``xplus_release.languages.get_language`` understands.
"""

from __future__ import annotations

import functools

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from xplus_release.config import Config
from xplus_release.internals import fasttext_predict
from xplus_release.languages import find_language
from xplus_release.lid import NLLB_LID_REPO, load_lid_model, resolve_lid_model
from xplus_release.training.pipeline.records import PairStats


class LangIdConfig(Config):
    section = "langid"
    yaml_keys = True

    model: str = NLLB_LID_REPO  # hub id (from the local HF cache) or a .bin/.ftz path
    threshold: float = 0.5  # minimum top-label probability on each side
    batch_size: int = 2048


def _verdict(src: str, trg: str, predictions, threshold: float) -> tuple[str | None, dict]:
    (src_label, src_p), (tgt_label, tgt_p) = predictions
    # A language the package does not know (None) can only be a mismatch.
    src_lang, tgt_lang = find_language(src_label), find_language(tgt_label)
    src_code, tgt_code = (src_lang.code if src_lang else None), (tgt_lang.code if tgt_lang else None)
    detail = {
        "source_label": src_label,
        "source_prob": round(src_p, 4),
        "target_label": tgt_label,
        "target_prob": round(tgt_p, 4),
    }
    src_ok = src_code == src and src_p >= threshold
    tgt_ok = tgt_code == trg and tgt_p >= threshold
    if src_ok and tgt_ok:
        return None, detail
    if src_code == trg and tgt_code == src:
        return "lid_swapped", detail
    if not src_ok and not tgt_ok:
        return "lid_both_mismatch", detail
    return ("lid_source_mismatch" if not src_ok else "lid_target_mismatch"), detail


@functools.lru_cache(maxsize=4)
def _lid_model(model: str):
    return load_lid_model(resolve_lid_model(model, setting="langid.model"))


class LangIdFilter(PairStats, BaseFilter):
    """Both sides of a batch through fastText at once; drops ``lid_swapped``, ``lid_source_mismatch``,
    ``lid_target_mismatch`` or ``lid_both_mismatch`` with the labels and probabilities as detail."""

    name = "langid"

    def __init__(self, configs, exclusion_writer=None):
        super().__init__(exclusion_writer, batch_size=configs("default").batch_size)
        self.configs = configs  # pair -> LangIdConfig (its threshold)

    def filter_batch(self, batch: list[Document]) -> list:
        model = _lid_model(self.configs("default").model)
        texts = [d.text for d in batch] + [d.metadata["target"] for d in batch]
        top = [pairs[0] for pairs in fasttext_predict(model, texts, k=1)]
        results = []
        for i, doc in enumerate(batch):
            src, trg = doc.metadata["src"], doc.metadata["trg"]
            threshold = self.configs(f"{src}-{trg}").threshold
            reason, doc.metadata["detail"] = _verdict(src, trg, (top[i], top[len(batch) + i]), threshold)
            results.append(True if reason is None else (False, reason))
        return results
