"""Transcribing a whole file: any format FFmpeg (PyAV) reads; two different channels apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transcription.formats import TranscriptLine
from transcription.model import WhisperTranscriber
from transcription.types import Audio

SAME_CHANNELS_CORRELATION = 0.98


class UnreadableAudio(Exception):
    """The file is missing, not audio, or corrupt."""


def load_channels(path: Path) -> list[Audio]:
    """16 kHz mono, or two tracks when a stereo file carries two different signals."""
    from faster_whisper import decode_audio

    if not path.is_file():
        raise UnreadableAudio(f"No such file: {path}")
    try:
        left, right = decode_audio(str(path), split_stereo=True)
    except Exception as exc:  # PyAV raises its own error types for every kind of bad input
        raise UnreadableAudio(f"Cannot read {path} as audio: {exc}") from exc
    if not len(left):
        raise UnreadableAudio(f"{path} holds no audio")
    if _same(left, right):
        return [((left + right) / 2).astype(np.float32)]
    return [left.astype(np.float32), right.astype(np.float32)]


def _same(a: Audio, b: Audio) -> bool:
    if np.array_equal(a, b):
        return True
    energy = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return energy > 0 and float(np.dot(a, b)) / energy > SAME_CHANNELS_CORRELATION


def transcribe_file(model: WhisperTranscriber, path: Path, speakers: tuple[str, str] = ("Left", "Right")
                    ) -> list[TranscriptLine]:
    channels = load_channels(path)
    lines = []
    for i, audio in enumerate(channels):
        speaker = speakers[i] if len(channels) > 1 else None
        for seg in model.transcribe_file(audio):
            lines.append(TranscriptLine(round(seg.start_s * 1000, 1), round(seg.end_s * 1000, 1), speaker, seg.text))
    return sorted(lines, key=lambda x: x.start_ms)
