"""Incremental voice activity detection with the Silero VAD that ships inside faster-whisper."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from transcription.types import Audio

WINDOW = 512  # samples at 16 kHz: 32 ms, what Silero VAD scores

SpeechScorer = Callable[[Audio], "np.ndarray"]


def silero_scorer() -> SpeechScorer:
    """Scores a whole number of 512-sample windows; each window sees the previous one's tail."""
    from faster_whisper.vad import get_vad_model

    model = get_vad_model()

    def score(audio: Audio) -> np.ndarray:
        return np.asarray(model(audio)).reshape(-1)

    return score


class StreamingVad:
    """Feeds audio as it arrives and returns one speech probability per new 32 ms window."""

    def __init__(self, scorer: SpeechScorer) -> None:
        self._score = scorer
        self._pending = np.zeros(0, np.float32)
        self._previous = np.zeros(WINDOW, np.float32)

    def push(self, samples: Audio) -> list[float]:
        self._pending = np.concatenate([self._pending, samples])
        n = len(self._pending) // WINDOW
        if n == 0:
            return []
        ready = self._pending[: n * WINDOW]
        self._pending = self._pending[n * WINDOW:]
        # Prepend the previous window so the first new one gets its real context; drop its score.
        probs = self._score(np.concatenate([self._previous, ready]).astype(np.float32))[1:]
        self._previous = ready[-WINDOW:].copy()
        return [float(p) for p in probs]
