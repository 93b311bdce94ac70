"""Placing a source's samples on the recording clock.

A monitor of an idle or suspended sink delivers no frames at all, and devices stall; counting
delivered frames would then slide one source against the other. Each block is placed where
the clock says it was captured: a gap longer than ``max_gap_s`` is filled with silence, and a
source silent for longer than ``stall_s`` is padded up to the clock so the file keeps moving.

A source can also run ahead of the clock: a device whose clock runs fast (a USB microphone
beside the laptop's own sound card; 100 ppm is 0.36 s an hour, beyond the echo check's reach
against the other source), or audio that came after the source was padded as stalled (a
callback held up longer than ``stall_s``). Once it is ``ahead_s`` ahead, a few samples of each
block (at most ``max_trim_s``, crossfaded) are left out until it is back; more than ``max_gap_s``
ahead, quiet blocks (pauses) are left out whole, so a long hold-up heals within a few pauses.
A slow clock falls behind until a gap is filled.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

from transcription.types import SAMPLE_RATE_HZ

F32 = npt.NDArray[np.float32]
QUIET_RMS = 10 ** (-50 / 20)  # a block this quiet is a pause, left out whole by a source far ahead
FADE = 32  # samples (2 ms) over which a trimmed block joins what came before


class SourceTimeline:
    def __init__(self, t0: float, *, max_gap_s: float = 0.25, stall_s: float = 1.0, ahead_s: float = 0.06,
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
            audio = self._trim(audio, self.position - start - self._ahead, far=self.position - start > self._max_gap)
        out.append(audio)
        self.position += len(audio)
        return out

    def _trim(self, audio: F32, excess: int, *, far: bool) -> F32:
        """``audio`` less up to ``excess`` samples: a quiet block whole when ``far``, else at most
        ``max_trim`` samples from its start, crossfaded into what is kept (no click)."""
        if len(audio) == 0:  # the resampler's first chunks
            return audio
        if far and len(audio) <= excess and float(np.sqrt(np.mean(np.square(audio)))) < QUIET_RMS:
            self.trimmed_samples += len(audio)
            return audio[:0]
        cut = min(excess, self._max_trim, max(0, len(audio) - FADE))
        if cut == 0:
            return audio
        fade = np.linspace(0.0, 1.0, FADE, dtype=np.float32)
        joined = audio[:FADE] * (1 - fade) + audio[cut:cut + FADE] * fade
        self.trimmed_samples += cut
        return np.concatenate([joined, audio[cut + FADE:]])

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
