"""Source-language detection with fastText LID (the NLLB model by default, lid.176 or any other by path).

Labels of both models map onto the package's language table: NLLB's are FLORES-200 codes
(``__label__eng_Latn``), lid.176's are ISO codes (``__label__en``); ``get_language`` accepts either.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from xplus_release.internals import fasttext_predict
from xplus_release.languages import Language, find_language
from xplus_release.lid import NLLB_LID_REPO, load_lid_model, resolve_lid_model

# Below this probability a detection is reported as uncertain (the text is still translated from it).
UNCERTAIN_BELOW = 0.5


@dataclass(frozen=True)
class Detection:
    language: Language | None  # the most probable of the candidate languages (None: the model knows none)
    confidence: float  # 0..1, the model's probability for ``language``
    top_label: str  # the model's own most probable label, without ``__label__`` (may be no candidate)

    @property
    def uncertain(self) -> bool:
        """The model preferred a language the server does not translate, or is not sure of this one."""
        if self.language is None:
            return True
        return self.confidence < UNCERTAIN_BELOW or find_language(self.top_label) != self.language


class LanguageDetector:
    """A loaded fastText LID model.

    Raises (from ``__init__``):
        MissingAssetError: the model file does not exist.
    """

    def __init__(self, path: str | Path):
        self.path = resolve_lid_model(str(path), setting="--lid-model")
        self._model = load_lid_model(self.path)

    def detect(self, text: str, candidates: Iterable[Language]) -> Detection:
        """The most probable language among ``candidates`` (the languages the server translates), from the
        model's whole distribution: a text the model thinks is Esperanto still gets its best served guess."""
        wanted = set(candidates)
        pairs = fasttext_predict(self._model, [text], k=-1)[0]  # k=-1: all labels
        if not pairs:
            return Detection(None, 0.0, "und")
        top_label = pairs[0][0].removeprefix("__label__")
        for label, probability in pairs:
            language = find_language(label)
            if language in wanted:
                return Detection(language, min(1.0, float(probability)), top_label)
        return Detection(None, 0.0, top_label)


def default_lid_model_path() -> Path:
    """The NLLB LID model from the Hugging Face cache.

    Raises:
        MissingAssetError: it is not cached; the message names the command that fetches it.
    """
    return resolve_lid_model(NLLB_LID_REPO, setting="--lid-model")
