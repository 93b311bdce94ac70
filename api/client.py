"""PostHog ``desktop_recordings`` REST client: one ``httpx.Client``, typed errors, owned retries."""

from __future__ import annotations

import copy
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlparse, urlsplit

import httpx

from api.errors import (
    ApiError,
    CannotCreateRecordings,
    CredentialsRejected,
    InvalidHost,
    MissingScope,
    NetworkError,
    NotFound,
    ProjectNotFound,
    RateLimited,
    ServerUnavailable,
    Unreachable,
    ValidationFailed,
)
from api.models import PLATFORMS, RemoteRecording, WireSegment, clean_patch
from api.ratelimit import RateBudget, budget_for_key
from api.retry import RetryPolicy

log = logging.getLogger(__name__)

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=20.0, pool=5.0)
# Failures after which the request may still have been done, or still be running, on the server
# (a gateway that gave up on it: 502/504). Connect errors and timeouts mean it was never sent.
_UNSURE_STATUSES = frozenset({502, 504})
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol,
               httpx.LocalProtocolError)
_SECONDS_IN_DETAIL = re.compile(r"available in (\d+(?:\.\d+)?) second")
_SCOPE_IN_DETAIL = re.compile(r"scope '([^']+)'")


def validate_host(host: str) -> str:
    """Return ``host`` without a trailing slash, or raise ``InvalidHost``."""
    parsed = urlparse(host.strip())
    if parsed.scheme == "https" and parsed.hostname:
        return host.strip().rstrip("/")
    if parsed.scheme == "http" and parsed.hostname in LOCAL_HOSTS:
        return host.strip().rstrip("/")
    raise InvalidHost(f"PostHog host must be an https:// URL (http:// only for localhost), got {host!r}")


def validate_project(project: str) -> str:
    """Return the project (a numeric id, or ``@current``: the key's current project) stripped, or
    raise ``ValueError``."""
    project = project.strip() or "@current"
    if project == "@current":
        return project
    if not (project.isascii() and project.isdigit() and int(project) > 0):  # ids count from 1
        raise ValueError(f"The project must be a number (its id in PostHog's URLs) or @current, not {project!r}.")
    return str(int(project))


def _retry_after(response: httpx.Response, detail: str) -> float | None:
    header = response.headers.get("Retry-After")
    if header:
        try:
            return float(header)
        except ValueError:
            pass
    match = _SECONDS_IN_DETAIL.search(detail)
    return float(match.group(1)) if match else None


