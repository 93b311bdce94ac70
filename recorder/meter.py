"""Live input levels for the settings page: a source opened only to show how loud it is.

Nothing is stored. Each meter owns one capture stream; ``level_dbfs`` reads what arrived since
the last call (the loudest block, as a meter needle shows), or None before the first block.
"""

from __future__ import annotations

import queue

from recorder.capture import AudioBlock, SourceCapture
from recorder.devices import InputDevice
from recorder.pipeline import dbfs
from transcription.types import Source


class LevelMeter:
    def __init__(self, source: Source, device: InputDevice) -> None:
        self.device = device
        self._blocks: queue.Queue[AudioBlock] = queue.Queue(maxsize=500)
        self._capture = SourceCapture(source, device, self._blocks)
        self._last: float | None = None

    def start(self) -> None:
        """Raises CaptureError when the device cannot be opened."""
        self._capture.start()

    @property
    def alive(self) -> bool:
        return self._capture.alive

    def level_dbfs(self) -> float | None:
        loudest = None
        while True:
            try:
                block = self._blocks.get_nowait()
            except queue.Empty:
                break
            level = dbfs(block.samples)
            loudest = level if loudest is None else max(loudest, level)
        if loudest is not None:
            self._last = loudest
        return self._last

    def stop(self) -> None:
        self._capture.stop()
