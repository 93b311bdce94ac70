"""SyncWorker: a real SQLite Store drained by a real PostHogClient into the local PostHog test server."""

from __future__ import annotations

import contextlib
import logging
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from api.client import DEFAULT_TIMEOUT, PostHogClient
from api.ratelimit import RateBudget
from api.retry import RetryPolicy
from api.sync import BATCH_MAX_AGE_S, LATE_WRITE_WINDOW_S, PAUSE_MIN_GAP_S, RETRY_CAP_S, SyncWorker
from desktop_recorder.store import Store
from tests.conftest import READ_KEY, WRITE_KEY
from tests.posthog_server import PostHogState


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "recorder.sqlite3"


@pytest.fixture
def store(db_path):
    s = Store(db_path)
    yield s
    s.close()


@pytest.fixture
def worker_for(server, store):
    """Builds SyncWorkers on a real client (no sleeping, two attempts per request); closes the clients."""
    clients: list[PostHogClient] = []

    def make(key: str = WRITE_KEY, *, on: Store | None = None, clock=None, project: int = 1,
             timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> SyncWorker:
        clients.append(PostHogClient(server.url, key, project, retry=RetryPolicy(max_attempts=2, base_delay_s=0.0),
                                     budget=RateBudget(10_000), sleep=lambda s: None, timeout=timeout))
        return SyncWorker(on or store, clients[-1], clock=clock or time.monotonic)

    yield make
    for client in clients:
        client.close()


def new_recording(store: Store, participants: tuple[str, ...] = ("Ann",)) -> str:
    return store.create_recording(platform="zoom", title="Weekly sync", participants=list(participants),
                                  audio_path=None).id


def add_segments(store: Store, rid: str, count: int, start: int = 0) -> list[float]:
    return [store.add_segment(rid, start_ms=(start + i) * 1000, end_ms=(start + i) * 1000 + 900, source="mic",
                              speaker="Ann", text=f"line {start + i}", confidence=0.9).timestamp_ms
            for i in range(count)]


def finish(store: Store, rid: str, **overrides) -> None:
    args = {"status": "ready", "duration_s": 61.6, "title": "Weekly sync", "participants": ["Ann", "Bob"]}
    store.finish_recording(rid, **{**args, **overrides})


def drain_in_passes(worker: SyncWorker, passes: int = 10) -> int:
    """drain(0) is one flush pass with back-off cleared; returns how many passes it took."""
    for n in range(1, passes + 1):
        if worker.drain(0):
            return n
    raise AssertionError(f"still pending after {passes} passes: {worker.pending()} ({worker.status})")


def appended(server) -> list[list[float]]:
    """The timestamps of every append_segments request the server received, in order."""
    return [[s["timestamp"] for s in body["segments"]]
            for method, path, body in server.state.requests if path.endswith("/append_segments/")]


def kinds(server) -> list[str]:
    """Every request the server received, named: create, append, patch, get..."""
    names = {"POST": "create", "PATCH": "patch", "GET": "get", "PUT": "put", "DELETE": "delete"}
    return ["append" if path.endswith("/append_segments/") else names[method]
            for method, path, _ in server.state.requests]


def only_recording(server) -> dict:
    (rec,) = server.state.recordings.values()
    return rec


def assert_each_once_on_server(server, stamps: list[float]) -> None:
    assert [s["timestamp"] for s in only_recording(server)["transcript_segments"]] == stamps


def test_lines_of_a_live_recording_go_in_time_order_up_to_where_both_streams_settled(server, store, worker_for):
    """A mic line waits for the echo check, so a later system line can be stored first. The
    server's transcript_text is in append order: lines go in time order, only up to the settled
    time, and all of them once the recording has stopped."""
    rid = store.create_recording(platform="zoom", title=None, participants=[], audio_path=None, settled_ms=0.0).id
    line = {"end_ms": 0.0, "speaker": None, "confidence": 0.9}
    store.add_segment(rid, start_ms=11_000, source="system", text="Sure, go ahead.", **line)
    store.set_settled(rid, 10_000)  # a mic line from 10 s is still held for the echo check
    worker = worker_for()
    worker.sync_pass(flush=True)
    assert appended(server) == []
    store.add_segment(rid, start_ms=10_000, source="mic", text="Can I share my screen?", **line)
    store.add_segment(rid, start_ms=20_000, source="system", text="Thanks.", **line)
    store.set_settled(rid, 15_000)
    worker.sync_pass(flush=True)
    assert appended(server) == [[10_000, 11_000]]
    finish(store, rid)
    assert worker.drain(5)
    assert appended(server) == [[10_000, 11_000], [20_000]]
    assert only_recording(server)["transcript_text"] == "Can I share my screen? Sure, go ahead. Thanks."


def test_an_edit_waits_for_the_lines_stored_before_it_even_when_a_later_stored_one_is_earlier(server, store,
                                                                                             worker_for):
    """Lines go in time order, not in the order stored: the PATCH of an edit still waits for every
    line stored before it (the one stored first may be the later one)."""
    rec = store.create_recording(platform="zoom", title=None, participants=[], audio_path=None, settled_ms=0.0)
    line = {"end_ms": 0.0, "source": "system", "speaker": None, "confidence": 0.9}
    store.add_segment(rec.id, start_ms=10_000, text="Later.", **line)
    store.edit_recording(rec.id, {"meeting_title": "Renamed"})
    store.add_segment(rec.id, start_ms=5_000, text="Earlier.", **line)
    worker = worker_for()
    worker.sync_pass(flush=True)
    assert kinds(server) == ["create", "patch"]  # the participants given at the start; not the edit
    assert only_recording(server)["meeting_title"] is None
    store.set_settled(rec.id, 20_000)
    worker.sync_pass(flush=True)
    assert kinds(server) == ["create", "patch", "append", "patch"]
    assert only_recording(server)["meeting_title"] == "Renamed"


def test_waiting_for_sync_does_not_wait_for_lines_a_recorder_has_not_settled(server, store, worker_for):
    """`sync` (or the end of `record`) while another recording is live: its lines after the
    settled time wait for their recorder, not for the server, so nothing is "still pending"."""
    rec = store.create_recording(platform="zoom", title=None, participants=[], audio_path=None, settled_ms=4_000.0)
    for ms in (1_000, 5_000):
        store.add_segment(rec.id, start_ms=ms, end_ms=ms + 900, source="system", speaker=None, text="Hi.",
                          confidence=0.9)
    worker = worker_for()
    assert worker.drain(3)
    assert appended(server) == [[1_000]] and worker.pending() == {}
    assert store.pending_counts() == {rec.id: (0, 1)}  # still shown as not on the server


@dataclass
class StubEngine:
    """What a session reads of a streaming engine, for the session's own bookkeeping."""

    source: str
    settled_ms: float
    fails: bool = False
    idle: bool = True
    finish_fails: bool = False

    def has_work(self) -> bool:
        return False

    def insert_audio(self, _audio: object) -> None:
        if self.fails:
            raise RuntimeError("the decoder crashed")

    def finish(self) -> list:
        if self.finish_fails:
            raise RuntimeError("the decoder crashed")
        return []


def two_stream_session(store: Store, data_dir: Path, *, mic_ms: float, system_ms: float, fails: bool = False,
                       on_segment_stored=lambda: None, on_pause=lambda rid: None):
    from desktop_recorder.session import RecordingSession, SessionOptions
    from transcription.echo import EchoGate

    session = RecordingSession(store=store, data_dir=data_dir, transcriber=None, scorer_factory=None,  # type: ignore[arg-type]
                               options=SessionOptions(), on_event=lambda event: None,
                               on_segment_stored=on_segment_stored, on_pause=on_pause)
    session.recording = store.create_recording(platform="zoom", title=None, participants=[], audio_path=None,
                                               settled_ms=0.0)
    session._engines = {"mic": StubEngine("mic", mic_ms, fails), "system": StubEngine("system", system_ms)}  # type: ignore[dict-item]
    session._echo = EchoGate()
    return session


def running(session) -> None:
    """The session as after its start: a 6 s pipeline (that stops at once) and its transcription loop."""

    class Pipeline:
        duration_s, write_error, silenced_s = 6.0, None, 0.0

        def stop(self) -> None:
            pass

    session._pipeline = Pipeline()
    session._worker = threading.Thread(target=session._transcribe_loop, daemon=True)
    session._worker.start()


def test_a_session_settles_its_lines_only_after_the_mic_line_held_for_the_echo_check(server, store, worker_for,
                                                                                      tmp_path):
    """The session's side: the settled time it stores stops at a mic line still held for the echo
    check, then moves past it once the line is stored."""
    from transcription.types import FinalSegment

    session = two_stream_session(store, tmp_path, mic_ms=30_000.0, system_ms=2_500.0)
    session._handle([FinalSegment("mic", 1_000.0, 3_000.0, "Can I share my screen?", 0.9)])
    session._release_mic()  # the system side (speaking from 2.5 s) is not settled past it yet: held
    assert session._echo.held == 1
    session._engines["system"].settled_ms = 20_000.0
    session._handle([FinalSegment("system", 2_500.0, 6_000.0, "Sure, go ahead.", 0.9)])
    session._mark_settled()
    assert store.get_recording(session.recording.id).settled_ms == 1_000.0
    worker = worker_for()
    worker.sync_pass(flush=True)
    assert appended(server) == []
    session._release_mic()
    session._mark_settled()
    assert store.get_recording(session.recording.id).settled_ms == 20_000.0
    worker.sync_pass(flush=True)
    assert only_recording(server)["transcript_text"] == "Can I share my screen? Sure, go ahead."


def test_the_finals_of_one_pass_are_all_stored_before_the_settled_time_moves_past_them(server, store, worker_for,
                                                                                        tmp_path):
    """One poll settles its engine past all its finals before the first is stored: a sync woken
    by the first one must not yet see the settled time past the second (a mic line between them
    would be appended first)."""
    from transcription.types import FinalSegment

    worker = worker_for()
    session = two_stream_session(store, tmp_path, mic_ms=30_000.0, system_ms=20_000.0,
                                 on_segment_stored=lambda: worker.sync_pass(flush=True))
    store.add_segment(session.recording.id, start_ms=12_500, end_ms=13_000, source="mic", speaker="Me", text="Right.",
                      confidence=0.9)
    session._handle([FinalSegment("system", 10_000.0, 11_900.0, "First.", 0.9),
                     FinalSegment("system", 12_000.0, 14_000.0, "Second.", 0.9)])
    session._release_mic()
    session._mark_settled()
    assert only_recording(server)["transcript_text"] == "First. Second. Right."


def test_a_line_joins_the_due_batch_before_it_when_the_sync_wakes(server, store, worker_for, tmp_path):
    """The sync is woken when stored lines may be sent, not when they are stored: woken before the
    settled time let the new line go, it sent the due batch without it, and the new line then
    waited out a batch age of its own (JFK's last words reached the server 4 s late, not 1 s)."""
    from transcription.types import FinalSegment

    clock = FakeClock()
    worker = worker_for(clock=clock)
    session = two_stream_session(store, tmp_path, mic_ms=30_000.0, system_ms=8_500.0,
                                 on_segment_stored=worker.sync_pass)
    session._handle([FinalSegment("system", 6_200.0, 8_200.0, "What your country can do for you.", 0.9)])
    session._mark_settled()
    clock.now += BATCH_MAX_AGE_S + 0.5  # its batch is due now, and the next line is stored
    session._engines["system"].settled_ms = 12_000.0
    session._handle([FinalSegment("system", 8_970.0, 11_000.0, "Ask what you can do for your country.", 0.9)])
    session._mark_settled()
    assert appended(server) == [[6_200.0, 8_970.0]]


def test_lines_stored_before_a_pause_go_at_once_but_appends_keep_a_minimum_gap(server, store, worker_for):
    """Lines stored before a pause go without waiting for their batch (no line is coming soon to
    join them); a pause soon after an append waits out ``PAUSE_MIN_GAP_S`` (the rate limit)."""
    clock = FakeClock()
    worker = worker_for(clock=clock)
    rid = new_recording(store)
    add_segments(store, rid, 1)
    worker.sync_pass()
    assert appended(server) == []  # created; the line waits for its batch
    worker.at_pause(rid)
    worker.sync_pass()
    assert appended(server) == [[0.0]]
    add_segments(store, rid, 1, start=5)
    clock.now += PAUSE_MIN_GAP_S - 0.5
    worker.at_pause(rid)
    worker.sync_pass()
    assert appended(server) == [[0.0]]
    clock.now += 0.5
    worker.sync_pass()
    assert appended(server) == [[0.0], [5_000.0]]
    add_segments(store, rid, 1, start=9)
    clock.now += PAUSE_MIN_GAP_S
    worker.sync_pass()  # no pause since the last one was sent: the batch waits
    assert appended(server) == [[0.0], [5_000.0]]
    clock.now += BATCH_MAX_AGE_S
    worker.sync_pass()
    assert appended(server) == [[0.0], [5_000.0], [9_000.0]]


def test_a_session_tells_a_pause_once_its_lines_are_stored_and_nobody_speaks(store, tmp_path):
    """Not while either stream has speech in progress or a mic line is held for the echo check;
    once per pause with new lines."""
    from transcription.types import FinalSegment

    pauses: list[str] = []
    session = two_stream_session(store, tmp_path, mic_ms=30_000.0, system_ms=2_500.0, on_pause=pauses.append)
    session._tell_pause()
    assert pauses == []  # nothing stored yet
    session._handle([FinalSegment("mic", 1_000.0, 3_000.0, "Can I share my screen?", 0.9)])
    session._release_mic()
    session._tell_pause()
    assert pauses == []  # the mic line is held for the echo check
    session._engines["system"].settled_ms = 20_000.0
    session._engines["system"].idle = False  # the other side speaks
    session._release_mic()
    session._tell_pause()
    assert pauses == []
    session._engines["system"].idle = True
    session._tell_pause()
    session._tell_pause()
    assert pauses == [session.recording.id]
    session._handle([FinalSegment("system", 2_500.0, 6_000.0, "Sure, go ahead.", 0.9)])
    session._tell_pause()
    assert pauses == [session.recording.id] * 2


def test_two_streams_say_when_lines_that_waited_for_the_disk_are_saved(store, tmp_path, monkeypatch):
    from desktop_recorder.session import Notice
    from transcription.types import FinalSegment

    session = two_stream_session(store, tmp_path, mic_ms=30_000.0, system_ms=20_000.0)
    events: list[object] = []
    session.on_event = events.append
    add_segment = store.add_segment

    def full(*_args: object, **_kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "add_segment", full)
    session._handle([FinalSegment("system", 1_000.0, 2_000.0, "Hello.", 0.9)])
    monkeypatch.setattr(store, "add_segment", add_segment)
    session._save()
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert notices[-1] == "The transcript lines that were waiting are saved."


def test_a_line_stored_by_others_gets_the_settled_time_within_seconds(store, tmp_path):
    """An echo line put back from the browser while recording is stored without the session: the
    settled time it may wait for is stored every few seconds anyway, not only with the next line."""
    session = two_stream_session(store, tmp_path, mic_ms=30_000.0, system_ms=20_000.0)
    rid = session.recording.id
    session._settled_written_at = time.monotonic()  # written just now
    store.add_segment(rid, start_ms=15_000, end_ms=16_000, source="mic", speaker="Me", text="Yes.", confidence=0.9)
    session._mark_settled()
    assert store.get_recording(rid).settled_ms == 0.0  # no line of its own waits for it: not yet
    session._settled_written_at = time.monotonic() - 11
    session._mark_settled()
    assert store.get_recording(rid).settled_ms == 20_000.0


def test_after_transcription_fails_the_lines_past_the_settled_time_wait_for_the_stop(server, store, worker_for,
                                                                                    tmp_path):
    """The mic line held for the echo check is stored, not lost. Lines from the audio after the
    failure come at stop (transcribed from the file), so the lines past the settled time wait
    for them: sent now, they would go before earlier ones."""
    from desktop_recorder.session import _STOP
    from transcription.types import FinalSegment

    session = two_stream_session(store, tmp_path, mic_ms=30_000.0, system_ms=2_500.0, fails=True)
    session._handle([FinalSegment("mic", 1_000.0, 3_000.0, "Can I share my screen?", 0.9)])
    session._handle([FinalSegment("system", 2_500.0, 6_000.0, "Sure, go ahead.", 0.9)])
    session._audio.put(("mic", np.zeros(320, np.float32)))
    session._audio.put(_STOP)
    session._transcribe_loop()
    assert [s.text for s in store.segments(session.recording.id)] == ["Can I share my screen?", "Sure, go ahead."]
    worker = worker_for()
    worker.sync_pass(flush=True)
    assert only_recording(server)["transcript_text"] == ""
    session._settle_all()  # as the stop does, after the lines of the rest are stored
    worker.sync_pass(flush=True)
    assert only_recording(server)["transcript_text"] == "Can I share my screen? Sure, go ahead."
    assert only_recording(server)["status"] == "recording"  # not finished by this


def test_a_failure_while_flushing_at_stop_does_not_hang_the_stop(store, tmp_path):
    """The model fails in the last pass, after the worker took the stop off the queue: the stop
    ends, and the recording says its transcript is incomplete (here no audio file was made)."""
    session = two_stream_session(store, tmp_path, mic_ms=30_000.0, system_ms=2_500.0)
    session._engines["system"].finish_fails = True
    running(session)
    stopping = threading.Thread(target=session.stop, daemon=True)
    stopping.start()
    stopping.join(30)
    assert not stopping.is_alive(), "the stop waits for a stop sentinel already taken"
    rec = store.get_recording(session.recording.id)
    assert rec.status == "ready" and rec.error_message is not None
    assert rec.error_message.startswith("Transcription stopped at 00:02 (the decoder crashed)")


def test_a_stop_that_cannot_finish_the_recording_still_lets_its_lines_sync(server, store, worker_for, tmp_path,
                                                                         monkeypatch):
    """A full disk refuses the final update: the recording stays live until a recovery finishes
    it, but every line it stored may go meanwhile."""
    from transcription.types import FinalSegment

    session = two_stream_session(store, tmp_path, mic_ms=30_000.0, system_ms=2_500.0)
    session._handle([FinalSegment("system", 2_500.0, 6_000.0, "Sure, go ahead.", 0.9)])
    session._mark_settled()
    running(session)

    def full(*_args: object, **_kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "finish_recording", full)
    with pytest.raises(sqlite3.OperationalError):
        session.stop()
    assert store.get_recording(session.recording.id).status == "processing"
    worker = worker_for()
    worker.sync_pass(flush=True)
    assert only_recording(server)["transcript_text"] == "Sure, go ahead."


def test_a_stop_keeps_the_title_and_participants_edited_in_the_browser_meanwhile(server, store, worker_for,
                                                                               tmp_path):
    """The recordings browser edits the stored recording, not the session: the stop (given no
    title or participants of its own) finishes it with them, and the final PATCH carries them."""
    session = two_stream_session(store, tmp_path, mic_ms=30_000.0, system_ms=2_500.0)
    rid = session.recording.id
    running(session)
    store.edit_recording(rid, {"meeting_title": "Q3 planning", "participants": ["Ana", "Bo"]})
    stopped = session.stop()
    assert (stopped.title, stopped.participants) == ("Q3 planning", ["Ana", "Bo"])
    assert worker_for().drain(5)
    remote = only_recording(server)
    assert (remote["status"], remote["meeting_title"], remote["participants"]) == ("ready", "Q3 planning",
                                                                                  ["Ana", "Bo"])


@contextlib.contextmanager
def another_process(db_path: Path, *, lock_files: bool) -> Iterator[Store]:
    """The same database as another process opens it (the tray's and a CLI `sync`); without
    ``lock_files``, a file stands where the lock folder goes, so no lock file can be made."""
    if not lock_files:
        (db_path.parent / "locks").write_text("a file where the lock folder goes")
    other = Store(db_path)
    try:
        yield other
    finally:
        other.close()


def finished_recording(store: Store, lines: int = 3) -> tuple[str, list[float]]:
    rid = new_recording(store)
    stamps = add_segments(store, rid, lines)
    finish(store, rid)
    return rid, stamps


@pytest.mark.parametrize("locks", ["usable", "unusable"])
def test_two_processes_creating_one_recording_at_once_leave_one_server_recording(server, store, db_path,
                                                                                  worker_for, locks):
    """The tray's sync and a CLI `sync` over the same database both find it without a server id.
    The sending lock makes the second leave it to the first; where no lock file can be made,
    both create, the second to store its id deletes its copy, and every line goes to the first."""
    with another_process(db_path, lock_files=locks == "usable") as other:
        rid, stamps = finished_recording(store)
        first, second = worker_for(), worker_for(on=other)
        create = second.client.create_recording

        def create_while_the_first_does(platform: str):
            first.sync_pass(flush=True)  # the first creates it and sends everything meanwhile, if it may
            return create(platform)

        second.client.create_recording = create_while_the_first_does  # type: ignore[method-assign]
        assert second.drain(5) and first.drain(5)
    assert_each_once_on_server(server, stamps)
    assert only_recording(server)["id"] == store.get_recording(rid).server_id
    assert only_recording(server)["status"] == "ready"
    creates, deletes = (1, 0) if locks == "usable" else (2, 1)
    assert kinds(server).count("create") == creates and kinds(server).count("delete") == deletes


def test_an_orphan_adopted_after_another_process_created_the_recording_is_deleted(server, store, db_path, worker_for):
    """Where no lock file can be made: a create's answer was lost, and its copy appears on the
    server only after another process syncing the same database created the recording anew. The
    process that then adopts that late copy cannot store it; it deletes it instead of leaving it."""
    with another_process(db_path, lock_files=False) as other:
        rid, stamps = finished_recording(store)
        store.mark_attempt(store.pending_ops(rid)[0].id)  # sent; its answer will never come
        first, second = worker_for(), worker_for(on=other)
        listing = second.client.list_recordings

        def list_after_the_first_created_it(**filters):
            first.sync_pass(flush=True)  # finds no copy yet: creates one and sends everything
            second.client.create_recording("zoom")  # the lost create is done on the server only now
            return listing(**filters)

        second.client.list_recordings = list_after_the_first_created_it  # type: ignore[method-assign]
        assert second.drain(5)
    assert_each_once_on_server(server, stamps)
    assert only_recording(server)["id"] == store.get_recording(rid).server_id


def test_two_processes_never_append_to_one_recording_at_once(server, store, db_path, worker_for):
    """The server's append is read-modify-write without a lock: the tray sending a live batch
    while a CLI `sync` flushes the same recording could write its shorter list last and lose
    the rest, already marked sent. One process at a time sends a recording's lines."""
    other = Store(db_path)
    try:
        rid = new_recording(store)
        stamps = add_segments(store, rid, 12)
        tray, cli = worker_for(), worker_for(on=other)
        server.state.faults.stall_append_s = 1.0  # the tray's append reads, then is slow to write back
        live_pass = threading.Thread(target=tray.sync_pass)  # creates it, sends the 12 as one live batch
        live_pass.start()
        while "append" not in kinds(server):
            time.sleep(0.01)
        stamps += add_segments(store, rid, 28, start=12)
        finish(store, rid)
        assert cli.drain(5)  # `desktop-recorder sync` meanwhile
        live_pass.join()
        assert tray.drain(5)
    finally:
        other.close()
    assert_each_once_on_server(server, stamps)
    assert only_recording(server)["status"] == "ready"


@pytest.mark.parametrize("found_by", ["a later answer", "the last look", "the next process"])
def test_an_append_that_timed_out_and_wrote_late_loses_no_line_on_the_server(server, store, db_path, worker_for,
                                                                             found_by):
    """The server was slow with an append: the client gave up waiting, sent it again and went on.
    The slow request then wrote back the list it had read, without the lines appended since
    (already marked sent). They go again: found missing in a later append's answer, or when the
    recording is read once the slow request can no longer write, by this process or, when it
    ended before (a `record` that exits at once), by the next one that syncs."""
    now = [0.0]
    worker = worker_for(clock=lambda: now[0], timeout=httpx.Timeout(5.0, read=0.5))
    rid = new_recording(store)
    stamps = add_segments(store, rid, 12)
    late = server.state.faults.append_waits_for = threading.Event()
    assert worker.drain(5)  # the first attempt got no answer in 0.5 s; its retry took the 12
    stamps += add_segments(store, rid, 12, start=12)
    assert worker.drain(5)
    late.set()  # the slow one writes now: the 12 it read, plus its own 12
    deadline = time.monotonic() + 10
    while len(only_recording(server)["transcript_segments"]) != 12:
        assert time.monotonic() < deadline, "the late append never wrote"
        time.sleep(0.01)
    if found_by == "a later answer":
        stamps += add_segments(store, rid, 12, start=24)
        assert worker.drain(5)
        assert "get" not in kinds(server)
    elif found_by == "the last look":  # nothing more is sent until then
        now[0] += LATE_WRITE_WINDOW_S
        assert worker.drain(5)
        assert kinds(server)[-2:] == ["get", "append"]
    else:
        later_now = [0.0]
        with another_process(db_path, lock_files=True) as other:
            later = worker_for(on=other, clock=lambda: later_now[0])
            assert later.drain(5) and "get" not in kinds(server)  # the late append may still write
            later_now[0] += LATE_WRITE_WINDOW_S
            assert later.drain(5)
            assert kinds(server)[-2:] == ["get", "append"]
            assert other.unanswered() == {}
    finish(store, rid)
    assert worker.drain(5)
    there = [s["timestamp"] for s in only_recording(server)["transcript_segments"]]
    assert sorted(there) == sorted(stamps) and len(set(there)) == len(there)
    assert only_recording(server)["status"] == "ready"
    assert store.get_recording(rid).remote_state == "synced"


def test_a_recording_deleted_here_while_it_was_created_leaves_no_copy_on_the_server(server, store, worker_for):
    worker = worker_for()
    rid = new_recording(store)
    create = worker.client.create_recording

    def create_and_delete_here_meanwhile(platform: str):
        store.request_delete(rid)
        store.remove_recording(rid)  # as the browser does for a recording with no server id
        return create(platform)

    worker.client.create_recording = create_and_delete_here_meanwhile  # type: ignore[method-assign]
    worker.sync_pass()
    assert server.state.recordings == {}
    assert store.list_recordings() == []


def test_finished_recording_is_created_appended_in_batches_then_finalised(server, store, worker_for):
    rid = new_recording(store)
    stamps = add_segments(store, rid, 30)
    worker = worker_for()
    worker.sync_pass()  # live: full batches of 12 go, the 6 left wait
    assert [len(b) for b in appended(server)] == [12, 12]
    finish(store, rid)
    assert worker.drain(5)
    batches = appended(server)
    assert [len(b) for b in batches] == [12, 12, 6]
    assert [t for b in batches for t in b] == stamps
    assert_each_once_on_server(server, stamps)
    assert kinds(server) == ["create", "append", "append", "patch", "append", "patch"]
    final = server.state.requests[-1][2]
    local = store.get_recording(rid)
    assert final["status"] == "ready" and final["completed_at"] == local.completed_at
    assert final["duration_seconds"] == 62 and type(final["duration_seconds"]) is int
    assert final["participants"] == ["Ann", "Bob"]
    remote = only_recording(server)
    assert (remote["status"], remote["duration_seconds"], remote["participants"]) == ("ready", 62, ["Ann", "Bob"])
    assert local.remote_state == "synced" and local.server_id == remote["id"]
    assert store.pending_ops(rid) == [] and store.unsynced_segments(rid, 100) == []


def test_a_recording_synced_after_the_meeting_keeps_when_it_started_and_ended(server, store, worker_for):
    """The create takes only the platform, and the server starts a recording when the create
    arrives: made offline and synced later, it started after it ended."""
    rid = new_recording(store)
    add_segments(store, rid, 3)
    time.sleep(0.05)  # a meeting takes time (not within one millisecond)
    finish(store, rid)
    time.sleep(0.05)  # the sync comes later (days, for a laptop offline all week)
    assert worker_for().drain(5)
    local, remote = store.get_recording(rid), only_recording(server)
    assert (remote["started_at"], remote["completed_at"]) == (local.started_at, local.completed_at)
    assert local.started_at < local.completed_at


def test_mic_and_system_segments_starting_together_all_reach_the_server(server, store, worker_for):
    rid = new_recording(store)
    for source in ("mic", "system", "mic"):
        store.add_segment(rid, start_ms=1500, end_ms=2500, source=source, speaker=source, text=f"{source} words",
                          confidence=None)
    finish(store, rid)
    assert worker_for().drain(5)
    remote = only_recording(server)["transcript_segments"]
    assert [s["timestamp"] for s in remote] == [1500.0, 1500.001, 1500.002]
    assert [s["text"] for s in remote] == ["mic words", "system words", "mic words"]


def test_failures_mid_way_are_survived_and_every_segment_lands_once(server, store, worker_for):
    rid = new_recording(store)
    stamps = add_segments(store, rid, 30)
    worker = worker_for()
    worker.sync_pass()
    faults = server.state.faults
    faults.fail_next, faults.drop_next, faults.throttle_next = 3, 1, 1
    stamps += add_segments(store, rid, 20, start=30)
    finish(store, rid)
    passes = drain_in_passes(worker)
    assert passes >= 3  # each pass gives up after 2 attempts: the 5 faults reached the worker
    assert (faults.fail_next, faults.drop_next, faults.throttle_next) == (0, 0, 0)
    assert_each_once_on_server(server, stamps)
    assert only_recording(server)["status"] == "ready"
    assert store.get_recording(rid).remote_state == "synced"


def forget_acknowledgements(db_path: Path, stamps: list[float]) -> None:
    """What kill -9 between the server's 200 and the local commit leaves: segments sent but unsynced."""
    with sqlite3.connect(db_path) as db:
        db.executemany("UPDATE segments SET synced = 0 WHERE timestamp_ms = ?", [(t,) for t in stamps])
    db.close()


def test_a_new_process_resumes_after_a_crash_without_duplicates(server, store, db_path, worker_for):
    rid = new_recording(store)
    stamps = add_segments(store, rid, 30)
    worker_for().sync_pass()
    assert [len(b) for b in appended(server)] == [12, 12]
    store.close()  # the process dies; everything it committed is in the file
    forget_acknowledgements(db_path, stamps[12:24])
    reopened = Store(db_path)
    try:
        assert worker_for(on=reopened).drain(5)
        assert [len(b) for b in appended(server)] == [12, 12, 18]  # the unacknowledged batch went again
        assert_each_once_on_server(server, stamps)
        assert reopened.unsynced_segments(rid, 100) == []
    finally:
        reopened.close()


def test_recording_deleted_on_the_server_is_kept_locally_and_not_recreated(server, store, worker_for):
    rid = new_recording(store)
    add_segments(store, rid, 24)
    worker = worker_for()
    worker.sync_pass()
    server.state.recordings.clear()
    add_segments(store, rid, 5, start=24)
    finish(store, rid)
    assert worker.drain(5)
    local = store.get_recording(rid)
    assert local.remote_state == "deleted_on_server" and local.server_id is not None
    assert len(store.segments(rid)) == 29
    sent = len(server.state.requests)
    worker.sync_pass(flush=True)
    assert len(server.state.requests) == sent
    assert kinds(server).count("create") == 1
    assert server.state.recordings == {}
    assert store.pending_counts() == {}  # no stale work queued for a recording the server no longer has


class Outage(httpx.HTTPTransport):
    """Sends every request to a port nothing listens on (the kernel refuses it) until ``over``,
    then to the test server."""

    def __init__(self, server_port: int) -> None:
        super().__init__()
        self._closed = socket.socket()
        self._closed.bind(("127.0.0.1", 0))  # bound, never listening: nobody else can take it
        self._ports = (self._closed.getsockname()[1], server_port)
        self.over = False
        self.tried: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.tried.append(request.method)
        request.url = request.url.copy_with(port=self._ports[self.over])
        return super().handle_request(request)

    def close(self) -> None:
        self._closed.close()
        super().close()


def test_a_host_nothing_answers_at_is_tried_once_a_pass_and_said_once(server, store, caplog):
    """Offline with three recordings: one request a pass, not one per recording, and a user who
    stopped a meeting is not held for the whole final wait."""
    rids = [new_recording(store) for _ in range(3)]
    for rid in rids:
        add_segments(store, rid, 2)
        finish(store, rid)
    clock = FakeClock()
    wire = Outage(int(server.url.rsplit(":", 1)[1]))
    client = PostHogClient(server.url, WRITE_KEY, 1, retry=RetryPolicy(max_attempts=2, base_delay_s=0.0),
                           budget=RateBudget(10_000), sleep=lambda s: None, transport=wire)
    worker = SyncWorker(store, client, clock=clock, sleep=lambda s: setattr(clock, "now", clock.now + s))
    with client, caplog.at_level(logging.INFO, logger="api.sync"):
        worker.sync_pass()
        assert wire.tried == ["POST", "POST"]  # the client's two attempts, for one recording only
        assert "Cannot reach PostHog" in (worker.status.last_error or "")
        assert {worker.status.backoff_until[rid] for rid in rids} == {clock.now + 2}  # all wait for the host
        worker.sync_pass()
        assert len(wire.tried) == 2
        clock.now += 2
        assert worker.drain(30) is False  # a second pass that reaches no one: not the whole 30 s
        assert len(wire.tried) == 4 and clock.now == 1002
        for _ in range(3):
            clock.now += RETRY_CAP_S
            worker.sync_pass()
        assert len(wire.tried) == 10  # one recording tried a pass
        said = [(r.levelno, r.message) for r in caplog.records if r.message.startswith("sync of")]
        assert [level for level, _ in said] == [logging.WARNING] + [logging.INFO] * 4
        assert store.get_recording(rids[0]).remote_state == "pending"

        wire.over = True
        clock.now += RETRY_CAP_S
        assert worker.drain(30) is True
        assert {r["id"] for r in server.state.recordings.values()} == {store.get_recording(r).server_id for r in rids}
        assert all(r["status"] == "ready" for r in server.state.recordings.values())
        assert kinds(server).count("create") == 3 and "get" not in kinds(server)  # no lost create looked for


def test_a_host_that_takes_connections_and_never_answers_holds_one_request_a_pass_not_one_per_recording(store):
    """A hung proxy: `sync` with four recordings was silent for 81 s and took 221 s, a read
    timeout (and its retry) per recording."""
    rids = [new_recording(store) for _ in range(3)]
    for rid in rids:
        finish(store, rid)
    clock = FakeClock()
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)  # the kernel takes the connections; nobody reads or answers
        client = PostHogClient(f"http://127.0.0.1:{hung.getsockname()[1]}", WRITE_KEY, 1,
                               timeout=httpx.Timeout(0.3), retry=RetryPolicy(max_attempts=2, base_delay_s=0.0),
                               budget=RateBudget(10_000), sleep=lambda s: None)
        worker = SyncWorker(store, client, clock=clock, sleep=lambda s: setattr(clock, "now", clock.now + s))
        with client:
            worker.sync_pass()
            assert "did not answer in time" in (worker.status.last_error or "")
            assert {worker.status.backoff_until[rid] for rid in rids} == {clock.now + 2}  # all wait for the host
            tried = [rid for rid in rids if store.pending_ops(rid)[0].attempted_at is not None]
            assert len(tried) == 1  # its create may have been made: looked for before the next one
    assert all(store.get_recording(rid).remote_state == "pending" for rid in rids)


