"""A local model hub: serves model folders over the Hugging Face Hub HTTP API (``HF_ENDPOINT``).

Just the part huggingface_hub uses to fetch a public model: repository info with file sizes,
and ``resolve`` URLs (HEAD for metadata, GET with Range for the bytes). Files are streamed in
slices with a pause between them (``bytes_per_s``) so a download takes long enough to watch.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SLICE = 1 << 20


class HubServer:
    def __init__(self, repos: dict[str, Path], bytes_per_s: float = 200e6) -> None:
        self.repos = repos
        self.bytes_per_s = bytes_per_s
        self.requests: list[tuple[str, str]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def sha(self, repo: str) -> str:
        return hashlib.sha1(repo.encode()).hexdigest()

    def info(self, repo: str) -> dict[str, Any]:
        folder = self.repos[repo]
        files = sorted(p for p in folder.iterdir() if p.is_file())
        return {"id": repo, "modelId": repo, "sha": self.sha(repo), "private": False, "disabled": False,
                "siblings": [{"rfilename": p.name, "size": p.stat().st_size} for p in files]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def _json(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, send_body: bool) -> None:
                path = self.path.split("?")[0]
                hub.requests.append((self.command, path))
                m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/[^/]+/?", path)
                if m and m.group(1) in hub.repos:
                    siblings = hub.info(m.group(1))["siblings"]
                    self._json(200, [{"type": "file", "path": f["rfilename"], "size": f["size"],
                                      "oid": hub.sha(f["rfilename"])} for f in siblings])
                    return
                m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/[^/]+)?", path)
                if m:
                    if m.group(1) not in hub.repos:
                        self.send_response(404)
                        self.send_header("X-Error-Code", "RepoNotFound")
                        self.end_headers()
                        return
                    self._json(200, hub.info(m.group(1)))
                    return
                m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/[^/]+/(.+)", path)
                if not m or m.group(1) not in hub.repos or not (hub.repos[m.group(1)] / m.group(2)).is_file():
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.end_headers()
                    return
                self._file(m.group(1), hub.repos[m.group(1)] / m.group(2), send_body)

            def _file(self, repo: str, file: Path, send_body: bool) -> None:
                size = file.stat().st_size
                start = 0
                rng = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
                if rng:
                    start = int(rng.group(1))
                self.send_response(206 if rng else 200)
                self.send_header("X-Repo-Commit", hub.sha(repo))
                self.send_header("ETag", f'"{hashlib.sha1(f"{file.name}{size}".encode()).hexdigest()}"')
                self.send_header("Content-Length", str(size - start))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if not send_body:
                    return
                with file.open("rb") as f:
                    f.seek(start)
                    while chunk := f.read(SLICE):
                        self.wfile.write(chunk)
                        time.sleep(len(chunk) / hub.bytes_per_s)

            def do_HEAD(self) -> None:
                self._route(send_body=False)

            def do_GET(self) -> None:
                self._route(send_body=True)

        return Handler
