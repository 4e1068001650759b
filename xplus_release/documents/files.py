"""Files in, translated files out: the same name, the same format, the structure as it was.

``translate_file(filename, data, translate_units, limits)`` reads the file with its format's library, sends every
unit of text to ``translate_units`` in one call (so the caller can send them to the model as one batch), and
writes the translations back. ``translate_units`` is the caller's: plain-text units in, one translation per unit
out, same order. Every refusal is a ``DocumentError`` whose ``status`` is the HTTP status to answer with.
"""

from __future__ import annotations

import codecs
import zipfile
from collections.abc import Callable, Sequence
from io import BytesIO
from pathlib import PurePosixPath

from pydantic import Field, model_validator

from xplus_release.config import Config
from xplus_release.documents.errors import (
    CorruptDocumentError,
    DocumentError,
    DocumentTooLargeError,
    UnsupportedFormatError,
)

TranslateUnits = Callable[[list[str]], list[str]]

MEDIA_TYPES = {
    ".txt": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".srt": "application/x-subrip",
    ".vtt": "text/vtt; charset=utf-8",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".xlf": "application/x-xliff+xml",
    ".xliff": "application/x-xliff+xml",
}
SUPPORTED_EXTENSIONS = tuple(MEDIA_TYPES)
ZIP_BASED = frozenset({".docx", ".pptx"})


class FileLimits(Config):
    """What one file may hold; each is an ``xplus-serve`` flag (``--max-file-bytes`` ...). Over a limit: 413.

    Raises ``ConfigError`` (from ``build``/``from_flags``) for a limit below 1."""

    section = "file limit"
    # LibreTranslate and DeepL accept files of this order (DeepL: 10-30 MB by format)
    max_file_bytes: int = Field(10 << 20, description="bytes of an uploaded file; more is 413")
    # a .docx of text inflates about 3-10x; 100x of the default file size is a zip bomb, not a document
    max_inflated_bytes: int = Field(100 << 20, description=(
        "bytes a .docx/.pptx may inflate to, read from its zip directory before anything is inflated; more is 413"))
    max_segments: int = Field(5000, description="units of text (paragraphs, cues, runs of a cell) per file; more is 413")
    max_html_depth: int = Field(512, description="element nesting of an HTML file; deeper is 422")

    @model_validator(mode="after")
    def _at_least_one(self) -> FileLimits:
        """Checked here rather than per field so that the message names the flag, as the commands spell it
        (subclasses such as xplus-serve's limits inherit it for their own fields)."""
        for name, value in self:
            if value < 1:
                raise ValueError(f"--{name.replace('_', '-')} is {value}; it must be at least 1")
        return self


def extension(filename: str) -> str:
    """The lower-cased extension of ``filename``, or ``UnsupportedFormatError`` (415) naming the supported ones."""
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if suffix not in MEDIA_TYPES:
        shown = suffix or "no extension"
        raise UnsupportedFormatError(
            f"{filename!r} has {shown}: send one of {', '.join(SUPPORTED_EXTENSIONS)} (or the text itself)"
        )
    return suffix


def media_type(filename: str) -> str:
    """The media type a translated file is sent back with (415 ``UnsupportedFormatError`` if not supported)."""
    return MEDIA_TYPES[extension(filename)]


def translate_file(filename: str, data: bytes, translate_units: TranslateUnits, limits: FileLimits) -> bytes:
    """The translated file, in the format of ``filename``'s extension.

    Raises ``UnsupportedFormatError`` (415), ``DocumentTooLargeError`` (413: bytes, inflated bytes read from the
    zip directory before inflating, segments), ``CorruptDocumentError`` (422: empty, corrupt, content not matching
    the extension) and ``NestingTooDeepError`` (422)."""
    from xplus_release.documents import formats  # each format's library loads only when used

    suffix = extension(filename)
    if len(data) > limits.max_file_bytes:
        raise DocumentTooLargeError(
            f"{filename!r} is {len(data)} bytes, over the {limits.max_file_bytes}-byte limit: split it, "
            "or raise --max-file-bytes"
        )
    if not data.strip():
        raise CorruptDocumentError(f"{filename!r} is empty: send a file with text in it")
    if suffix in ZIP_BASED:
        check_zip(filename, data, limits)
    batch = UnitBatch(translate_units, limits, filename)
    return formats.HANDLERS[suffix](data, batch, filename)


def check_zip(filename: str, data: bytes, limits: FileLimits) -> None:
    """Refuse a .docx/.pptx that is not a zip (422) or would inflate past the limit (413), from its central
    directory alone: nothing is inflated. Python's zipfile stops at each member's declared size (a member that
    inflates further fails its CRC), so the declared sizes bound what the format's library will inflate."""
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as err:
        raise CorruptDocumentError(
            f"{filename!r} is not a {PurePosixPath(filename).suffix} file (not a readable zip: {err}): "
            "send the file as saved by Word/PowerPoint/LibreOffice"
        ) from None
    if inflated > limits.max_inflated_bytes:
        raise DocumentTooLargeError(
            f"{filename!r} would inflate to {inflated} bytes, over the {limits.max_inflated_bytes}-byte limit "
            "(a zip bomb, or a huge document): split it, or raise --max-inflated-bytes"
        )


class UnitBatch:
    """Collects the units of a whole file, sends them to ``translate_units`` in one call, hands back each part."""

    def __init__(self, translate_units: TranslateUnits, limits: FileLimits, filename: str) -> None:
        self.translate_units = translate_units
        self.limits = limits
        self.filename = filename

    def translate(self, groups: Sequence[Sequence[str]]) -> list[list[str]]:
        """The translations of each group of units, in one ``translate_units`` call for all groups."""
        units = [unit for group in groups for unit in group]
        if len(units) > self.limits.max_segments:
            raise DocumentTooLargeError(
                f"{self.filename!r} has {len(units)} segments to translate, over the {self.limits.max_segments} "
                "limit: split the file, or raise --max-segments"
            )
        translations = list(self.translate_units(units)) if units else []
        if len(translations) != len(units):  # the caller's contract, not the user's input
            raise RuntimeError(f"translate_units returned {len(translations)} translations for {len(units)} units")
        out, cursor = [], 0
        for group in groups:
            out.append(translations[cursor : cursor + len(group)])
            cursor += len(group)
        return out


def decode_text(data: bytes, filename: str) -> tuple[str, str]:
    """(text, encoding) of a text file: UTF-8 (BOM kept), or UTF-16/32 with a BOM. Binary content is refused."""
    for bom, encoding in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                          (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return _decode(data, encoding, filename), encoding
    if b"\x00" in data:
        raise CorruptDocumentError(
            f"{filename!r} holds binary data, not {PurePosixPath(filename).suffix} text: send the file under "
            "its own extension"
        )
    return _decode(data, "utf-8", filename), "utf-8"


def _decode(data: bytes, encoding: str, filename: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise CorruptDocumentError(
            f"{filename!r} is not valid {encoding} text (byte {err.start}): save it as UTF-8 and send it again"
        ) from None


__all__ = [
    "MEDIA_TYPES", "SUPPORTED_EXTENSIONS", "DocumentError", "FileLimits", "TranslateUnits", "UnitBatch",
    "media_type", "translate_file",
]
