"""A recording whose process died: the speech it saved after its last line is transcribed (real
model, real speech, real SQLite), the mic's echo of the system audio left out as live."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from desktop_recorder.recovery import recover_interrupted, transcribe_tail
from desktop_recorder.store import Store
from recorder.wavfile import StereoWavWriter
from tests.conftest import JFK_TEXT, normalize, wer
from tests.test_refine import speech

SR = 16_000
pytestmark = pytest.mark.slow


def interrupted(store: Store, folder: Path, mic: np.ndarray, system: np.ndarray) -> str:
    """A recording left "recording" by a dead process, its WAV holding ``mic`` left, ``system`` right."""
    rec = store.create_recording(platform="zoom", title="Killed", participants=[], audio_path=None)
    wav = folder / f"{rec.id}.wav"
    writer = StereoWavWriter(wav)
    for i in range(0, len(system), SR):
        writer.write(mic[i:i + SR], system[i:i + SR])
    writer.close()
    store.set_audio_path(rec.id, str(wav))
    return rec.id


@pytest.fixture
def store(tmp_path):
    (tmp_path / "data").mkdir()
    s = Store(tmp_path / "data" / "recorder.sqlite3")
    yield s
    s.close()


def test_speech_after_the_last_line_becomes_final_lines_once(tmp_path, store, model):
    jfk = speech("jfk")
    rid = interrupted(store, tmp_path, np.zeros_like(jfk), jfk)
    words = [w for seg in model.transcribe(jfk, word_timestamps=True) for w in seg.words]
    cut = next(w for w in words if normalize(w.text) == "americans")  # the line finalised before the kill
    store.add_segment(rid, start_ms=300, end_ms=cut.end_s * 1000, source="system", speaker="Others",
                      text="And so my fellow Americans,", confidence=0.9)

    heard: list[tuple[str, float]] = []
    recovered = recover_interrupted(store, tmp_path / "data", lambda: model,
                                    progress=lambda r, done: heard.append((r, done)))

    assert [r.id for r in recovered] == [rid] and recovered[0].status == "ready"
    assert {r for r, _ in heard} == {rid} and heard[-1][1] == 1.0  # minutes for a long meeting: it says how far
    assert [done for _, done in heard] == sorted(done for _, done in heard) and heard[0][1] < 1.0
    lines = store.segments(rid)
    assert len(lines) > 1
    assert all(s.timestamp_ms >= cut.end_s * 1000 and s.speaker == "Others" for s in lines[1:])
    assert wer(JFK_TEXT, " ".join(s.text for s in lines)) <= 0.1  # the rest, and the first words not twice
    assert len(store.unsynced_segments(rid, 100)) == len(lines)  # all of it goes to the server
    assert transcribe_tail(store, model, store.get_recording(rid)) == 0  # nothing is left after them


def test_the_tail_starts_where_the_recording_had_settled(tmp_path, store, model):
    """Every line starting before the settled time was stored: speech there without a line was
    dropped live, and a line from there would be appended after later ones the server has."""
    jfk = speech("jfk")
    rid = interrupted(store, tmp_path, jfk, np.zeros_like(jfk))
    words = [w for seg in model.transcribe(jfk, word_timestamps=True) for w in seg.words]
    cut = next(w for w in words if normalize(w.text) == "americans")
    store.set_settled(rid, cut.end_s * 1000)

    recover_interrupted(store, tmp_path / "data", lambda: model)

    lines = store.segments(rid)
    assert lines and all(s.timestamp_ms >= cut.end_s * 1000 and s.source == "mic" for s in lines)
    heard = " ".join(s.text for s in lines)
    assert wer(JFK_TEXT.split("Americans,")[1], heard) <= 0.15, heard


def test_the_mics_echo_in_the_tail_is_left_out_as_live(tmp_path, store, model):
    jfk = speech("jfk")
    rid = interrupted(store, tmp_path, 0.5 * jfk, jfk)  # laptop speakers: the mic hears the far end

    recover_interrupted(store, tmp_path / "data", lambda: model)

    lines = store.segments(rid)
    assert {s.source for s in lines} == {"system"}
    assert wer(JFK_TEXT, " ".join(s.text for s in lines)) <= 0.1
    assert store.echo_segments(rid)  # kept where `echo` can put them back


def test_while_both_tails_are_stored_none_of_their_lines_can_be_sent(tmp_path, store, model):
    """The system side is stored first: a sync meanwhile (the app's, beside a CLI `sync`) must
    not append its lines before earlier mic lines, even when the recorder had already said that
    every line may go (it died after that, at stop)."""
    jfk, left = speech("jfk"), speech("left")
    system = np.concatenate([np.zeros(len(left), np.float32), jfk])
    mic = np.concatenate([left, np.zeros(len(jfk), np.float32)])  # the mic spoke first
    rid = interrupted(store, tmp_path, mic, system)
    assert store.get_recording(rid).settled_ms is None
    sendable: list[int] = []

    class Watched:
        def transcribe_file(self, audio, *, on_segment, **options):
            def stored(seg):
                on_segment(seg)
                sendable.append(store.pending_counts(sendable=True).get(rid, (0, 0))[1])
            return model.transcribe_file(audio, on_segment=stored, **options)

    recover_interrupted(store, tmp_path / "data", lambda: Watched())
    lines = store.segments(rid)
    assert {s.source for s in lines} == {"mic", "system"} and len(sendable) >= len(lines)
    assert not any(sendable)  # held until the recording is finished
    assert store.pending_counts(sendable=True)[rid][1] == len(lines)  # then all of them, in time order


def test_without_a_model_the_recording_is_still_finalised(tmp_path, store):
    jfk = speech("jfk")
    rid = interrupted(store, tmp_path, np.zeros_like(jfk), jfk)
    recovered = recover_interrupted(store, tmp_path / "data", lambda: None)
    assert recovered[0].status == "ready" and round(recovered[0].duration_s or 0) == 11
    assert store.segments(rid) == []
    # it ended when its audio did, not when it was recovered (`sync` may run days later)
    started, ended = (datetime.fromisoformat(t) for t in (recovered[0].started_at, recovered[0].completed_at))
    assert abs((ended - started).total_seconds() - recovered[0].duration_s) < 0.002


def test_two_recoveries_at_once_add_the_tail_once(tmp_path, store, model):
    """The tray app recovering in the background while `sync` runs in a terminal."""
    jfk = speech("jfk")
    rid = interrupted(store, tmp_path, np.zeros_like(jfk), jfk)
    inside, go = threading.Event(), threading.Event()

    class Slow:
        def transcribe_file(self, audio, **options):
            inside.set()
            go.wait(30)
            return model.transcribe_file(audio, **options)

    first = threading.Thread(target=recover_interrupted, args=(store, tmp_path / "data", Slow))
    first.start()
    try:
        assert inside.wait(30)
        other = Store(tmp_path / "data" / "recorder.sqlite3")  # another process's connection
        try:
            assert recover_interrupted(other, tmp_path / "data", lambda: model) == []
        finally:
            other.close()
    finally:
        go.set()
        first.join(60)
    texts = [s.text for s in store.segments(rid)]
    assert len(texts) == len(set(texts)) and wer(JFK_TEXT, " ".join(texts)) <= 0.1, texts
    assert store.get_recording(rid).status == "ready"
