"""One input stream per source. The PortAudio callback only copies and enqueues.

No logging, locks or numpy concatenation in the callback: it checks ``status``, copies the
block, ``put_nowait``s it into a bounded queue and counts what it could not enqueue.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from recorder.devices import InputDevice
from transcription.types import Source

QUEUE_BLOCKS = 2000  # ≈ 40 s of 20 ms blocks: the writer only has to stall that long to drop anything
_open_lock = threading.Lock()  # PULSE_SOURCE is process-wide: open one pulse stream at a time


class CaptureError(Exception):
    """A source could not be opened; the message names the device and the reason."""


@dataclass(frozen=True)
class AudioBlock:
    source: Source
    captured_at: float  # clock time at the callback (≈ end of the block)
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
        self._stream: Any = None

    def _callback(self, indata: Any, frames: int, _time: Any, status: Any) -> None:
        now = self._clock()
        if status.input_overflow:
            self.stats.overflows += 1
        block = AudioBlock(self.source, now, self._rate, indata[:, 0].copy())
        try:
            self._out.put_nowait(block)
        except queue.Full:
            self.stats.dropped_frames += frames
        self.stats.blocks += 1
        self.stats.last_block_at = now

    def start(self) -> None:
        import sounddevice as sd

        try:
            if self.device.backend == "pulse":
                self._stream = self._open_pulse(sd)
            else:
                self._stream = sd.InputStream(
                    device=self.device.portaudio_index, samplerate=self._rate, channels=1, dtype="float32",
                    callback=self._callback,
                )
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            raise CaptureError(f"Cannot open {self.device.label}: {exc}") from exc

    def _open_pulse(self, sd: Any) -> Any:
        """The ALSA ``pulse`` device, pointed at one source through ``PULSE_SOURCE``."""
        with _open_lock:
            previous = os.environ.get("PULSE_SOURCE")
            os.environ["PULSE_SOURCE"] = self.device.name
            try:
                return sd.InputStream(
                    device="pulse", samplerate=self._rate, channels=1, dtype="float32",
                    latency="low", callback=self._callback,
                )
            finally:
                if previous is None:
                    os.environ.pop("PULSE_SOURCE", None)
                else:
                    os.environ["PULSE_SOURCE"] = previous

    def stop(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except Exception:  # noqa: BLE001 - a vanished device must not stop the shutdown
                pass
            self._stream = None
