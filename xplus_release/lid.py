"""fastText language identification: where the model is, and loading it.

Used by xplus-serve (``source: auto``) and by xplus-data's language-ID step. The default is the NLLB model
(``facebook/fasttext-language-identification``, labels ``__label__eng_Latn``), the paper's choice;
fastText's lid.176 (``__label__en``) or any fastText classifier whose labels
``xplus_release.languages.get_language`` understands works too.
"""

from __future__ import annotations

from pathlib import Path

from xplus_release.errors import MissingAssetError

NLLB_LID_REPO = "facebook/fasttext-language-identification"
NLLB_LID_FILE = "model.bin"


def resolve_lid_model(model: str = NLLB_LID_REPO, setting: str = "--lid-model") -> Path:
    """The local file of a LID model given as a path or a hub id (only from the local HF cache).

    ``setting`` is what the user changes to point elsewhere; the error names it.

    Raises:
        MissingAssetError: neither a file nor in the Hugging Face cache (the message says how to fetch it).
    """
    path = Path(model).expanduser()
    if path.is_file():
        return path
    if path.suffix in (".bin", ".ftz") or model.startswith((".", "/", "~")):
        raise MissingAssetError(
            f"language-ID model file {path} does not exist; set {setting} to a fastText .bin/.ftz file "
            f"(e.g. lid.176.ftz) or to {NLLB_LID_REPO}"
        )
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(model, NLLB_LID_FILE, local_files_only=True))
    except Exception:  # noqa: BLE001 - every hub failure means the same thing here: not on this machine
        raise MissingAssetError(
            f"language-ID model {model} is not in the Hugging Face cache; on a connected machine run "
            f"`hf download {model} {NLLB_LID_FILE}`, or set {setting} to a local fastText file"
        ) from None


def load_lid_model(path: Path):
    """The loaded fastText model (quietly: load_model prints a deprecation notice on stderr)."""
    import fasttext

    fasttext.FastText.eprint = lambda *args, **kwargs: None
    return fasttext.load_model(str(path))
