"""From callbacks to disk and to transcription, on one clock.

Capture callbacks → one bounded queue → this thread: resample to 16 kHz, place on the
recording clock, write the stereo file, and hand each source's audio to ``on_audio``. Audio
never waits for transcription: ``on_audio`` must only enqueue.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recorder.capture import QUEUE_BLOCKS, AudioBlock, CaptureError, CaptureStats, SourceCapture
from recorder.devices import InputDevice
from recorder.echo import EchoMeter
from recorder.timeline import SourceTimeline
from recorder.wavfile import HELD_MAX_S, StereoWavWriter
from transcription.types import SAMPLE_RATE_HZ, Audio, Source

log = logging.getLogger(__name__)
TICK_S = 0.1
FOLLOW_EVERY_S = 1.0
ECHO_EVERY_S = 1.0


@dataclass(frozen=True)
class SourceHealth:
    source: Source
    device: str
    level_dbfs: float
    stats: CaptureStats
    gap_s: float
    alive: bool


class CapturePipeline:
    def __init__(
        self,
        devices: dict[Source, InputDevice],
        wav_path: Path,
        on_audio: Callable[[Source, Audio], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        follow: Callable[[Source], InputDevice | None] | None = None,
        on_notice: Callable[[str], None] = lambda _message: None,
    ) -> None:
        """``follow(source)`` names the device a source should use now (None: keep it); it is asked
        every ``FOLLOW_EVERY_S`` so a changed default output is followed and a lost device reopened."""
        if not devices:
            raise ValueError("at least one source is needed")
        self._clock = clock
        self._follow = follow
        self._on_notice = on_notice
        self._followed_at = 0.0
        self._queue: queue.Queue[AudioBlock] = queue.Queue(maxsize=QUEUE_BLOCKS)
        self._captures = {s: SourceCapture(s, d, self._queue, clock=clock) for s, d in devices.items()}
        self._on_audio = on_audio
        self._writer = StereoWavWriter(wav_path)
        self._pending: dict[Source, list[Audio]] = {"mic": [], "system": []}
        self._levels: dict[Source, float] = {"mic": -120.0, "system": -120.0}
        self._timelines: dict[Source, SourceTimeline] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture-pipeline", daemon=True)
        self.t0 = 0.0
        self.write_error: str | None = None  # while the audio file cannot be written (disk full, ...)
        self.echo_db: float | None = None  # how loud the system audio is in the mic (None: no echo)
        self._echo = EchoMeter() if len(devices) == 2 else None
        self._echo_at = 0.0

    @property
    def sources(self) -> list[Source]:
        return list(self._captures)

    @property
    def duration_s(self) -> float:
        """Length of the recording on the clock (also right when the file could not be written)."""
        return max(t.position for t in self._timelines.values()) / SAMPLE_RATE_HZ if self._timelines else 0.0

    def start(self) -> None:
        self.t0 = self._clock()
        self._timelines = {s: SourceTimeline(self.t0) for s in self._captures}
        started = []
        try:
            for capture in self._captures.values():
                capture.start()
                started.append(capture)
        except Exception:
            for capture in started:
                capture.stop()
            self._writer.close()
            raise
        self._thread.start()

    def stop(self) -> None:
        """Stop the devices, write everything still queued, close (and fsync) the file."""
        self._stop.set()
        self._thread.join()  # first: it may be switching devices
        for capture in self._captures.values():
            capture.stop()
        self._drain_queue()
        for source, timeline in self._timelines.items():
            self._emit(source, timeline.flush())
            if timeline.trimmed_samples:
                log.info("%s: %.3f s of samples left out to keep it in time with the clock (a device clock "
                         "running fast, or audio held up past the stall padding)",
                         source, timeline.trimmed_samples / SAMPLE_RATE_HZ)
        self._write(final=True)
        self._close_file()

    def _close_file(self) -> None:
        try:
            self._writer.close()
        except OSError as exc:
            self.write_error = f"Cannot finish the audio file: {exc.strerror or exc}."
            log.error("%s", self.write_error)
        else:
            self._follow_writer()  # space came back in time for the close: that outage is over

    @property
    def silenced_s(self) -> float:
        """Audio that waited for the disk too long and is silence in the file."""
        return self._writer.silenced_frames / SAMPLE_RATE_HZ

    def health(self) -> list[SourceHealth]:
        return [
            SourceHealth(s, c.device.name, self._levels[s], c.stats,
                         self._timelines[s].gap_samples / SAMPLE_RATE_HZ if s in self._timelines else 0.0,
                         c.alive)
            for s, c in self._captures.items()
        ]

    # -- thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                block = self._queue.get(timeout=TICK_S)
            except queue.Empty:
                block = None
            try:
                if block is not None:
                    self._take(block)
                self._pad_stalled()
                self._write(final=False)
                self._follow_devices()
            except Exception:  # the capture thread must outlive any one bad block or device
                log.exception("capture pipeline step failed")

    def _measure_echo(self, mic: Audio, system: Audio) -> None:
        if self._echo is None:
            return
        self._echo.add(mic, system)
        now = self._clock()
        if now - self._echo_at >= ECHO_EVERY_S:
            self._echo_at = now
            self.echo_db = self._echo.estimate_db()

    def _follow_devices(self) -> None:
        """Switch a source to the device it should use now, or reopen it if its stream died."""
        now = self._clock()
        if self._follow is None or now - self._followed_at < FOLLOW_EVERY_S:
            return
        self._followed_at = now
        for source, capture in list(self._captures.items()):
            try:
                wanted = self._follow(source) or capture.device
            except Exception as exc:  # noqa: BLE001 - the sound server may be gone for a moment
                log.info("cannot look up the %s device: %s", source, exc)
                continue
            if wanted.name == capture.device.name and capture.alive:
                continue
            replacement = SourceCapture(source, wanted, self._queue, clock=self._clock)
            try:
                # One attempt, tried again next time: retries here would stop this thread taking
                # the other source's audio (5 s a round while the lost device stays away).
                replacement.start(attempts=1)
            except CaptureError as exc:
                log.info("cannot open %s yet: %s", wanted.name, exc)
                continue
            capture.stop()
            self._captures[source] = replacement
            what = "System audio" if source == "system" else "Microphone"
            verb = "now follows" if wanted.name != capture.device.name else "is back:"
            self._on_notice(f"{what} {verb} {wanted.description}.")
            log.info("%s switched from %s to %s", source, capture.device.name, wanted.name)

    def _drain_queue(self) -> None:
        while True:
            try:
                self._take(self._queue.get_nowait())
            except queue.Empty:
                return

    def _take(self, block: AudioBlock) -> None:
        pieces = self._timelines[block.source].place(block.samples, block.sample_rate_hz, block.captured_at)
        self._levels[block.source] = dbfs(block.samples)
        for piece in pieces:
            self._emit(block.source, piece)

    def _pad_stalled(self) -> None:
        """Silence for a source that has delivered nothing for a while. One that delivers has its
        blocks in the queue (behind the other source's, or this thread was held up): padded, they
        would land late for the rest of the recording. Placed by their capture time, they don't."""
        now = self._clock()
        for source, timeline in self._timelines.items():
            if now - self._captures[source].stats.last_block_at < timeline.stall_s:
                continue
            silence = timeline.pad_to_clock(now)
            if silence is not None:
                self._levels[source] = -120.0
                self._emit(source, silence)

    def _emit(self, source: Source, audio: Audio) -> None:
        if len(audio):
            self._pending[source].append(audio)
            self._on_audio(source, audio)

    def _write(self, *, final: bool) -> None:
        """Write the frames both sources have; a missing source is silence."""
        buffers = {s: np.concatenate(p) if p else np.zeros(0, np.float32) for s, p in self._pending.items()}
        active = [s for s in self._captures]
        n = max(len(buffers[s]) for s in active) if final else min(len(buffers[s]) for s in active)
        if n == 0:
            return
        cols = {s: np.pad(buffers[s][:n], (0, max(0, n - len(buffers[s])))) for s in ("mic", "system")}
        self._measure_echo(cols["mic"], cols["system"])
        self._pending = {s: [buffers[s][n:]] if len(buffers[s]) > n else [] for s in ("mic", "system")}
        self._writer.write(cols["mic"], cols["system"])  # after: a writer that raises must not get these twice
        self._follow_writer()

    def _follow_writer(self) -> None:
        problem = self._writer.error
        if problem is not None and self.write_error is None:
            self.write_error = (f"Cannot write the audio file ({problem.strerror or problem}). The audio waits in "
                                f"memory (up to {HELD_MAX_S / 60:.0f} minutes) and transcription continues.")
            log.error("%s", self.write_error)
        elif problem is None and self.write_error is not None:
            self.write_error = None
            log.info("the audio file is written again")


def dbfs(samples: Audio) -> float:
    if not len(samples):
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(-120.0, 20 * float(np.log10(rms + 1e-12)))
