"""The local store: recordings, final segments and the sync outbox, in one SQLite file (WAL).

Every server-bound change is written in the same transaction as the data it carries:
- a new recording enqueues its ``create`` op (and a ``patch`` with its title);
- a final segment is stored with ``synced = 0``: unsynced segments *are* the append outbox;
- finishing a recording enqueues a ``patch`` that may only be sent once every segment stored
  before it has been appended (``after_segment``).
So a killed process loses nothing that was committed, and the sync worker resumes where it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

SCHEMA = """
-- details: notes, summary, extracted_tasks as last known here. settled_ms: while live, every line
-- starting before this audio time is stored (Store.set_settled). unanswered_at: when (epoch s) an
-- append that may still write late was left unanswered (Store.set_unanswered). Comments between columns would
-- break SQLite's ALTER TABLE DROP COLUMN, which the migration tests use.
CREATE TABLE IF NOT EXISTS recordings (
    id TEXT PRIMARY KEY,
    server_id TEXT,
    server_project TEXT,
    platform TEXT NOT NULL,
    title TEXT,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    completed_at TEXT,
    duration_s REAL,
    participants TEXT NOT NULL DEFAULT '[]',
    audio_path TEXT,
    owner_pid INTEGER,
    remote_state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT,
    error_message TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    settled_ms REAL,
    unanswered_at REAL
);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recording_id TEXT NOT NULL REFERENCES recordings(id),
    timestamp_ms REAL NOT NULL,
    end_ms REAL NOT NULL,
    source TEXT NOT NULL,
    speaker TEXT,
    text TEXT NOT NULL,
    confidence REAL,
    synced INTEGER NOT NULL DEFAULT 0,  -- 1: on the server (or never to be sent), 2: refused by it
    restored INTEGER NOT NULL DEFAULT 0,  -- 1: left out as echo, put back by the user
    UNIQUE (recording_id, timestamp_ms)
);
CREATE INDEX IF NOT EXISTS segments_unsynced ON segments (recording_id, synced, id);
-- Mic lines the echo check left out of the transcript (heard from the speakers): kept, never synced,
-- so a wrong call can be seen and undone.
CREATE TABLE IF NOT EXISTS echo_segments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recording_id TEXT NOT NULL REFERENCES recordings(id),
    timestamp_ms REAL NOT NULL,
    end_ms REAL NOT NULL,
    text TEXT NOT NULL,
    audio_share REAL,
    text_share REAL NOT NULL,
    speaker TEXT,
    confidence REAL
);
-- The transcript of a second, slower pass over the saved audio after the meeting: local only
-- (the server's transcript is append-only), shown and exported instead of the live one.
CREATE TABLE IF NOT EXISTS refined_segments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recording_id TEXT NOT NULL REFERENCES recordings(id),
    timestamp_ms REAL NOT NULL,
    end_ms REAL NOT NULL,
    source TEXT NOT NULL,
    speaker TEXT,
    text TEXT NOT NULL,
    confidence REAL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recording_id TEXT NOT NULL REFERENCES recordings(id),
    op TEXT NOT NULL CHECK (op IN ('create', 'patch', 'delete')),
    payload TEXT NOT NULL DEFAULT '{}',
    after_segment INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    attempted_at TEXT,
    last_error TEXT
);
"""

LIVE_STATUSES = ("recording", "processing")
DETAIL_FIELDS = ("notes", "summary", "extracted_tasks")
# Nudge for colliding start times: the server drops a segment whose timestamp it already has.
TIMESTAMP_NUDGE_MS = 0.001


def utc_now() -> str:
    return _iso(datetime.now(UTC))


def time_after(moment: str, seconds: float) -> str | None:
    """``seconds`` after the stored time ``moment`` (None if it cannot be read)."""
    parsed = _parse_time(moment)
    return None if parsed is None else _iso(parsed + timedelta(seconds=seconds))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class LocalRecording:
    id: str
    server_id: str | None
    server_project: str | None
    platform: str
    title: str | None
    status: str
    started_at: str
    completed_at: str | None
    duration_s: float | None
    participants: list[str]
    audio_path: str | None
    owner_pid: int | None
    remote_state: str
    last_error: str | None
    details: dict[str, Any] = field(default_factory=dict)  # notes, summary, extracted_tasks (last known)
    settled_ms: float | None = None  # see the column
    error_message: str | None = None  # what went wrong: a failed start, or a transcript with a gap

    @property
    def send_before_ms(self) -> float | None:
        """Only lines starting before this may go to the server now (None: all of them): a live
        recording's settled time. ``Store.pending_counts(sendable=True)`` applies the same rule."""
        return self.settled_ms if self.status in LIVE_STATUSES else None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> LocalRecording:
        return cls(
            id=row["id"], server_id=row["server_id"], server_project=row["server_project"],
            platform=row["platform"], title=row["title"],
            status=row["status"], started_at=row["started_at"], completed_at=row["completed_at"],
            duration_s=row["duration_s"], participants=json.loads(row["participants"]),
            audio_path=row["audio_path"], owner_pid=row["owner_pid"], remote_state=row["remote_state"],
            last_error=row["last_error"],
            details={k: v for k, v in json.loads(row["details"] or "{}").items() if k in DETAIL_FIELDS},
            settled_ms=row["settled_ms"], error_message=row["error_message"],
        )


