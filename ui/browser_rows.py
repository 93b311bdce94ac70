"""What the recordings browser shows, computed without Qt: merged rows, sync labels, transcripts.

A row is a local recording, a server recording, or both (``LocalRecording.server_id ==
RemoteRecording.id``). The local copy wins for what the store holds (title, participants,
status); the server copy, with the user's queued PATCHes laid over it, for the rest (notes,
summary, tasks).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.models import RemoteRecording
from desktop_recorder.store import LocalRecording, OutboxOp
from transcription.formats import TranscriptLine, clock

log = logging.getLogger(__name__)

# A server segment's end is the next one's start, at most this long (the server stores no end).
MAX_REMOTE_CUE_MS = 10_000.0


@dataclass(frozen=True)
class Filters:
    """The server's list filters, applied the same way to local recordings."""

    search: str = ""
    status: str = ""
    platform: str = ""

    def as_query(self) -> dict[str, str | None]:
        return {"search": self.search or None, "status": self.status or None, "platform": self.platform or None}

    def matches(self, rec: LocalRecording, found: set[str] | None) -> bool:
        """``found``: the recordings whose transcript contains the search (None: no search)."""
        if self.status and rec.status != self.status:
            return False
        if self.platform and rec.platform != self.platform:
            return False
        return found is None or rec.id in found


@dataclass(frozen=True)
class BrowserRow:
    local: LocalRecording | None
    remote: RemoteRecording | None
    pending: tuple[int, int] = (0, 0)  # queued operations, unsynced segments

    @property
    def key(self) -> str:
        if self.local is not None:
            return self.local.id
        assert self.remote is not None
        return f"server:{self.remote.id}"

    @property
    def started_at(self) -> str | None:
        return self.local.started_at if self.local else self.remote.started_at if self.remote else None

    @property
    def title(self) -> str | None:
        return self.local.title if self.local else self.remote.meeting_title if self.remote else None

    @property
    def duration_s(self) -> float | None:
        if self.local and self.local.duration_s is not None:
            return self.local.duration_s
        return float(self.remote.duration_seconds) if self.remote and self.remote.duration_seconds else None

    @property
    def status(self) -> str:
        return self.local.status if self.local else self.remote.status if self.remote else ""

    @property
    def platform(self) -> str:
        return self.local.platform if self.local else self.remote.platform if self.remote else ""

    @property
    def participants(self) -> list[str]:
        return self.local.participants if self.local else self.remote.participants if self.remote else []

    @property
    def error_message(self) -> str | None:
        """What went wrong with the recording (a failed start, a transcript with a gap)."""
        if self.local:
            return self.local.error_message
        if self.remote:
            return str(self.remote.raw.get("error_message") or "") or None
        return None

    @property
    def sync_label(self) -> str:
        return sync_label(self.local, self.pending) if self.local else "server only"


def sync_label(rec: LocalRecording, pending: tuple[int, int]) -> str:
    state = rec.remote_state
    if state == "deleted_on_server":
        return "deleted on server"
    if state == "deleting":
        return "deleting…"
    if state == "error":
        return f"error: {rec.last_error or 'unknown'}"
    if rec.server_id is None:
        return "local only"
    waiting = pending[0] + pending[1]
    return f"pending ({waiting})" if waiting else "synced"


