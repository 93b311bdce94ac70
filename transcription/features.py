"""Whisper's log-mel features of a long recording, computed a block of frames at a time."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
from faster_whisper.feature_extractor import FeatureExtractor

from transcription.types import as_float

BLOCK_FRAMES = 3000  # 30 s of 10 ms frames


class BlockwiseFeatures(FeatureExtractor):  # type: ignore[misc]  # faster-whisper is untyped
    """faster-whisper's feature extractor, giving the same features with far less memory.

    faster-whisper computes the log-mel spectrogram of all the audio it is given in one go, and
    the arrays on the way (the windowed frames, their spectra and magnitudes) take ~36 MB per
    minute: a whole-recording pass over an hour-long meeting needed over 2 GB for them. Here they
    exist for one block of frames at a time; only the mel spectrogram (1.9 MB a minute with 80
    mels) is kept whole, and it is the same array (the test compares them). Audio of at most
    3,000 frames (just under 30 s) goes through faster-whisper's own code.

    16-bit samples are taken as they are and made floats a block at a time (exactly: divided by
    32768), so a long recording's speech need not be held as floats at all.
    """

    def __call__(self, waveform: np.ndarray, padding: int = 160, chunk_length: int | None = None) -> Any:
        wave = waveform if waveform.dtype == np.int16 else np.asarray(waveform, np.float32)
        length = len(wave) + padding  # faster-whisper pads the end with zeros first
        frames = length // self.hop_length  # stft(center=True) gives one more, which it drops
        if frames <= BLOCK_FRAMES:
            return super().__call__(as_float(wave), padding, chunk_length)
        if chunk_length is not None:
            self.n_samples = chunk_length * self.sampling_rate
            self.nb_max_frames = self.n_samples // self.hop_length
        window = np.hanning(self.n_fft + 1)[:-1].astype(np.float32)
        mel = np.empty((self.mel_filters.shape[0], frames), np.float32)
        # blocks of even size: a thin last block (one column) would go through another BLAS path in
        # the product below and round differently, and the features would no longer be identical
        bounds = np.linspace(0, frames, -(-frames // BLOCK_FRAMES) + 1).astype(int)
        for first, end in pairwise(bounds):
            block = self._padded(wave, length, first * self.hop_length, (end - 1) * self.hop_length + self.n_fft)
            spectrum = self.stft(block, self.n_fft, self.hop_length, window=window, center=False,
                                 return_complex=True).astype(np.complex64)
            mel[:, first:end] = self.mel_filters @ (np.abs(spectrum) ** 2)
        # faster-whisper's last steps, in place: each of them would otherwise make a new array the
        # size of the whole spectrogram, and the peak of the pass came here, with three of them
        np.log10(np.clip(mel, 1e-10, None, out=mel), out=mel)
        np.maximum(mel, mel.max() - 8.0, out=mel)
        mel += 4.0
        mel /= 4.0
        return mel

    def _padded(self, wave: np.ndarray, length: int, start: int, stop: int) -> np.ndarray:
        """Samples ``start:stop`` of what ``stft(center=True)`` frames: ``wave`` and ``length -
        len(wave)`` zeros, reflected by half a window at both ends, without copying all of it."""
        index = np.arange(start, stop) - self.n_fft // 2
        index = np.abs(index)  # reflected at the start
        index = np.where(index >= length, 2 * (length - 1) - index, index)  # and at the end
        return np.where(index < len(wave), as_float(wave[np.minimum(index, len(wave) - 1)]), 0).astype(np.float32)
