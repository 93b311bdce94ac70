"""Domain objects of transcription: what the model returns and what the engine emits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

Source = Literal["mic", "system"]
SAMPLE_RATE_HZ = 16_000
Audio = npt.NDArray[np.float32]
Pcm16 = npt.NDArray[np.int16]  # samples as a 16-bit WAV holds them: half the memory of Audio
Samples = Audio | Pcm16
# How much of a long pass over saved audio is done, from 0 to 1; called on the thread doing it.
PassProgress = Callable[[float], None]


def as_float(samples: Samples, out: Audio | None = None) -> Audio:
    """Float samples in [-1, 1); 16-bit ones divided by 32768 (exact: a power of two). Written
    into ``out`` when given (no temporary copy)."""
    if samples.dtype == np.int16:
        return np.divide(samples, 32768, dtype=np.float32, out=out)
    if out is None:
        return np.asarray(samples, np.float32)
    out[...] = samples
    return out


@dataclass(frozen=True)
class AsrWord:
    start_s: float
    end_s: float
    text: str
    probability: float


@dataclass(frozen=True)
class AsrSegment:
    """One segment as the model produced it, times relative to the audio passed in."""

    start_s: float
    end_s: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    words: tuple[AsrWord, ...] = ()


class Transcriber(Protocol):
    """The model behind a small interface: the real one, or a scripted one in unit tests."""

    def transcribe(
        self, audio: Audio, *, prompt: str | None = None, prefix: str | None = None,
        word_timestamps: bool = False, final: bool = True,
    ) -> list[AsrSegment]:
        """``final=False`` asks for a cheap interim pass (greedy); finals may use beam search.

        ``prefix``: text the model is forced to start with (what the first part of ``audio`` is
        already known to say); the segments returned include it."""
        ...

    def transcribe_file(self, audio: Samples, *, word_timestamps: bool = True, progress: PassProgress | None = None,
                        on_segment: Callable[[AsrSegment], None] | None = None) -> list[AsrSegment]:
        """A whole recording in one pass (beam search, silences skipped): the post-meeting pass.
        ``audio`` may be 16-bit, as the recording's file holds it. Segment times come from word
        times unless ``word_timestamps`` is off. ``progress`` hears the share of its speech
        decoded as the pass goes (an hour takes minutes), and 1 at the end; ``on_segment`` each
        segment as soon as it is decoded (to keep it before the pass ends, or is killed)."""
        ...


def progress_in_turn(progress: PassProgress | None, sizes: Sequence[int]) -> list[PassProgress | None]:
    """One callback per part, for passes over parts of these sizes one after the other: each
    tells ``progress`` the share of the whole done."""
    if progress is None:
        return [None] * len(sizes)
    report, total = progress, max(sum(sizes), 1)

    def part(before: int, size: int) -> PassProgress:
        return lambda done: report((before + done * size) / total)

    return [part(sum(sizes[:i]), size) for i, size in enumerate(sizes)]


@dataclass(frozen=True)
class FinalSegment:
    """Committed text: stored, shown, sent to the server. Times in ms from recording start."""

    source: Source
    start_ms: float
    end_ms: float
    text: str
    confidence: float | None


@dataclass(frozen=True)
class PartialText:
    """Interim text of the utterance in progress: shown live, replaced, never sent."""

    source: Source
    start_ms: float
    text: str


TranscriptEvent = FinalSegment | PartialText
