"""The recording's audio on disk: stereo 16 kHz 16-bit WAV, left = mic, right = system.

Frames are appended as they are recorded and the header's sizes are rewritten every second; a
file left by a killed process has stale RIFF/data sizes, which ``repair_wav`` rewrites from the
file's real length.

A write the disk refuses (full disk, quota, file-size limit) loses nothing at once: the frames
wait in memory and go to the file with the next write that succeeds, so the file resumes where it
stopped and stays in step with the recording clock. Past ``HELD_MAX_S`` of waiting audio the
oldest is let go and becomes silence in the file: a hole the file position skips, which takes no
disk space where files can be sparse (Linux and macOS file systems, not NTFS by default), so the
space freed goes to the audio that waits.
"""

from __future__ import annotations

import errno
import os
import struct
from collections import deque
from pathlib import Path

import numpy as np

from transcription.types import SAMPLE_RATE_HZ

CHANNELS = 2
FRAME_BYTES = 2 * CHANNELS
HEADER_BYTES = 44
HEADER_EVERY_FRAMES = SAMPLE_RATE_HZ  # one second
HELD_MAX_S = 600.0  # ten minutes of waiting audio: 38 MB
HELD_CHUNK_BYTES = 1 << 20
MAX_DATA_BYTES = (0xFFFFFFFF - (HEADER_BYTES - 8)) // FRAME_BYTES * FRAME_BYTES  # a WAV's 32-bit sizes: 18.6 h


def wav_header(data_bytes: int) -> bytes:
    rate = SAMPLE_RATE_HZ
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", HEADER_BYTES - 8 + data_bytes, b"WAVE", b"fmt ", 16, 1,
                       CHANNELS, rate, rate * FRAME_BYTES, FRAME_BYTES, 16, b"data", data_bytes)


class StereoWavWriter:
    def __init__(self, path: Path, *, held_max_s: float = HELD_MAX_S) -> None:
        self.path = path
        self.frames = 0  # frames given to the writer: the recording's length
        self.error: OSError | None = None  # why the last write failed; None once writing works again
        self._silenced_bytes = 0
        self._held_max = int(held_max_s * SAMPLE_RATE_HZ) * FRAME_BYTES
        # Bytes not yet on disk, in chunks of up to 1 MB:
        # one growing bytearray is copied as it grows (twice the memory at the cap), and a chunk
        # per write leaves the heap fragmented by the writes' temporaries (+25 %).
        self._held: deque[bytearray] = deque()
        self._held_len = 0
        self._past = 0  # data bytes before the file position: written, or a hole of silence
        self._header_at = 0
        self._file = open(path, "wb", buffering=0)  # noqa: SIM115 - closed by close()
        try:
            if self._file.write(wav_header(0)) != HEADER_BYTES:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            self._file.close()
            raise OSError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc

    @property
    def waiting_s(self) -> float:
        """Audio given but not yet on disk."""
        return self._held_len / FRAME_BYTES / SAMPLE_RATE_HZ

    def write(self, mic: np.ndarray, system: np.ndarray) -> None:
        """Append frames. A refused write does not raise: see ``error`` and ``waiting_s``."""
        frames = np.clip(np.stack([mic, system], axis=1), -1.0, 1.0)
        data = (frames * 32767).round().astype("<i2").tobytes()
        if self._held and len(self._held[-1]) + len(data) <= HELD_CHUNK_BYTES:
            self._held[-1] += data
        else:
            self._held.append(bytearray(data))
        self._held_len += len(data)
        self.frames += len(frames)
        self._let_go_beyond_cap()
        self._flush_held()
        if self.error is None and self.frames - self._header_at >= HEADER_EVERY_FRAMES:
            self._rewrite_header()

    def close(self) -> None:
        """Write what waits, finish the header, fsync; raise OSError if audio is still not written."""
        try:
            self._flush_held()
            self._rewrite_header()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()
        if self.error is not None:
            raise OSError(self.error.errno, f"{self.waiting_s:.1f} s of audio could not be written "
                                            f"({self.error.strerror or self.error})")

    @property
    def silenced_frames(self) -> int:
        """Waiting frames let go at the memory cap: silence in the file."""
        return round(self._silenced_bytes / FRAME_BYTES)

    def _let_go_beyond_cap(self) -> None:
        excess = self._held_len - self._held_max
        if excess > 0:  # up to a frame boundary in the file (a partial write can end mid-frame)
            excess = min(self._held_len, excess + -(self._past + excess) % FRAME_BYTES)
            self._drop_held(excess)
            self._file.seek(excess, os.SEEK_CUR)
            self._past += excess
            self._silenced_bytes += excess

    def _flush_held(self) -> None:
        self.error = None
        while self._held and self.error is None:
            self._drop_held(self._put(self._held[0]))

    def _drop_held(self, n: int) -> None:
        """Take the first ``n`` held bytes off the queue."""
        self._held_len -= n
        while n:
            head = self._held[0]
            if n < len(head):
                del head[:n]
                return
            n -= len(head)
            self._held.popleft()

    def _put(self, data: bytes | bytearray) -> int:
        """Write as much of ``data`` as the disk takes; a refusal is kept in ``error``."""
        done = 0
        with memoryview(data) as view:
            while done < len(view):
                try:
                    n = self._file.write(view[done:])
                except OSError as exc:
                    self.error = exc
                    break
                if not n:
                    self.error = OSError(28, os.strerror(28))
                    break
                done += n
        self._past += done
        return done

    def _rewrite_header(self) -> None:
        """The sizes of what is in the file: a hole still at its end (the write after it refused)
        is not, and a file past 4 GiB says 4 GiB (readers that trust it stop there)."""
        try:  # seek and write rather than os.pwrite, which Windows lacks
            data = min(os.fstat(self._file.fileno()).st_size - HEADER_BYTES, self._past, MAX_DATA_BYTES)
            self._file.seek(0)
            if self._file.write(wav_header(max(0, data - data % FRAME_BYTES))) == HEADER_BYTES:
                self._header_at = self.frames
        except OSError:
            pass  # ``repair_wav`` fixes the sizes if this file is never closed
        finally:
            self._file.seek(HEADER_BYTES + self._past)


def repair_wav(path: Path) -> bool:
    """Fix the RIFF and ``data`` sizes of a WAV cut short by a crash; True if it was changed.
    Past 4 GiB (18.6 h) the sizes say 4 GiB, as the writer's do, and the audio after stays."""
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
                real = min(size - pos - 8, 0xFFFFFFFF - pos)
                real -= real % FRAME_BYTES  # whole stereo 16-bit frames
                changed = bool(chunk_len != real) or struct.unpack("<I", head[4:8])[0] != pos + real
                if changed:
                    f.seek(pos + 4)
                    f.write(struct.pack("<I", real))
                    f.seek(4)
                    f.write(struct.pack("<I", pos + real))
                    if size - (pos + 8 + real) < FRAME_BYTES:
                        f.truncate(pos + 8 + real)  # a torn last frame
                return changed
            pos += 8 + chunk_len + (chunk_len & 1)
    return False
