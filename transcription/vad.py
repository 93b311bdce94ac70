"""Incremental voice activity detection with the Silero VAD that ships inside faster-whisper."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from transcription.types import Audio

WINDOW = 512  # samples at 16 kHz: 32 ms, what Silero VAD scores
_CONTEXT = 64  # samples of the previous window Silero sees before each one

SpeechScorer = Callable[[Audio], "np.ndarray"]


class SileroScorer:
    """Silero VAD scoring a stream, window by window, as it arrives.

    Silero is a recurrent network: each window's score depends on everything before it, through
    the LSTM state and the previous window's tail. faster-whisper's ``SileroVADModel`` starts from
    a blank state at every call, which is right for a whole file and wrong for a stream fed in
    20 ms blocks: scored that way, speech under steady hiss (10 dB SNR) fell from ~0.9 to ~0.1 and
    whole phrases went untranscribed. This keeps the state between calls, so a stream gets exactly
    the scores of one pass over the whole audio (``tests/test_transcription_real.py`` checks it).
    One instance per stream; the ONNX session (loaded once by faster-whisper) is shared.
    """

    def __init__(self) -> None:
        from faster_whisper.vad import get_vad_model

        self._session = get_vad_model().session
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._tail = np.zeros(_CONTEXT, np.float32)

    def __call__(self, audio: Audio) -> np.ndarray:
        windows = np.asarray(audio, np.float32).reshape(-1, WINDOW)
        if not len(windows):
            return np.zeros(0, np.float32)
        tails = np.concatenate([self._tail[None, :], windows[:-1, -_CONTEXT:]])
        out, self._h, self._c = self._session.run(
            None, {"input": np.concatenate([tails, windows], axis=1), "h": self._h, "c": self._c})
        self._tail = windows[-1, -_CONTEXT:].copy()
        return np.asarray(out, np.float32).reshape(-1)


def silero_scorer() -> SpeechScorer:
    """A fresh scorer, with its own state, for one stream."""
    return SileroScorer()


class StreamingVad:
    """Feeds audio as it arrives and returns one speech probability per new 32 ms window.

    The scorer sees each window once, in order, and keeps whatever state it needs between calls.
    """

    def __init__(self, scorer: SpeechScorer) -> None:
        self._score = scorer
        self._pending = np.zeros(0, np.float32)

    def push(self, samples: Audio) -> list[float]:
        self._pending = np.concatenate([self._pending, samples])
        n = len(self._pending) // WINDOW
        if n == 0:
            return []
        ready = self._pending[: n * WINDOW]
        self._pending = self._pending[n * WINDOW:]
        return [float(p) for p in self._score(ready.astype(np.float32, copy=False))]
