"""A local stand-in for the few Hugging Face Hub API routes that ``xplus-publish`` uses.

The Hub cannot be reached from the test machines, so the push path is tested against this server, started
by the test on 127.0.0.1. It implements what huggingface_hub 2.4.0 calls for create_repo, create_branch and
upload_folder without hf_xet (``HF_HUB_DISABLE_XET=1``): ``/api/repos/create``, ``/api/models/{repo}/branch/
{name}``, ``/api/validate-yaml``, ``/api/models/{repo}/preupload/{rev}`` (``*.safetensors`` go through LFS
like on the Hub, other files travel base64 inside the commit), the LFS batch/upload/verify routes (an
object already stored is not asked for again, which is what lets a rerun skip uploaded weights) and
``/api/models/{repo}/commit/{rev}`` (NDJSON). Every request is recorded for the test to check; a repo
named ``forbidden`` answers 403 like a token without write access, and ``fail_commits`` makes the next
commits fail with 409 like a concurrent commit.
"""

from __future__ import annotations

import base64
import hashlib
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
    lfs_objects: dict[str, bytes] = field(default_factory=dict)  # sha256 -> content
    fail_commits: int = 0

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def routes(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    def commits(self) -> list[Request]:
        return [r for r in self.requests if "/commit/" in r.path]

    def committed_files(self, commit: Request) -> dict[str, bytes]:
        """Every file a commit adds, with its content (inline, or the LFS object its oid names)."""
        files = {}
        for item in commit.ndjson():
            value = item["value"]
            if item["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "lfsFile":
                files[value["path"]] = self.lfs_objects[value["oid"]]
        return files

    def lfs_uploads(self) -> list[Request]:
        return [r for r in self.requests if r.method == "PUT"]

    def start(self) -> HubStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                self._handle("POST")

            def do_PUT(self):
                self._handle("PUT")

            def _handle(self, method: str):
                url = urlparse(self.path)
                request = Request(method, unquote(url.path), parse_qs(url.query), dict(self.headers), self._body())
                stand_in.requests.append(request)
                status, answer = stand_in.answer(request)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    return self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = b""
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    body += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
                return body

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
        if path.endswith(".git/info/lfs/objects/batch"):
            return 200, {"transfer": "basic", "objects": [self._lfs_action(o) for o in request.json()["objects"]]}
        if request.method == "PUT" and path.startswith("/lfs-upload/"):
            oid = path.rsplit("/", 1)[1]
            if hashlib.sha256(request.body).hexdigest() != oid:
                return 400, {"error": "content does not match its oid"}
            self.lfs_objects[oid] = request.body
            return 200, {}
        if path == "/lfs-verify":
            return (200, {}) if request.json()["oid"] in self.lfs_objects else (404, {"error": "object not found"})
        match = re.fullmatch(r"/api/models/([^/]+/[^/]+)/(branch|preupload|commit)/(.+)", path)
        if not match:
            return 404, {"error": f"the stand-in does not implement {request.method} {path}"}
        repo, route, _revision = match.groups()
        if route == "branch":
            return 200, {}
        if route == "preupload":
            files = request.json()["files"]
            return 200, {"files": [{"path": f["path"], "shouldIgnore": False,
                                    "uploadMode": "lfs" if f["path"].endswith(".safetensors") else "regular"}
                                   for f in files]}
        return self._commit(repo, request)

    def _lfs_action(self, obj: dict) -> dict:
        if obj["oid"] in self.lfs_objects:
            return {"oid": obj["oid"], "size": obj["size"]}  # already stored: nothing to upload
        return {"oid": obj["oid"], "size": obj["size"], "actions": {
            "upload": {"href": f"{self.url}/lfs-upload/{obj['oid']}"}, "verify": {"href": f"{self.url}/lfs-verify"}}}

    def _commit(self, repo: str, request: Request) -> tuple[int, dict]:
        if self.fail_commits:
            self.fail_commits -= 1
            return 409, {"error": "A commit has happened since. Please refresh and try again."}
        missing = [i["value"]["oid"] for i in request.ndjson() if i["key"] == "lfsFile" and i["value"]["oid"] not in self.lfs_objects]
        if missing:
            return 422, {"error": f"LFS objects not uploaded: {missing}"}
        oid = f"{len(self.commits()):040x}"
        answer = {"commitUrl": f"{self.url}/{repo}/commit/{oid}", "commitOid": oid}
        if request.query.get("create_pr") == ["1"]:
            answer["pullRequestUrl"] = f"{self.url}/{repo}/discussions/1"
        return 200, answer