def merge_rows(
    local: Sequence[LocalRecording],
    remote: Sequence[RemoteRecording],
    pending: dict[str, tuple[int, int]],
    local_matches: Iterable[str],
) -> list[BrowserRow]:
    """Every loaded server recording (with its local copy) plus the local ones in ``local_matches``
    (those passing the filters) not shown yet; newest first. Recordings being deleted are left out."""
    by_server_id = {r.server_id: r for r in local if r.server_id}
    going = {r.id for r in by_server_id.values() if r.remote_state == "deleting"}
    rows: list[BrowserRow] = []
    shown: set[str] = set()
    for rem in remote:
        loc = by_server_id.get(rem.id)
        if loc is not None and loc.id in going:
            continue
        if loc is not None:
            shown.add(loc.id)
        rows.append(BrowserRow(loc, rem, pending.get(loc.id, (0, 0)) if loc else (0, 0)))
    for loc in local:
        if loc.id in shown or loc.remote_state == "deleting":
            continue
        rows.append(BrowserRow(loc, None, pending.get(loc.id, (0, 0))))
    keep = set(local_matches)
    rows = [r for r in rows if r.remote is not None or r.key in keep]
    rows.sort(key=lambda r: _sort_time(r.started_at), reverse=True)
    return rows


def _sort_time(value: str | None) -> float:
    parsed = parse_time(value)
    return parsed.timestamp() if parsed else 0.0


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        log.warning("unparseable time %r", value)
        return None


def format_date(value: str | None) -> str:
    parsed = parse_time(value)
    return parsed.astimezone().strftime("%Y-%m-%d %H:%M") if parsed else "—"


def format_duration(seconds: float | None) -> str:
    return clock(seconds * 1000) if seconds is not None else "—"


# -- transcript ---------------------------------------------------------------------------------


def remote_lines(segments: Sequence[dict[str, Any]]) -> list[TranscriptLine]:
    """Server segments carry only a start (ms, maybe null): the end is the next start, capped."""
    starts: list[float] = []
    last = 0.0
    for seg in segments:
        ts = seg.get("timestamp")
        last = float(ts) if isinstance(ts, int | float) else last
        starts.append(last)
    lines = []
    for i, seg in enumerate(segments):
        start = starts[i]
        following = starts[i + 1] if i + 1 < len(starts) else start + MAX_REMOTE_CUE_MS
        end = min(max(following, start), start + MAX_REMOTE_CUE_MS)
        lines.append(TranscriptLine(start, end, seg.get("speaker"), str(seg.get("text") or "")))
    return lines


# -- editable fields ----------------------------------------------------------------------------

EDITABLE = ("meeting_title", "participants", "notes", "summary", "extracted_tasks")


def current_fields(row: BrowserRow, queued: Sequence[OutboxOp] = ()) -> dict[str, Any]:
    """The editable fields as the user last set them: server values, then queued PATCHes in order,
    then what the local store itself holds."""
    values: dict[str, Any] = {"meeting_title": None, "participants": [], "notes": None, "summary": None,
                              "extracted_tasks": []}
    if row.local is not None:  # as last known here: what shows offline
        values.update(row.local.details)
    if row.remote is not None:
        values.update({k: row.remote.raw.get(k) for k in EDITABLE if k in row.remote.raw})
    for op in queued:
        if op.op == "patch":
            values.update({k: v for k, v in op.payload.items() if k in EDITABLE})
    if row.local is not None:
        values["meeting_title"] = row.local.title
        values["participants"] = list(row.local.participants)
    values["participants"] = list(values["participants"] or [])
    values["extracted_tasks"] = list(values["extracted_tasks"] or [])
    return values


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in after.items() if k in EDITABLE and before.get(k) != v}


def parse_participants(text: str) -> list[str]:
    return list(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))


def tasks_to_text(tasks: Sequence[Any]) -> str:
    return "\n".join(_task_title(t) for t in tasks if _task_title(t))


def parse_tasks(text: str, previous: Sequence[Any]) -> list[dict[str, Any]]:
    """One task per line; a line naming an existing task keeps its description and assignee."""
    known = {_task_title(t): t for t in previous if isinstance(t, dict)}
    tasks = []
    for line in text.splitlines():
        title = line.strip().lstrip("•-* ").strip()
        if title:
            tasks.append(dict(known.get(title) or {"title": title}))
    return tasks


def _task_title(task: Any) -> str:
    return str(task.get("title") or "").strip() if isinstance(task, dict) else str(task).strip()
