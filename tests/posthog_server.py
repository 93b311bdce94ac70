"""A local PostHog ``desktop_recordings`` server, faithful to ``shared/posthog_api.md``.

Used by the integration and end-to-end tests (in a thread) and runnable by hand:
``python -m tests.posthog_server --port 8010 --key phx_test``.

Faithful points: auth before scope before lookup (403 / 403 / 404), the error envelope,
validation codes, ``append_segments`` dedupe by timestamp exactly as the server does it,
limit/offset pagination with absolute ``next``/``previous``, the bare 503 on create of
self-hosted instances. Switches: fail (5xx), throttle (429 with or without ``Retry-After``),
drop the connection, and refuse creates.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

PLATFORMS = ("zoom", "teams", "meet", "desktop_audio", "slack")
STATUSES = ("recording", "uploading", "processing", "ready", "error")
READ, WRITE = "desktop_recording:read", "desktop_recording:write"
ROUTE = re.compile(
    r"^/api/(?:environments|projects)/(?P<pid>[^/]+)/desktop_recordings"
    r"(?:/(?P<rid>[^/]+))?(?:/(?P<action>append_segments))?/?$"
)


class HttpError(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def envelope(status: int, type_: str, code: str, detail: str, attr: str | None = None) -> HttpError:
    return HttpError(status, {"type": type_, "code": code, "detail": detail, "attr": attr})


def invalid(code: str, detail: str, attr: str) -> HttpError:
    return envelope(400, "validation_error", code, detail, attr)


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Faults:
    """Switches a test flips; each counter is consumed by the next matching requests."""

    fail_next: int = 0
    fail_status: int = 500
    throttle_next: int = 0
    throttle_seconds: int = 1
    throttle_header: bool = True
    drop_next: int = 0
    create_unavailable: bool = False
    only_path_contains: str | None = None
    fail_rate: float = 0.0  # share of requests answered with ``fail_status`` (seeded, repeatable)
    throttle_every: int = 0  # every Nth request answers 429 with Retry-After
    drop_until: float = 0.0  # time.monotonic() before which every connection is dropped
    # Where the list's ``next``/``previous`` links point instead of this server (None: here), as a
    # proxy in front of an instance can make them (plain http, its inner host name).
    link_base: str | None = None
    # The next append reads the recording, then waits this long unlocked before writing it back:
    # the server's read-modify-write has no lock (contract, append_segments rule 5).
    stall_append_s: float = 0.0
    # The same, until this event is set (then it writes back what it read, whatever came since).
    append_waits_for: threading.Event | None = None
    hold: Callable[[str, str, Any], bool] | None = None  # (method, path, body) -> process, then stall
    held: threading.Event = field(default_factory=threading.Event)  # set while an answer is stalled
    release: threading.Event = field(default_factory=threading.Event)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    count: int = 0


@dataclass
class ServerState:
    team_id: int = 1  # the user's current project, what ``@current`` means (they can switch it)
    projects: dict[int, str] = field(default_factory=lambda: {1: "Default project", 2: "Staging"})
    keys: dict[str, set[str]] = field(default_factory=dict)
    recordings: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    arrived_at: list[float] = field(default_factory=list)  # time.monotonic() of each of ``requests``
    faults: Faults = field(default_factory=Faults)
    lock: threading.RLock = field(default_factory=threading.RLock)


def _validate_segment(seg: Any, i: int) -> dict[str, Any] | None:
    if not isinstance(seg, dict):
        raise invalid("invalid", "Expected a dictionary of items.", f"segments__{i}__non_field_errors")
    text = seg.get("text")
    if text is None:
        raise invalid("required", "This field is required.", f"segments__{i}__text")
    text = str(text).strip()
    if not text:
        raise invalid("blank", "This field may not be blank.", f"segments__{i}__text")
    ts = seg.get("timestamp")
    try:
        ts = None if ts is None else float(ts)
        conf = None if seg.get("confidence") is None else float(seg["confidence"])
    except (TypeError, ValueError):
        raise invalid("invalid", "A valid number is required.", f"segments__{i}__timestamp") from None
    speaker = seg.get("speaker")
    return {"timestamp": ts, "speaker": None if speaker is None else str(speaker), "text": text,
            "confidence": conf, "is_final": seg.get("is_final")}


def validate_fields(body: dict[str, Any], *, require_platform: bool) -> dict[str, Any]:
    """Writable fields only (unknown and read-only keys dropped), validated like the serializer."""
    if require_platform and "platform" not in body:
        raise invalid("required", "This field is required.", "platform")
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key == "platform" or key == "status":
            choices = PLATFORMS if key == "platform" else STATUSES
            if value not in choices:
                raise invalid("invalid_choice", f'"{value}" is not a valid choice.', key)
        elif key == "meeting_title" and value is not None:
            if not isinstance(value, str):
                raise invalid("invalid", "Not a valid string.", key)
            if len(value) > 255:
                raise invalid("max_length", "Ensure this field has no more than 255 characters.", key)
        elif key in ("meeting_url", "video_url") and value is not None:
            if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+", value):
                raise invalid("invalid", "Enter a valid URL.", key)
            if len(value) > 200:
                raise invalid("max_length", "Ensure this field has no more than 200 characters.", key)
        elif key in ("duration_seconds", "video_size_bytes") and value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
                raise invalid("invalid", "A valid integer is required.", key)
            value = int(value)
            if key == "duration_seconds" and not -(2**31) <= value < 2**31:
                raise invalid("max_value", "Ensure this value is less than or equal to 2147483647.", key)
        elif key == "participants":
            if not isinstance(value, list) or any(not isinstance(p, str) for p in value):
                raise invalid("invalid", "Not a valid string.", key)
        elif key == "transcript_segments":
            if not isinstance(value, list):
                raise invalid("not_a_list", "Expected a list of items.", key)
            value = [_validate_segment(s, i) for i, s in enumerate(value)]
        elif key in ("notes", "error_message", "summary", "extracted_tasks", "recall_recording_id",
                     "tasks_generated_at", "summary_generated_at", "started_at", "completed_at"):
            pass
        else:
            continue  # read-only or unknown: ignored
        out[key] = value
    return out


class PostHogState:
    """The server's domain logic, separate from HTTP plumbing."""

    def __init__(self, state: ServerState) -> None:
        self.s = state

    def new_recording(self, platform: str, team: int | None = None) -> dict[str, Any]:
        rid = str(uuid.uuid4())
        ts = now_iso()
        rec = {
            "id": rid, "team": self.s.team_id if team is None else team, "created_by": 1,
            "sdk_upload_id": str(uuid.uuid4()),
            "recall_recording_id": None, "platform": platform, "meeting_title": None, "meeting_url": None,
            "duration_seconds": None, "status": "recording", "notes": None, "error_message": None,
            "video_url": None, "video_size_bytes": None, "participants": [], "transcript_text": "",
            "transcript_segments": [], "summary": None, "extracted_tasks": [], "tasks_generated_at": None,
            "summary_generated_at": None, "started_at": ts, "completed_at": None, "created_at": ts,
            "updated_at": ts,
        }
        self.s.recordings[rid] = rec
        return rec

    def append(self, rec: dict[str, Any], segments: Any) -> None:
        if not isinstance(segments, list):
            raise invalid("not_a_list", "Expected a list of items.", "segments")
        if not segments:
            raise invalid("min_length", "Ensure this field has at least 1 elements.", "segments")
        batch = [_validate_segment(s, i) for i, s in enumerate(segments)]
        existing = rec["transcript_segments"]
        stall, self.s.faults.stall_append_s = self.s.faults.stall_append_s, 0.0
        waits_for, self.s.faults.append_waits_for = self.s.faults.append_waits_for, None
        if stall or waits_for:  # another request may write meanwhile; this one will write over it
            self.s.lock.release()
            try:
                if waits_for:
                    waits_for.wait(60)
                time.sleep(stall)
            finally:
                self.s.lock.acquire()
        seen = {s["timestamp"] for s in existing if s["timestamp"] is not None}
        new = [s for s in batch if s["timestamp"] is None or s["timestamp"] not in seen]
        rec["transcript_segments"] = existing + new
        rec["transcript_text"] = " ".join(s["text"] for s in rec["transcript_segments"])
        rec["updated_at"] = now_iso()

    def listing(self, team: int, query: dict[str, str], base_url: str) -> dict[str, Any]:
        rows = sorted((r for r in self.s.recordings.values() if r["team"] == team), key=lambda r: r["started_at"],
                      reverse=True)
        if query.get("platform"):
            rows = [r for r in rows if r["platform"] == query["platform"]]
        if query.get("status"):
            rows = [r for r in rows if r["status"] == query["status"]]
        if query.get("search"):
            rows = [r for r in rows if query["search"].lower() in r["transcript_text"].lower()]
        limit = int(query.get("limit") or 100)
        offset = int(query.get("offset") or 0)

        def page_url(off: int) -> str:
            return f"{base_url}?{urlencode({**query, 'limit': limit, 'offset': off})}"

        return {
            "count": len(rows),
            "next": page_url(offset + limit) if offset + limit < len(rows) else None,
            "previous": page_url(max(0, offset - limit)) if offset > 0 else None,
            "results": rows[offset: offset + limit],
        }


