"""Drains the store's outbox to PostHog, in order per recording, one request in flight.

Per recording: ``create`` first (until the server id is known nothing else can go), then the
unsynced segments in batches, then the queued PATCHes whose segments have all been appended
(consecutive ones merged into one request). Live recordings batch segments (a dozen, or a few
seconds, or what the recorder stored before a pause); finished ones flush everything. Failures
never lose data: the work stays queued.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from filelock import Timeout

from api.client import PostHogClient
from api.errors import (
    ApiError,
    CannotCreateRecordings,
    CredentialsRejected,
    MissingScope,
    NetworkError,
    NotFound,
    ProjectNotFound,
    RateLimited,
    ServerUnavailable,
    Unreachable,
    ValidationFailed,
)
from api.models import RemoteRecording, WireSegment
from desktop_recorder.store import LIVE_STATUSES, LocalRecording, OutboxOp, Store, StoredSegment

log = logging.getLogger(__name__)

BATCH_MAX_SEGMENTS = 12
BATCH_MAX_AGE_S = 3.0
# At a pause a live recording's lines go at once, but never sooner than this after its previous
# append: at most 1,800 appends an hour, well below the 4,800 an API key may make.
PAUSE_MIN_GAP_S = 2.0
FLUSH_MAX_SEGMENTS = 100
RETRY_CAP_S = 120.0
CANNOT_CREATE_RETRY_S = 600.0
ORPHAN_WINDOW_S = 120.0
# An append left without an answer (a read timeout, a dropped connection, a gateway's 504) may
# still be running on the server. Its write may land after appends that follow it, and it writes
# back the list it read before them, so the lines they added are lost there. For this long after
# such an append, every answer is checked for every line sent, and the recording is read once at
# the end; a lost line is sent again (once).
LATE_WRITE_WINDOW_S = 120.0
UNREACHABLE_PASSES = 2


@dataclass
class SyncStatus:
    """What the UI/CLI shows: ``blocked`` needs the user (credentials, scope)."""

    blocked: str | None = None
    needs_user: str | None = None  # not stopped, but only the user can fix it (e.g. server can't create)
    last_error: str | None = None
    backoff_until: dict[str, float] = field(default_factory=dict)


class SyncWorker:
    def __init__(
        self,
        store: Store,
        client: PostHogClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[SyncStatus], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.client = client
        self.status = SyncStatus()
        self._clock = clock
        self._sleep = sleep
        self._on_change = on_change
        self._failures: dict[str, int] = {}
        self._timed_out: set[str] = set()  # recordings whose last request got no answer in time
        self._warned: dict[str, str] = {}  # the failure last logged as a warning, per recording
        # Passes in a row that could reach no one: the host's back-off grows with them, and a
        # drain gives up after UNREACHABLE_PASSES (a blip at the end of a meeting gets a second try).
        self._unreachable_passes = 0
        self._pinned = False
        self._unlocked = False  # said once: no sending lock could be made
        self._me: int | None = None  # the key's user id (-1: the server did not say)
        self._first_unsynced_seen: dict[str, float] = {}
        # Pauses told per recording (``at_pause``; only the recorder's thread counts them up), those
        # a pass has sent all lines after, and when each recording's lines were last appended.
        self._pauses: dict[str, int] = {}
        self._pauses_done: dict[str, int] = {}
        self._appended_at: dict[str, float] = {}
        # Unanswered appends that may still write late, per recording: when, on ``clock`` and in
        # epoch seconds (as the store keeps them for other processes and later runs); and the
        # lines sent again since (gone again without another such append, someone took them off
        # the server: left so).
        self._unanswered_at: dict[str, float] = {}
        self._unanswered_wall: dict[str, float] = {}
        self._resent: dict[str, set[int]] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- thread ------------------------------------------------------------------------------

    def start(self) -> None:
        # Stopping also ends the client's retries and their waits: otherwise a stop waited for
        # every retry of a request to a hanging server (``drain`` puts its own in for its run).
        self.client.keep_retrying = lambda: not self._stop.is_set()
        self.client.stop_waiting = self._stop
        self._thread = threading.Thread(target=self._run, name="sync-worker", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def at_pause(self, rid: str) -> None:
        """The recorder of live recording ``rid`` has paused with every line heard stored: they
        go now, not when their batch is due (no line is coming soon to join them)."""
        self._pauses[rid] = self._pauses.get(rid, 0) + 1
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        store_failed = False  # said once until a pass gets through again
        while not self._stop.is_set():
            try:
                self.sync_pass()
                store_failed = False
            except sqlite3.OperationalError as exc:  # a full disk: what the server took is sent again later
                if not store_failed:
                    log.error("sync paused: the local database cannot be written (%s)", exc)
                store_failed = True
                self.status.last_error = f"the local database cannot be written ({exc})"
            except Exception:  # a bug must not kill syncing for the rest of the meeting
                log.exception("sync pass failed")
            self._wake.wait(1.0)
            self._wake.clear()

    # -- passes ------------------------------------------------------------------------------

    def pending(self) -> dict[str, tuple[int, int]]:
        """What can be sent now: a live recording's lines after its settled time wait for its
        recorder (which may be another process), not for the server."""
        return {
            rid: counts for rid, counts in self.store.pending_counts(sendable=True).items()
            if self.store.get_recording(rid).remote_state != "deleted_on_server"
        }

    def drain(self, timeout_s: float, *, ignore_backoff: bool = True,
              give_up: threading.Event | None = None) -> bool:
        """Sync until nothing is pending (True) or ``timeout_s`` passes / sync is blocked / the
        host cannot be reached / ``give_up`` is set (the user stopped waiting: a retry's wait
        ends then) (False)."""
        deadline = self._clock() + timeout_s
        given_up = give_up or threading.Event()
        if ignore_backoff:
            self.status.backoff_until.clear()

        def waiting() -> bool:
            return self._clock() < deadline and not given_up.is_set()

        if self.running:  # its thread may still be in a request: never two passes at once
            self.stop(timeout=0)
            while self.running and waiting():
                self._sleep(0.1)
            if self.running:
                return False
        keep_retrying, self.client.keep_retrying = self.client.keep_retrying, waiting
        stop_waiting, self.client.stop_waiting = self.client.stop_waiting, given_up
        try:
            while True:
                self.sync_pass(flush=True)
                if not self.pending():
                    return True
                if self.status.blocked or self._unreachable_passes >= UNREACHABLE_PASSES or not waiting():
                    return False
                pending = self.pending()
                if all(self.status.backoff_until.get(rid, 0.0) >= deadline for rid in pending):
                    return False  # nothing can be retried before the deadline (e.g. the instance can't create)
                waits = [t - self._clock() for t in self.status.backoff_until.values()]
                self._sleep(min(max(min(waits, default=0.2), 0.05), max(deadline - self._clock(), 0.05), 0.5))
        finally:
            self.client.keep_retrying, self.client.stop_waiting = keep_retrying, stop_waiting

    def sync_pass(self, *, flush: bool = False) -> None:
        """One pass over every recording with work; returns when each has done what it can now."""
        self._load_unanswered()
        checks_due = [rid for rid, at in self._unanswered_at.items() if self._clock() - at >= LATE_WRITE_WINDOW_S]
        due = list(dict.fromkeys([*self.store.pending_counts(), *checks_due]))
        # One whose requests time out (a long append) last: it must not end every pass before
        # the others are tried (see NetworkError below).
        due.sort(key=lambda rid: rid in self._timed_out)
        done: set[str] = set()
        reached = False  # the host answered something in this pass (an error too)
        for rid in due:
            if self._stop.is_set() and not flush:
                return
            if self._clock() < self.status.backoff_until.get(rid, 0.0):
                continue
            with self._sending(rid) as ours:
                if not ours:
                    continue  # another process is sending it now; it is still pending for the next pass
                try:
                    rec = self.store.get_recording(rid)  # read under the lock: another process may just have sent it
                except KeyError:  # deleted here
                    self._forget_unanswered(rid)
                    continue
                if rec.remote_state == "deleted_on_server":
                    self._forget_unanswered(rid)
                    continue
                try:
                    self._sync_recording(rec, flush=flush)
                except (CredentialsRejected, MissingScope, ProjectNotFound) as exc:
                    self._set_blocked(str(exc))
                    return
                except NetworkError as exc:
                    if not isinstance(exc, Unreachable):  # no answer in time, or a dropped connection
                        self._timed_out.add(rec.id)
                        if reached:  # the host answers the others: this request's trouble
                            self._back_off(rec.id, exc)
                            continue
                    # The host (nothing answers, or not in time), not this recording: the others wait
                    # as long. Tried one after the other, a host that takes connections and never
                    # answers held `sync` a read timeout per recording.
                    self._unreachable_passes += 1
                    wait = min(RETRY_CAP_S, 2.0 ** min(self._unreachable_passes, 7))
                    self._back_off(rec.id, exc, wait=wait)
                    for other in set(due) - done:
                        self.status.backoff_until[other] = max(self.status.backoff_until.get(other, 0.0),
                                                               self._clock() + wait)
                    if reached:  # a blip, not an outage
                        self._unreachable_passes = 0
                    return
                except ApiError as exc:
                    reached = True
                    self._unreachable_passes = 0
                    self._back_off(rec.id, exc)
                    continue
            done.add(rid)
            reached = True
            self._unreachable_passes = 0
            self._timed_out.discard(rid)
            self._failures.pop(rid, None)
            self._warned.pop(rid, None)
            if not self._failures:  # nothing is failing now: an old error would mislead
                self.status.last_error = None
            if self.status.blocked:
                self._set_blocked(None)

    @contextlib.contextmanager
    def _sending(self, rid: str) -> Iterator[bool]:
        """This recording's sending lock, if no other process holds it (yields whether it is
        ours). The server's append is read-modify-write without a lock (contract, rule 5): two
        processes appending at once could write a shorter list over a longer one."""
        try:
            lock = self.store.sending_lock(rid)
            lock.acquire(timeout=0)
        except Timeout:
            yield False
            return
        except OSError as exc:  # no lock file can be made here: send anyway, as alone
            if not self._unlocked:
                log.warning("sending without a lock: another process may send the same recording (%s)", exc)
            self._unlocked = True
            yield True
            return
        try:
            yield True
        finally:
            lock.release()

    def _sync_recording(self, rec: LocalRecording, *, flush: bool) -> None:
        ops = self.store.pending_ops(rec.id)
        delete = next((op for op in ops if op.op == "delete"), None)
        if delete is not None:
            self._delete(rec, delete)
            return
        if rec.server_id is None:
            create = next((op for op in ops if op.op == "create"), None)
            if create is None:
                log.error("recording %s has no server id and no create op; nothing to sync", rec.id)
                return
            self._pin_project()
            remote = self._find_orphan(rec, create.attempted_at) if create.attempted_at else None
            if remote is not None:
                log.warning("recording %s: adopting %s as its server copy", rec.id, remote.id)
            created = remote is None
            if remote is None:
                marked = self.store.mark_attempt(create.id)
                try:
                    remote = self.client.create_recording(rec.platform)
                except Unreachable:  # never sent: no orphan to look for before the next create
                    if marked:
                        self.store.forget_attempt(rec.id, create.id, marked)
                    raise
                log.info("recording %s created on the server as %s", rec.id, remote.id)
            self.status.needs_user = None
            if not self.store.set_server_id(rec.id, remote.id, _project_of(remote, self.client.project), create.id):
                # Created meanwhile by another process syncing the same database (the tray's and
                # a CLI `record` or `sync`), or deleted here meanwhile: ours would split the
                # transcript across two server recordings, or be left there empty.
                if created or self._server_id_now(rec.id) not in (remote.id, None):
                    self._delete_duplicate(rec.id, remote.id)  # an adopted orphan too: an empty copy all the same
            else:
                self.store.set_remote_state(rec.id, "syncing")
            try:
                rec = self.store.get_recording(rec.id)
            except KeyError:  # deleted here meanwhile
                return
        server_id = rec.server_id
        assert server_id is not None
        client = self.client.in_project(rec.server_project) if rec.server_project else self.client
        try:
            unanswered_at = self._unanswered_at.get(rec.id)
            if unanswered_at is not None and self._clock() - unanswered_at >= LATE_WRITE_WINDOW_S:
                self._check_sent(rec.id, client.get_recording(server_id))  # the last look
                self._forget_unanswered(rec.id)
            self._append_segments(client, rec, server_id, flush=flush or rec.status not in LIVE_STATUSES)
            self._send_patches(client, rec, server_id, self.store.pending_ops(rec.id))
        except NotFound:
            self._forget_unanswered(rec.id)
            log.warning("recording %s (%s) was deleted on the server; keeping it locally", rec.id, server_id)
            self.store.forget_server_work(rec.id)
            self.store.set_remote_state(rec.id, "deleted_on_server", "deleted on the server")
            return
        done = not self.store.pending_ops(rec.id) and not self.store.unsynced_segments(rec.id, 1)
        self.store.set_remote_state(rec.id, "synced" if done else "syncing")

    def _server_id_now(self, rid: str) -> str | None:
        try:
            return self.store.get_recording(rid).server_id
        except KeyError:
            return None

    def _delete_duplicate(self, rid: str, server_id: str) -> None:
        try:
            self.client.delete_recording(server_id)
        except NotFound:
            pass
        except ApiError as exc:
            log.warning("recording %s: could not delete %s, an empty duplicate on the server (%s)", rid, server_id, exc)
        else:
            log.info("recording %s: deleted %s, a duplicate created while another process created it", rid, server_id)

    def _delete(self, rec: LocalRecording, op: OutboxOp) -> None:
        server_id = rec.server_id
        attempted = op.payload.get("create_attempted_at")
        if server_id is None and isinstance(attempted, str):  # its create's answer was lost
            self._pin_project()
            orphan = self._find_orphan(rec, attempted)
            server_id = orphan.id if orphan else None
        if server_id is not None:
            client = self.client.in_project(rec.server_project) if rec.server_project else self.client
            with contextlib.suppress(NotFound):  # already gone: that is what was asked
                client.delete_recording(server_id)
        self.store.remove_recording(rec.id)
        log.info("recording %s deleted (server copy: %s)", rec.id, server_id or "none")

    def _find_orphan(self, rec: LocalRecording, attempted_at: str) -> RemoteRecording | None:
        """A create was sent at ``attempted_at`` but its answer never stored (lost, or the process
        was killed).

        The server may hold it: still ``recording``, untouched (no title, no segments, nobody's
        recording locally), started within ``ORPHAN_WINDOW_S`` of our attempt. The closest one is
        adopted instead of leaving an empty duplicate behind, or deleted with the local recording.
        """
        attempted = _parse_time(attempted_at)
        known = self.store.known_server_ids()
        me = self._user_id()
        best: tuple[float, RemoteRecording] | None = None
        for remote in self.client.list_recordings(status="recording", platform=rec.platform):
            if remote.id in known or remote.meeting_title or remote.transcript_segments or remote.participants:
                continue
            if me is not None and remote.raw.get("created_by") != me:
                continue  # the list is the whole team's: a colleague's fresh recording looks the same
            if remote.started_at is None:
                continue
            gap = abs((_parse_time(remote.started_at) - attempted).total_seconds())
            if gap <= ORPHAN_WINDOW_S and (best is None or gap < best[0]):
                best = (gap, remote)
        if best:
            log.warning("recording %s: found %s, created by an earlier attempt whose answer was lost",
                        rec.id, best[1].id)
        return best[1] if best else None

    def _user_id(self) -> int | None:
        """Who the key belongs to (users/@me), once known; None while it cannot be asked."""
        if self._me is None:
            try:
                self._learn_user(self.client.me())
            except ApiError as exc:
                log.info("cannot tell whose recordings are ours (%s)", exc)
                return None
        return None if self._me == -1 else self._me

    def _learn_user(self, me: dict[str, Any]) -> None:
        user_id = me.get("id")
        self._me = user_id if isinstance(user_id, int) and not isinstance(user_id, bool) else -1

    def _pin_project(self) -> None:
        """Resolve ``@current`` once, so a later switch of the user's current project doesn't
        split a recording across projects. Keys without access to ``users/@me`` keep ``@current``."""
        if self.client.project != "@current" or self._pinned:
            return
        try:
            me = self.client.me()  # its answer also says whose recordings are ours (orphans)
            self._learn_user(me)
            self.client = self.client.in_project(str(int(me["team"]["id"])))
        except (MissingScope, CredentialsRejected, NotFound, KeyError, TypeError, ValueError) as exc:
            log.info("keeping project @current (%s)", exc)
        except ApiError as exc:  # unreachable, 5xx: asked again next time; the create's answer names its project
            log.info("project @current not resolved yet (%s)", exc)
            return
        self._pinned = True

    def _append_segments(self, client: PostHogClient, rec: LocalRecording, server_id: str, *, flush: bool) -> None:
        pauses = self._pauses.get(rec.id, 0)  # read first: a pause told during this pass is for the next
        while True:
            # While a recording is live its lines go in time order: only those before the point
            # every stream has settled (a line stored later may start earlier, the server's
            # transcript_text is in append order and cannot be reordered).
            batch = self.store.unsynced_segments(rec.id, FLUSH_MAX_SEGMENTS if flush else BATCH_MAX_SEGMENTS,
                                                 before_ms=rec.send_before_ms)
            if not batch:
                self._first_unsynced_seen.pop(rec.id, None)
                self._pauses_done[rec.id] = pauses
                return
            if not flush and not self._batch_due(rec.id, len(batch), paused=pauses > self._pauses_done.get(rec.id, 0)):
                return
            try:
                answer = client.append_segments(server_id, [_wire(s) for s in batch],
                                                on_unanswered=lambda: self._unanswered(rec.id))
            except ValidationFailed as exc:
                bad = _bad_segment_index(exc, len(batch))
                if bad is None:
                    raise
                log.error("server refused segment %s of %s (%s); not sending it", bad, rec.id, exc)
                self.store.mark_synced([batch[bad].id], refused=True)
                continue
            self.store.mark_synced([s.id for s in batch])
            self._check_sent(rec.id, answer)
            self._first_unsynced_seen.pop(rec.id, None)
            self._appended_at[rec.id] = self._clock()

    def _batch_due(self, rid: str, count: int, *, paused: bool) -> bool:
        now = self._clock()
        first_seen = self._first_unsynced_seen.setdefault(rid, now)
        if count >= BATCH_MAX_SEGMENTS or now - first_seen >= BATCH_MAX_AGE_S:
            return True
        return paused and (rid not in self._appended_at or now - self._appended_at[rid] >= PAUSE_MIN_GAP_S)

    def _send_patches(self, client: PostHogClient, rec: LocalRecording, server_id: str, ops: list[OutboxOp]) -> None:
        first_unsynced = self.store.first_unsynced_id(rec.id)
        ready: list[OutboxOp] = []
        for op in ops:
            if op.op != "patch" or (first_unsynced is not None and op.after_segment >= first_unsynced):
                break
            ready.append(op)
        if not ready:
            return
        body: dict[str, Any] = {}
        for op in ready:
            body.update(op.payload)
        try:
            answer = client.update_recording(server_id, body)
        except ValidationFailed as exc:
            field_name = exc.attr if exc.attr in body else None
            if field_name is None:
                raise
            log.error("server refused %s of %s (%s); sending the rest without it", field_name, rec.id, exc)
            for op in ready:
                op.payload.pop(field_name, None)
                self.store.replace_op_payload(op.id, op.payload)
            return self._send_patches(client, rec, server_id, self.store.pending_ops(rec.id))
        self.store.complete_ops([op.id for op in ready])
        self._check_sent(rec.id, answer)  # lost lines go at the next pass: appends are accepted in any status

    # -- late writes -------------------------------------------------------------------------

    def _unanswered(self, rid: str) -> None:
        self._unanswered_at[rid] = self._clock()
        wall = self._unanswered_wall[rid] = time.time()
        self._resent.pop(rid, None)  # this one may write over the lines sent again, too
        try:
            self.store.set_unanswered(rid, wall)
        except sqlite3.Error as exc:  # a full disk: this process still takes the last look
            log.warning("recording %s: cannot note the unanswered append: %s", rid, exc)

    def _load_unanswered(self) -> None:
        """Unanswered appends the store holds that this worker has not seen: another process's
        (a `record` that exited within the window) or this one's before a restart."""
        try:
            stored = self.store.unanswered()
        except sqlite3.Error as exc:
            log.debug("cannot read the unanswered appends: %s", exc)
            return
        now, now_wall = self._clock(), time.time()
        for rid, wall in stored.items():
            if wall > self._unanswered_wall.get(rid, float("-inf")):
                self._unanswered_at[rid] = now - max(0.0, now_wall - wall)
                self._unanswered_wall[rid] = wall
                self._resent.pop(rid, None)

    def _forget_unanswered(self, rid: str) -> None:
        self._unanswered_at.pop(rid, None)
        wall = self._unanswered_wall.pop(rid, None)
        self._resent.pop(rid, None)
        if wall is not None:
            try:
                self.store.clear_unanswered(rid, wall)
            except sqlite3.Error as exc:  # kept: the next pass or process looks once more
                log.debug("recording %s: cannot clear the unanswered append: %s", rid, exc)

    def _check_sent(self, rid: str, remote: RemoteRecording) -> None:
        """While an unanswered append of ``rid`` may still write late: the lines the server took
        (from any process) that ``remote``, its answer, no longer holds are sent again."""
        if rid not in self._unanswered_at:
            return
        there = {round(float(t), 3) for s in remote.transcript_segments
                 if isinstance(t := s.get("timestamp"), int | float) and not isinstance(t, bool)}
        resent = self._resent.setdefault(rid, set())
        lost = [sid for ts, sid in self.store.sent_stamps(rid).items() if ts not in there]
        again = [sid for sid in lost if sid not in resent]
        if twice := [sid for sid in lost if sid in resent]:  # taken off there since, not lost by chance
            log.error("recording %s: %d lines sent again are gone from the server again; not sending them again",
                      rid, len(twice))
            self.store.mark_synced(twice, refused=True)
        if again:
            log.warning("recording %s: a late request wrote over %d lines on the server; sending them again",
                        rid, len(again))
            resent.update(again)
            self.store.mark_unsynced(again)

    # -- failure bookkeeping -----------------------------------------------------------------

    def _back_off(self, rid: str, exc: ApiError, *, wait: float | None = None) -> None:
        """``wait``: the host's back-off (unreachable), else this recording's is used."""
        n = self._failures[rid] = self._failures.get(rid, 0) + 1
        if isinstance(exc, CannotCreateRecordings):
            wait = CANNOT_CREATE_RETRY_S
            self.status.needs_user = str(exc)
        elif isinstance(exc, RateLimited | ServerUnavailable) and exc.retry_after_s is not None:
            wait = exc.retry_after_s
        elif wait is None:
            wait = min(RETRY_CAP_S, 2.0 ** min(n, 7))
        self.status.backoff_until[rid] = self._clock() + wait
        self.status.last_error = str(exc)
        try:
            deleting = self.store.get_recording(rid).remote_state == "deleting"  # still to be deleted, not "pending"
        except KeyError:  # removed meanwhile (by another process): nothing left to retry
            return
        self.store.set_remote_state(rid, "deleting" if deleting else "error" if not exc.retryable else "pending",
                                    str(exc))
        # Once per recording and failure: a server down all meeting must not print a line per retry.
        repeated = self._warned.get(rid) == str(exc)
        self._warned[rid] = str(exc)
        log.log(logging.INFO if repeated else logging.WARNING, "sync of %s failed (%s); next try in %.0f s",
                rid, exc, wait)
        self._notify()

    def _set_blocked(self, message: str | None) -> None:
        if message and message != self.status.blocked:  # once, not at every pass that meets it again
            log.error("sync stopped until fixed: %s", message)
        self.status.blocked = message
        self._notify()

    def _notify(self) -> None:
        if self._on_change:
            self._on_change(self.status)


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _wire(s: StoredSegment) -> WireSegment:
    return WireSegment(timestamp_ms=s.timestamp_ms, speaker=s.speaker, text=s.text, confidence=s.confidence)


def _bad_segment_index(exc: ValidationFailed, size: int) -> int | None:
    parts = (exc.attr or "").split("__")
    if len(parts) >= 2 and parts[0] == "segments" and parts[1].isdigit() and int(parts[1]) < size:
        return int(parts[1])
    return None


def _project_of(remote: RemoteRecording, asked: str) -> str:
    """The project a recording was created in: the one asked for, or for ``@current`` the team
    the server put it in, so a later switch of the user's current project cannot lose it."""
    team = remote.raw.get("team")
    if asked == "@current" and isinstance(team, int) and not isinstance(team, bool):
        return str(team)
    return asked
