"""End to end, as a user runs it: `desktop-recorder record` on real virtual devices, the real
model, and the local PostHog server; plus the offline and killed-process paths."""

from __future__ import annotations

import json
import re
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import JFK_TEXT, LEFT_TEXT, cli_env, normalize, run_cli, wer
from tests.recording import Recorder, local_segments, only_local_recording, only_recording, play, said_by

pytestmark = [pytest.mark.slow, pytest.mark.audio]


def test_record_transcribes_both_sources_and_syncs(audio_rig, server, app_home, playable):
    rec = Recorder(["--duration", "20", "--title", "Weekly sync", "--participant", "Alice",
                    "--participant", "Bob", "--platform", "zoom"], cli_env(app_home, server))
    rec.wait_recording()
    time.sleep(1.0)
    played_system_at = time.monotonic() - rec.started_at
    play(playable["jfk"], "meet_speakers").wait()
    time.sleep(0.5)
    played_mic_at = time.monotonic() - rec.started_at
    play(playable["left"], "meet_mic_in").wait()
    code, out, err = rec.finish()
    assert code == 0, err

    remote = only_recording(server)
    segs = remote["transcript_segments"]
    others = " ".join(s["text"] for s in segs if s["speaker"] == "Others")
    alice = " ".join(s["text"] for s in segs if s["speaker"] == "Alice")
    assert wer(JFK_TEXT, others) <= 0.1, others
    assert wer(LEFT_TEXT, alice) <= 0.35, alice
    timestamps = [s["timestamp"] for s in segs]
    assert len(set(timestamps)) == len(timestamps)
    assert timestamps == sorted(timestamps)  # appended in time order: transcript_text reads in order
    assert all(0 <= t <= 20_000 for t in timestamps)
    first_system = min(s["timestamp"] for s in segs if s["speaker"] == "Others")
    first_mic = min(s["timestamp"] for s in segs if s["speaker"] == "Alice")
    # The recording clock starts shortly before "Recording" is printed; speech starts ~0.3 s in.
    assert played_system_at * 1000 - 500 <= first_system <= played_system_at * 1000 + 2000
    assert played_mic_at * 1000 - 500 <= first_mic <= played_mic_at * 1000 + 2000
    assert all(s["is_final"] is True and 0 <= s["confidence"] <= 1 for s in segs)
    assert remote["status"] == "ready"
    assert abs(remote["duration_seconds"] - 20) <= 2
    assert remote["participants"] == ["Alice", "Bob"]
    assert remote["meeting_title"] == "Weekly sync"
    assert remote["platform"] == "zoom"
    assert remote["completed_at"]
    # The CLI printed the committed lines as `[mm:ss] Speaker: text`.
    assert "] Others: " in out and "] Alice: " in out
    assert normalize(remote["transcript_text"]) == normalize(" ".join(s["text"] for s in segs))
    # Batched, not one request per segment, and nothing appended empty.
    appends = [b for m, p, b in server.state.requests if p.endswith("append_segments/")]
    assert appends and all(b["segments"] for b in appends)

    listed = json.loads(run_cli("list", "--json", env=cli_env(app_home, server)).stdout)
    assert listed[0]["server_id"] == remote["id"] and listed[0]["sync_state"] == "synced"
    assert listed[0]["pending_operations"] == 0 and listed[0]["pending_segments"] == 0


def test_offline_recording_syncs_later(audio_rig, server, app_home, playable):
    """No host configured: records locally; once PostHog is configured, `sync` pushes it."""
    rec = Recorder(["--duration", "14", "--system", "auto", "--mic", "none"], cli_env(app_home, None))
    rec.wait_recording()
    time.sleep(0.5)
    play(playable["jfk"], "meet_speakers").wait()
    code, _out, err = rec.finish()
    assert code == 0, err
    assert "sync is off" in err
    assert server.state.recordings == {}

    result = run_cli("sync", env=cli_env(app_home, server))
    assert result.returncode == 0, result.stderr
    remote = only_recording(server)
    assert remote["status"] == "ready"
    assert wer(JFK_TEXT, remote["transcript_text"]) <= 0.1
    assert remote["participants"] == ["Others"]


