"""Device selection (recorded server tables), the clock timeline, and WAV repair after a crash."""

from __future__ import annotations

import queue
import sys
from types import SimpleNamespace as NS

import numpy as np
import pytest
import soundfile as sf

from recorder.capture import CaptureError, SourceCapture
from recorder.devices import (
    NO_SOURCE,
    PULSE_CAPTURE_RATE_HZ,
    InputDevice,
    NoAudioDevice,
    portaudio_table,
    resolve,
    table_from_pulse,
)
from recorder.timeline import SourceTimeline
from recorder.wavfile import StereoWavWriter, repair_wav


class DanglingSampleSpec:
    """pulsectl's ``sample_spec``: a view into libpulse memory freed before the caller reads it."""

    @property
    def rate(self):
        raise AssertionError("sample_spec read after libpulse freed it")


def source(name, description, monitor_of=NO_SOURCE, driver="module-alsa-card.c"):
    return NS(name=name, description=description, monitor_of_sink=monitor_of, driver=driver,
              sample_spec=DanglingSampleSpec())


# A laptop on PipeWire-pulse with headphones (Bluetooth) as the default output.
LAPTOP = dict(
    info=NS(default_sink_name="bluez_output.AA_BB.1", default_source_name="alsa_input.pci.analog-stereo",
            server_name="PulseAudio (on PipeWire 1.0.5)", server_version="15.0.0"),
    sources=[
        source("alsa_output.pci.analog-stereo.monitor", "Monitor of Built-in Audio", monitor_of=0),
        source("alsa_input.pci.analog-stereo", "Built-in Audio Analog Stereo"),
        source("bluez_output.AA_BB.1.monitor", "Monitor of WH-1000XM4", monitor_of=1),
    ],
    sinks=[NS(name="alsa_output.pci.analog-stereo", monitor_source_name="alsa_output.pci.analog-stereo.monitor"),
           NS(name="bluez_output.AA_BB.1", monitor_source_name="bluez_output.AA_BB.1.monitor")],
)


def test_system_audio_is_the_monitor_of_the_default_sink_not_the_first_monitor():
    table = table_from_pulse(LAPTOP["info"], LAPTOP["sources"], LAPTOP["sinks"])
    assert table.default_system == "bluez_output.AA_BB.1.monitor"
    assert table.default_mic == "alsa_input.pci.analog-stereo"
    system = resolve(table, "system", "auto")
    assert system is not None and system.kind == "system"
    assert system.sample_rate_hz == PULSE_CAPTURE_RATE_HZ  # the server converts; sample_spec is never read
    mic = resolve(table, "mic", "auto")
    assert mic is not None and mic.kind == "mic"
    assert "PipeWire" in (table.server or "")


def test_a_monitor_as_default_source_is_not_taken_for_the_mic():
    info = NS(default_sink_name="alsa_output.pci.analog-stereo",
              default_source_name="alsa_output.pci.analog-stereo.monitor", server_name="pulseaudio",
              server_version="16.1")
    table = table_from_pulse(info, LAPTOP["sources"], LAPTOP["sinks"])
    assert table.default_mic == "alsa_input.pci.analog-stereo"


def test_explicit_devices_none_and_unknown():
    table = table_from_pulse(LAPTOP["info"], LAPTOP["sources"], LAPTOP["sinks"])
    assert resolve(table, "mic", "none") is None
    assert resolve(table, "mic", "alsa_input.pci.analog-stereo").kind == "mic"  # by exact name
    with pytest.raises(NoAudioDevice, match="matches several inputs"):
        resolve(table, "system", "Built-in Audio")  # the mic and a monitor both match
    with pytest.raises(NoAudioDevice, match="matches no input") as err:
        resolve(table, "mic", "usb headset")
    assert err.value.problem == "Microphone 'usb headset' matches no input."  # doctor's one line
    assert "alsa_input.pci.analog-stereo" in str(err.value)  # the full message lists what exists


