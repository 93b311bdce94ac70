"""Capture people can trust, on the virtual PulseAudio devices with real speech."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import JFK_TEXT, RIG, cli_env, run_cli, wer
from tests.recording import Recorder, play

pytestmark = [pytest.mark.slow, pytest.mark.audio]


def pactl(*args: str) -> str:
    return subprocess.run(["pactl", *args], check=True, capture_output=True, text=True).stdout.strip()


def the_wav(home: Path) -> tuple[np.ndarray, int]:
    (wav,) = (home / "data" / "audio").glob("*.wav")
    return sf.read(wav, dtype="float32")


def onset_s(x: np.ndarray, rate: int) -> float:
    """Where speech starts in a channel: the first 10 ms frame clearly above its noise floor."""
    frame = rate // 100
    n = len(x) // frame
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1))
    return float(np.argmax(rms > max(1e-4, rms.max() * 0.05)) * frame / rate)


def xcorr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    n = len(a) + len(b)
    c = np.fft.irfft(np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n)), n)
    return float(np.abs(c).max() / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def found_at(x: np.ndarray, piece: np.ndarray) -> int:
    """Where ``piece`` lies in ``x``, in samples (the peak of their cross-correlation)."""
    n = len(x) + len(piece)
    c = np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(piece, n)), n)
    return int(np.argmax(c[: len(x)]))


def test_mic_and_system_land_in_their_own_channels_aligned(audio_rig, app_home, playable):
    rec = Recorder(["--duration", "10"], cli_env(app_home, None))
    rec.wait_recording()
    time.sleep(1.0)
    players = [play(playable["left"], "meet_mic_in"), play(playable["jfk"], "meet_speakers")]  # same moment
    for p in players:
        p.wait()
    code, _out, err = rec.finish()
    assert code == 0, err
    audio, rate = the_wav(app_home)
    mic, system = audio[:, 0], audio[:, 1]
    left, lrate = sf.read(playable["left"], dtype="float32")
    jfk, jrate = sf.read(playable["jfk"], dtype="float32")
    import soxr

    left, jfk = soxr.resample(left, lrate, rate), soxr.resample(jfk, jrate, rate)
    assert xcorr(mic, left) > 0.8 and xcorr(system, jfk) > 0.8  # each speaker in its own channel
    assert xcorr(mic, jfk) < 0.3 and xcorr(system, left) < 0.3  # and not in the other
    # Both were started together: their onsets in the file agree (less their own leading silence).
    skew = (onset_s(mic, rate) - onset_s(left, rate)) - (onset_s(system, rate) - onset_s(jfk, rate))
    assert abs(skew) < 0.1, f"mic and system are {skew * 1000:.0f} ms apart"
    assert "hears the speakers" not in err  # different speech on each side is not echo


def test_speakers_heard_by_the_mic_suggest_headphones(audio_rig, app_home, playable, tmp_path):
    # No headphones: the mic hears what the speakers play, 13 dB quieter and 150 ms later (sound
    # reaches the mic after the speakers play it). The delay is in the file, so the two players'
    # start-up jitter cannot put the mic's copy first.
    jfk, rate = sf.read(playable["jfk"], dtype="float32")
    heard = tmp_path / "heard_by_the_mic.wav"
    sf.write(heard, np.concatenate([np.zeros(int(0.15 * rate), np.float32), 0.22 * jfk]), rate, subtype="PCM_16")
    rec = Recorder(["--duration", "12"], cli_env(app_home, None))
    rec.wait_recording()
    players = [play(playable["jfk"], "meet_speakers"), play(heard, "meet_mic_in")]
    for p in players:
        p.wait()
    code, _out, err = rec.finish()
    assert code == 0, err
    assert "Your microphone hears the speakers" in err and "Use headphones" in err


@pytest.fixture
def headset():
    """A second output, like headphones being plugged in (no keep-alive: its monitor idles)."""
    module = pactl("load-module", "module-null-sink", "sink_name=meet_headset",
                   "sink_properties=device.description=Meet_Headset")
    yield "meet_headset"
    pactl("set-default-sink", "meet_speakers")
    pactl("unload-module", module)


def test_capture_follows_the_default_output_when_the_user_switches(audio_rig, app_home, playable, headset):
    rec = Recorder(["--duration", "20", "--mic", "none"], cli_env(app_home, None))
    rec.wait_recording()
    time.sleep(1.0)
    pactl("set-default-sink", headset)  # the user switches to headphones mid-meeting
    time.sleep(2.5)
    play(playable["jfk"], headset).wait()
    code, out, err = rec.finish()
    assert code == 0, err
    assert "System audio now follows Monitor of Meet_Headset" in err
    assert wer(JFK_TEXT, " ".join(line.split(": ", 1)[1] for line in out.splitlines())) <= 0.1
    audio, rate = the_wav(app_home)
    assert abs(len(audio) / rate - 20) < 1.5  # the idle headset monitor's silence is on the timeline


def test_losing_the_microphone_mid_meeting(audio_rig, app_home, playable):
    rec = Recorder(["--duration", "16"], cli_env(app_home, None))
    rec.wait_recording()
    time.sleep(2.0)
    remap = next(line.split()[0] for line in pactl("list", "short", "modules").splitlines()
                 if "module-remap-source" in line and "meet_mic" in line)
    try:
        pactl("unload-module", remap)  # the USB headset is unplugged
        play(playable["jfk"], "meet_speakers").wait()
        code, out, err = rec.finish()
    finally:
        subprocess.run(["bash", str(RIG), "up"], check=True, capture_output=True)
    assert code == 0, err
    assert "Traceback" not in err
    assert "microphone" in err.lower() and ("stopped" in err or "now follows" in err or "is back" in err)
    assert wer(JFK_TEXT, " ".join(line.split(": ", 1)[1] for line in out.splitlines())) <= 0.1
    audio, rate = the_wav(app_home)
    assert abs(len(audio) / rate - 16) < 1.5  # nothing recorded was lost; the gap is silence


def test_audio_file_after_kill_9_holds_all_but_the_last_second(audio_rig, app_home, playable):
    env = cli_env(app_home, None)
    rec = Recorder(["--mic", "none"], env)
    rec.wait_recording()
    play(playable["jfk"], "meet_speakers").wait()
    time.sleep(1.0)
    rec.proc.send_signal(signal.SIGKILL)
    killed_after = time.monotonic() - rec.started_at
    rec.finish()
    run_cli("sync", env=env)  # any start-up finalises and repairs interrupted recordings
    audio, rate = the_wav(app_home)
    assert killed_after - 1.5 <= len(audio) / rate <= killed_after + 0.5
    assert np.abs(audio[:, 1]).max() > 0.05


@pytest.mark.parametrize("role", ["mic", "system"])
def test_the_streams_deliver_20_ms_blocks_so_the_queue_holds_20_s_of_both(audio_rig, role):
    """Left to itself PortAudio on the ALSA pulse device called back every ~1.4 ms: the capture
    queue of 2,000 blocks held 1.5 s of audio, and a pipeline stall longer than that lost audio
    from both channels."""
    import queue

    from recorder.capture import QUEUE_BLOCKS, SourceCapture
    from recorder.devices import device_table, resolve

    device = resolve(device_table(), role, "auto")
    assert device is not None and device.backend == "pulse"
    blocks: queue.Queue = queue.Queue()
    capture = SourceCapture(role, device, blocks)
    capture.start()
    try:
        got = [blocks.get(timeout=10) for _ in range(25)]
    finally:
        capture.stop()
    assert {len(b.samples) for b in got} == {round(device.sample_rate_hz * 0.02)}
    assert QUEUE_BLOCKS * 0.02 / 2 >= 20  # seconds of both sources


def test_a_slow_to_open_system_source_does_not_shift_the_microphone(audio_rig, playable, tmp_path, monkeypatch):
    """The mic opens at once, the system source takes 1.75 s (an open refused, then retried).
    The mic's blocks queued meanwhile used to be preceded by silence once the pipeline ran, and
    the mic channel stayed 0.75 s late for the whole recording (beyond the echo check's reach)."""
    from recorder.capture import SourceCapture
    from recorder.devices import device_table, resolve
    from recorder.pipeline import CapturePipeline

    table = device_table()
    devices = {role: resolve(table, role, "auto") for role in ("mic", "system")}
    open_stream = SourceCapture.start

    def slow_system(capture: SourceCapture, **kwargs) -> None:
        if capture.source == "system":
            time.sleep(1.75)
        open_stream(capture, **kwargs)

    monkeypatch.setattr(SourceCapture, "start", slow_system)
    pipeline = CapturePipeline(devices, tmp_path / "call.wav", on_audio=lambda _source, _audio: None)
    pipeline.start()
    time.sleep(0.5)
    players = [play(playable["left"], "meet_mic_in"), play(playable["jfk"], "meet_speakers")]  # same moment
    for p in players:
        p.wait()
    pipeline.stop()
    audio, rate = sf.read(tmp_path / "call.wav", dtype="float32")
    left, lrate = sf.read(playable["left"], dtype="float32")
    jfk, jrate = sf.read(playable["jfk"], dtype="float32")
    skew = (onset_s(audio[:, 0], rate) - onset_s(left, lrate)) - (onset_s(audio[:, 1], rate) - onset_s(jfk, jrate))
    assert abs(skew) < 0.1, f"mic and system are {skew * 1000:.0f} ms apart"


def test_a_held_up_callback_does_not_shift_its_source(audio_rig, playable, tmp_path, monkeypatch):
    """The mic's callback is held up for half a second once (a busy interpreter, a paused
    process): the device captured those frames on time and delivers them late. Placed at the
    callback's time, they got half a second of silence before them, and the mic channel stayed
    that much late for the rest of the recording. The stream's own clock places them."""
    from recorder.capture import SourceCapture
    from recorder.devices import device_table, resolve
    from recorder.pipeline import CapturePipeline

    table = device_table()
    devices = {role: resolve(table, role, "auto") for role in ("mic", "system")}
    deliver = SourceCapture._callback
    calls = {"mic": 0}

    def held_once(capture: SourceCapture, indata, frames, times, status) -> None:
        if capture.source == "mic":
            calls["mic"] += 1
            if calls["mic"] == 25:  # 0.5 s in
                time.sleep(0.5)
        deliver(capture, indata, frames, times, status)

    monkeypatch.setattr(SourceCapture, "_callback", held_once)
    pipeline = CapturePipeline(devices, tmp_path / "call.wav", on_audio=lambda _source, _audio: None)
    pipeline.start()
    time.sleep(1.5)
    assert calls["mic"] > 25  # held up already
    players = [play(playable["left"], "meet_mic_in"), play(playable["jfk"], "meet_speakers")]  # same moment
    for p in players:
        p.wait()
    (mic,) = [h for h in pipeline.health() if h.source == "mic"]
    pipeline.stop()
    assert mic.stats.overflows == 0 and mic.gap_s == 0  # nothing lost while held, so no gap to fill
    audio, rate = sf.read(tmp_path / "call.wav", dtype="float32")
    left, lrate = sf.read(playable["left"], dtype="float32")
    jfk, jrate = sf.read(playable["jfk"], dtype="float32")
    skew = (onset_s(audio[:, 0], rate) - onset_s(left, lrate)) - (onset_s(audio[:, 1], rate) - onset_s(jfk, jrate))
    assert abs(skew) < 0.1, f"mic and system are {skew * 1000:.0f} ms apart"


def test_a_recorder_paused_for_a_moment_keeps_the_speech_whole(audio_rig, app_home, playable):
    """The recorder's process is stopped for 0.7 s mid-sentence (SIGSTOP: a debugger, a busy
    machine) and resumed. The sound server kept the audio meanwhile; it arrives late, and
    belongs where it was captured: no silence in the middle of the speech."""
    import soxr

    rec = Recorder(["--mic", "none", "--duration", "14"], cli_env(app_home, None))
    rec.wait_recording()
    player = play(playable["jfk"], "meet_speakers")
    time.sleep(4.0)
    rec.proc.send_signal(signal.SIGSTOP)
    time.sleep(0.7)
    rec.proc.send_signal(signal.SIGCONT)
    player.wait()
    code, _out, err = rec.finish()
    assert code == 0, err
    audio, rate = the_wav(app_home)
    jfk, jrate = sf.read(playable["jfk"], dtype="float32")
    jfk = soxr.resample(jfk, jrate, rate)
    system = audio[:, 1]
    early, late = jfk[rate: 3 * rate], jfk[7 * rate: 10 * rate]  # before and after the pause
    begins = found_at(system, early) - rate  # where JFK starts in the file
    moved = (found_at(system, late) - 7 * rate) - begins
    assert abs(moved) < 0.06 * rate, f"the speech after the pause is {moved / rate * 1000:.0f} ms late"
    # And what was said while the process was stopped is there, where it was said (not lost).
    spoken, kept = jfk[3 * rate: 6 * rate], system[begins + 3 * rate: begins + 6 * rate]
    assert len(kept) == len(spoken)
    similarity = float(np.dot(spoken, kept) / (np.linalg.norm(spoken) * np.linalg.norm(kept)))
    assert similarity > 0.8
