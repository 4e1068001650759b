"""What one request may ask of the server, and the defaults sized for a single replica."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeLimits:
    """Request limits enforced by the front app before anything reaches vLLM.

    A request over ``max_body_bytes``, ``max_text_chars`` or ``max_batch`` gets 413; a malformed one 422.
    """

    max_body_bytes: int = 1 << 20  # 1 MiB: a full batch of maximum-length texts fits with room for JSON
    max_text_chars: int = 5000  # LibreTranslate's default char limit is of this order
    max_batch: int = 64
    max_tokens: int = 1024  # default and ceiling of new tokens per translation
    demo_concurrency: int = 16  # demo events generating at once; more wait in the Gradio queue
    demo_queue_size: int = 128  # waiting demo events beyond this are refused ("queue full")