def test_no_sound_server_gives_a_clear_error():
    table = table_from_pulse(NS(default_sink_name=None, default_source_name=None), [], [])
    with pytest.raises(NoAudioDevice, match="PulseAudio/PipeWire running") as err:
        resolve(table, "mic", "auto")
    assert err.value.problem == "No microphone found (no sound server and no input device)."


def test_a_missing_portaudio_library_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # as if its import failed
    table = portaudio_table()  # no sound server either: nothing to list, and why
    assert table.devices == ()
    with pytest.raises(NoAudioDevice, match="apt install libportaudio2"):
        resolve(table, "mic", "auto")
    device = InputDevice("alsa_input.usb", "USB mic", "mic", "pulse", 48000)
    with pytest.raises(CaptureError, match=r"Cannot open USB mic .*apt install libportaudio2"):
        SourceCapture("mic", device, queue.Queue()).start()


def test_portaudio_is_never_called_from_two_threads_at_once(monkeypatch):
    """PortAudio is not thread-safe. The settings page opened one meter, started another and
    stopped a third at the same moment, and the ALSA pulse plugin aborted the process (seen in CI).
    Each call of this stand-in lasts 20 ms and notes how many others run beside it."""
    import threading
    import time

    import recorder.capture as capture

    busy, overlaps, guard = [0], [0], threading.Lock()

    def call() -> None:
        with guard:
            busy[0] += 1
            overlaps[0] = max(overlaps[0], busy[0])
        time.sleep(0.02)
        with guard:
            busy[0] -= 1

    class Stream:
        def __init__(self, **_kw):
            call()

        def start(self):
            call()

        def stop(self):
            call()

        def close(self):
            call()

        @property
        def active(self):
            call()
            return True

    fake_sd = NS(InputStream=Stream, PortAudioError=RuntimeError)
    monkeypatch.setattr(capture, "load_sounddevice", lambda: fake_sd)
    devices = [InputDevice("a", "A", "mic", "pulse", 16000), InputDevice("b", "B", "system", "portaudio", 16000, 0)]
    captures = [SourceCapture("mic", devices[i % 2], queue.Queue()) for i in range(6)]
    threads = [threading.Thread(target=c.start) for c in captures]
    for t in threads:
        t.start()
    for c in captures:  # closed (and asked whether alive) while others open: as the dialog does
        assert c.alive
        c.stop()
    for t in threads:
        t.join()
    for c in captures:
        c.stop()
    assert overlaps[0] == 1


def test_timeline_fills_gaps_from_the_clock_and_pads_a_stalled_source():
    tl = SourceTimeline(t0=100.0)
    block = np.ones(1600, np.float32)  # 100 ms at 16 kHz
    assert sum(map(len, tl.place(block, 16000, captured_at=100.1))) == 1600  # on time: no gap
    pieces = tl.place(block, 16000, captured_at=101.1)  # 900 ms of frames never arrived
    assert len(pieces) == 2 and not pieces[0].any() and len(pieces[0]) == 14400
    assert tl.position == 16000 * 1 + 1600 and tl.gap_samples == 14400
    assert tl.pad_to_clock(101.5) is None  # 0.4 s behind: within tolerance
    silence = tl.pad_to_clock(104.1)
    assert silence is not None and tl.position == int(3.1 * 16000)


@pytest.mark.parametrize(("adc", "stream_now", "expected_s"), [
    (49.98, 50.0, 100.0),  # on time: the callback's own time
    (49.48, 50.0, 99.5),  # the last frame was captured 0.5 s before the callback: placed there
    (0.0, 50.0, 100.0),  # a host API that gives no ADC time
    (50.5, 50.0, 100.0),  # captured after now: not believed
    (-40.0, 50.0, 100.0),  # 90 s ago, more than any device buffers: not believed
])
def test_a_block_is_placed_when_the_stream_clock_says_it_was_captured(adc, stream_now, expected_s):
    device = InputDevice("alsa_input.usb", "USB mic", "mic", "pulse", 48000)
    out: queue.Queue = queue.Queue()
    capture = SourceCapture("mic", device, out, clock=lambda: 100.0)
    capture._stream = NS(time=stream_now)
    status = NS(input_overflow=False)
    capture._callback(np.zeros((960, 1), np.float32), 960, NS(inputBufferAdcTime=adc,
                                                                            currentTime=49.99), status)
    block = out.get_nowait()
    assert block.captured_at == pytest.approx(expected_s)
    assert capture.stats.last_block_at == 100.0  # when it came, for the stall check


