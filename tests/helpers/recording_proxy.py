"""A loopback HTTP proxy in front of the vLLM server that records every request body it forwards.

Parity tests point two clients (our suite, and the reference harness's own CLI) at it in turn and compare
what each sent. It adds the server's API key, so both clients can be run exactly as a user would.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import httpx


class RecordingProxy:
    def __init__(self, upstream: str, api_key: str):
        self.upstream = upstream.rstrip("/")  # …/v1
        self.api_key = api_key
        self.requests: list[tuple[str, dict]] = []  # (path under /v1, JSON body)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def take(self) -> list[tuple[str, dict]]:
        """The requests recorded since the last call, and forget them."""
        with self._lock:
            taken, self.requests = self.requests, []
        return taken

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._forward("GET", None)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("/v1", 1)[-1]
                with proxy._lock:
                    proxy.requests.append((path, json.loads(body)))
                self._forward("POST", body)

            def _forward(self, method: str, body: bytes | None):
                headers = {"Authorization": f"Bearer {proxy.api_key}", "Content-Type": "application/json"}
                url = proxy.upstream + self.path.split("/v1", 1)[-1]
                reply = httpx.request(method, url, content=body, headers=headers, timeout=600)
                self.send_response(reply.status_code)
                self.send_header("Content-Type", reply.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(reply.content)))
                self.end_headers()
                self.wfile.write(reply.content)

            def log_message(self, *args):  # quiet
                pass

        return Handler
