"""One module per family of formats; ``HANDLERS`` maps an extension to ``handler(data, batch, filename) -> bytes``.

A handler reads the file with its format's library, asks ``batch.translate`` for every unit at once, and writes
the file back with only the text replaced. Each module is imported on first use, so python-docx and friends load
only for the files that need them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

_MODULES = {
    ".txt": "text:translate_txt",
    ".html": "text:translate_html",
    ".htm": "text:translate_html",
    ".md": "markdown:translate_markdown",
    ".srt": "subtitles:translate_srt",
    ".vtt": "subtitles:translate_vtt",
    ".docx": "office:translate_docx",
    ".pptx": "office:translate_pptx",
    ".xlf": "xliff:translate_xliff",
    ".xliff": "xliff:translate_xliff",
}


class _Handlers(dict):
    def __missing__(self, suffix: str) -> Callable:
        module, name = _MODULES[suffix].split(":")
        handler = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        self[suffix] = handler
        return handler


HANDLERS = _Handlers()
