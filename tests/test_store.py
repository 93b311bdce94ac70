"""The SQLite store and outbox, and crash recovery (real SQLite, real files)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desktop_recorder.recovery import recover_interrupted
from desktop_recorder.store import Store, recording_lock


def new_store(tmp_path):
    (tmp_path / "data").mkdir(exist_ok=True)
    return Store(tmp_path / "data" / "db.sqlite3")


def add(store, rid, ms, source="mic", text="hi"):
    return store.add_segment(rid, start_ms=ms, end_ms=ms + 500, source=source, speaker=source, text=text,
                             confidence=0.9)


def test_colliding_start_times_get_unique_timestamps(tmp_path):
    store = new_store(tmp_path)
    rid = store.create_recording(platform="zoom", title="t", participants=[], audio_path=None).id
    stamps = [add(store, rid, 1500.0, src).timestamp_ms for src in ("mic", "system", "mic")]
    assert stamps == [1500.0, 1500.001, 1500.002]
    assert [s.timestamp_ms for s in store.segments(rid)] == stamps
    store.close()


def test_create_enqueues_create_then_title_patch_and_finish_patch_waits_for_segments(tmp_path):
    store = new_store(tmp_path)
    rid = store.create_recording(platform="zoom", title="Standup", participants=["A"], audio_path=None).id
    seg = add(store, rid, 10)
    store.finish_recording(rid, status="ready", duration_s=61.6, title="Standup", participants=["A", "B"])
    ops = store.pending_ops(rid)
    assert [o.op for o in ops] == ["create", "patch", "patch"]
    started = store.get_recording(rid).started_at  # the server's own start is when the create arrives
    assert ops[1].payload == {"participants": ["A"], "meeting_title": "Standup", "started_at": started}
    final = ops[2]
    assert final.payload["status"] == "ready" and final.payload["duration_seconds"] == 62
    assert final.payload["participants"] == ["A", "B"] and final.payload["completed_at"].endswith("Z")
    assert final.after_segment == seg.id
    assert store.pending_counts() == {rid: (3, 1)}
    store.close()


def test_store_survives_reopen(tmp_path):
    store = new_store(tmp_path)
    rid = store.create_recording(platform="zoom", title=None, participants=[], audio_path=None).id
    add(store, rid, 1)
    store.close()
    again = new_store(tmp_path)
    assert len(again.unsynced_segments(rid, 10)) == 1 and again.get_recording(rid).status == "recording"
    again.close()


def test_interrupted_recording_is_finalised_from_its_audio_file(tmp_path):
    store = new_store(tmp_path)
    wav = tmp_path / "data" / "a.wav"
    sf.write(wav, np.zeros((16000 * 7, 2), np.float32), 16000, subtype="PCM_16")
    rec = store.create_recording(platform="meet", title="x", participants=[], audio_path=str(wav))
    add(store, rec.id, 100, "system")
    recovered = recover_interrupted(store, tmp_path / "data")
    assert [r.id for r in recovered] == [rec.id]
    after = store.get_recording(rec.id)
    assert after.status == "ready" and round(after.duration_s) == 7
    assert store.pending_ops(rec.id)[-1].payload["participants"] == ["system"]
    store.close()


def test_recording_owned_by_a_live_process_is_left_alone_until_it_dies(tmp_path):
    store = new_store(tmp_path)
    rec = store.create_recording(platform="meet", title=None, participants=[], audio_path=None)
    lock_file = recording_lock(tmp_path / "data", rec.id).lock_file
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from filelock import FileLock; l = FileLock({lock_file!r}); l.acquire();"
                               " print('held', flush=True); import time; time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert recover_interrupted(store, tmp_path / "data") == []
        assert store.get_recording(rec.id).status == "recording"
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]
    recovered = recover_interrupted(store, tmp_path / "data")
    assert recovered[0].status == "error"  # the owner died and no audio was ever written
    assert "no audio" in store.pending_ops(rec.id)[-1].payload["error_message"]
    store.close()


def test_notes_summary_and_tasks_are_kept_and_the_newer_of_edit_and_server_copy_wins(tmp_path):
    store = new_store(tmp_path)
    rec = store.create_recording(platform="zoom", title=None, participants=[], audio_path=None)
    store.remember_details(rec.id, {"summary": "Server summary", "notes": None, "meeting_title": "ignored"},
                           "2026-01-01T10:00:00Z")
    assert store.get_recording(rec.id).details == {"summary": "Server summary", "notes": None}
    store.edit_recording(rec.id, {"notes": "Mine"})
    # A server copy fetched before the edit (older): the edit stays; its other fields are taken.
    store.remember_details(rec.id, {"notes": None, "summary": "Newer summary"}, "2026-01-01T10:05:00Z")
    assert store.get_recording(rec.id).details == {"summary": "Newer summary", "notes": "Mine"}
    # A server copy updated after the edit (someone changed the notes on the web): it wins.
    store.remember_details(rec.id, {"notes": "Edited on the web"}, "2999-01-01T00:00:00Z")
    assert store.get_recording(rec.id).details["notes"] == "Edited on the web"
    store.close()
    reopened = Store(tmp_path / "data" / "db.sqlite3")
    assert reopened.get_recording(rec.id).details["notes"] == "Edited on the web"
    reopened.close()


def older_database(tmp_path, *statements: str):
    """A database as an earlier version left it: today's schema, changed by ``statements``, with
    one recording 'a'."""
    path = tmp_path / "old.sqlite3"
    Store(path).close()
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.execute("INSERT INTO recordings (id, platform, status, started_at) VALUES ('a', 'zoom', 'ready', '2026')")
    db.commit()
    db.close()
    return path


def test_a_database_from_before_the_details_column_opens(tmp_path):
    store = Store(older_database(tmp_path, "ALTER TABLE recordings DROP COLUMN details"))
    assert store.get_recording("a").details == {}
    store.close()


def test_a_database_from_before_the_settled_time_opens_without_a_bound(tmp_path):
    store = Store(older_database(tmp_path, "ALTER TABLE recordings DROP COLUMN settled_ms"))
    assert store.get_recording("a").settled_ms is None
    store.close()


def test_a_database_from_before_unanswered_appends_were_kept_opens(tmp_path):
    store = Store(older_database(tmp_path, "ALTER TABLE recordings DROP COLUMN unanswered_at"))
    assert store.unanswered() == {}
    store.set_unanswered("a", 100.0)
    store.set_unanswered("a", 50.0)  # an older one never hides the later
    store.clear_unanswered("a", 99.0)  # the look after an earlier one leaves the later one to look for
    assert store.unanswered() == {"a": 100.0}
    store.clear_unanswered("a", 100.0)
    assert store.unanswered() == {}
    store.close()


def test_an_echo_line_restored_moves_into_the_transcript_once(tmp_path):
    store = new_store(tmp_path)
    rid = store.create_recording(platform="zoom", title="t", participants=[], audio_path=None).id
    add(store, rid, 1000.0, "system", "ask not what your country")
    store.add_echo_segment(rid, start_ms=1000.0, end_ms=2500.0, text="ask not what your country", speaker="Me",
                           confidence=0.8, audio_share=0.9, text_share=1.0)
    (line,) = store.echo_segments(rid)
    assert (line.timestamp_ms, line.text, line.speaker) == (1000.0, "ask not what your country", "Me")
    restored = store.restore_echo(line.id, speaker="Someone else")
    assert (restored.source, restored.speaker, restored.confidence, restored.synced) == ("mic", "Me", 0.8, False)
    assert restored.timestamp_ms == 1000.001  # the system line holds 1000.0: timestamps stay unique
    assert store.echo_segments(rid) == []
    assert [(s.timestamp_ms, s.text) for s in store.restored_segments(rid)] == [(1000.001, "ask not what your country")]
    assert [s.text for s in store.unsynced_segments(rid, 10)] == ["ask not what your country"] * 2
    with pytest.raises(KeyError):  # restored twice: not added twice
        store.restore_echo(line.id, speaker="Me")
    assert len(store.segments(rid)) == 2
    store.close()


def test_restoring_several_echo_lines_reports_those_already_put_back(tmp_path):
    store = new_store(tmp_path)
    rid = store.create_recording(platform="zoom", title="t", participants=[], audio_path=None).id
    for start, text in ((1000.0, "first"), (3000.0, "second"), (5000.0, "third")):
        store.add_echo_segment(rid, start_ms=start, end_ms=start + 900, text=text, speaker="Me",
                               confidence=0.8, audio_share=0.9, text_share=1.0)
    first, second, third = store.echo_segments(rid)
    store.restore_echo(second.id, speaker="Me")  # by another window meanwhile
    assert store.restore_echoes([first.id, second.id, first.id, third.id], speaker="Me") == [second.id]
    assert [s.text for s in store.restored_segments(rid)] == ["first", "second", "third"]  # each once
    assert store.echo_segments(rid) == []
    store.close()


def test_a_database_from_before_restored_lines_were_marked_opens_and_marks_them(tmp_path):
    path = older_database(tmp_path, "ALTER TABLE segments DROP COLUMN restored")
    db = sqlite3.connect(path)
    db.execute("INSERT INTO segments (recording_id, timestamp_ms, end_ms, source, speaker, text) "
               "VALUES ('a', 500, 900, 'mic', 'Me', 'kept live')")
    db.execute("INSERT INTO echo_segments (recording_id, timestamp_ms, end_ms, text, audio_share, text_share) "
               "VALUES ('a', 1500, 1900, 'left out', 0.9, 1.0)")
    db.commit()
    db.close()
    store = Store(path)
    assert store.restored_segments("a") == []
    (line,) = store.echo_segments("a")
    store.restore_echo(line.id, speaker="Me")
    assert [s.text for s in store.restored_segments("a")] == ["left out"]
    store.close()


def test_echo_lines_stored_before_speakers_were_kept_open_and_restore_with_the_given_name(tmp_path):
    path = older_database(tmp_path, "ALTER TABLE echo_segments DROP COLUMN speaker",
                          "ALTER TABLE echo_segments DROP COLUMN confidence")
    db = sqlite3.connect(path)
    db.execute("INSERT INTO echo_segments (recording_id, timestamp_ms, end_ms, text, audio_share, text_share) "
               "VALUES ('a', 500, 900, 'hello', NULL, 0.8)")
    db.commit()
    db.close()
    store = Store(path)
    (line,) = store.echo_segments("a")
    assert line.speaker is None
    assert store.restore_echo(line.id, speaker="Me").speaker == "Me"
    store.close()


def test_a_live_line_is_stored_once_even_when_showing_it_fails(tmp_path):
    """The line is stored, then shown; a failing listener (a terminal gone, stdout a pipe whose
    reader left) must neither leave it queued, to be stored again with the next line, nor stop
    the lines after it (transcription used to stop for the rest of the meeting)."""
    from desktop_recorder.session import FinalLine, RecordingSession, SessionOptions
    from transcription.types import FinalSegment

    store = Store(tmp_path / "db.sqlite3")
    shown: list[str] = []

    def on_event(event: object) -> None:
        if isinstance(event, FinalLine):
            shown.append(event.segment.text)
            if len(shown) == 1:
                raise OSError("the terminal is gone")

    session = RecordingSession(store=store, data_dir=tmp_path, transcriber=None, scorer_factory=None,  # type: ignore[arg-type]
                               options=SessionOptions(), on_event=on_event)
    session.recording = store.create_recording(platform="meet", title=None, participants=[], audio_path=None)
    session._commit(FinalSegment("system", 0.0, 900.0, "Hello", 0.9))  # not raised to the transcription loop
    session._commit(FinalSegment("system", 1000.0, 1900.0, "Again", 0.9))
    assert [s.text for s in store.segments(session.recording.id)] == ["Hello", "Again"]
    assert shown == ["Hello", "Again"]
    store.close()


def session_without_an_audio_folder(store: Store, data_dir: Path):
    """A session on one fake device whose audio file cannot be made: a file is where the audio
    folder should be."""
    from desktop_recorder.session import RecordingSession, SessionOptions
    from recorder.devices import InputDevice

    (data_dir / "audio").write_text("not a folder")
    session = RecordingSession(store=store, data_dir=data_dir, transcriber=None, scorer_factory=lambda: None,  # type: ignore[arg-type]
                               options=SessionOptions(), on_event=lambda event: None)
    device = InputDevice("fake", "Fake", "system", "portaudio", 16000, portaudio_index=0)
    session.resolve_devices = lambda: {"system": device}  # type: ignore[method-assign]
    return session


def test_a_recording_whose_audio_file_cannot_be_made_is_finished_as_an_error(tmp_path):
    """The audio folder cannot be written: the recording is not left "live" for a later
    recovery, and its lock is released."""
    store = Store(tmp_path / "db.sqlite3")
    session = session_without_an_audio_folder(store, tmp_path)
    with pytest.raises(OSError):
        session.start()
    [rec] = store.list_recordings()
    assert rec.status == "error"
    assert session._lock is not None and not session._lock.is_locked
    store.close()


def test_a_recording_is_locked_before_it_is_stored(tmp_path, monkeypatch):
    """A recovery (the tray starting, a `sync`) takes every unlocked live recording for one whose
    recorder was killed: a recording just starting must never be one."""
    from desktop_recorder.store import is_owned

    store = Store(tmp_path / "db.sqlite3")
    create = store.create_recording
    owned_when_stored: list[bool] = []

    def spy(**kwargs: object) -> object:
        rec = create(**kwargs)  # type: ignore[arg-type]
        owned_when_stored.append(is_owned(tmp_path, rec.id))
        return rec

    monkeypatch.setattr(store, "create_recording", spy)
    session = session_without_an_audio_folder(store, tmp_path)
    with pytest.raises(OSError):
        session.start()
    assert owned_when_stored == [True]
    assert not is_owned(tmp_path, store.list_recordings()[0].id)  # released after the failed start
    store.close()


def test_a_failed_start_releases_the_lock_even_when_the_database_is_full_too(tmp_path, monkeypatch):
    """On a full disk marking the failed recording can fail as well: the lock is released anyway
    (the next recovery finishes the recording) and the user hears the first error, not the second."""
    store = Store(tmp_path / "db.sqlite3")

    def full(*_args: object, **_kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "finish_recording", full)
    session = session_without_an_audio_folder(store, tmp_path)
    with pytest.raises(OSError):
        session.start()
    assert session._lock is not None and not session._lock.is_locked
    store.close()


def test_search_matches_the_transcript_as_the_server_would(tmp_path):
    """Case-insensitively (beyond ASCII), across the space between two lines in time order, and
    only in that recording's lines."""
    store = new_store(tmp_path)
    first = store.create_recording(platform="meet", title=None, participants=[], audio_path=None)
    other = store.create_recording(platform="meet", title=None, participants=[], audio_path=None)
    for start, text in ((4000, "Über das Budget"), (0, "Zuerst"), (2000, "reden wir")):  # stored out of order
        store.add_segment(first.id, start_ms=start, end_ms=start + 1500, source="mic", speaker="Me", text=text,
                          confidence=0.9)
    store.add_segment(other.id, start_ms=0, end_ms=1500, source="mic", speaker="Me", text="Zuerst", confidence=0.9)

    assert store.transcripts_containing("wir über") == {first.id}
    assert store.transcripts_containing("ZUERST") == {first.id, other.id}
    assert store.transcripts_containing("budget zuerst") == set()
    assert store.transcripts_containing("meet") == set()
    store.close()