@dataclass(frozen=True)
class StoredSegment:
    id: int
    recording_id: str
    timestamp_ms: float
    end_ms: float
    source: str
    speaker: str | None
    text: str
    confidence: float | None
    synced: bool


@dataclass(frozen=True)
class OutboxOp:
    id: int
    recording_id: str
    op: str
    payload: dict[str, Any]
    after_segment: int
    attempts: int
    attempted_at: str | None


@dataclass(frozen=True)
class EchoLine:
    """A mic line the echo check left out of the transcript."""

    id: int
    timestamp_ms: float
    text: str
    speaker: str | None


def lock_file(data_dir: Path, name: str) -> FileLock:
    """A lock in the data folder's ``locks/``: one process holds it at a time, and it is free once
    that process ends, however it ends."""
    (data_dir / "locks").mkdir(exist_ok=True)
    return FileLock(str(data_dir / "locks" / name))


def recording_lock(data_dir: Path, recording_id: str) -> FileLock:
    """Held by the process recording it (and by a recovery finishing it)."""
    return lock_file(data_dir, f"{recording_id}.lock")


def is_owned(data_dir: Path, recording_id: str) -> bool:
    lock = recording_lock(data_dir, recording_id)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def new_recording_id() -> str:
    return str(uuid.uuid4())


