"""The text check in front of every JSON route: a body must be UTF-8 JSON whose strings are encodable text.

JSON may spell a lone surrogate (``"\\ud800"``) or NUL (``"\\u0000"``): Python parses both, but a
surrogate cannot be encoded as UTF-8, so the first ``.encode()`` on the way to vLLM or into a response
failed with a 500 and a reset connection, and NUL reaches the tokenizer as a control character no
language has. Both are refused here, once, for the translation routes and for every route passed through
to vLLM, as 422 naming the field (``q[2]``, ``messages[0].content``). Bodies that are not UTF-8, not JSON
or nested deeper than ``MAX_DEPTH`` get the same shape of error instead of a framework's default body.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xplus_release.serve.errors import send_json_error

JSON_SCOPE = "xplus.json"  # the parsed body, for the layers below (the per-key limits count its characters)
MAX_DEPTH = 64  # deeper than any OpenAI or translate request; a parser bomb long before that


class TextError(ValueError):
    """A request body that is not acceptable text; ``str`` is the message of the 422."""


def check_text(value: str, field: str) -> None:
    """Raises: TextError naming ``field`` when ``value`` holds a lone surrogate or NUL."""
    if "\x00" in value:
        raise TextError(f"{field} contains a NUL character (\\u0000) at position {value.index(chr(0))}; remove it")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise TextError(f"{field} contains a lone surrogate (U+{ord(value[err.start]):04X}) at position "
                        f"{err.start}, which is not text; send valid Unicode") from None


def check_json_body(body: bytes):
    """The parsed body.

    Raises: TextError for a body that is not UTF-8, not JSON, too deep, or has a bad string anywhere."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise TextError(f"request body is not valid UTF-8 (byte {err.start}); send UTF-8 encoded JSON") from None
    try:
        document = json.loads(text)
    except RecursionError:
        raise TextError(f"request body is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as err:
        raise TextError(f"request body is not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    _check_strings(document)
    return document


def _check_strings(document) -> None:
    """Walk the document without recursion (its depth is the client's choice), keys and values alike."""
    pending = [(document, "body", 0)]
    while pending:
        value, field, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise TextError(f"request body is nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, str):
            check_text(value, field)
        elif isinstance(value, list):
            pending.extend((item, f"{field}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, dict):
            for key, item in value.items():
                name = key if field == "body" else f"{field}.{key}"
                check_text(key, f"a key of {field}")
                pending.append((item, name, depth + 1))


class TextGuard:
    """Buffers JSON request bodies (the gate has bounded their size), checks them, and replays them."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            return await self.app(scope, receive, send)
        body = await read_body(receive)
        if body is None:
            return  # the client left, or the gate already answered 413
        if body:
            try:
                document = check_json_body(body)
            except TextError as err:
                return await send_json_error(send, 422, str(err))
            scope = {**scope, JSON_SCOPE: document}  # the per-key limits count the prompt's characters from it
        await self.app(scope, _replay(body, receive), send)


def _is_json(scope: Scope) -> bool:
    if scope["method"] not in ("POST", "PUT", "PATCH"):
        return False
    content_type = Headers(scope=scope).get("content-type", "")
    return content_type.split(";")[0].strip().lower() in ("application/json", "")


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: the disconnect, when it comes

    return replay
