"""Wire models of the ``desktop_recordings`` API and client-side validation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlparse

Platform = Literal["zoom", "teams", "meet", "desktop_audio", "slack"]
PLATFORMS: tuple[str, ...] = ("desktop_audio", "zoom", "teams", "meet", "slack")
Status = Literal["recording", "uploading", "processing", "ready", "error"]
STATUSES: tuple[str, ...] = ("recording", "uploading", "processing", "ready", "error")

TITLE_MAX = 255
URL_MAX = 200
INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class WireSegment:
    """One final transcript segment as sent to ``append_segments``."""

    timestamp_ms: float
    speaker: str | None
    text: str
    confidence: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp_ms,
            "speaker": self.speaker,
            "text": self.text,
            "confidence": self.confidence,
            "is_final": True,
        }


@dataclass(frozen=True)
class RemoteRecording:
    id: str
    platform: str
    status: str
    meeting_title: str | None
    duration_seconds: int | None
    participants: list[str]
    transcript_text: str
    transcript_segments: list[dict[str, Any]]
    started_at: str | None
    completed_at: str | None
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RemoteRecording:
        return cls(
            id=str(data["id"]),
            platform=str(data.get("platform") or "desktop_audio"),
            status=str(data.get("status") or "recording"),
            meeting_title=data.get("meeting_title"),
            duration_seconds=data.get("duration_seconds"),
            participants=list(data.get("participants") or []),
            transcript_text=str(data.get("transcript_text") or ""),
            transcript_segments=list(data.get("transcript_segments") or []),
            started_at=data.get("started_at"),
            completed_at=data.get("completed_at"),
            raw=data,
        )


def _valid_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc) and len(value) <= URL_MAX


def clean_patch(fields: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Make a PATCH body the server will accept; returns (body, problems fixed or dropped).

    One bad field must never block a whole PATCH: titles are truncated, bad URLs and
    non-integral durations are fixed or dropped, participants become unique strings.
    """
    body: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in fields.items():
        if key == "meeting_title" and isinstance(value, str) and len(value) > TITLE_MAX:
            problems.append(f"meeting_title truncated to {TITLE_MAX} characters")
            value = value[:TITLE_MAX]
        elif key in ("meeting_url", "video_url") and value is not None and not _valid_url(str(value)):
            problems.append(f"{key} dropped: not a valid URL of at most {URL_MAX} characters")
            continue
        elif key == "duration_seconds" and value is not None:
            if not isinstance(value, int | float) or not math.isfinite(value):
                problems.append("duration_seconds dropped: not a number")
                continue
            value = max(0, min(INT32_MAX, round(value)))
        elif key == "participants":
            value = list(dict.fromkeys(str(p).strip() for p in (value or []) if str(p).strip()))
        elif key == "status" and value not in STATUSES:
            problems.append(f"status {value!r} dropped: not one of {', '.join(STATUSES)}")
            continue
        elif key == "platform" and value not in PLATFORMS:
            problems.append(f"platform {value!r} dropped: not one of {', '.join(PLATFORMS)}")
            continue
        body[key] = value
    return body, problems
