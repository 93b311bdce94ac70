"""One input stream per source. The PortAudio callback only copies and enqueues.

No logging, locks or numpy concatenation in the callback: it checks ``status``, copies the
block, ``put_nowait``s it into a bounded queue and counts what it could not enqueue.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from recorder.devices import PORTAUDIO_LOCK, InputDevice, load_sounddevice
from transcription.types import Source

OPEN_ATTEMPTS = 7  # 0.25 + 0.5 + … + 1.5 s = 5.25 s of retries before a clear error
OPEN_RETRY_S = 0.25
# Streams deliver blocks of 20 ms (left to itself, PortAudio on the ALSA pulse device called back
# with ~1.4 ms: 700 blocks a second per source, so the queue held 1.5 s of audio, not 20 s).
BLOCK_S = 0.02
MAX_HELD_S = 30.0  # a longer hold-up than a device buffers, by the stream's clock: not believed
QUEUE_BLOCKS = 2000  # 40 s of 20 ms blocks, 20 s with both sources: how long the pipeline may stall
log = logging.getLogger(__name__)


class CaptureError(Exception):
    """A source could not be opened; the message names the device and the reason."""


@dataclass(frozen=True)
class AudioBlock:
    source: Source
    captured_at: float  # clock time the block's last frame was captured (the callback's, less any hold-up)
    sample_rate_hz: int
    samples: npt.NDArray[np.float32]  # mono, device rate


@dataclass
class CaptureStats:
    blocks: int = 0
    overflows: int = 0
    dropped_frames: int = 0
    last_block_at: float = 0.0


class SourceCapture:
    def __init__(
        self,
        source: Source,
        device: InputDevice,
        out: queue.Queue[AudioBlock],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.device = device
        self.stats = CaptureStats()
        self._out = out
        self._clock = clock
        self._rate = device.sample_rate_hz
        self.block_frames = max(1, round(self._rate * BLOCK_S))
        self._stream: Any = None

    def _callback(self, indata: Any, frames: int, times: Any, status: Any) -> None:
        held = self._held_for(times, frames)  # first: a wait before the clock is read makes it late, not early
        now = self._clock()
        if status.input_overflow:
            self.stats.overflows += 1
        block = AudioBlock(self.source, now - held, self._rate, indata[:, 0].copy())
        try:
            self._out.put_nowait(block)
        except queue.Full:
            self.stats.dropped_frames += frames
        self.stats.blocks += 1
        self.stats.last_block_at = now

    def _held_for(self, times: Any, frames: int) -> float:
        """How long ago the block's last frame was captured, by the stream's own clock. A held-up
        callback (a paused process; the thread not scheduled, or waiting for the interpreter)
        gets frames the device captured on time: placed at the callback's time, they would get
        silence before them and shift the source for the rest of the recording. 0 where the
        host API does not say (an ADC time of 0) or says something implausible."""
        stream = self._stream
        try:  # now, not when PortAudio called back: the interpreter may have made us wait since
            now = stream.time if stream is not None else times.currentTime
        except Exception:  # noqa: BLE001 - never raise in the callback: PortAudio would stop the stream
            now = times.currentTime
        held = now - times.inputBufferAdcTime - frames / self._rate
        return held if times.inputBufferAdcTime > 0 and 0.0 < held <= MAX_HELD_S else 0.0

    def start(self, *, attempts: int = OPEN_ATTEMPTS) -> None:
        """Open and start the stream, with a few quick retries for an open refused for a moment.
        (The "Invalid sample rate" refusals once put down to a busy server were a bad rate read
        from freed memory: see ``PULSE_CAPTURE_RATE_HZ``.)"""
        try:
            sd = load_sounddevice()
        except OSError as exc:
            raise CaptureError(f"Cannot open {self.device.label}: {exc}") from exc
        for attempt in range(1, attempts + 1):
            try:
                with PORTAUDIO_LOCK:
                    self._stream = self._open_pulse(sd) if self.device.backend == "pulse" else sd.InputStream(
                        device=self.device.portaudio_index, samplerate=self._rate, channels=1, dtype="float32",
                        blocksize=self.block_frames, callback=self._callback, extra_settings=_platform_settings(sd),
                    )
                    self._stream.start()
                return
            except (sd.PortAudioError, ValueError) as exc:
                self.stop()
                if attempt == attempts:
                    raise CaptureError(f"Cannot open {self.device.label}: {exc}") from exc
                log.warning("opening %s failed (%s); retrying", self.device.name, exc)
                time.sleep(OPEN_RETRY_S * attempt)

    def _open_pulse(self, sd: Any) -> Any:
        """The ALSA ``pulse`` device, pointed at one source through ``PULSE_SOURCE``. That variable
        is process-wide: the caller holds ``PORTAUDIO_LOCK``, so one open happens at a time."""
        previous = os.environ.get("PULSE_SOURCE")
        os.environ["PULSE_SOURCE"] = self.device.name
        try:
            return sd.InputStream(
                device="pulse", samplerate=self._rate, channels=1, dtype="float32",
                latency="low", blocksize=self.block_frames, callback=self._callback,
            )
        finally:
            if previous is None:
                os.environ.pop("PULSE_SOURCE", None)
            else:
                os.environ["PULSE_SOURCE"] = previous

    @property
    def alive(self) -> bool:
        """False once the stream has stopped on its own (device unplugged, server gone)."""
        with PORTAUDIO_LOCK:  # not while another thread closes it
            stream = self._stream
            if stream is None:
                return True
            try:
                return bool(stream.active)
            except Exception:  # noqa: BLE001 - PortAudio: the stream is gone
                return False

    def stop(self) -> None:
        """Stop and close the stream; safe from any thread, also while ``start`` runs on another
        (it waits for the open to finish, then closes what was opened)."""
        with PORTAUDIO_LOCK:
            stream, self._stream = self._stream, None
            if stream is None:
                return
            try:
                stream.stop()
                stream.close()
            except Exception:  # noqa: BLE001 - a vanished device must not stop the shutdown
                pass


def _platform_settings(sd: Any) -> Any:
    """On Windows, WASAPI shared mode opens a device only in its own format unless asked to convert
    (a stereo loopback read as mono, a 48 kHz device at its rate). Untested: no Windows here."""
    if sys.platform == "win32":
        return sd.WasapiSettings(auto_convert=True)
    return None
