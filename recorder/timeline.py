"""Placing a source's samples on the recording clock.

A monitor of an idle or suspended sink delivers no frames at all, and devices stall; counting
delivered frames would then slide one source against the other. Each block is placed where
the clock says it was captured: a gap longer than ``max_gap_s`` is filled with silence, and a
source silent for longer than ``stall_s`` is padded up to the clock so the file keeps moving.

A device whose clock runs fast (a USB microphone beside the laptop's own sound card) delivers
more frames than the clock's time: 100 ppm is 0.36 s an hour, beyond the echo check's reach
against the other source. Once a source is ``ahead_s`` ahead of the clock, a few samples of
each block (at most ``max_trim_s``) are left out until it is back. Callbacks come late, never
early, so a late one never makes a source look ahead. A slow clock falls behind until a gap
is filled.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

from transcription.types import SAMPLE_RATE_HZ

F32 = npt.NDArray[np.float32]


class SourceTimeline:
    def __init__(self, t0: float, *, max_gap_s: float = 0.25, stall_s: float = 1.0, ahead_s: float = 0.04,
                 max_trim_s: float = 0.0005) -> None:
        self.t0 = t0
        self.position = 0  # 16 kHz samples placed so far
        self.gap_samples = 0  # silence inserted for missing audio
        self.trimmed_samples = 0  # left out of a source running ahead of the clock
        self._max_gap = int(max_gap_s * SAMPLE_RATE_HZ)
        self._ahead = int(ahead_s * SAMPLE_RATE_HZ)
        self._max_trim = max(1, int(max_trim_s * SAMPLE_RATE_HZ))
        self.stall_s = stall_s
        self._stall = int(stall_s * SAMPLE_RATE_HZ)
        self._resampler: soxr.ResampleStream | None = None
        self._rate = 0

    def _resample(self, samples: F32, rate: int) -> F32:
        if rate == SAMPLE_RATE_HZ:
            return samples
        if self._resampler is None or rate != self._rate:
            self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE_HZ, 1, dtype="float32", quality="HQ")
            self._rate = rate
        out: F32 = self._resampler.resample_chunk(samples)
        return out

    def place(self, samples: F32, rate: int, captured_at: float) -> list[F32]:
        """Resampled audio to append, preceded by silence if the clock says frames are missing."""
        audio = self._resample(samples, rate)
        start = round((captured_at - self.t0) * SAMPLE_RATE_HZ - len(samples) * SAMPLE_RATE_HZ / rate)
        out = []
        if start - self.position > self._max_gap:
            out.append(self._silence(start - self.position))
        elif self.position - start > self._ahead:
            cut = min(self.position - start - self._ahead, self._max_trim, len(audio))
            audio = audio[cut:]
            self.trimmed_samples += cut
        out.append(audio)
        self.position += len(audio)
        return out

    def flush(self) -> F32:
        """The resampler's last samples (it holds ~20 ms back), at the end of the recording."""
        if self._resampler is None:
            return np.zeros(0, np.float32)
        tail: F32 = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        self.position += len(tail)
        return tail

    def pad_to_clock(self, now: float) -> F32 | None:
        """Silence for a stalled source (no frames for ``stall_s``), up to ``stall_s`` before now."""
        behind = round((now - self.t0) * SAMPLE_RATE_HZ) - self.position
        if behind <= self._stall:
            return None
        return self._silence(behind - self._stall)

    def _silence(self, n: int) -> F32:
        self.position += n
        self.gap_samples += n
        return np.zeros(n, np.float32)
