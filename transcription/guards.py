"""Hallucination guards: text the model made up from silence, noise or a decoding loop."""

from __future__ import annotations

import re
import zlib

from transcription.types import AsrSegment

# Whisper's own silence rule is no-speech > 0.6 and log-probability < -1.0. Music after speech
# passed it as "You." (0.78, -0.91) and "Thank you." (0.49, -0.93), in 2 of 12 generated clips;
# real speech decoded alone over 10 minutes of test speech and JFK stayed at <= 0.12 and >= -0.53.
NO_SPEECH_PROB = 0.4
LOW_LOGPROB = -0.7
VERY_LOW_LOGPROB = -1.6
MAX_COMPRESSION_RATIO = 2.4
_WORD = re.compile(r"\S+")


def is_hallucination(seg: AsrSegment) -> bool:
    if not seg.text.strip():
        return True
    if seg.compression_ratio > MAX_COMPRESSION_RATIO:
        return True
    if seg.no_speech_prob > NO_SPEECH_PROB and seg.avg_logprob < LOW_LOGPROB:
        return True
    return seg.avg_logprob < VERY_LOW_LOGPROB


def is_doubtful(seg: AsrSegment) -> bool:
    """Either sign alone: for audio in which a pass with the speech before it as context heard no
    new words, a second opinion decoded alone must be confident on both counts (music after
    speech came out as "Thank you.")."""
    return seg.no_speech_prob > NO_SPEECH_PROB or seg.avg_logprob < LOW_LOGPROB


def compression_ratio(text: str) -> float:
    """How well the text compresses (as faster-whisper computes it): a decoding loop compresses well."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def collapse_repeats(text: str, max_repeats: int = 2) -> str:
    """Cut a phrase repeated more than ``max_repeats`` times in a row (a decoding loop)."""
    words = _WORD.findall(text)
    for n in range(1, 8):
        i = 0
        out: list[str] = []
        while i < len(words):
            gram = words[i: i + n]
            reps = 1
            while len(gram) == n and words[i + reps * n: i + (reps + 1) * n] == gram:
                reps += 1
            if reps > max_repeats:
                out.extend(gram * max_repeats)
                i += reps * n
            else:
                out.append(words[i])
                i += 1
        words = out
    return " ".join(words)
