"""Echo suppression end to end: real virtual devices, the real model, `desktop-recorder record`."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from desktop_recorder.store import Store
from tests.conftest import JFK_TEXT, LEFT_TEXT, cli_env, wer
from tests.recording import Recorder, local_segments, play, said_by

pytestmark = [pytest.mark.slow, pytest.mark.audio]


def play_quiet(path: Path, device: str, volume: int) -> subprocess.Popen[bytes]:
    """paplay at ``volume`` (65536 = 100 %): the speakers as a microphone hears them."""
    return subprocess.Popen(["paplay", f"--device={device}", f"--volume={volume}", str(path)])


def test_speech_heard_by_both_devices_yields_one_others_line(audio_rig, app_home, playable):
    """No headphones: the far end comes out of the speakers and into the mic as well."""
    rec = Recorder(["--duration", "16", "--participant", "Alice", "--refine"], cli_env(app_home, None))
    rec.wait_recording()
    time.sleep(1.0)
    speakers = play(playable["jfk"], "meet_speakers")
    echo = play_quiet(playable["jfk"], "meet_mic_in", 46000)  # about -3 dB, as laptop speakers are heard
    speakers.wait()
    echo.wait()
    code, out, err = rec.finish()
    assert code == 0, err

    segments = local_segments(app_home)
    others = said_by(segments, "Others")
    assert wer(JFK_TEXT, others) <= 0.1, others
    assert [s.text for s in segments if s.speaker == "Alice"] == [], out
    kept = Store(app_home / "data" / "recordings.sqlite3")
    try:  # what was left out is kept locally (never synced), not lost
        left_out = " ".join(line.text for line in kept.echo_segments(segments[0].recording_id))
    finally:
        kept.close()
    assert wer(JFK_TEXT, left_out) <= 0.2, left_out
    assert "picked up from the speakers were not added as yours" in err  # the gate's own notice
    # The post-meeting pass (--refine) leaves the echo out as well.
    store = Store(app_home / "data" / "recordings.sqlite3")
    try:
        refined = store.refined_segments(segments[0].recording_id)
    finally:
        store.close()
    assert "Refined transcript" in err
    assert refined and {s.speaker for s in refined} == {"Others"}
    assert wer(JFK_TEXT, " ".join(s.text for s in refined)) <= 0.1


def test_double_talk_keeps_the_users_words(audio_rig, app_home, playable):
    """The user speaks while the far end plays from the speakers (quieter in the mic): both kept."""
    rec = Recorder(["--duration", "16", "--participant", "Alice"], cli_env(app_home, None))
    rec.wait_recording()
    time.sleep(1.0)
    speakers = play(playable["jfk"], "meet_speakers")
    echo = play_quiet(playable["jfk"], "meet_mic_in", 16000)  # about -12 dB under the user's voice
    time.sleep(1.0)
    user = play(playable["left"], "meet_mic_in")
    for p in (speakers, echo, user):
        p.wait()
    code, _out, err = rec.finish()
    assert code == 0, err

    segments = local_segments(app_home)
    others = said_by(segments, "Others")
    alice = said_by(segments, "Alice")
    assert wer(JFK_TEXT, others) <= 0.1, others
    assert wer(LEFT_TEXT, alice) <= 0.35, alice