def test_unreachable_server_exits_in_bounded_time_with_recording_safe(audio_rig, app_home, playable):
    env = cli_env(app_home, None)
    env.update(POSTHOG_HOST="http://127.0.0.1:9", POSTHOG_PERSONAL_API_KEY="phx_x")  # nothing listens on 9
    rec = Recorder(["--duration", "3", "--mic", "none"], env)
    rec.wait_recording()
    started = time.monotonic()
    code, _out, err = rec.finish(timeout=120)
    assert code == 0, err
    assert time.monotonic() - started < 60
    assert "Not synced yet (Cannot reach PostHog at http://127.0.0.1:9" in err and "desktop-recorder sync" in err
    assert err.count("failed (Cannot reach PostHog") == 1, err  # said once, not at every retry
    listed = json.loads(run_cli("list", "--json", env=env).stdout)
    assert listed[0]["status"] == "ready" and listed[0]["server_id"] is None
    assert listed[0]["pending_operations"] >= 1
    assert run_cli("sync", env=env, timeout=120).returncode == 1


def test_killed_recorder_is_finalised_by_sync(audio_rig, server, app_home, playable):
    """kill -9 mid-meeting: `desktop-recorder sync` finalises it as ready with the real duration."""
    rec = Recorder(["--mic", "none"], cli_env(app_home, server))
    rec.wait_recording()
    time.sleep(0.5)
    play(playable["jfk"], "meet_speakers").wait()
    time.sleep(3.0)  # the last utterance is final and its batch is due
    rec.proc.send_signal(signal.SIGKILL)
    rec.finish()
    killed_after = time.monotonic() - rec.started_at

    result = run_cli("sync", env=cli_env(app_home, server))
    assert result.returncode == 0, result.stderr
    assert "Recovered an interrupted recording" in result.stderr
    remote = only_recording(server)
    assert remote["status"] == "ready"
    assert abs(remote["duration_seconds"] - killed_after) <= 3
    assert wer(JFK_TEXT, remote["transcript_text"]) <= 0.1, remote["transcript_text"]
    timestamps = [s["timestamp"] for s in remote["transcript_segments"]]
    assert len(set(timestamps)) == len(timestamps)


def test_sigterm_finalises_gracefully(audio_rig, server, app_home):
    rec = Recorder(["--mic", "none"], cli_env(app_home, server))
    rec.wait_recording()
    time.sleep(2.0)
    rec.proc.send_signal(signal.SIGTERM)
    code, _out, err = rec.finish()
    assert code == 0, err
    assert "Stopping (SIGTERM)" in err
    remote = only_recording(server)
    assert remote["status"] == "ready" and remote["duration_seconds"] >= 1


