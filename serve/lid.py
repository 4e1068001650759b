"""Source-language detection with fastText LID (the NLLB model by default, lid.176 or any other by path).

Labels of both models map onto the package's language table: NLLB's are FLORES-200 codes
(``__label__eng_Latn``), lid.176's are ISO codes (``__label__en``); ``get_language`` accepts either.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xplus_release.errors import MissingAssetError, UnknownLanguageError
from xplus_release.languages import Language, get_language

NLLB_LID_REPO = "facebook/fasttext-language-identification"
NLLB_LID_FILE = "model.bin"


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
        import fasttext

        self.path = Path(path)
        if not self.path.is_file():
            raise MissingAssetError(f"language ID model {self.path} does not exist; pass --lid-model PATH to a "
                                    f"fastText LID model (lid.176.bin/.ftz or NLLB's {NLLB_LID_FILE})")
        self._model = fasttext.load_model(str(self.path))

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
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(NLLB_LID_REPO, NLLB_LID_FILE, local_files_only=True))
    except LocalEntryNotFoundError:
        raise MissingAssetError(
            f"the NLLB language ID model is not in the Hugging Face cache; fetch it with "
            f"`hf download {NLLB_LID_REPO} {NLLB_LID_FILE}` or pass --lid-model PATH"
        ) from None
