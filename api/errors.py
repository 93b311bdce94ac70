"""Typed errors of the PostHog client.

Every error carries a message a user can act on. Nothing above ``api/`` catches ``httpx``
exceptions: the client translates them into these.
"""

from __future__ import annotations


class ApiError(Exception):
    """Base class: any failure talking to PostHog."""

    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NetworkError(ApiError):
    """The server could not be reached or did not answer in time."""

    retryable = True


class Unreachable(NetworkError):
    """Nothing answered at the host (connection refused, no route, name not resolved, connect
    timeout): the request was never sent. It says nothing of one recording: every request to
    that host would fail alike until the network or the server is back."""


class ServerUnavailable(ApiError):
    """5xx (or 408): the server is there but failed; worth retrying later."""

    retryable = True

    def __init__(self, message: str, *, status: int | None = None, retry_after_s: float | None = None):
        super().__init__(message, status=status)
        self.retry_after_s = retry_after_s


class RateLimited(ApiError):
    """429: wait ``retry_after_s`` seconds (from ``Retry-After`` or the detail text)."""

    retryable = True

    def __init__(self, message: str, *, retry_after_s: float | None) -> None:
        super().__init__(message, status=429)
        self.retry_after_s = retry_after_s


class CannotCreateRecordings(ApiError):
    """Bare 503 on create: this (self-hosted) instance has no Recall.ai key configured.

    Retrying soon will not help; the recording stays local until the instance is fixed.
    """


class CredentialsRejected(ApiError):
    """401/403 authentication failure: the personal API key is missing, invalid or revoked."""


class MissingScope(ApiError):
    """403 permission denied: the key lacks ``scope``."""

    def __init__(self, message: str, *, scope: str | None) -> None:
        super().__init__(message, status=403)
        self.scope = scope


class NotFound(ApiError):
    """404: the recording (or project) does not exist on the server."""


class ProjectNotFound(ApiError):
    """404 "Project not found.": the project id is wrong (a setting to fix, not a deleted recording)."""


class ValidationFailed(ApiError):
    """400: the server rejected a field (``attr``, e.g. ``meeting_title`` or ``segments__0__text``)."""

    def __init__(self, message: str, *, attr: str | None, code: str | None) -> None:
        super().__init__(message, status=400)
        self.attr = attr
        self.code = code


class InvalidHost(ApiError):
    """The configured host is not an https:// URL (only localhost may use http://)."""