def error_from_response(response: httpx.Response) -> ApiError:
    """Translate a non-2xx answer into the typed error a caller can act on."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    detail = str(body.get("detail") or response.reason_phrase or "")
    code = body.get("code")
    if status in (401, 403):
        if code == "permission_denied":
            match = _SCOPE_IN_DETAIL.search(detail)
            scope = match.group(1) if match else None
            return MissingScope(f"The API key is missing a scope: {detail}", scope=scope)
        return CredentialsRejected(
            f"PostHog rejected the personal API key ({status} {code or 'forbidden'}): {detail.rstrip('.')}. "
            "Create a key with the desktop_recording:write scope and store it again.",
            status=status,
        )
    if status == 400:
        attr = body.get("attr")
        return ValidationFailed(f"PostHog rejected field {attr!r}: {detail}", attr=attr, code=code)
    if status == 404 and detail.strip() == "Project not found.":
        return ProjectNotFound(
            "PostHog has no such project for this key: check the project id (POSTHOG_PROJECT_ID or "
            "'desktop-recorder configure --project').",
            status=404,
        )
    if status == 404:
        return NotFound(f"Not found on the server: {detail}", status=404)
    if status == 429:
        wait = _retry_after(response, detail)
        return RateLimited(f"Rate limited by PostHog: {detail}", retry_after_s=wait)
    if status == 503 and "type" not in body and "Recall.ai API key not configured" in detail:
        return CannotCreateRecordings(
            "This PostHog instance cannot create desktop recordings (its Recall.ai API key is not "
            "configured). Recordings stay local; ask the instance's admin or use PostHog Cloud.",
            status=503,
        )
    if status >= 500 or status == 408:
        return ServerUnavailable(
            f"PostHog answered {status}: {detail}", status=status, retry_after_s=_retry_after(response, "")
        )
    return ApiError(f"Unexpected answer {status} from PostHog: {detail}", status=status)


class PostHogClient:
    """The seven ``desktop_recordings`` endpoints plus ``users/@me``."""

    def __init__(
        self,
        host: str,
        api_key: str,
        project_id: str | int = "@current",
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        budget: RateBudget | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.host = validate_host(host)
        self._project = str(project_id)
        self._retry = retry or RetryPolicy()
        self._budget = budget or budget_for_key(api_key)
        # Asked before every retry: a caller with a deadline (``SyncWorker.drain``) or a user who
        # stopped waiting ends the retries here instead of after the policy's last attempt.
        self.keep_retrying: Callable[[], bool] = lambda: True
        # Set when that user stops waiting: the wait before a retry (up to ten seconds of a
        # server's Retry-After) ends at once, not when it would have.
        self.stop_waiting = threading.Event()
        self._sleep = sleep or self._wait
        self._http = httpx.Client(
            base_url=self.host,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "desktop-recorder/0.1"},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def _wait(self, seconds: float) -> None:
        self.stop_waiting.wait(seconds)

    def __enter__(self) -> PostHogClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, *, only_retry: tuple[type[ApiError], ...] | None = None,
        on_unanswered: Callable[[], None] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send with the retry policy; ``only_retry`` narrows which retryable errors are retried.
        ``on_unanswered`` is called after each attempt that may have been done, or may still be
        running, on the server although no answer came (a read timeout, a dropped connection)."""
        attempt = 0
        while True:
            attempt += 1
            self._budget.acquire()
            try:
                response = self._http.request(method, path, **kwargs)
                if response.is_success:
                    return response
                error = error_from_response(response)
                unsure = response.status_code in _UNSURE_STATUSES
            except httpx.ConnectTimeout:
                error = Unreachable(f"Cannot reach PostHog at {self.host}: the connection timed out")
                unsure = False
            except httpx.ConnectError as exc:
                error = Unreachable(f"Cannot reach PostHog at {self.host}: {exc}")
                unsure = False
            except httpx.TimeoutException as exc:
                error = NetworkError(f"PostHog at {self.host} did not answer in time ({exc.__class__.__name__})")
                unsure = not isinstance(exc, _NEVER_SENT)
            except httpx.TransportError as exc:
                error = NetworkError(f"Cannot reach PostHog at {self.host}: {exc}")
                unsure = not isinstance(exc, _NEVER_SENT)
            if unsure and on_unanswered is not None:
                on_unanswered()
            if (not self._retry.should_retry(error, attempt) or (only_retry and not isinstance(error, only_retry))
                    or not self.keep_retrying()):
                raise error
            delay = self._retry.delay_s(error, attempt)
            log.info("%s %s failed (%s); retry %d in %.1f s", method, path, error, attempt, delay)
            self._sleep(delay)
            if not self.keep_retrying():
                raise error

    @property
    def project(self) -> str:
        return self._project

    def in_project(self, project_id: str) -> PostHogClient:
        """The same connection, addressing another project (a recording stays in its own)."""
        if project_id == self._project:
            return self
        other = copy.copy(self)
        other._project = project_id
        return other

    def _base(self) -> str:
        return f"/api/environments/{self._project}/desktop_recordings/"

    def _detail(self, recording_id: str) -> str:
        return f"{self._base()}{recording_id}/"

    # -- endpoints ---------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/api/users/@me/").json()
        return result

    def resolve_project(self) -> int:
        """Pin ``@current`` to the numeric id, so later requests don't follow a team switch."""
        if self._project != "@current":
            return int(self._project)
        team = self.me().get("team") or {}
        self._project = str(int(team["id"]))
        return int(self._project)

    def list_recordings(
        self,
        *,
        platform: str | None = None,
        status: str | None = None,
        search: str | None = None,
        page_size: int = 100,
    ) -> Iterator[RemoteRecording]:
        """Every recording matching the filters, following ``next`` through all pages."""
        params: dict[str, str | int] = {"limit": page_size, "offset": 0}
        params.update({k: v for k, v in (("platform", platform), ("status", status), ("search", search)) if v})
        while True:
            page = self._request("GET", self._base(), params=params).json()
            for item in page.get("results", []):
                yield RemoteRecording.from_json(item)
            if not page.get("next"):
                return
            # Only the link's query (limit, offset, filters) is used, on the host the user chose:
            # a proxy can make it name plain http or an inner host, which must not get the key.
            params = dict(parse_qsl(urlsplit(str(page["next"])).query))

    def create_recording(self, platform: str = "desktop_audio") -> RemoteRecording:
        if platform not in PLATFORMS:
            platform = "desktop_audio"
        # Not idempotent: retry only what certainly created nothing (a 429, a host that never took
        # the connection). After a lost answer the caller looks for the orphan before creating
        # again (see SyncWorker).
        data = self._request("POST", self._base(), json={"platform": platform},
                             only_retry=(RateLimited, Unreachable)).json()
        return RemoteRecording.from_json(data)

    def get_recording(self, recording_id: str) -> RemoteRecording:
        return RemoteRecording.from_json(self._request("GET", self._detail(recording_id)).json())

    def update_recording(self, recording_id: str, fields: dict[str, Any]) -> RemoteRecording:
        body, problems = clean_patch(fields)
        for problem in problems:
            log.warning("recording %s: %s", recording_id, problem)
        data = self._request("PATCH", self._detail(recording_id), json=body).json()
        return RemoteRecording.from_json(data)

    def replace_recording(self, recording_id: str, fields: dict[str, Any]) -> RemoteRecording:
        body, problems = clean_patch(fields)
        body.setdefault("platform", "desktop_audio")
        for problem in problems:
            log.warning("recording %s: %s", recording_id, problem)
        return RemoteRecording.from_json(self._request("PUT", self._detail(recording_id), json=body).json())

    def delete_recording(self, recording_id: str) -> None:
        self._request("DELETE", self._detail(recording_id))

    def append_segments(self, recording_id: str, segments: Sequence[WireSegment], *,
                        on_unanswered: Callable[[], None] | None = None) -> RemoteRecording:
        """Append final segments; an empty batch is never sent, duplicates in a batch are dropped.

        An attempt left without an answer may still write late, after the ones that follow it:
        the server's append reads the list, then writes it back whole (``on_unanswered`` is told).
        """
        unique: list[WireSegment] = []
        seen: set[float] = set()
        for seg in segments:  # the first of a timestamp wins, as on the server
            if seg.timestamp_ms not in seen:
                seen.add(seg.timestamp_ms)
                unique.append(seg)
        if not unique:
            raise ValueError("append_segments needs at least one segment")
        payload = {"segments": [s.to_json() for s in unique]}
        data = self._request("POST", f"{self._detail(recording_id)}append_segments/", json=payload,
                             on_unanswered=on_unanswered).json()
        return RemoteRecording.from_json(data)

    def probe_write_scope(self) -> bool:
        """True if the key may write: PATCH a recording id that cannot exist (404 = allowed).

        Permission is checked before the lookup, so this changes nothing on the server.
        """
        try:
            self._request("PATCH", self._detail("00000000-0000-0000-0000-000000000000"), json={})
        except NotFound:
            return True
        except MissingScope:
            return False
        return True