class Handler(BaseHTTPRequestHandler):
    server: PostHogTestServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr noise
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlparse(self.path)
        state = self.server.state
        with state.lock:
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = "<invalid json>"
            state.requests.append((method, url.path, body))
            state.arrived_at.append(time.monotonic())
            if self._inject_fault(url.path):
                return
            try:
                status, payload, headers = self._route(method, url.path, url.query, body)
            except HttpError as err:
                status, payload, headers = err.status, err.body, err.headers
        hold = state.faults.hold
        if hold and hold(method, url.path, body):
            state.faults.hold = None
            state.faults.held.set()  # done on the server; the client has no answer yet
            state.faults.release.wait(60)
        try:
            self._send(status, payload, headers)
        except OSError:  # the client is gone (killed while waiting)
            self.close_connection = True

    def _inject_fault(self, path: str) -> bool:
        f = self.server.state.faults
        if f.only_path_contains and f.only_path_contains not in path:
            return False
        f.count += 1
        if f.drop_next > 0 or time.monotonic() < f.drop_until:
            f.drop_next = max(0, f.drop_next - 1)
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        if f.throttle_next > 0 or (f.throttle_every and f.count % f.throttle_every == 0):
            f.throttle_next = max(0, f.throttle_next - 1)
            headers = {"Retry-After": str(f.throttle_seconds)} if f.throttle_header else {}
            detail = f"Request was throttled. Expected available in {f.throttle_seconds} seconds."
            self._send(429, {"type": "throttled_error", "code": "throttled", "detail": detail,
                             "attr": None}, headers)
            return True
        if f.fail_next > 0 or (f.fail_rate and f.rng.random() < f.fail_rate):
            f.fail_next = max(0, f.fail_next - 1)
            self._send(f.fail_status, {"type": "server_error", "code": "error",
                                       "detail": "A server error occurred.", "attr": None}, {})
            return True
        return False

    def _auth(self, needs: str) -> None:
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Bearer "):
            raise envelope(403, "authentication_error", "not_authenticated",
                           "Authentication credentials were not provided.")
        scopes = self.server.state.keys.get(header[len("Bearer "):])
        if scopes is None:
            raise envelope(403, "authentication_error", "authentication_failed",
                           "Personal API key found in request Authorization header is invalid.")
        if "*" in scopes or needs in scopes or (needs == READ and WRITE in scopes):
            return
        raise envelope(403, "authentication_error", "permission_denied",
                       f"API key missing required scope '{needs}'")

    def _route(self, method: str, path: str, query: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        logic = PostHogState(state)
        if path.rstrip("/") == "/api/users/@me":
            self._auth(READ)
            # ``organization.teams`` is not in the contract page; PostHog's user serializer lists the
            # organization's projects there (inferred). Only ``team_id`` serves recordings here.
            return 200, {"id": 1, "email": "tester@example.com", "first_name": "Test",
                         "team": {"id": state.team_id, "name": state.projects[state.team_id]},
                         "organization": {"id": "org-1", "name": "Test org", "teams": [
                             {"id": pid, "name": name} for pid, name in state.projects.items()]}}, {}
        m = ROUTE.match(path)
        if not m:
            raise envelope(404, "invalid_request", "not_found", "Not found.")
        team = state.team_id if m["pid"] == "@current" else int(m["pid"]) if m["pid"].isdigit() else None
        if team not in state.projects:
            raise envelope(404, "invalid_request", "not_found", "Project not found.")
        self._auth(READ if method == "GET" else WRITE)
        rid, action = m["rid"], m["action"]
        if rid is None:
            if method == "GET":
                q = {k: v[0] for k, v in parse_qs(query).items()}
                base = state.faults.link_base or f"http://{self.headers.get('Host')}{path}"
                return 200, logic.listing(team, q, base), {}
            if method == "POST":
                if state.faults.create_unavailable:
                    return 503, {"detail": "Recall.ai API key not configured"}, {}
                platform = (body or {}).get("platform", "desktop_audio") if isinstance(body, dict) else None
                if platform not in PLATFORMS:
                    raise invalid("invalid_choice", f'"{platform}" is not a valid choice.', "platform")
                rec = dict(logic.new_recording(platform, team))
                rec["upload_token"] = "upload-" + rec["sdk_upload_id"]
                return 201, rec, {}
            raise envelope(405, "invalid_request", "method_not_allowed", f'Method "{method}" not allowed.')
        rec = state.recordings.get(rid)
        if rec is None or rec["team"] != team:  # another project's recording is not found here
            raise envelope(404, "invalid_request", "not_found", "No DesktopRecording matches the given query.")
        if action == "append_segments" and method == "POST":
            logic.append(rec, (body or {}).get("segments") if isinstance(body, dict) else None)
            return 200, rec, {}
        if action is None and method == "GET":
            return 200, rec, {}
        if action is None and method in ("PATCH", "PUT"):
            fields = validate_fields(body if isinstance(body, dict) else {}, require_platform=method == "PUT")
            rec.update(fields)
            rec["updated_at"] = now_iso()
            return 200, rec, {}
        if action is None and method == "DELETE":
            del state.recordings[rid]
            return 204, None, {}
        raise envelope(405, "invalid_request", "method_not_allowed", f'Method "{method}" not allowed.')

    def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


class PostHogTestServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0, keys: dict[str, set[str]] | None = None) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.state = ServerState(keys=keys or {"phx_test_write": {WRITE}})
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> PostHogTestServer:
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), name="posthog-test-server",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8010)
    parser.add_argument("--key", default="phx_test_write")
    parser.add_argument("--create-unavailable", action="store_true")
    args = parser.parse_args()
    server = PostHogTestServer(args.port, {args.key: {WRITE}})
    server.state.faults.create_unavailable = args.create_unavailable
    print(f"PostHog test server on {server.url} (key {args.key})", flush=True)  # noqa: T201
    server.serve_forever()


if __name__ == "__main__":
    main()