class SlowFor(httpx.HTTPTransport):
    """Requests to one recording's path time out (a long append the server is slow to do); the
    rest reach the test server."""

    def __init__(self) -> None:
        super().__init__()
        self.slow_path: str | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.slow_path and self.slow_path in request.url.path:
            raise httpx.ReadTimeout("timed out", request=request)
        return super().handle_request(request)


def test_a_recording_whose_requests_time_out_does_not_hold_the_others(server, store):
    """A read timeout is taken for the host's only while nothing else answers: then it is that
    recording's, and one failing already is tried after the others."""
    slow = new_recording(store)
    clock = FakeClock()
    wire = SlowFor()
    client = PostHogClient(server.url, WRITE_KEY, 1, retry=RetryPolicy(max_attempts=2, base_delay_s=0.0),
                           budget=RateBudget(10_000), sleep=lambda s: None, transport=wire)
    worker = SyncWorker(store, client, clock=clock, sleep=lambda s: setattr(clock, "now", clock.now + s))
    with client:
        worker.sync_pass()  # created
        wire.slow_path = f"/{store.get_recording(slow).server_id}/"
        add_segments(store, slow, 3)
        finish(store, slow)
        worker.sync_pass()  # it times out, and nothing else answered: the host's back-off
        assert "did not answer in time" in (worker.status.last_error or "")
        other = new_recording(store)
        add_segments(store, other, 3)
        finish(store, other)
        clock.now += RETRY_CAP_S
        worker.sync_pass()
        assert store.get_recording(other).remote_state == "synced"  # tried first, and not held after it
        assert store.get_recording(slow).remote_state != "synced"
        assert worker.status.backoff_until.get(other, 0.0) <= clock.now  # no host back-off given to it


