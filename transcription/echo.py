"""Echo suppression: keep the others' words, heard again by the microphone, out of "Me".

Without headphones the mic picks up the speakers, so the far end's words come back as mic
segments. A mic final is held until the system stream has settled past it (every system
utterance that could overlap it is final), then judged against the system side of the same
time window on two kinds of evidence:

- **audio**: the share of the mic's energy that a delayed, scaled copy of the system audio
  explains (squared normalised cross-correlation at the best lag within ``max_lag_ms``).
  A loopback or a close speaker gives ~1; the user talking over the far end (double-talk)
  adds energy the system cannot explain and pulls it down, so double-talk is kept.
- **text**: the share of the mic segment's words found, in order, in the system finals around
  it. Room echo blurs the audio evidence but the model still hears the same words.

Either one above its threshold makes the segment an echo. Pure apart from numpy: the session
feeds it audio and finals, the tests feed it arrays and scripted segments.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from difflib import SequenceMatcher

import numpy as np

from transcription.types import SAMPLE_RATE_HZ, Audio, FinalSegment, Samples, Source, as_float

SR = SAMPLE_RATE_HZ


@dataclass(frozen=True)
class EchoConfig:
    max_lag_ms: int = 300  # speakers → room → mic, plus the two devices' latency difference
    audio_share: float = 0.6  # mic energy explained by the system audio, for an echo
    text_share: float = 0.6  # mic words found in the system text around it, for an echo
    min_text_words: int = 2  # one matching word ("okay") is no evidence
    text_pad_ms: int = 800  # system finals this close to the mic segment are compared (segment times are rough)
    min_system_dbfs: float = -50.0  # a quieter far end cannot be what the mic hears
    history_s: float = 120.0  # audio kept for the check (the longest hold plus an utterance)
    max_hold_ms: float = 60_000  # a mic final waits at most this long (in audio time) for the system side


@dataclass(frozen=True)
class EchoVerdict:
    echo: bool
    audio_share: float | None  # None: no system audio in that window
    text_share: float


class AudioHistory:
    """The last ``seconds`` of one source in a ring buffer, addressed by absolute sample index
    (``add`` copies only the new chunk: it runs for every block of a long recording)."""

    def __init__(self, seconds: float, whole: Samples | None = None) -> None:
        self._ring: Samples = whole if whole is not None else np.zeros(int(seconds * SR), np.float32)
        self.end = len(whole) if whole is not None else 0  # absolute index after the newest sample
        self._whole = whole is not None

    def add(self, chunk: Audio) -> None:
        if self._whole:
            raise ValueError("a whole recording is read, not added to (it would be overwritten)")
        size = len(self._ring)
        chunk = chunk[-size:]
        pos = self.end % size
        first = min(len(chunk), size - pos)
        self._ring[pos: pos + first] = chunk[:first]
        self._ring[: len(chunk) - first] = chunk[first:]
        self.end += len(chunk)

    def get(self, start: int, end: int) -> Audio:
        size = len(self._ring)
        lo, hi = max(start, self.end - size, 0), min(end, self.end)
        out = np.zeros(max(end - start, 0), np.float32)
        if hi > lo:
            idx = np.arange(lo, hi) % size
            out[lo - start: hi - start] = as_float(self._ring[idx])
        return out


def audio_share(mic: Audio, system: Audio) -> float | None:
    """Share of ``mic``'s energy explained by a scaled stretch of ``system`` as long as ``mic``.

    ``system`` covers the mic window plus the lags to try on each side. None when the system
    side is silent (nothing it could explain).
    """
    m = mic.astype(np.float64)
    s = system.astype(np.float64)
    n = len(m)
    if n == 0 or not np.any(s) or float(np.dot(m, m)) == 0.0:
        return None
    # corr[k] = <m, s[k : k + n]> for every shift k of the mic window along the system audio.
    size = 1 << (len(s) + n).bit_length()
    corr = np.fft.irfft(np.fft.rfft(s, size) * np.conj(np.fft.rfft(m, size)), size)[: len(s) - n + 1]
    cum = np.concatenate([[0.0], np.cumsum(s * s)])
    energy = cum[n:] - cum[: len(cum) - n]  # |s[k : k + n]|² for every k
    floor = 1e-9 * float(np.max(energy))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(energy > floor, corr**2 / (np.maximum(energy, floor) * float(np.dot(m, m))), 0.0)
    return float(np.clip(np.max(share), 0.0, 1.0))


def text_share(mic_text: str, system_texts: list[str]) -> tuple[float, int]:
    """(share of the mic words found in order in the system text, how many were found)."""
    mic = _words(mic_text)
    system = [w for t in system_texts for w in _words(t)]
    if not mic or not system:
        return 0.0, 0
    matcher = SequenceMatcher(a=mic, b=system, autojunk=False)
    found = sum(b.size for b in matcher.get_matching_blocks())
    return found / len(mic), found


class EchoGate:
    """Holds mic finals until the system side of their time window is known, then judges them."""

    def __init__(self, config: EchoConfig | None = None, *, whole: dict[Source, Samples] | None = None) -> None:
        """``whole``: both tracks of a finished recording, used in place (the post-meeting pass;
        16-bit, as the file holds them, or float)."""
        self.config = config or EchoConfig()
        self._audio: dict[Source, AudioHistory] = {
            s: AudioHistory(self.config.history_s, whole[s] if whole else None) for s in ("mic", "system")}
        self._system: list[FinalSegment] = []
        # System lines older than the audio kept are dropped; over a whole recording nothing is.
        self._keep_system_ms = float("inf") if whole else self.config.history_s * 1000
        self._held: list[FinalSegment] = []
        self.suppressed = 0

    def add_audio(self, source: Source, chunk: Audio) -> None:
        """Every chunk of both sources, in order from the start of the recording."""
        self._audio[source].add(chunk)

    def add_system(self, segment: FinalSegment) -> None:
        self._system.append(segment)
        horizon = segment.end_ms - self._keep_system_ms
        self._system = [s for s in self._system if s.end_ms >= horizon]

    def hold(self, segment: FinalSegment) -> None:
        self._held.append(segment)

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def held_from_ms(self) -> float | None:
        """Where the earliest mic final still waiting for its verdict starts."""
        return min((s.start_ms for s in self._held), default=None)

    def release(self, system_settled_ms: float, *, flush: bool = False) -> Iterator[tuple[FinalSegment, EchoVerdict]]:
        """Judge the held mic finals the system side has caught up with (all of them if ``flush``).

        ``system_settled_ms``: audio time before which the system stream has nothing left to
        finalise. A mic final also goes once it has waited ``max_hold_ms`` of audio (a stuck
        system transcriber must not hold the user's words forever).
        """
        c = self.config
        newest = self._audio["mic"].end * 1000 / SR
        keep: list[FinalSegment] = []
        for seg in self._held:
            settled = system_settled_ms >= seg.end_ms + c.text_pad_ms  # every system line it is compared with
            if flush or settled or newest - seg.end_ms >= c.max_hold_ms:
                verdict = self.judge(seg)
                self.suppressed += verdict.echo
                yield seg, verdict
            else:
                keep.append(seg)
        self._held = keep

    def judge(self, seg: FinalSegment) -> EchoVerdict:
        c = self.config
        start, end = int(seg.start_ms * SR / 1000), int(seg.end_ms * SR / 1000)
        lag = int(c.max_lag_ms * SR / 1000)
        mic = self._audio["mic"].get(start, end)
        system = self._audio["system"].get(start - lag, end + lag)
        rms = float(np.sqrt(np.mean(system.astype(np.float64) ** 2))) if len(system) else 0.0
        share = audio_share(mic, system) if 20 * np.log10(rms + 1e-12) >= c.min_system_dbfs else None
        near = [s.text for s in self._system
                if s.start_ms <= seg.end_ms + c.text_pad_ms and s.end_ms >= seg.start_ms - c.text_pad_ms]
        words, found = text_share(seg.text, near)
        # Words alone count only while the far end is audible in the same window: answering "thank
        # you, Anna" after Anna said "thank you" is not an echo.
        echo = share is not None and (share >= c.audio_share or (words >= c.text_share and found >= c.min_text_words))
        return EchoVerdict(echo, None if share is None else round(share, 3), round(words, 3))


def _words(text: str) -> list[str]:
    return [w for w in ("".join(ch for ch in t.lower() if ch.isalnum()) for t in text.split()) if w]