class Store:
    """Thread-safe access to the database (one connection, serialised by a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self._db.executescript(SCHEMA)
        with self._tx():  # the app and the CLI opening an older database at once: one migrates it
            self._migrate()

    def _migrate(self) -> None:
        """Columns added after a database was created (stores from earlier versions keep working)."""
        columns = {row["name"] for row in self._db.execute("PRAGMA table_info(recordings)")}
        if "server_project" not in columns:
            self._db.execute("ALTER TABLE recordings ADD COLUMN server_project TEXT")
        if "details" not in columns:
            self._db.execute("ALTER TABLE recordings ADD COLUMN details TEXT NOT NULL DEFAULT '{}'")
        if "settled_ms" not in columns:
            self._db.execute("ALTER TABLE recordings ADD COLUMN settled_ms REAL")
        if "unanswered_at" not in columns:
            self._db.execute("ALTER TABLE recordings ADD COLUMN unanswered_at REAL")
        if "attempted_at" not in {row["name"] for row in self._db.execute("PRAGMA table_info(outbox)")}:
            self._db.execute("ALTER TABLE outbox ADD COLUMN attempted_at TEXT")
        if "restored" not in {row["name"] for row in self._db.execute("PRAGMA table_info(segments)")}:
            self._db.execute("ALTER TABLE segments ADD COLUMN restored INTEGER NOT NULL DEFAULT 0")
        echo_columns = {row["name"] for row in self._db.execute("PRAGMA table_info(echo_segments)")}
        for name, kind in (("speaker", "TEXT"), ("confidence", "REAL")):
            if name not in echo_columns:
                self._db.execute(f"ALTER TABLE echo_segments ADD COLUMN {name} {kind}")

    def sending_lock(self, recording_id: str) -> FileLock:
        """Held by the process sending this recording to the server now (the tray's sync, a CLI
        ``record`` or ``sync``): the server's append has no lock of its own."""
        return lock_file(self.path.parent, f"{recording_id}.sending.lock")

    def check(self) -> str | None:
        """None if every page reads back consistently (SQLite's quick_check: 0.7 s for 300,000
        lines on 2 cores), else SQLite's first complaint. A page past repair raises DatabaseError."""
        with self._lock:
            first = self._db.execute("PRAGMA quick_check(1)").fetchone()[0]
        return None if first == "ok" else str(first)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                # SQLite rolls back by itself on some errors (a full disk, I/O): a second rollback
                # would raise "no transaction is active" in place of the error that says why.
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- recordings --------------------------------------------------------------------------

    def create_recording(
        self, *, platform: str, title: str | None, participants: list[str], audio_path: str | None,
        settled_ms: float | None = None, recording_id: str | None = None,
    ) -> LocalRecording:
        """``settled_ms``: 0 for a recording whose lines will come from more than one stream
        (see ``set_settled``); None sends lines as they are stored. ``recording_id``: one chosen
        (and locked) by the caller, else a new one."""
        rid = recording_id or new_recording_id()
        started = utc_now()
        with self._tx() as db:
            db.execute(
                "INSERT INTO recordings (id, platform, title, status, started_at, participants, audio_path,"
                " owner_pid, settled_ms) VALUES (?, ?, ?, 'recording', ?, ?, ?, ?, ?)",
                (rid, platform, title, started, json.dumps(participants), audio_path, os.getpid(), settled_ms),
            )
            db.execute("INSERT INTO outbox (recording_id, op) VALUES (?, 'create')", (rid,))
            # The create takes only the platform, and the server starts it when the create arrives:
            # for a recording made offline and synced later, that is the time of the sync.
            first_patch: dict[str, Any] = {"participants": participants, "started_at": started}
            if title:
                first_patch["meeting_title"] = title
            self._enqueue_patch(db, rid, first_patch)
        return self.get_recording(rid)

    def get_recording(self, recording_id: str) -> LocalRecording:
        with self._lock:
            row = self._db.execute("SELECT * FROM recordings WHERE id = ?", (recording_id,)).fetchone()
        if row is None:
            raise KeyError(recording_id)
        return LocalRecording.from_row(row)

    def list_recordings(self) -> list[LocalRecording]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM recordings ORDER BY started_at DESC").fetchall()
        return [LocalRecording.from_row(r) for r in rows]

    def finish_recording(
        self,
        recording_id: str,
        *,
        status: str,
        duration_s: float,
        title: str | None,
        participants: list[str],
        error_message: str | None = None,
        completed_at: str | None = None,
    ) -> None:
        """Mark the recording done locally and enqueue the finalising PATCH (after every segment).
        ``completed_at``: when it ended, if not now (a recording finished after its recorder died)."""
        completed = completed_at or utc_now()
        with self._tx() as db:
            db.execute(
                "UPDATE recordings SET status = ?, duration_s = ?, completed_at = ?, title = ?,"
                " participants = ?, error_message = ?, owner_pid = NULL WHERE id = ?",
                (status, duration_s, completed, title, json.dumps(participants), error_message, recording_id),
            )
            patch: dict[str, Any] = {
                "status": status,
                "duration_seconds": round(duration_s),
                "participants": participants,
                "completed_at": completed,
            }
            if title:
                patch["meeting_title"] = title
            if error_message:
                patch["error_message"] = error_message
            self._enqueue_patch(db, recording_id, patch)

    def set_audio_path(self, recording_id: str, path: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE recordings SET audio_path = ? WHERE id = ?", (path, recording_id))

    def set_settled(self, recording_id: str, settled_ms: float | None) -> None:
        """Every line of the live recording that starts before ``settled_ms`` is stored now: the
        lines before it may go to the server, in time order. A line decided late (a mic line
        waits for the echo check) is so never appended after a later line of the other side.
        None: no more lines will come from its recorder, send them all."""
        with self._tx() as db:
            db.execute("UPDATE recordings SET settled_ms = ? WHERE id = ?", (settled_ms, recording_id))

    def set_status(self, recording_id: str, status: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE recordings SET status = ? WHERE id = ?", (status, recording_id))
            self._enqueue_patch(db, recording_id, {"status": status})

    def _enqueue_patch(self, db: sqlite3.Connection, recording_id: str, patch: dict[str, Any]) -> None:
        last = db.execute(
            "SELECT COALESCE(MAX(id), 0) FROM segments WHERE recording_id = ?", (recording_id,)
        ).fetchone()[0]
        db.execute(
            "INSERT INTO outbox (recording_id, op, payload, after_segment) VALUES (?, 'patch', ?, ?)",
            (recording_id, json.dumps(patch), last),
        )

    def edit_recording(self, recording_id: str, fields: dict[str, Any]) -> None:
        """A user's edit (title, participants, platform, notes, summary, tasks, ...): kept locally
        where the store has the field, and queued as a PATCH like every other server-bound change."""
        with self._tx() as db:
            if "meeting_title" in fields:
                db.execute("UPDATE recordings SET title = ? WHERE id = ?", (fields["meeting_title"], recording_id))
            if "participants" in fields:
                db.execute("UPDATE recordings SET participants = ? WHERE id = ?",
                           (json.dumps(list(fields["participants"])), recording_id))
            if "platform" in fields:
                db.execute("UPDATE recordings SET platform = ? WHERE id = ?", (fields["platform"], recording_id))
            self._merge_details(db, recording_id, fields, edited=True)
            self._enqueue_patch(db, recording_id, dict(fields))

    def remember_details(self, recording_id: str, fields: dict[str, Any], server_updated_at: str | None) -> None:
        """Keep the server's notes, summary and tasks here too, for reading them offline later.
        A field edited here after that server copy was last updated keeps the edit (the browser
        may hold a copy fetched before the edit); a newer server copy wins."""
        with self._tx() as db:
            self._merge_details(db, recording_id, fields, edited=False, server_updated_at=server_updated_at)

    @staticmethod
    def _merge_details(db: sqlite3.Connection, recording_id: str, fields: dict[str, Any], *, edited: bool,
                       server_updated_at: str | None = None) -> None:
        row = db.execute("SELECT details FROM recordings WHERE id = ?", (recording_id,)).fetchone()
        if row is None:
            return
        details = json.loads(row["details"] or "{}")
        edited_at: dict[str, str] = details.get("_edited_at", {})
        server_time = _parse_time(server_updated_at)
        new = {}
        for k in DETAIL_FIELDS:
            if k not in fields:
                continue
            mine = _parse_time(edited_at.get(k))
            if not edited and mine is not None and (server_time is None or server_time < mine):
                continue  # our edit is newer than this copy of the server's
            new[k] = fields[k]
            if edited:
                edited_at[k] = utc_now()
            else:
                edited_at.pop(k, None)
        if not new:
            return
        details.update(new)
        details["_edited_at"] = edited_at
        db.execute("UPDATE recordings SET details = ? WHERE id = ?", (json.dumps(details), recording_id))

    def request_delete(self, recording_id: str) -> bool:
        """The user deleted it: nothing else is sent, and the server copy goes too (if there is one).

        False if the server cannot hold a copy (never created there): removed here at once.
        """
        with self._tx() as db:
            # A create sent whose answer never came may have made a server copy nobody knows the id
            # of yet: the delete keeps when it was sent, for the sync to find that copy and delete it.
            row = db.execute("SELECT attempted_at FROM outbox WHERE recording_id = ? AND op = 'create'"
                             " AND attempted_at IS NOT NULL", (recording_id,)).fetchone()
            payload = {"create_attempted_at": row[0]} if row else {}
            known = db.execute("SELECT server_id IS NOT NULL FROM recordings WHERE id = ?", (recording_id,)).fetchone()
            if not payload and not (known and known[0]):
                self._remove(db, recording_id)
                removed = True
            else:
                db.execute("DELETE FROM outbox WHERE recording_id = ?", (recording_id,))
                db.execute("UPDATE segments SET synced = 1 WHERE recording_id = ?", (recording_id,))
                db.execute("UPDATE recordings SET remote_state = 'deleting' WHERE id = ?", (recording_id,))
                db.execute("INSERT INTO outbox (recording_id, op, payload) VALUES (?, 'delete', ?)",
                           (recording_id, json.dumps(payload)))
                removed = False
        if removed:
            self._remove_lock_files(recording_id)
        return not removed

    def remove_recording(self, recording_id: str) -> None:
        with self._tx() as db:
            self._remove(db, recording_id)
        self._remove_lock_files(recording_id)

    @staticmethod
    def _remove(db: sqlite3.Connection, recording_id: str) -> None:
        for table in ("outbox", "segments", "refined_segments", "echo_segments"):
            db.execute(f"DELETE FROM {table} WHERE recording_id = ?", (recording_id,))
        db.execute("DELETE FROM recordings WHERE id = ?", (recording_id,))

    def _remove_lock_files(self, recording_id: str) -> None:
        """Its recording and sending locks (empty files: released, they stay on POSIX). Nobody
        takes them for a recording that is gone; one held now stays held on its open file."""
        for lock in (recording_lock(self.path.parent, recording_id), self.sending_lock(recording_id)):
            with contextlib.suppress(OSError):
                Path(lock.lock_file).unlink()

    # -- segments ----------------------------------------------------------------------------

    def add_segment(
        self,
        recording_id: str,
        *,
        start_ms: float,
        end_ms: float,
        source: str,
        speaker: str | None,
        text: str,
        confidence: float | None,
    ) -> StoredSegment:
        """Store a final segment under a timestamp unique within the recording."""
        with self._tx() as db:
            return self._insert_segment(db, recording_id, start_ms, end_ms, source, speaker, text, confidence)

    @staticmethod
    def _insert_segment(db: sqlite3.Connection, recording_id: str, start_ms: float, end_ms: float, source: str,
                        speaker: str | None, text: str, confidence: float | None, *, restored: bool = False
                        ) -> StoredSegment:
        ts = round(float(start_ms), 3)
        while db.execute(
            "SELECT 1 FROM segments WHERE recording_id = ? AND timestamp_ms = ?", (recording_id, ts)
        ).fetchone():
            ts = round(ts + TIMESTAMP_NUDGE_MS, 3)
        cur = db.execute(
            "INSERT INTO segments (recording_id, timestamp_ms, end_ms, source, speaker, text, confidence, restored)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (recording_id, ts, end_ms, source, speaker, text, confidence, int(restored)),
        )
        return StoredSegment(int(cur.lastrowid or 0), recording_id, ts, end_ms, source, speaker, text, confidence,
                             False)

    def segments(self, recording_id: str) -> list[StoredSegment]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM segments WHERE recording_id = ? ORDER BY timestamp_ms", (recording_id,)
            ).fetchall()
        return [_segment(r) for r in rows]

    def transcripts_containing(self, text: str) -> set[str]:
        """Ids of the recordings whose transcript (its lines in time order, joined by spaces, as
        the server's ``transcript_text``) contains ``text``, case-insensitively. Plain rows, no
        segment objects: the browser asks on every refresh, once per stored line while recording."""
        needle = text.lower()
        with self._lock:
            cur = self._db.cursor()
            cur.row_factory = None
            rows = cur.execute("SELECT recording_id, text FROM segments ORDER BY recording_id, timestamp_ms").fetchall()
        return {rid for rid, lines in groupby(rows, key=itemgetter(0))
                if needle in " ".join(line for _, line in lines).lower()}

    def add_echo_segment(self, recording_id: str, *, start_ms: float, end_ms: float, text: str, speaker: str | None,
                         confidence: float | None, audio_share: float | None, text_share: float) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO echo_segments (recording_id, timestamp_ms, end_ms, text, speaker, confidence, "
                       "audio_share, text_share) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (recording_id, start_ms, end_ms, text, speaker, confidence, audio_share, text_share))

    def echo_segments(self, recording_id: str) -> list[EchoLine]:
        """The mic lines left out as echo, in time order."""
        with self._lock:
            rows = self._db.execute("SELECT id, timestamp_ms, text, speaker FROM echo_segments "
                                    "WHERE recording_id = ? ORDER BY timestamp_ms, id", (recording_id,)).fetchall()
        return [EchoLine(r["id"], r["timestamp_ms"], r["text"], r["speaker"]) for r in rows]

    def decided_until_ms(self, recording_id: str, source: str) -> float:
        """Where the last line heard from ``source`` ends (the mic's echo lines count): audio
        after it was never transcribed, if the process died there."""
        with self._lock:
            row = self._db.execute(
                "SELECT MAX(end_ms) FROM (SELECT end_ms FROM segments WHERE recording_id = ? AND source = ? "
                "UNION ALL SELECT end_ms FROM echo_segments WHERE recording_id = ? AND ? = 'mic')",
                (recording_id, source, recording_id, source)).fetchone()
        return float(row[0] or 0.0)

    def restore_echo(self, echo_id: int, speaker: str) -> StoredSegment:
        """Put a line the echo check left out back into the transcript (and so into the sync
        queue), in one transaction: it is in exactly one of the two tables, whatever happens.
        ``speaker`` names it when the line was stored without one (before speakers were kept)."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM echo_segments WHERE id = ?", (echo_id,)).fetchone()
            if row is None:
                raise KeyError(f"no echo line {echo_id}")
            db.execute("DELETE FROM echo_segments WHERE id = ?", (echo_id,))
            return self._insert_segment(db, row["recording_id"], row["timestamp_ms"], row["end_ms"], "mic",
                                        row["speaker"] or speaker, row["text"], row["confidence"], restored=True)

    def restore_echoes(self, echo_ids: list[int], speaker: str) -> list[int]:
        """``restore_echo`` for each line, each in its own transaction; returns the ids that were
        no longer there (put back meanwhile by another window or the CLI)."""
        gone: list[int] = []
        for echo_id in dict.fromkeys(echo_ids):
            try:
                self.restore_echo(echo_id, speaker)
            except KeyError:
                gone.append(echo_id)
        return gone

    def restored_segments(self, recording_id: str) -> list[StoredSegment]:
        """The mic lines the user put back after the echo check left them out."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM segments WHERE recording_id = ? AND restored = 1 ORDER BY timestamp_ms", (recording_id,)
            ).fetchall()
        return [_segment(r) for r in rows]

    def replace_refined(self, recording_id: str, segments: list[StoredSegment]) -> None:
        """The refined transcript of a recording, replacing an earlier one (atomically)."""
        with self._tx() as db:
            db.execute("DELETE FROM refined_segments WHERE recording_id = ?", (recording_id,))
            db.executemany(
                "INSERT INTO refined_segments (recording_id, timestamp_ms, end_ms, source, speaker, text, confidence)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(recording_id, s.timestamp_ms, s.end_ms, s.source, s.speaker, s.text, s.confidence)
                 for s in segments],
            )

    def transcript(self, recording_id: str, *, live: bool = False) -> list[StoredSegment]:
        """The transcript shown and exported: the refined one if there is one (unless ``live``:
        the one appended to the server), else the live one."""
        return (not live and self.refined_segments(recording_id)) or self.segments(recording_id)

    def has_refined(self, recording_id: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM refined_segments WHERE recording_id = ? LIMIT 1",
                                   (recording_id,)).fetchone()
        return row is not None

    def refined_segments(self, recording_id: str) -> list[StoredSegment]:
        """The refined transcript, or [] when none was made."""
        with self._lock:
            rows = self._db.execute(
                "SELECT *, 1 AS synced FROM refined_segments WHERE recording_id = ? ORDER BY timestamp_ms",
                (recording_id,),
            ).fetchall()
        return [_segment(r) for r in rows]

    def unsynced_segments(self, recording_id: str, limit: int, *, before_ms: float | None = None
                          ) -> list[StoredSegment]:
        """Lines not yet on the server, in time order; with ``before_ms``, only those starting
        before it."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM segments WHERE recording_id = ? AND synced = 0 AND timestamp_ms < ?"
                " ORDER BY timestamp_ms LIMIT ?",
                (recording_id, float("inf") if before_ms is None else before_ms, limit),
            ).fetchall()
        return [_segment(r) for r in rows]

    def first_unsynced_id(self, recording_id: str) -> int | None:
        """The oldest stored line not yet on the server (a PATCH waits for the lines before it)."""
        with self._lock:
            row = self._db.execute("SELECT MIN(id) FROM segments WHERE recording_id = ? AND synced = 0",
                                   (recording_id,)).fetchone()
        return None if row[0] is None else int(row[0])

    def mark_synced(self, segment_ids: list[int], *, refused: bool = False) -> None:
        """Sent (or, ``refused``, rejected by the server: never sent again, never expected there)."""
        with self._tx() as db:
            db.executemany("UPDATE segments SET synced = ? WHERE id = ?",
                           [(2 if refused else 1, i) for i in segment_ids])

    def sent_stamps(self, recording_id: str) -> dict[float, int]:
        """Timestamp -> id of each line the server took (by this process or another)."""
        with self._lock:
            rows = self._db.execute("SELECT timestamp_ms, id FROM segments WHERE recording_id = ? AND synced = 1",
                                    (recording_id,)).fetchall()
        return {float(r[0]): int(r[1]) for r in rows}

    def set_unanswered(self, recording_id: str, at: float) -> None:
        """An append of the recording got no answer at ``at`` (epoch s) and may still write late:
        kept here so the last look at the server happens even if this process ends first."""
        with self._tx() as db:
            db.execute("UPDATE recordings SET unanswered_at = MAX(COALESCE(unanswered_at, 0), ?) WHERE id = ?",
                       (at, recording_id))

    def clear_unanswered(self, recording_id: str, up_to: float) -> None:
        """The last look after the unanswered append at ``up_to`` is done (a later one stays)."""
        with self._tx() as db:
            db.execute("UPDATE recordings SET unanswered_at = NULL WHERE id = ? AND unanswered_at <= ?",
                       (recording_id, up_to))

    def unanswered(self) -> dict[str, float]:
        """Recording id -> when its latest unanswered append was (epoch s), by any process."""
        with self._lock:
            rows = self._db.execute("SELECT id, unanswered_at FROM recordings WHERE unanswered_at IS NOT NULL"
                                    ).fetchall()
        return {str(r[0]): float(r[1]) for r in rows}

    def mark_unsynced(self, segment_ids: list[int]) -> None:
        """Lines the server took but lost again: they go again with the next batch."""
        with self._tx() as db:
            db.executemany("UPDATE segments SET synced = 0 WHERE id = ? AND synced = 1",
                           [(i,) for i in segment_ids])

    # -- outbox ------------------------------------------------------------------------------

    def pending_ops(self, recording_id: str) -> list[OutboxOp]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM outbox WHERE recording_id = ? ORDER BY id", (recording_id,)
            ).fetchall()
        return [
            OutboxOp(r["id"], r["recording_id"], r["op"], json.loads(r["payload"]), r["after_segment"],
                     r["attempts"], r["attempted_at"])
            for r in rows
        ]

    def mark_attempt(self, op_id: int) -> str | None:
        """Committed *before* a non-idempotent request is sent, so a crash leaves a trace of it.
        Returns the time marked, or None if an earlier attempt's mark stays."""
        stamp = utc_now()
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, attempted_at = COALESCE(attempted_at, ?) WHERE id = ?",
                (stamp, op_id),
            )
            row = db.execute("SELECT attempted_at FROM outbox WHERE id = ?", (op_id,)).fetchone()
        return stamp if row and row[0] == stamp else None

    def forget_attempt(self, recording_id: str, op_id: int, stamp: str) -> None:
        """The request ``mark_attempt`` marked at ``stamp`` certainly never reached the server.
        Only that mark goes (not one another process made since), also from a delete requested
        meanwhile, which would otherwise look for a server copy that cannot exist."""
        with self._tx() as db:
            db.execute("UPDATE outbox SET attempted_at = NULL WHERE id = ? AND attempted_at = ?", (op_id, stamp))
            for row_id, payload in db.execute("SELECT id, payload FROM outbox WHERE recording_id = ? AND op = 'delete'",
                                              (recording_id,)).fetchall():
                data = json.loads(payload or "{}")
                if data.pop("create_attempted_at", None) == stamp:
                    db.execute("UPDATE outbox SET payload = ? WHERE id = ?", (json.dumps(data), row_id))

    def known_server_ids(self) -> set[str]:
        with self._lock:
            rows = self._db.execute("SELECT server_id FROM recordings WHERE server_id IS NOT NULL").fetchall()
        return {r[0] for r in rows}

    def complete_ops(self, op_ids: list[int]) -> None:
        with self._tx() as db:
            db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in op_ids])

    def replace_op_payload(self, op_id: int, payload: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET payload = ? WHERE id = ?", (json.dumps(payload), op_id))

    def set_server_id(self, recording_id: str, server_id: str, project: str, create_op_id: int) -> bool:
        """False if the recording has a server id already (another process created it first)."""
        with self._tx() as db:
            taken = db.execute(
                "UPDATE recordings SET server_id = ?, server_project = ? WHERE id = ? AND server_id IS NULL",
                (server_id, project, recording_id),
            ).rowcount
            db.execute("DELETE FROM outbox WHERE id = ?", (create_op_id,))
        return taken == 1

    def set_remote_state(self, recording_id: str, state: str, error: str | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE recordings SET remote_state = ?, last_error = ? WHERE id = ?", (state, error, recording_id)
            )

    def forget_server_work(self, recording_id: str) -> None:
        """The recording is gone on the server: drop its queued ops, keep every local byte."""
        with self._tx() as db:
            db.execute("DELETE FROM outbox WHERE recording_id = ?", (recording_id,))
            db.execute("UPDATE segments SET synced = 1 WHERE recording_id = ?", (recording_id,))

    def pending_counts(self, *, sendable: bool = False) -> dict[str, tuple[int, int]]:
        """recording id -> (queued ops, unsynced segments), only for recordings with work left;
        ``sendable``: without the lines of a live recording after its settled time."""
        live = ", ".join(f"'{status}'" for status in LIVE_STATUSES)
        held_back = (f"AND (r.settled_ms IS NULL OR r.status NOT IN ({live}) OR s.timestamp_ms < r.settled_ms)"
                     if sendable else "")
        with self._lock:
            ops = dict(self._db.execute(
                "SELECT recording_id, COUNT(*) FROM outbox GROUP BY recording_id").fetchall())
            segs = dict(self._db.execute(
                "SELECT s.recording_id, COUNT(*) FROM segments s JOIN recordings r ON r.id = s.recording_id"
                f" WHERE s.synced = 0 {held_back} GROUP BY s.recording_id").fetchall())
        return {rid: (ops.get(rid, 0), segs.get(rid, 0)) for rid in set(ops) | set(segs)}


def _segment(r: sqlite3.Row) -> StoredSegment:
    return StoredSegment(r["id"], r["recording_id"], r["timestamp_ms"], r["end_ms"], r["source"], r["speaker"],
                         r["text"], r["confidence"], bool(r["synced"]))


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