@pytest.mark.parametrize(("key", "words"), [("phx_revoked", ["rejected", "invalid"]),
                                            (READ_KEY, ["scope", "desktop_recording:write"])])
def test_bad_key_blocks_sync_without_losing_anything(server, store, worker_for, key, words, caplog):
    rid = new_recording(store)
    stamps = add_segments(store, rid, 15)
    finish(store, rid)
    blocked = worker_for(key)
    with caplog.at_level(logging.ERROR, logger="api.sync"):
        assert blocked.drain(5) is False
        blocked.sync_pass()
    assert [r.message for r in caplog.records].count(f"sync stopped until fixed: {blocked.status.blocked}") == 1
    assert blocked.status.blocked and all(w in blocked.status.blocked for w in words)
    assert store.get_recording(rid).server_id is None and server.state.recordings == {}
    assert len(store.unsynced_segments(rid, 100)) == 15
    assert [op.op for op in store.pending_ops(rid)] == ["create", "patch", "patch"]
    assert worker_for().drain(5)
    assert_each_once_on_server(server, stamps)
    assert only_recording(server)["status"] == "ready"


def test_instance_that_cannot_create_keeps_the_recording_local_until_it_can(server, store, worker_for):
    rid = new_recording(store)
    stamps = add_segments(store, rid, 5)
    finish(store, rid)
    server.state.faults.create_unavailable = True
    worker = worker_for()
    assert worker.drain(0) is False
    assert store.get_recording(rid).server_id is None
    assert worker.pending() == {rid: (3, 5)}
    assert worker.status.blocked is None and "Recall.ai" in (worker.status.last_error or "")
    assert len(server.state.requests) == 1  # not retried
    assert worker.status.backoff_until[rid] - time.monotonic() > 590  # retried in minutes, not seconds
    worker.sync_pass()  # inside its back-off: nothing is sent
    assert len(server.state.requests) == 1
    server.state.faults.create_unavailable = False
    assert worker.drain(5)  # drain ignores the back-off
    assert_each_once_on_server(server, stamps)
    assert worker.status.last_error is None  # nothing fails now: the old reason would mislead


