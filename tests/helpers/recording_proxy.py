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
        self.replies: list[tuple[dict, str]] = []  # (JSON body, reply text), in the order the replies came
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests forwarded at once since the last ``take``
        self._together: threading.Barrier | None = None
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
            taken, self.requests, self.replies, self.max_in_flight = self.requests, [], [], 0
        return taken

    def hold_until_together(self, count: int, timeout: float = 20) -> None:
        """The next ``count`` POSTs are held until all of them have arrived (a client that sends them one after
        another breaks the wait after ``timeout`` and ``max_in_flight`` shows it); answers come from the
        upstream, so timing never decides what ``max_in_flight`` reads."""
        self._together = threading.Barrier(count, timeout=timeout)

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
                    proxy.in_flight += 1
                    proxy.max_in_flight = max(proxy.max_in_flight, proxy.in_flight)
                    together = proxy._together
                if together is not None:
                    try:
                        together.wait()
                    except threading.BrokenBarrierError:
                        pass
                    proxy._together = None
                try:
                    reply = self._forward("POST", body)
                finally:
                    with proxy._lock:
                        proxy.in_flight -= 1
                with proxy._lock:
                    proxy.replies.append((json.loads(body), reply.text))

            def _forward(self, method: str, body: bytes | None):
                headers = {"Authorization": f"Bearer {proxy.api_key}", "Content-Type": "application/json"}
                url = proxy.upstream + self.path.split("/v1", 1)[-1]
                reply = httpx.request(method, url, content=body, headers=headers, timeout=600)
                self.send_response(reply.status_code)
                self.send_header("Content-Type", reply.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(reply.content)))
                self.end_headers()
                self.wfile.write(reply.content)
                return reply

            def log_message(self, *args):  # quiet
                pass

        return Handler
