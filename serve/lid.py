"""Source-language detection with fastText LID (the NLLB model by default, lid.176 or any other by path).

Labels of both models map onto the package's language table: NLLB's are FLORES-200 codes
(``__label__eng_Latn``), lid.176's are ISO codes (``__label__en``); ``get_language`` accepts either.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xplus_release.errors import UnknownLanguageError
from xplus_release.languages import Language, get_language
from xplus_release.lid import NLLB_LID_REPO, load_lid_model, resolve_lid_model


@dataclass(frozen=True)
class Detection:
    label: str  # the model's own label, without ``__label__``
    confidence: float  # 0..1
    language: Language | None  # None when the label is not in the language table


class LanguageDetector:
    """A loaded fastText LID model.

    Raises (from ``__init__``):
        MissingAssetError: the model file does not exist.
    """

    def __init__(self, path: str | Path):
        self.path = resolve_lid_model(str(path), setting="--lid-model")
        self._model = load_lid_model(self.path)

    def detect(self, text: str) -> Detection:
        # The pybind entry point, not ``model.predict``: fastText 0.9.3's wrapper calls
        # ``np.array(..., copy=False)``, which numpy 2 rejects. fastText also refuses newlines.
        pairs = self._model.f.predict(" ".join(text.split()) + "\n", 1, 0.0, "strict")
        if not pairs:
            return Detection("und", 0.0, None)
        confidence, label = pairs[0]
        label = label.removeprefix("__label__")
        try:
            language = get_language(label)
        except UnknownLanguageError:
            language = None
        return Detection(label, min(1.0, float(confidence)), language)


def default_lid_model_path() -> Path:
    """The NLLB LID model from the Hugging Face cache.

    Raises:
        MissingAssetError: it is not cached; the message names the command that fetches it.
    """
    return resolve_lid_model(NLLB_LID_REPO, setting="--lid-model")