@pytest.mark.parametrize(("fast_by", "expect_trimmed"), [(0.01, True), (0.0, False)])
def test_a_source_whose_clock_runs_fast_is_held_to_the_clock(fast_by, expect_trimmed):
    """A device 1 % fast delivers 16,160 samples a clock second: counted as they come, it ran
    0.6 s ahead of the other source after a minute. A few samples a block are left out until it
    is back within 60 ms. An exact device whose callbacks come up to 30 ms late loses nothing."""
    tl = SourceTimeline(t0=0.0)
    late = np.random.default_rng(7).uniform(0.0, 0.03, 3000)
    block = np.ones(320, np.float32)
    for i in range(3000):  # 60 s of 20 ms blocks, by the device's clock
        captured_end = (i + 1) * 320 / (16000 * (1 + fast_by))
        pieces = tl.place(block, 16000, captured_at=captured_end + late[i])
        assert all(p.any() for p in pieces)  # no silence: nothing went missing
    clock = 3000 * 320 / (16000 * (1 + fast_by))
    assert abs(tl.position / 16000 - clock) <= 0.06 + 0.02
    assert tl.gap_samples == 0
    assert tl.trimmed_samples == 3000 * 320 - tl.position  # what is missing was trimmed, nothing else
    assert (tl.trimmed_samples > 0) == expect_trimmed


def test_a_source_padded_during_a_long_hold_up_heals_in_the_pauses():
    """A callback held up 2.5 s: the source was padded as stalled (1.5 s) before the audio it had
    captured on time came, which then ran 1.5 s ahead. Quiet blocks (pauses) are left out whole
    until it is back; speech loses at most 0.5 ms a block, crossfaded (no click)."""
    tl = SourceTimeline(t0=0.0)
    floor = np.random.default_rng(3).normal(0, 10 ** (-65 / 20), 320).astype(np.float32)  # a room, not zeros
    t = np.arange(320) / 16000
    for i in range(250):  # 5 s
        tl.place(floor, 16000, captured_at=(i + 1) * 0.02)
    padded = tl.pad_to_clock(7.5)
    assert padded is not None and len(padded) == 24000  # 1.5 s
    def speech(i: int) -> np.ndarray:
        return (0.1 * np.sin(2 * np.pi * 300 * (t + i * 0.02))).astype(np.float32)

    for i in range(250, 375):  # the 2.5 s of speech captured meanwhile, placed when it was captured
        tl.place(speech(i), 16000, captured_at=(i + 1) * 0.02)
    assert tl.position / 16000 - 7.5 == pytest.approx(1.5, abs=0.1)
    kept_speech = []
    before = None  # the speech block placed just before
    for i in range(375, 875):  # 10 s of talk: 0.6 s of speech, 0.3 s of pause
        speaking = (i * 0.02) % 0.9 < 0.6
        block = speech(i) if speaking else floor
        out = np.concatenate(tl.place(block, 16000, captured_at=(i + 1) * 0.02))
        if speaking:
            kept_speech.append(len(out))
            joined = out if before is None else np.concatenate([before[-1:], out])
            assert np.abs(np.diff(joined)).max() < 2 * 0.1 * 2 * np.pi * 300 / 16000  # no step at the cut
        before = out if speaking else None
    assert abs(tl.position / 16000 - 17.5) <= 0.06 + 0.02
    assert min(kept_speech) >= 320 - 8