def test_a_long_server_wait_ends_drain_at_once_and_is_kept_as_the_back_off(server, store, worker_for):
    """A 429 asking for 100 s: the request is not retried inside (that held `record` for minutes,
    deaf to Ctrl-C); drain sees nothing can be retried before its deadline and returns."""
    rid = new_recording(store)
    add_segments(store, rid, 3)
    finish(store, rid)
    server.state.faults.throttle_next, server.state.faults.throttle_seconds = 10, 100
    clock = FakeClock()
    worker = worker_for(clock=clock)
    assert worker.drain(30) is False
    assert len(server.state.requests) == 1
    assert worker.status.backoff_until[rid] == clock.now + 100
    assert worker.pending() == {rid: (3, 3)}
    server.state.faults.throttle_next = 0
    assert worker.drain(30)  # nothing was lost meanwhile


def test_giving_up_ends_a_server_wait_in_progress(server, store):
    """A 429 asking for 9 s is waited out inside the request; the user giving up (a second
    Ctrl-C) ends that wait at once instead of after it."""
    rid = new_recording(store)
    finish(store, rid)
    server.state.faults.throttle_next, server.state.faults.throttle_seconds = 10, 9
    given_up, result = threading.Event(), []
    with PostHogClient(server.url, WRITE_KEY, 1, budget=RateBudget(10_000)) as client:  # real waits
        drain = threading.Thread(target=lambda: result.append(SyncWorker(store, client).drain(30, give_up=given_up)))
        drain.start()
        while not server.state.requests and drain.is_alive():
            time.sleep(0.01)
        given_up.set()
        drain.join(6)  # hangs for the rest of the 9 s if the wait ignores the user
        assert not drain.is_alive() and result == [False]
    assert len(server.state.requests) == 1
    assert store.pending_counts() == {rid: (3, 0)}  # still queued


