"""What one request may ask of the server, and the defaults sized for a single replica."""

from __future__ import annotations

from pydantic import Field

from xplus_release.documents.files import FileLimits


class ServeLimits(FileLimits):
    """Request limits enforced by the front app before anything reaches vLLM; each is an ``xplus-serve`` flag.

    A request over ``max_body_bytes``, ``max_text_chars`` or ``max_batch`` gets 413; a malformed one 422.
    The file limits of ``/v1/translate_file`` are the documents library's own (``FileLimits``), inherited.
    Raises ``ConfigError`` (from ``build``/``from_flags``) for a limit below 1.
    """

    section = "request limit"
    # LibreTranslate's default char limit is of this order
    max_text_chars: int = Field(5000, description="characters per text to translate; more is 413")
    max_batch: int = Field(64, description="texts per translate request; more is 413")
    # 1 MiB: a full batch of maximum-length texts fits with room for JSON
    max_body_bytes: int = Field(1 << 20, description="request body size on any route; more is 413")
    max_tokens: int = Field(1024, description=(
        "new tokens per sentence: the ceiling of a request's max_tokens and of the default derived from each "
        "sentence's length"))
    # demo events generating at once; more wait in the Gradio queue
    demo_concurrency: int = Field(16, description="demo translations running at once")
    # waiting demo events beyond this are refused ("queue full")
    demo_queue_size: int = Field(128, description="demo translations waiting at most")

    def file_limits(self) -> FileLimits:
        return FileLimits(**{name: getattr(self, name) for name in FileLimits.model_fields})