def test_a_source_ahead_takes_the_resamplers_empty_first_chunks():
    tl = SourceTimeline(t0=0.0)
    tl.pad_to_clock(3.0)  # padded as stalled: 2 s placed
    for i in range(3):  # a 48 kHz device's first 2 ms blocks: soxr holds them back, nothing comes out
        tl.place(np.zeros(96, np.float32), 48000, captured_at=0.002 * (i + 1))
    assert tl.position == 32000 and tl.trimmed_samples == 0


def test_timeline_resamples_48k_to_16k_continuously():
    tl = SourceTimeline(t0=0.0)
    t = np.arange(48000) / 48000
    sine = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    pieces = [p for i in range(0, 48000, 480) for p in tl.place(sine[i:i + 480], 48000, (i + 480) / 48000)]
    out = np.concatenate([*pieces, tl.flush()])
    assert len(out) == 16000 and tl.position == 16000 and tl.gap_samples == 0
    assert abs(np.sqrt(np.mean(out[2000:14000] ** 2)) - np.sqrt(0.5)) < 0.02  # no clicks or level loss


def test_wav_cut_short_by_a_crash_is_repaired(tmp_path):
    path = tmp_path / "rec.wav"
    writer = StereoWavWriter(path)
    tone = (0.5 * np.sin(np.arange(16000 * 3) / 10)).astype(np.float32)
    writer.write(tone, -tone)
    writer._file.flush()
    data = path.read_bytes()
    writer._file.close()
    path.write_bytes(data[:44] + data[44:-1001])  # as a killed process leaves it: stale sizes, torn frame
    header = bytearray(path.read_bytes())
    header[40:44] = (0).to_bytes(4, "little")  # data size never written
    path.write_bytes(bytes(header))
    assert repair_wav(path) is True
    audio, rate = sf.read(path)
    assert rate == 16000 and audio.shape[1] == 2 and 2.9 < len(audio) / rate <= 3.0
    assert repair_wav(path) is False  # idempotent


@pytest.mark.skipif(sys.platform == "win32", reason="needs a sparse file (NTFS makes it 4 GiB of zeros)")
def test_a_wav_past_4_gib_cut_short_is_repaired_and_keeps_its_audio(tmp_path):
    """A recording killed after 18.6 h: the sizes say 4 GiB, as the writer's do (they cannot
    say more), and the audio after stays in the file (its repair used to raise instead)."""
    from recorder.wavfile import FRAME_BYTES, HEADER_BYTES, MAX_DATA_BYTES, wav_header

    path = tmp_path / "rec.wav"
    with open(path, "wb") as f:
        f.write(wav_header(0))  # killed before the header was ever rewritten
        f.seek(HEADER_BYTES + MAX_DATA_BYTES + 16000 * FRAME_BYTES * 60 + 1)  # a minute more, a torn frame
        f.write(b"\0")
    size = path.stat().st_size
    assert repair_wav(path) is True
    assert path.stat().st_size == size
    assert sf.info(path).frames == MAX_DATA_BYTES // FRAME_BYTES
    assert repair_wav(path) is False