def test_deleting_a_recording_removes_its_lock_files(tmp_path):
    """Released locks stay on disk as empty files on POSIX: two per recording, for ever, unless
    the recording's deletion takes them."""

    store = Store(tmp_path / "db.sqlite3")
    kept, gone, never_sent = (store.create_recording(platform="zoom", title=t, participants=[], audio_path=None).id
                              for t in ("kept", "gone", "never sent"))
    for rid in (kept, gone, never_sent):
        for lock in (recording_lock(tmp_path, rid), store.sending_lock(rid)):
            with lock:
                pass
    store.remove_recording(gone)
    assert store.request_delete(never_sent) is False
    assert sorted(p.name for p in (tmp_path / "locks").iterdir()) == [f"{kept}.lock", f"{kept}.sending.lock"]
    store.close()


def test_a_full_database_says_it_is_full_and_takes_writes_again_once_there_is_room(tmp_path):
    """SQLite rolls a transaction back by itself when the disk is full; rolling back again
    raised "cannot rollback - no transaction is active" in place of the reason."""
    store = Store(tmp_path / "db.sqlite3")
    rid = store.create_recording(platform="zoom", title="Standup", participants=[], audio_path=None).id
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL, as on a full disk
    with pytest.raises(sqlite3.OperationalError, match="full"):
        store.edit_recording(rid, {"notes": "x" * 500_000})
    store._db.execute("PRAGMA max_page_count = 1073741823")
    store.edit_recording(rid, {"notes": "room again"})
    assert store.get_recording(rid).details["notes"] == "room again"
    store.close()