def test_drain_stops_retrying_when_the_user_gives_up(server, store, worker_for):
    rid = new_recording(store)
    finish(store, rid)
    server.state.faults.fail_next = 10
    worker = worker_for()
    given_up = threading.Event()
    given_up.set()
    assert worker.drain(30, give_up=given_up) is False
    assert len(server.state.requests) == 1  # the 5xx was not retried, in the request or by drain
    assert worker.client.keep_retrying()  # and the client retries again outside drain
    assert worker.pending() == {rid: (3, 0)}


def test_live_recording_waits_for_a_full_batch_or_its_age(server, store, worker_for):
    clock = FakeClock()
    rid = new_recording(store)
    worker = worker_for(clock=clock)
    add_segments(store, rid, 5)
    worker.sync_pass()
    assert server.state.recordings and appended(server) == []
    clock.now += BATCH_MAX_AGE_S - 0.1
    worker.sync_pass()
    assert appended(server) == []
    clock.now += 0.1
    worker.sync_pass()
    assert [len(b) for b in appended(server)] == [5]
    add_segments(store, rid, 12, start=5)
    worker.sync_pass()  # a full batch goes at once
    assert [len(b) for b in appended(server)] == [5, 12]
    add_segments(store, rid, 3, start=17)
    worker.sync_pass()
    assert [len(b) for b in appended(server)] == [5, 12]


