"""``POST /v1/translate_file``: a file in, the translated file out, in LibreTranslate's shape.

Multipart ``file`` with ``source`` (or ``auto``) and ``target``; the answer is the translated file under the same
name and media type. The file is read and written by its format's library (``xplus_release.documents.files``,
in a worker thread); its units of text come back here, are cut into sentences and go to vLLM as one concurrent
batch, exactly like the texts of ``/v1/translate``. The caller's key is charged for the characters sent to the
model. Whether any sentence stopped at the token cap is said in the headers (``X-Truncated-Segments``).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated
from urllib.parse import quote

import anyio
from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response

from xplus_release.documents.errors import DocumentError
from xplus_release.documents.files import media_type, translate_file
from xplus_release.documents.segmentation import SPLIT_SENTENCES, segment_units
from xplus_release.languages import Language
from xplus_release.serve.errors import ApiError
from xplus_release.serve.metering import CURRENT, Meter
from xplus_release.serve.translation import Document, Plan, Translator, count_off_target

FILE_PATH = "/v1/translate_file"
MULTIPART_ROOM = 64 << 10  # the form's own bytes around the file


class FileJob:
    """One file's translation: ``translate_units`` is called by the format library from a worker thread and
    runs the batch on the server's event loop; what it did is kept for the response headers."""

    def __init__(self, translator: Translator, source: str, target: Language, split_sentences: str,
                 meter: Meter | None, max_tokens: int | None = None):
        self.translator, self.source, self.target = translator, source, target
        self.split_sentences, self.meter = split_sentences, meter
        self.max_tokens = min(max_tokens, translator.limits.max_tokens) if max_tokens else None
        self.segments = self.truncated = self.off_target = 0

    def translate_units(self, units: list[str]) -> list[str]:
        return anyio.from_thread.run(self._translate, units)

    async def _translate(self, units: list[str]) -> list[str]:
        token = CURRENT.set(self.meter)  # vLLM's tokens for this request are counted on the caller's key
        try:
            plan = self._plan(units)
            if not plan.translated(0):
                return units
            self.segments = len(plan.documents[0].segments)
            if self.meter is not None:
                self.meter.characters += sum(len(s) for s in plan.documents[0].segments)
            [result] = await self.translator.translate_all(plan)
        finally:
            CURRENT.reset(token)
        self.truncated, self.off_target = len(result.truncated), int(result.off_target)
        count_off_target(self.off_target, self.meter)
        return result.units

    def _plan(self, units: list[str]) -> Plan:
        """All units as one document, the source detected from their text when it is ``auto``."""
        text = "\n".join(units)
        if self.source.strip().lower() == "auto":
            source = self.translator.detect(text[:5000])[0]  # what fastText needs; a whole book adds nothing
        else:
            source = self.translator.language(self.source, "source")
        doc = Document(None, segment_units(units, source.code, self.split_sentences))
        return Plan([text], [source], self.target, self.max_tokens, [doc])


async def translate_upload(translator: Translator, filename: str, data: bytes, source: str, target: str,
                           split_sentences: str, meter: Meter | None,
                           max_tokens: int | None = None) -> tuple[str, bytes, FileJob]:
    """(the file's own name, the translated file, what was done), for the route and the demo alike.

    Raises: ApiError 400 (languages), 413/415/422 (the file, see ``translate_file``)."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    target_language = translator.language(target, "target")
    if split_sentences not in SPLIT_SENTENCES:
        raise ApiError(422, f"split_sentences is {split_sentences!r}; use one of 1, 0, nonewlines")
    if source.strip().lower() != "auto" and translator.language(source, "source") == target_language:
        raise ApiError(400, f"source and target are both {target_language.code}; pick a different target")
    job = FileJob(translator, source, target_language, split_sentences, meter, max_tokens)
    try:
        out = await anyio.to_thread.run_sync(translate_file, name, data, job.translate_units,
                                              translator.limits.file_limits())
    except DocumentError as err:
        raise ApiError(err.status, str(err)) from None
    return name, out, job


def translated_name(name: str, target: str) -> str:
    """``report.docx`` → ``report.de.docx``: what ``xplus-translate FILE`` writes too."""
    path = PurePosixPath(name)
    return f"{path.stem}.{target}{path.suffix}"


def file_router(translator: Translator) -> APIRouter:
    router = APIRouter()

    @router.post(FILE_PATH)
    async def translate_a_file(file: Annotated[UploadFile, File(description="the file to translate")],
                               target: Annotated[str, Form()], source: Annotated[str, Form()] = "auto",
                               split_sentences: Annotated[str, Form()] = "1",
                               max_tokens: Annotated[int | None, Form(ge=1)] = None) -> Response:
        """The translated file, same name and media type; 413/415/422 for a file that cannot be translated."""
        name, out, job = await translate_upload(translator, file.filename or "", await file.read(), source,
                                                target, split_sentences, CURRENT.get(), max_tokens)
        return Response(out, media_type=media_type(name), headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "X-Segments": str(job.segments), "X-Truncated-Segments": str(job.truncated),
            "X-Off-Target": "true" if job.off_target else "false"})

    return router
