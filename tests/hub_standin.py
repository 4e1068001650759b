"""A local stand-in for the few Hugging Face Hub API routes that ``xplus-publish`` uses.

The Hub cannot be reached from the test machines, so the push path is tested against this server, started
by the test on 127.0.0.1. It implements what huggingface_hub 2.4.0 calls for create_repo, create_branch and
upload_folder without hf_xet (``HF_HUB_DISABLE_XET=1``): ``/api/repos/create``, ``/api/models/{repo}/branch/
{name}``, ``/api/validate-yaml``, ``/api/models/{repo}/preupload/{rev}`` (every file "regular", so file
contents travel base64 inside the commit) and ``/api/models/{repo}/commit/{rev}`` (NDJSON). Every request
is recorded for the test to check; a repo named ``forbidden`` answers 403 like a token without write access.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)

    def ndjson(self) -> list[dict]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


@dataclass
class HubStandIn:
    requests: list[Request] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def routes(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    def commits(self) -> list[Request]:
        return [r for r in self.requests if "/commit/" in r.path]

    def committed_files(self, commit: Request) -> dict[str, bytes]:
        return {item["value"]["path"]: base64.b64decode(item["value"]["content"])
                for item in commit.ndjson() if item["key"] == "file"}

    def start(self) -> HubStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = urlparse(self.path)
                request = Request("POST", unquote(url.path), parse_qs(url.query), dict(self.headers), body)
                stand_in.requests.append(request)
                status, answer = stand_in.answer(request)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, request: Request) -> tuple[int, dict]:
        path = request.path
        if path == "/api/repos/create":
            payload = request.json()
            if payload["name"] == "forbidden":
                return 403, {"error": "You don't have the rights to create a model under this namespace"}
            return 200, {"url": f"{self.url}/{payload['organization']}/{payload['name']}"}
        if path == "/api/validate-yaml":
            return 200, {"errors": [], "warnings": []}
        match = re.fullmatch(r"/api/models/([^/]+/[^/]+)/(branch|preupload|commit)/(.+)", path)
        if not match:
            return 404, {"error": f"the stand-in does not implement {path}"}
        repo, route, _revision = match.groups()
        if route == "branch":
            return 200, {}
        if route == "preupload":
            files = request.json()["files"]
            return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
        oid = f"{len(self.commits()):040x}"
        answer = {"commitUrl": f"{self.url}/{repo}/commit/{oid}", "commitOid": oid}
        if request.query.get("create_pr") == ["1"]:
            answer["pullRequestUrl"] = f"{self.url}/{repo}/discussions/1"
        return 200, answer
