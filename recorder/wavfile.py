"""The recording's audio on disk: stereo 16 kHz WAV, left = mic, right = system.

Written as it is recorded and flushed every second; a file left by a killed process has stale
RIFF/data sizes, which ``repair_wav`` rewrites from the file's real length.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from transcription.types import SAMPLE_RATE_HZ

FLUSH_EVERY_FRAMES = SAMPLE_RATE_HZ  # one second


class StereoWavWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.frames = 0
        self._since_flush = 0
        self._file = sf.SoundFile(path, "w", samplerate=SAMPLE_RATE_HZ, channels=2, subtype="PCM_16", format="WAV")

    def write(self, mic: np.ndarray, system: np.ndarray) -> None:
        frames = np.stack([mic, system], axis=1)
        self._file.write(np.clip(frames, -1.0, 1.0))
        self.frames += len(frames)
        self._since_flush += len(frames)
        if self._since_flush >= FLUSH_EVERY_FRAMES:
            self._file.flush()
            self._since_flush = 0

    def close(self) -> None:
        self._file.close()
        with open(self.path, "rb+") as f:
            os.fsync(f.fileno())


def repair_wav(path: Path) -> bool:
    """Fix the RIFF and ``data`` sizes of a WAV cut short by a crash; True if it was changed."""
    with open(path, "rb+") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return False
        size = os.fstat(f.fileno()).st_size
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_len = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                real = size - pos - 8
                real -= real % 4  # whole stereo 16-bit frames
                changed = bool(chunk_len != real) or struct.unpack("<I", head[4:8])[0] != pos + real
                if changed:
                    f.seek(pos + 4)
                    f.write(struct.pack("<I", real))
                    f.seek(4)
                    f.write(struct.pack("<I", pos + real))
                    f.truncate(pos + 8 + real)
                return changed
            pos += 8 + chunk_len + (chunk_len & 1)
    return False