def test_closing_the_terminal_finalises_the_recording(audio_rig, server, app_home):
    """SIGHUP with the terminal gone: every write to it fails, and stopping writes ("Stopping…",
    the tail's lines). Here the pipes are closed before the signal, as a closed terminal's are."""
    proc = subprocess.Popen([sys.executable, "-m", "desktop_recorder", "record", "--mic", "none"],
                            env=cli_env(app_home, server), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        for line in proc.stderr:
            if line.startswith("Recording "):
                break
        time.sleep(1.0)
    finally:
        proc.stdout.close()
        proc.stderr.close()
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(120) == 0
    remote = only_recording(server)
    assert remote["status"] == "ready" and remote["duration_seconds"] >= 1


def test_a_second_ctrl_c_stops_waiting_for_the_server(audio_rig, server, app_home):
    """The server keeps answering 429 (retry in 5 s): a second Ctrl-C ends the final wait; the
    recording stays queued locally."""
    server.state.faults.throttle_next, server.state.faults.throttle_seconds = 10_000, 5
    env = cli_env(app_home, server)
    rec = Recorder(["--mic", "none"], env)
    rec.wait_recording()
    time.sleep(1.0)
    rec.proc.send_signal(signal.SIGINT)
    for _ in range(600):
        if any(line.startswith("Waiting up to") for line in rec.stderr):
            break
        time.sleep(0.1)
    else:
        rec.proc.kill()
        rec.finish()
        pytest.fail("never started waiting for the server:\n" + "".join(rec.stderr))
    rec.proc.send_signal(signal.SIGINT)
    code, _out, err = rec.finish(timeout=20)  # the wait would otherwise go on for 30 s
    assert code == 0, err
    assert "Not synced yet" in err and "throttled" in err
    server.state.faults.throttle_next = 0
    assert run_cli("sync", env=env).returncode == 0
    assert only_recording(server)["status"] == "ready"


def is_the_final_patch(method: str, _path: str, body: object) -> bool:
    """For the server's ``faults.hold``: the PATCH that finishes a recording."""
    return method == "PATCH" and isinstance(body, dict) and body.get("status") == "ready"


def test_a_second_ctrl_c_ends_the_wait_in_the_middle_of_a_request(audio_rig, server, app_home):
    """The server takes the final PATCH but does not answer (the client would wait its 20 s read
    timeout, then retry): a second Ctrl-C ends the wait at once; the next sync finishes."""
    faults = server.state.faults
    faults.hold = is_the_final_patch
    env = cli_env(app_home, server)
    rec = Recorder(["--mic", "none"], env)
    rec.wait_recording()
    time.sleep(1.0)
    rec.proc.send_signal(signal.SIGINT)
    if not faults.held.wait(60):
        rec.proc.kill()
        rec.finish()
        pytest.fail("the recorder never sent the final PATCH:\n" + "".join(rec.stderr))
    rec.proc.send_signal(signal.SIGINT)
    try:
        code, _out, err = rec.finish(timeout=10)  # not the read timeout and its retries
    finally:
        faults.release.set()
    assert code == 0, err
    assert "Not synced yet (you stopped waiting)" in err and "Traceback" not in err, err
    assert run_cli("sync", env=env).returncode == 0
    assert only_recording(server)["status"] == "ready"


def test_a_ctrl_c_before_the_wait_is_offered_does_not_skip_the_final_sync(audio_rig, server, app_home, playable):
    """An impatient second Ctrl-C while the tail is transcribed comes before "Ctrl-C again to
    stop waiting" is offered: it answers neither that offer nor the skip of the pass after it
    (--refine), so the final sync waits for the server (which answers the final PATCH after a second)."""
    faults = server.state.faults
    faults.hold = is_the_final_patch
    rec = Recorder(["--mic", "none", "--refine"], cli_env(app_home, server))
    rec.wait_recording()
    play(playable["jfk"], "meet_speakers").wait()
    rec.proc.send_signal(signal.SIGINT)
    wait_for_line(rec, "Stopping (SIGINT)")
    rec.proc.send_signal(signal.SIGINT)
    held = faults.held.wait(60)
    time.sleep(1.0)  # longer than a given-up wait lasts
    faults.release.set()
    code, _out, err = rec.finish()
    assert held, err
    assert code == 0, err
    assert "Synced to PostHog" in err and "you stopped waiting" not in err, err
    assert "Refined transcript:" in err and "Refining skipped" not in err, err
    assert only_recording(server)["status"] == "ready"


def test_speech_not_yet_final_when_killed_is_transcribed_by_the_next_sync(audio_rig, server, app_home, playable):
    """kill -9 as the speaker finishes: the last sentence is in the saved audio but was never
    decoded; `sync` transcribes it before finalising the recording."""
    env = cli_env(app_home, server)
    rec = Recorder(["--mic", "none"], env)
    rec.wait_recording()
    time.sleep(0.5)
    play(playable["jfk"], "meet_speakers").wait()
    rec.proc.send_signal(signal.SIGKILL)
    rec.finish()

    result = run_cli("sync", env=env)
    assert result.returncode == 0, result.stderr
    remote = only_recording(server)
    assert remote["status"] == "ready"
    assert wer(JFK_TEXT, remote["transcript_text"]) <= 0.1, remote["transcript_text"]
    timestamps = [s["timestamp"] for s in remote["transcript_segments"]]
    assert len(set(timestamps)) == len(timestamps)


def wait_for_line(rec: Recorder, text: str, timeout_s: float = 90) -> None:
    for _ in range(int(timeout_s * 10)):
        if any(text in line for line in rec.stderr):
            return
        time.sleep(0.1)
    rec.proc.kill()
    rec.finish()
    pytest.fail(f"never printed {text!r}:\n" + "".join(rec.stderr))


def test_lines_wait_for_a_full_disk_to_have_room(audio_rig, server, app_home, playable, model):
    """The recorder can write no file while JFK is said (its file-size limit is 1 byte: every
    write fails as on a full disk): the transcript lines and the audio wait in memory, then are
    stored and synced once writing works again. The log file's failures are one line, not
    tracebacks."""
    rec = Recorder(["--mic", "none"], cli_env(app_home, server))
    rec.wait_recording()
    resource.prlimit(rec.proc.pid, resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
    play(playable["jfk"], "meet_speakers").wait()
    wait_for_line(rec, "Transcript lines cannot be saved")
    assert local_segments(app_home) == []
    resource.prlimit(rec.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    wait_for_line(rec, "The transcript lines that were waiting are saved.")
    rec.proc.send_signal(signal.SIGINT)
    code, _out, err = rec.finish()
    assert code == 0, err
    assert "Synced to PostHog" in err
    assert wer(JFK_TEXT, said_by(local_segments(app_home), "Others")) <= 0.1
    assert wer(JFK_TEXT, " ".join(s["text"] for s in only_recording(server)["transcript_segments"])) <= 0.1
    assert "Traceback" not in err and "Logging error" not in err, err
    assert err.count("cannot write the log file") == 1
    assert "Cannot write the audio file" in err and "The audio file is written again; no audio was lost." in err
    recording = only_local_recording(app_home)
    audio, rate = sf.read(recording.audio_path, dtype="float32")
    assert rate == 16000 and abs(len(audio) / rate - (recording.duration_s or 0)) < 0.5  # no gap, nothing twice
    heard = " ".join(seg.text for seg in model.transcribe_file(np.ascontiguousarray(audio[:, 1])))
    assert wer(JFK_TEXT, heard) <= 0.1  # what was said while the disk was full is in the file


def test_a_recording_whose_audio_file_cannot_be_made_ends_with_a_clear_error(audio_rig, app_home):
    """The audio folder refuses new files (here it is a folder of /proc): `record` says why, exits
    2 without a traceback, and the recording is finished as an error, not left live."""
    (app_home / "data").mkdir(parents=True)
    (app_home / "data" / "audio").symlink_to("/proc/self/fdinfo")
    result = run_cli("record", "--mic", "none", "--duration", "5", env=cli_env(app_home, None))
    assert result.returncode == 2, result.stderr
    assert "error: cannot start the recording: [Errno 2] No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    recording = only_local_recording(app_home)
    assert recording.status == "error" and recording.completed_at is not None


def test_stopping_while_the_disk_is_still_full_says_what_is_lost_and_sync_finishes_later(
        audio_rig, server, app_home, playable):
    """Stopped while nothing can be written: the recorder says which lines are lost and that
    `sync` finishes the recording, and exits without a traceback; `sync` then does."""
    env = cli_env(app_home, server)
    rec = Recorder(["--mic", "none"], env)
    rec.wait_recording()
    time.sleep(1.0)
    resource.prlimit(rec.proc.pid, resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
    play(playable["jfk"], "meet_speakers").wait()
    wait_for_line(rec, "Transcript lines cannot be saved")
    rec.proc.send_signal(signal.SIGINT)
    code, _out, err = rec.finish()
    assert code == 1, err
    assert "transcript lines could not be saved and are lost" in err
    assert "cannot finish the recording" in err and "run 'desktop-recorder sync'" in err
    assert "Cannot finish the audio file:" in err and "s of audio could not be written" in err
    assert "Traceback" not in err and "Logging error" not in err, err
    result = run_cli("sync", env=env)
    assert result.returncode == 0, result.stderr
    assert "Recovered an interrupted recording" in result.stderr
    assert only_recording(server)["status"] == "ready"


class FailingModel:
    """The real model, whose live passes raise from the ``fail_from``-th on (as a CUDA
    out-of-memory error would), ``times`` times; transcribing the saved audio works unless
    ``file_fails``."""

    def __init__(self, model, *, fail_from: int = 1, times: int = 1, file_fails: bool = False) -> None:
        self.model, self.calls, self.fail_from, self.times, self.file_fails = model, 0, fail_from, times, file_fails

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def transcribe(self, *args, **kwargs):
        self.calls += 1
        if self.fail_from <= self.calls < self.fail_from + self.times:
            raise RuntimeError("CUDA failed with error out of memory")
        return self.model.transcribe(*args, **kwargs)

    def transcribe_file(self, *args, **kwargs):
        if self.file_fails:
            raise RuntimeError("CUDA failed with error out of memory")
        return self.model.transcribe_file(*args, **kwargs)


def record_jfk_with(ctx, transcriber, playable) -> tuple[list, object]:
    from desktop_recorder.session import RecordingSession, SessionOptions
    from transcription.vad import silero_scorer

    events: list = []
    session = RecordingSession(store=ctx.store, data_dir=ctx.paths.data_dir, transcriber=transcriber,
                               scorer_factory=silero_scorer, options=SessionOptions(mic="none", user_name="Ana"),
                               on_event=events.append)
    session.start()
    time.sleep(0.5)
    play(playable["jfk"], "meet_speakers").wait()
    time.sleep(1.0)
    return events, session.stop()


def test_speech_after_a_transcription_failure_is_transcribed_at_stop(audio_rig, ctx, model, playable, monkeypatch):
    """The model raises in the middle of the meeting: recording goes on, and at stop what was said
    after the last line is transcribed from the audio file, saying how far it is, shown and
    stored; nothing is lost."""
    from desktop_recorder import session
    from desktop_recorder.session import FinalLine, Notice, StopProgress

    monkeypatch.setattr(session, "PROGRESS_EVERY_S", 0.0)  # JFK takes a second, not minutes
    failing = FailingModel(model, fail_from=3)
    events, rec = record_jfk_with(ctx, failing, playable)
    assert failing.calls >= 3  # it did fail while JFK spoke
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any(n.startswith("Transcription stopped: CUDA failed") for n in notices), notices
    assert any(n.startswith("Transcribed ") for n in notices), notices
    said = [e.message for e in events if isinstance(e, StopProgress)]
    done = [int(m[1]) for n in said if (m := re.fullmatch(r"Transcribing the audio since 00:\d\d: (\d+)% done…", n))]
    assert done and done == sorted(done) and done[-1] < 100 and len(done) == len(said), said
    lines = ctx.store.segments(rec.id)
    assert wer(JFK_TEXT, " ".join(s.text for s in lines)) <= 0.1, [s.text for s in lines]
    assert [e.segment for e in events if isinstance(e, FinalLine)] == lines  # each shown once
    assert rec.status == "ready" and rec.participants == ["Others"]
    assert ctx.store.get_recording(rec.id).error_message is None


def test_a_recording_whose_audio_cannot_be_transcribed_says_so(audio_rig, app_home, ctx, model, playable):
    """The model fails live and again on the saved audio: the recording is ready, with the audio
    kept and an error saying from when the transcript is missing (which the final PATCH sends)."""
    from desktop_recorder.session import Notice

    events, rec = record_jfk_with(ctx, FailingModel(model, times=10_000, file_fails=True), playable)
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("could not be transcribed: CUDA failed" in n for n in notices), notices
    stored = ctx.store.get_recording(rec.id)
    assert stored.status == "ready" and ctx.store.segments(rec.id) == []
    assert stored.error_message is not None and stored.error_message.startswith("Transcription stopped at 00:0")
    assert "CUDA failed with error out of memory" in stored.error_message
    audio, _rate = sf.read(rec.audio_path, dtype="float32")
    heard = " ".join(seg.text for seg in model.transcribe_file(np.ascontiguousarray(audio[:, 1])))
    assert wer(JFK_TEXT, heard) <= 0.1  # kept whole
    patch = [op.payload for op in ctx.store.pending_ops(rec.id) if op.op == "patch"][-1]
    assert patch["error_message"] == stored.error_message
    listed = json.loads(run_cli("list", "--json", env=cli_env(app_home, None)).stdout)
    assert [r["error_message"] for r in listed] == [stored.error_message]
