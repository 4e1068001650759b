"""What one request may ask of the server, and the defaults sized for a single replica."""

from __future__ import annotations

from pydantic import Field, model_validator

from xplus_release.config import Config
from xplus_release.documents.files import FileLimits


class ServeLimits(Config):
    """Request limits enforced by the front app before anything reaches vLLM; each is an ``xplus-serve`` flag.

    A request over ``max_body_bytes``, ``max_text_chars`` or ``max_batch`` gets 413; a malformed one 422.
    Raises ``ConfigError`` (from ``build``/``from_flags``) for a limit below 1.
    """

    section = "request limit"
    # LibreTranslate's default char limit is of this order
    max_text_chars: int = Field(5000, description="characters per text to translate; more is 413")
    max_batch: int = Field(64, description="texts per translate request; more is 413")
    # 1 MiB: a full batch of maximum-length texts fits with room for JSON
    max_body_bytes: int = Field(1 << 20, description="request body size on any route; more is 413")
    max_tokens: int = Field(1024, description=(
        "new tokens per translation: the ceiling, and what a request that sets none gets"))
    # /v1/translate_file: the same defaults as the documents library's own (FileLimits)
    max_file_bytes: int = Field(FileLimits().max_file_bytes, description=(
        "bytes of a file sent to /v1/translate_file; more is 413"))
    max_inflated_bytes: int = Field(FileLimits().max_inflated_bytes, description=(
        "bytes a .docx/.pptx may inflate to (read from its zip directory, before inflating); more is 413"))
    max_segments: int = Field(FileLimits().max_segments, description="units of text per file; more is 413")
    max_html_depth: int = Field(FileLimits().max_html_depth, description="element nesting of HTML; deeper is 422")
    # demo events generating at once; more wait in the Gradio queue
    demo_concurrency: int = Field(16, description="demo translations running at once")
    # waiting demo events beyond this are refused ("queue full")
    demo_queue_size: int = Field(128, description="demo translations waiting at most")

    def file_limits(self) -> FileLimits:
        return FileLimits(**{name: getattr(self, name) for name in FileLimits.model_fields})

    @model_validator(mode="after")
    def _at_least_one(self) -> ServeLimits:
        """Checked here rather than per field so that the message names the flag, as xplus-serve spells it."""
        for name, value in self:
            if value < 1:
                raise ValueError(f"--{name.replace('_', '-')} is {value}; it must be at least 1")
        return self