def test_reopening_a_lost_device_tries_once_a_round_and_never_waits(tmp_path, monkeypatch):
    """The mic is unplugged (its stream died, it cannot be opened): the pipeline thread tries it
    once each round, without the start's waits between retries, so it keeps taking the system
    audio (5 s of retries a round let the queue fill and the system audio be dropped)."""
    import recorder.capture as capture
    from recorder.pipeline import CapturePipeline

    opened: list[int] = []
    waits: list[float] = []

    class Stream:
        def __init__(self, device: int, **_kw: object) -> None:
            opened.append(device)
            if device == 0:
                raise RuntimeError("Device unavailable")

        def start(self) -> None:
            pass

    monkeypatch.setattr(capture, "load_sounddevice", lambda: NS(InputStream=Stream, PortAudioError=RuntimeError))
    monkeypatch.setattr(capture.time, "sleep", waits.append)
    mic = InputDevice("usb", "USB mic", "mic", "portaudio", 16000, portaudio_index=0)
    system = InputDevice("out", "Speakers", "system", "portaudio", 16000, portaudio_index=1)
    pipeline = CapturePipeline({"mic": mic, "system": system}, tmp_path / "a.wav", lambda s, a: None,
                               follow=lambda source: None)
    pipeline._captures["mic"]._stream = NS(active=False, stop=lambda: None, close=lambda: None)  # died
    pipeline._follow_devices()
    assert opened == [0] and waits == []
    pipeline._followed_at -= 1.0
    pipeline._follow_devices()
    assert opened == [0, 0] and waits == []
    pipeline._writer.close()


def test_full_disk_keeps_audio_flowing_to_transcription(tmp_path):
    """The file cannot be written for a while: say so, keep transcribing, keep the clock, and
    say nothing more once the file is written again."""
    from recorder.capture import AudioBlock
    from recorder.pipeline import CapturePipeline

    class RefusingWriter:
        error: OSError | None = OSError(28, "No space left on device")
        silenced_frames = 0
        given = 0

        def write(self, mic, system):
            self.given += len(mic)

        def close(self):
            pass

    heard = []
    device = InputDevice("fake", "Fake", "system", "portaudio", 16000, portaudio_index=0)
    pipeline = CapturePipeline({"system": device}, tmp_path / "a.wav", lambda s, a: heard.append(len(a)))
    pipeline._writer.close()
    writer = pipeline._writer = RefusingWriter()  # type: ignore[assignment]
    pipeline._timelines = {"system": SourceTimeline(0.0)}
    for i in range(1, 4):
        pipeline._take(AudioBlock("system", i * 0.1, 16000, np.ones(1600, np.float32)))
        pipeline._write(final=False)
        assert pipeline.write_error is not None and "No space left" in pipeline.write_error
    assert heard == [1600, 1600, 1600] and writer.given == 4800
    assert pipeline.duration_s == 0.3
    writer.error = None
    pipeline._take(AudioBlock("system", 0.4, 16000, np.ones(1600, np.float32)))
    pipeline._write(final=False)
    assert pipeline.write_error is None


def test_an_outage_that_ends_at_the_close_is_not_reported_as_still_going(tmp_path):
    """The disk refused the last writes but took everything when the file was closed: the
    pipeline's error is cleared, so the user hears that the file is written again."""
    from recorder.pipeline import CapturePipeline

    class LateWriter:
        error: OSError | None = OSError(28, "No space left on device")

        def close(self):
            self.error = None  # what waited is written, the header finished

    device = InputDevice("fake", "Fake", "system", "portaudio", 16000, portaudio_index=0)
    pipeline = CapturePipeline({"system": device}, tmp_path / "a.wav", lambda s, a: None)
    pipeline._writer.close()
    pipeline._writer = LateWriter()  # type: ignore[assignment]
    pipeline._follow_writer()
    assert pipeline.write_error is not None
    pipeline._close_file()
    assert pipeline.write_error is None


WRITE_UNDER_A_SIZE_LIMIT = """
import json, resource, sys
from pathlib import Path
import numpy as np
from recorder.wavfile import HEADER_BYTES, StereoWavWriter

path, limit_at, lift_after, seconds, held_max_s = Path(sys.argv[1]), *map(float, sys.argv[2:6])
rng = np.random.default_rng(7)
left, right = (rng.uniform(-0.9, 0.9, int(seconds * 16000)).astype(np.float32) for _ in range(2))
np.save(str(path) + ".npy", np.stack([left, right], axis=1))
writer = StereoWavWriter(path, held_max_s=held_max_s)
hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
errors, waiting = [], []
for i in range(int(seconds * 10)):  # 0.1 s blocks, as the pipeline writes them
    t = round(i / 10, 1)
    if t == limit_at:  # the disk fills up, part way into a block
        resource.setrlimit(resource.RLIMIT_FSIZE, (HEADER_BYTES + int(t * 16000) * 4 + 1001, hard))
    if t == lift_after:
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    writer.write(left[i * 1600:(i + 1) * 1600], right[i * 1600:(i + 1) * 1600])
    errors.append(writer.error.errno if writer.error else None)
    waiting.append(writer.waiting_s)
try:
    writer.close()
    closed = "ok"
except OSError as exc:
    closed = str(exc)
print(json.dumps({"errors": errors, "waiting": waiting, "closed": closed,
                  "silenced": writer.silenced_frames}))
"""


