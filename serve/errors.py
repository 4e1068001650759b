"""The one error shape of the front process: ``{"error": "one line naming the fix"}`` with a 4xx/5xx status.

LibreTranslate answers errors this way; every error the front process writes itself (gate, text check,
translation routes, framework errors, an unavailable model server) goes through here.
"""

from __future__ import annotations

import json

from starlette.types import Send


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with ``status`` (and ``headers``, e.g. Retry-After)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_body(message: str) -> bytes:
    # ensure_ascii: the message may quote client input, which must not break the encoding of the answer
    return json.dumps({"error": message}).encode()


async def send_json_error(send: Send, status: int, message: str,
                          headers: list[tuple[bytes, bytes]] = ()) -> None:
    """Answer a raw ASGI request with the error shape (and e.g. ``Retry-After``)."""
    data = error_body(message)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": data})