@pytest.mark.parametrize(("mic", "system", "kept"), [
    ("meet_speakers.monitor", "auto", "system"),  # the loopback picked as the microphone too
    ("auto", "meet_mic", "mic"),  # the microphone picked as the system audio too
])
def test_one_input_chosen_for_both_sources_is_recorded_once(tmp_path, mic, system, kept):
    """Recorded twice, every line of it was heard twice (and the mic's copy taken for echo)."""
    from desktop_recorder.session import Notice, RecordingSession, SessionOptions
    from recorder.devices import DeviceTable, InputDevice

    inputs = (InputDevice("meet_mic", "Meeting mic", "mic", "pulse", 48000, is_default=True),
              InputDevice("meet_speakers.monitor", "Monitor of Meeting speakers", "system", "pulse", 48000))
    told: list[object] = []
    session = RecordingSession(store=None, data_dir=tmp_path, transcriber=None, scorer_factory=None,  # type: ignore[arg-type]
                               options=SessionOptions(mic=mic, system=system), on_event=told.append,
                               table_factory=lambda: DeviceTable(inputs, "meet_mic", "meet_speakers.monitor", "test"))
    devices = session.resolve_devices()
    assert list(devices) == [kept]
    assert [n.message for n in told if isinstance(n, Notice) and n.level == "warning"] == [
        f"The microphone and the system audio are the same input ({devices[kept].label}): recorded once, as the "
        f"{'system audio' if kept == 'system' else 'microphone'}."]
    session = RecordingSession(store=None, data_dir=tmp_path, transcriber=None, scorer_factory=None,  # type: ignore[arg-type]
                               options=SessionOptions(), on_event=told.append,
                               table_factory=lambda: DeviceTable(inputs, "meet_mic", "meet_speakers.monitor", "test"))
    assert list(session.resolve_devices()) == ["mic", "system"]  # two inputs: both
