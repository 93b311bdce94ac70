"""Incremental voice activity detection with the Silero VAD that ships inside faster-whisper."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from transcription.types import SAMPLE_RATE_HZ as SR
from transcription.types import Audio, Samples, as_float

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


# Scored this many windows per ONNX run, as faster-whisper's own whole-file VAD does: the same
# runs on the same inputs give the same scores, so the spans below are exactly faster-whisper's.
_RUN_WINDOWS = 10_000


def speech_spans(audio: Samples) -> list[tuple[int, int]]:
    """Where a whole recording has speech, as (start, end) samples: the spans faster-whisper's
    ``vad_filter`` keeps with its default options, without its copies of the recording.

    faster-whisper pads the whole recording, then builds a second copy of it with each window's
    context: ~8 MB per minute of audio at once (500 MB for an hour), before it copies the speech
    out. Here the recording is scored in runs of ``_RUN_WINDOWS`` windows with the state carried
    over, which is what faster-whisper does inside that one call.
    """
    from faster_whisper.vad import VadOptions

    opts = VadOptions()
    if not math.isinf(opts.max_speech_duration_s):
        raise NotImplementedError("faster-whisper's default VAD options now cap a span's length")
    return _spans(whole_recording_scores(audio), len(audio), opts)


def whole_recording_scores(audio: Samples) -> np.ndarray:
    """The speech probability of every window, as faster-whisper's VAD scores a whole recording."""
    length = len(audio)
    # faster-whisper pads to whole windows, a whole silent window when the length is already whole
    padded_len = length + WINDOW - length % WINDOW
    scorer = SileroScorer()
    probs: list[np.ndarray] = []
    run = _RUN_WINDOWS * WINDOW
    for lo in range(0, padded_len, run):
        block = np.zeros(min(run, padded_len - lo), np.float32)
        chunk = audio[lo: lo + len(block)]
        as_float(chunk, out=block[: len(chunk)])
        if lo + len(block) == padded_len:
            # faster-whisper zeroes the recording's last context samples in place while it builds
            # the windows' contexts, so its last window is scored with its tail silenced
            block[-_CONTEXT:] = 0
        probs.append(scorer(block))
    return np.concatenate(probs)


def _spans(probs: np.ndarray, length: int, opts: Any) -> list[tuple[int, int]]:
    """Silero's rule for a whole file, with faster-whisper's default options (no maximum span
    length): speech starts at a window scored ``threshold`` or more; it ends where the score
    first falls below ``neg_threshold``, once ``min_silence_duration_ms`` have passed from there
    with no window back at ``threshold`` (one cancels that end); then every span is widened by
    ``speech_pad_ms`` on each side, or by half the gap to its neighbour when the gap is shorter
    than two pads."""
    off = opts.neg_threshold if opts.neg_threshold is not None else max(opts.threshold - 0.15, 0.01)
    # faster-whisper compares each float32 score with the thresholds in float32
    on, off = float(np.float32(opts.threshold)), float(np.float32(off))
    min_silence = SR * opts.min_silence_duration_ms / 1000
    min_speech = SR * opts.min_speech_duration_ms / 1000
    pad = int(SR * opts.speech_pad_ms / 1000)
    found: list[list[int]] = []
    start: int | None = None
    quiet_from = 0  # where the silence that may end the span began (0: none)
    for i, prob in enumerate(probs.tolist()):
        at = i * WINDOW
        if prob >= on:
            quiet_from = 0
            if start is None:
                start = at
            continue
        if start is None or prob >= off:
            continue
        quiet_from = quiet_from or at
        if at - quiet_from >= min_silence:
            if quiet_from - start > min_speech:
                found.append([start, quiet_from])
            start, quiet_from = None, 0
    if start is not None and length - start > min_speech:
        found.append([start, length])
    for k, span in enumerate(found):
        if k == 0:
            span[0] = max(0, span[0] - pad)
        if k + 1 < len(found):
            following = found[k + 1]
            gap = following[0] - span[1]
            widen = gap // 2 if gap < 2 * pad else pad
            span[1] = min(length, span[1] + widen)
            following[0] = max(0, following[0] - widen)
        else:
            span[1] = min(length, span[1] + pad)
    return [(s, e) for s, e in found]
