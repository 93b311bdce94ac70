"""Echo estimate: how much of the system audio the microphone picks up (speakers, no headphones).

Over the last ``window_s`` of aligned mic and system audio, the system signal is cross-correlated
with the mic at lags up to ``max_lag_s`` (sound from the speakers reaches the mic late). Where the
correlation is clear, the echo level is the mic's gain on the system signal, in dB: 0 dB = as loud
as the original, -10 dB = a third of it. Double-talk lowers the correlation rather than faking echo.
"""

from __future__ import annotations

import numpy as np

from transcription.echo import AudioHistory
from transcription.types import SAMPLE_RATE_HZ, Audio

MIN_SYSTEM_DBFS = -45.0  # below this the far end is silent: nothing to estimate
MIN_CORRELATION = 0.3


class EchoMeter:
    def __init__(self, window_s: float = 3.0, max_lag_s: float = 0.3) -> None:
        self._size = int(window_s * SAMPLE_RATE_HZ)
        self._max_lag = int(max_lag_s * SAMPLE_RATE_HZ)
        self._heard = {"mic": AudioHistory(window_s), "system": AudioHistory(window_s)}

    def add(self, mic: Audio, system: Audio) -> None:
        """Equal-length, time-aligned chunks of both sources."""
        self._heard["mic"].add(mic)
        self._heard["system"].add(system)

    def _window(self, source: str) -> Audio:
        history = self._heard[source]
        return history.get(history.end - min(history.end, self._size), history.end)

    def estimate_db(self) -> float | None:
        """Echo level in dB, or None when the far end is silent or the mic does not echo it."""
        mic, system = self._window("mic").astype(np.float64), self._window("system").astype(np.float64)
        if len(system) < self._size // 2:
            return None
        if 20 * np.log10(np.sqrt(np.mean(system**2)) + 1e-12) < MIN_SYSTEM_DBFS:
            return None
        n = 1 << (len(mic) + len(system)).bit_length()
        corr = np.fft.irfft(np.fft.rfft(mic, n) * np.conj(np.fft.rfft(system, n)), n)[: self._max_lag + 1]
        lag = int(np.argmax(np.abs(corr)))
        ref, heard = system[: len(system) - lag], mic[lag:]
        denom = np.linalg.norm(ref) * np.linalg.norm(heard)
        if denom == 0 or abs(corr[lag]) / denom < MIN_CORRELATION:
            return None
        gain = abs(float(np.dot(heard, ref))) / float(np.dot(ref, ref))
        return round(20 * float(np.log10(max(gain, 1e-6))), 1)