def test_a_queued_patch_waits_for_the_segments_stored_before_it(server, store, worker_for):
    clock = FakeClock()
    rid = new_recording(store)
    worker = worker_for(clock=clock)
    add_segments(store, rid, 5)
    store.set_status(rid, "processing")  # still live: segments keep batching
    worker.sync_pass()
    assert kinds(server) == ["create", "patch"]  # only the title: the status patch waits for the 5 segments
    clock.now += BATCH_MAX_AGE_S
    worker.sync_pass()
    assert kinds(server) == ["create", "patch", "append", "patch"]
    assert server.state.requests[-1][2] == {"status": "processing"}
    assert only_recording(server)["status"] == "processing"


def test_a_field_the_server_rejects_is_dropped_and_the_rest_applied(server, store, worker_for):
    rid = new_recording(store)
    (patch,) = [op for op in store.pending_ops(rid) if op.op == "patch"]
    store.replace_op_payload(patch.id, {"meeting_title": 42, "meeting_url": "not a url", "notes": "kept"})
    add_segments(store, rid, 2)
    finish(store, rid, title=None)
    assert worker_for().drain(5)
    patches = [body for method, _, body in server.state.requests if method == "PATCH"]
    assert len(patches) == 2
    assert patches[0]["meeting_title"] == 42 and "meeting_url" not in patches[0]  # clean_patch dropped the URL
    assert "meeting_title" not in patches[1] and patches[1]["notes"] == "kept"
    remote = only_recording(server)
    assert (remote["notes"], remote["status"], remote["meeting_url"]) == ("kept", "ready", None)
    assert store.pending_ops(rid) == []