def write_under_a_size_limit(tmp_path, limit_at, lift_after, seconds=4.0, held_max_s=600.0):
    """Record ``seconds`` of noise; the process's file-size limit makes every write fail from
    ``limit_at`` (a full disk) until ``lift_after`` (space freed), as the kernel does it."""
    import json
    import subprocess

    path = tmp_path / "rec.wav"
    result = subprocess.run([sys.executable, "-c", WRITE_UNDER_A_SIZE_LIMIT, str(path), str(limit_at),
                             str(lift_after), str(seconds), str(held_max_s)],
                            capture_output=True, text=True, timeout=60, check=True)
    report = json.loads(result.stdout)
    given = np.load(str(path) + ".npy")
    return path, report, np.round(np.clip(given, -1, 1) * 32767).astype(np.int16)


def test_audio_refused_by_a_full_disk_waits_and_the_file_resumes_where_it_stopped(tmp_path):
    path, report, given = write_under_a_size_limit(tmp_path, limit_at=1.0, lift_after=2.5)
    errors = report["errors"]
    assert errors[:10] == [None] * 10
    assert set(errors[10:25]) == {27}  # EFBIG: refused from 1.0 s until the limit is lifted
    assert errors[25:] == [None] * 15 and report["closed"] == "ok"
    assert 1.4 < max(report["waiting"]) <= 1.5 and report["waiting"][-1] == 0
    saved, rate = sf.read(path, dtype="int16")
    assert rate == 16000 and saved.shape == given.shape
    assert np.array_equal(saved, given)  # every frame, in place: nothing lost, nothing doubled
    assert repair_wav(path) is False  # the header's sizes are right


def test_audio_waiting_past_the_memory_cap_becomes_silence_in_its_place(tmp_path):
    path, report, given = write_under_a_size_limit(tmp_path, limit_at=1.0, lift_after=3.0, held_max_s=0.5)
    # 1001 bytes of the 1.0 s block fit: 250 whole frames. When the disk takes writes again at
    # 3.0 s, the 0.5 s (8000 frames) before the end of that block were kept in memory.
    kept_from = 31 * 1600 - 8000
    assert report["closed"] == "ok" and report["silenced"] == kept_from - 16250
    saved, _rate = sf.read(path, dtype="int16")
    assert saved.shape == given.shape  # still in step with the recording clock
    assert np.array_equal(saved[:16250], given[:16250])
    assert np.array_equal(saved[kept_from:], given[kept_from:])
    assert not saved[16251:kept_from].any()
    # the silence is a hole: the disk space freed goes to the audio that waited, not to zeros
    hole_bytes = (kept_from - 16251) * 4
    assert path.stat().st_blocks * 512 <= path.stat().st_size - hole_bytes + 8192  # blocks: 512 bytes


def test_stopping_while_the_disk_is_full_says_how_much_audio_is_not_in_the_file(tmp_path):
    path, report, given = write_under_a_size_limit(tmp_path, limit_at=1.0, lift_after=99)
    assert "3.0 s of audio could not be written (File too large)" in report["closed"]
    saved, _rate = sf.read(path, dtype="int16")
    assert np.array_equal(saved, given[:len(saved)]) and 16000 <= len(saved) < 16300  # the whole frames it took
