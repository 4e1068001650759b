"""Typed errors of document handling; each carries the HTTP status the server answers with.

The local CLI prints ``str(err)`` as one line and exits non-zero (``XPlusError.exit_code``); the server answers
``err.status`` with the JSON error shape. Every message names the fix.
"""

from __future__ import annotations

from xplus_release.errors import XPlusError


class DocumentError(XPlusError):
    """A document or file that cannot be translated as sent. ``status`` is the HTTP status to answer with."""

    status = 422


class DocumentTooLargeError(DocumentError):
    """A file over the byte limit, a zip-based file that would inflate past its limit (found before inflating),
    or more segments than a file may have."""

    status = 413


class UnsupportedFormatError(DocumentError):
    """A file name whose extension is not one of ``SUPPORTED_EXTENSIONS`` (the message lists them)."""

    status = 415


class CorruptDocumentError(DocumentError):
    """A file that its format's library cannot read: corrupt, empty, or content not matching its extension."""


class NestingTooDeepError(DocumentError):
    """HTML nested deeper than the limit (a document built to exhaust the parser, not a page)."""