def test_a_segment_the_server_rejects_is_skipped_and_the_rest_sent(server, store, worker_for):
    rid = new_recording(store)
    good = add_segments(store, rid, 2)
    store.add_segment(rid, start_ms=5000, end_ms=5500, source="mic", speaker=None, text="   ", confidence=None)
    good += add_segments(store, rid, 2, start=6)
    finish(store, rid)
    assert worker_for().drain(5)
    assert_each_once_on_server(server, good)
    assert only_recording(server)["status"] == "ready"


def test_wrong_project_id_blocks_new_recordings_and_never_drops_work(server, store, worker_for):
    """A wrong project id is a setting to fix: it must not look like a deleted recording."""
    rid = new_recording(store)
    stamps = add_segments(store, rid, 24)
    worker_for().sync_pass()
    add_segments(store, rid, 3, start=24)
    finish(store, rid)
    other = new_recording(store)
    add_segments(store, other, 2)
    finish(store, other)
    wrong = worker_for(project=42)  # e.g. `configure --project 42` by mistake
    assert not wrong.drain(0)
    assert wrong.status.blocked and "project id" in wrong.status.blocked
    assert store.get_recording(other).server_id is None and len(store.unsynced_segments(other, 10)) == 2
    assert store.get_recording(rid).remote_state != "deleted_on_server"
    # The first recording stays in the project it was created in, whatever the setting says now.
    assert store.get_recording(rid).server_project == "1"
    assert worker_for().drain(5)
    assert len(server.state.recordings) == 2
    first = server.state.recordings[store.get_recording(rid).server_id]
    assert len(first["transcript_segments"]) == len(stamps) + 3 and first["status"] == "ready"


def test_a_switch_of_the_users_current_project_mid_recording_loses_nothing(server, store, worker_for):
    """Set up with ``@current``, a recording stays in the project it was created in, even when
    looking that project up fails. After the user switches project in the web app, ``@current``
    would answer 404 and the lines not yet sent would be dropped as deleted there."""
    server.state.faults.only_path_contains = "users/@me"
    server.state.faults.fail_next = 1000  # every look-up fails
    worker = worker_for(project="@current")
    rid = new_recording(store)
    stamps = add_segments(store, rid, 12)
    assert worker.drain(0)
    server.state.team_id = 2
    stamps += add_segments(store, rid, 5, start=12)
    finish(store, rid)
    assert worker.drain(5)
    assert store.get_recording(rid).remote_state == "synced"
    assert_each_once_on_server(server, stamps)
    assert only_recording(server)["status"] == "ready" and only_recording(server)["team"] == 1


def test_create_whose_answer_was_lost_is_adopted_not_duplicated(server, store, worker_for):
    """kill -9 (or a dropped answer) after the server created the recording, before we stored its id."""
    rid = new_recording(store)
    add_segments(store, rid, 5)
    finish(store, rid)
    create = store.pending_ops(rid)[0]
    store.mark_attempt(create.id)  # what the worker commits before sending the create
    worker_for().client.create_recording("zoom")  # the server did create it; the answer never arrived
    someone_elses = worker_for().client.create_recording("zoom")  # a live recording of another device ...
    worker_for().client.update_recording(someone_elses.id, {"meeting_title": "Other device"})  # ... in use
    assert worker_for().drain(5)
    assert len(server.state.recordings) == 2  # adopted the orphan, created nothing new
    mine = server.state.recordings[store.get_recording(rid).server_id]
    assert mine["id"] != someone_elses.id and mine["status"] == "ready"
    assert len(mine["transcript_segments"]) == 5


def test_with_current_project_a_lost_create_asks_who_the_user_is_once(server, store, worker_for):
    """Pinning ``@current`` and telling our orphans from a colleague's both need users/@me."""
    rid = new_recording(store)
    finish(store, rid)
    store.mark_attempt(store.pending_ops(rid)[0].id)
    worker_for().client.create_recording("zoom")  # the answer never arrived
    assert worker_for(project="@current").drain(5)
    assert len(server.state.recordings) == 1
    assert [p for _m, p, _b in server.state.requests].count("/api/users/@me/") == 1


def outage_worker(server, store: Store) -> tuple[SyncWorker, Outage]:
    wire = Outage(int(server.url.rsplit(":", 1)[1]))
    client = PostHogClient(server.url, WRITE_KEY, 1, retry=RetryPolicy(max_attempts=2, base_delay_s=0.0),
                           budget=RateBudget(10_000), sleep=lambda s: None, transport=wire)
    return SyncWorker(store, client), wire


def test_a_create_lost_before_an_outage_is_still_looked_for_after_it(server, store, worker_for):
    """A create that never left clears only its own mark: the earlier one, whose answer was lost,
    still has its server copy adopted rather than a second one made."""
    rid = new_recording(store)
    add_segments(store, rid, 3)
    finish(store, rid)
    store.mark_attempt(store.pending_ops(rid)[0].id)
    lost = worker_for().client.create_recording("zoom")  # the answer never arrived
    worker, wire = outage_worker(server, store)
    with worker.client:
        assert worker.drain(30) is False  # two passes reach no one
        assert wire.tried.count("POST") == 0  # each looked for the lost create first (and could not)
        assert store.pending_ops(rid)[0].attempted_at is not None
        wire.over = True
        assert worker.drain(30)
    assert list(server.state.recordings) == [lost.id] and store.get_recording(rid).server_id == lost.id


def test_a_create_that_never_left_leaves_nothing_to_look_for(server, store):
    rid = new_recording(store)
    finish(store, rid)
    worker, wire = outage_worker(server, store)
    with worker.client:
        assert worker.drain(30) is False
        assert wire.tried == ["POST"] * 4  # two passes of the client's two attempts
        assert store.pending_ops(rid)[0].attempted_at is None
        assert store.request_delete(rid) is False  # nothing can be on the server: gone at once
    assert store.list_recordings() == []


def test_a_colleagues_untouched_recording_is_never_adopted_as_our_lost_one(server, store, worker_for):
    """The list is the whole team's: a colleague's recording started in the same minute, not yet
    titled or transcribed, looks like our orphan (and is closer in time here). Only ours is taken."""
    rid = new_recording(store)
    add_segments(store, rid, 5)
    finish(store, rid)
    create = store.pending_ops(rid)[0]
    store.mark_attempt(create.id)
    with server.state.lock:
        colleagues = PostHogState(server.state).new_recording("zoom")
        colleagues["created_by"] = 2
    ours = worker_for().client.create_recording("zoom")  # the answer never arrived
    assert worker_for().drain(5)
    assert store.get_recording(rid).server_id == ours.id
    assert colleagues["transcript_segments"] == [] and colleagues["status"] == "recording"


def test_deleting_a_recording_whose_create_answer_was_lost_deletes_the_server_copy(server, store, worker_for):
    """The create reached the server, its answer did not, and the user deleted the recording
    before the next sync: the copy the server made (empty, still "recording") goes too."""
    rid = new_recording(store)
    add_segments(store, rid, 2)
    finish(store, rid)
    store.mark_attempt(store.pending_ops(rid)[0].id)
    orphan = worker_for().client.create_recording("zoom")  # the answer never arrived
    colleagues = worker_for().client.create_recording("zoom")
    server.state.recordings[colleagues.id]["created_by"] = 2
    assert store.request_delete(rid)  # kept for the sync: there may be a copy there
    server.state.faults.only_path_contains = "desktop_recordings"
    server.state.faults.fail_next = 1  # the look-up for it fails once: the delete is tried again
    assert not worker_for().drain(0)
    assert store.get_recording(rid).remote_state == "deleting"
    assert worker_for().drain(5)
    assert orphan.id not in server.state.recordings and colleagues.id in server.state.recordings
    assert store.list_recordings() == []


def test_create_that_never_reached_the_server_is_sent_again(server, store, worker_for):
    rid = new_recording(store)
    finish(store, rid)
    server.state.faults.drop_next = 1
    assert not worker_for().drain(0)  # the answer (and the recording) were lost
    assert store.pending_ops(rid)[0].attempts == 1 and server.state.recordings == {}
    assert worker_for().drain(5)
    assert len(server.state.recordings) == 1


def test_delete_removes_the_server_copy_and_the_local_one(server, store, worker_for):
    synced, gone = new_recording(store), new_recording(store)
    for rid in (synced, gone):
        add_segments(store, rid, 2)
        finish(store, rid)
    assert worker_for().drain(5)
    never_synced = new_recording(store)
    server_ids = {rid: store.get_recording(rid).server_id for rid in (synced, gone)}
    del server.state.recordings[server_ids[gone]]  # someone deleted it in PostHog already
    assert [store.request_delete(rid) for rid in (synced, never_synced, gone)] == [True, False, True]
    assert never_synced not in {r.id for r in store.list_recordings()}  # nothing on the server: gone at once
    server.state.faults.fail_next = 10
    assert worker_for().drain(0) is False
    assert store.get_recording(synced).remote_state == "deleting"  # not back to "pending" by the failure
    server.state.faults.fail_next = 0
    before = len(server.state.requests)
    assert worker_for().drain(5)
    assert server.state.recordings == {}
    assert store.list_recordings() == [] and store.pending_counts() == {}
    deletes = [(m, p) for m, p, _ in server.state.requests[before:] if m == "DELETE"]
    assert len(deletes) == 2 and all(m == "DELETE" for m, _ in deletes)
    assert not [1 for m, _p, _b in server.state.requests[before:] if m == "POST"]  # never created to delete


def test_an_echo_line_restored_after_the_meeting_reaches_the_server(server, store, worker_for):
    rid = new_recording(store)
    stamps = add_segments(store, rid, 3)
    store.add_echo_segment(rid, start_ms=1500, end_ms=2400, text="my own words", speaker="Me", confidence=0.7,
                           audio_share=0.7, text_share=0.0)
    finish(store, rid)
    worker = worker_for()
    assert worker.drain(5)
    assert_each_once_on_server(server, stamps)  # left out: not sent
    (line,) = store.echo_segments(rid)
    store.restore_echo(line.id, speaker="Me")
    assert worker.drain(5)
    remote = only_recording(server)["transcript_segments"]
    assert sorted(s["timestamp"] for s in remote) == sorted([*stamps, 1500.0])
    assert {s["text"]: s["speaker"] for s in remote}["my own words"] == "Me"
    assert store.get_recording(rid).remote_state == "synced"


def test_a_final_sync_the_database_cannot_record_ends_with_a_message(server, store, worker_for, monkeypatch, capsys):
    """The disk fills at the very end of `record`: the server creates the recording but its id
    cannot be stored. The wait ends with what is pending and why, not a traceback; the next sync
    adopts the recording the server made and sends everything once."""
    from types import SimpleNamespace

    from desktop_recorder.cli import StopSignal
    from desktop_recorder.commands import _final_sync

    rid = new_recording(store)
    stamps = add_segments(store, rid, 3)
    finish(store, rid)

    def full(*_args: object, **_kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "set_server_id", full)
    assert _final_sync(SimpleNamespace(store=store), worker_for(), rid, StopSignal()) == 0  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert "Not synced yet (the local database cannot be written: database or disk is full)" in err, err
    assert "run 'desktop-recorder sync' later" in err
    monkeypatch.undo()
    assert worker_for().drain(5)
    assert_each_once_on_server(server, stamps)
    assert only_recording(server)["status"] == "ready"
