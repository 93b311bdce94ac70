"""Transcribing a whole file: any format FFmpeg (PyAV) reads; two different channels apart.

Files are read as 16-bit samples and stay so: the model's steps convert what they need to float
piece by piece (``transcription.types.as_float``). faster-whisper's ``decode_audio`` makes float
copies of the whole file: loading an hour of stereo through it peaked at 1.2 GB."""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from transcription.formats import TranscriptLine
from transcription.model import WhisperTranscriber
from transcription.types import SAMPLE_RATE_HZ, PassProgress, Pcm16, progress_in_turn

log = logging.getLogger(__name__)
SAME_CHANNELS_CORRELATION = 0.98
BLOCK = 1 << 20  # samples per step when comparing or mixing channels (small temporaries)


class UnreadableAudio(Exception):
    """The file is missing, not audio, or corrupt."""


# What libsndfile reads here: uncompressed integer samples in containers whose length it takes
# from the file itself. Everything else goes to FFmpeg, which reads floats at their scale
# (libsndfile would not scale them to 16-bit), FLAC of unknown length, chained Ogg, joined MP3s,
# and recovers from a corrupt stretch in the middle.
SNDFILE_FORMATS = frozenset({"WAV", "WAVEX", "W64", "RF64", "AIFF"})
SNDFILE_SUBTYPES = frozenset({"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "ULAW", "ALAW"})


def read_channels(path: Path) -> list[Pcm16]:
    """The file's channels at 16 kHz, 16-bit (a file with more than two is mixed down to two).

    A 16 kHz WAV or AIFF of integer samples (such as the recorder's own) comes back as the
    columns of the one array read, no copy. Any other file is decoded by FFmpeg (PyAV),
    resampled to 16 kHz as it is decoded."""
    if path.is_dir():
        raise UnreadableAudio(f"{path} is a folder; give an audio file")
    if not path.exists():
        raise UnreadableAudio(f"No such file: {path}")
    pcm = _read_plain(path)
    if pcm is None:
        pcm = _decode(path)
    if not len(pcm):
        raise UnreadableAudio(f"{path} holds no audio")
    return [pcm[:, column] for column in range(pcm.shape[1])]


def _read_plain(path: Path) -> Pcm16 | None:
    """The samples of a 16 kHz integer WAV/AIFF of one or two channels; None for any other file,
    or one libsndfile cannot read whole (a header with no length: FFmpeg reads what follows)."""
    try:
        info = sf.info(str(path))
        if (info.format not in SNDFILE_FORMATS or info.subtype not in SNDFILE_SUBTYPES
                or info.samplerate != SAMPLE_RATE_HZ or not 1 <= info.channels <= 2 or info.frames <= 0):
            return None
        pcm, _rate = sf.read(path, dtype="int16", always_2d=True)
    except (RuntimeError, OSError, ValueError, MemoryError):  # LibsndfileError is a RuntimeError
        return None
    return np.asarray(pcm, np.int16)


def _decode(path: Path) -> Pcm16:
    """Every packet FFmpeg can decode, as rows of one or two 16 kHz 16-bit channels. A corrupt
    packet is skipped (and counted in the log), not the end of the file."""
    import av

    chunks: list[Pcm16] = []
    skipped = 0
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise UnreadableAudio(f"{path} holds no audio")
            stream = container.streams.audio[0]
            channels = 1 if stream.channels == 1 else 2
            resampler = av.AudioResampler(format="s16", layout="mono" if channels == 1 else "stereo",
                                          rate=SAMPLE_RATE_HZ)
            for packet in container.demux(stream):  # its last, empty packet flushes the decoder
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    skipped += 1
                    continue
                for frame in frames:
                    frame.pts = None  # a frame with a broken timestamp is still audio
                    chunks += _rows(resampler.resample(frame), channels)
            chunks += _rows(resampler.resample(None), channels)  # what the resampler still holds
            del resampler
    except av.FFmpegError as exc:  # its str starts "[Errno 1094995529] ", FFmpeg's error number
        raise UnreadableAudio(f"Cannot read {path} as audio: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise UnreadableAudio(f"Cannot read {path} as audio: {exc}") from exc
    gc.collect()  # PyAV's resampler keeps buffers until collected (faster-whisper issue 390)
    if skipped:
        log.warning("%s: skipped %d packets that would not decode", path, skipped)
    return np.concatenate(chunks) if chunks else np.zeros((0, 1), np.int16)


def _rows(frames: list[Any], channels: int) -> list[Pcm16]:
    return [np.asarray(frame.to_ndarray(), np.int16).reshape(-1, channels) for frame in frames]


def load_channels(path: Path) -> list[Pcm16]:
    """The file's channels at 16 kHz: one track, or two when the channels carry different signals."""
    channels = read_channels(path)
    if len(channels) == 1:
        return channels
    left, right = channels
    if _correlation(left, right) > SAME_CHANNELS_CORRELATION:
        return [_mix(left, right)]  # a track of its own: the file's two columns are let go
    return [left, right]


def _correlation(a: Pcm16, b: Pcm16) -> float:
    """Uncentred correlation of two tracks (1 for equal ones, 0 if only one is silent)."""
    ab, aa, bb = 0.0, 0.0, 0.0
    for i in range(0, len(a), BLOCK):
        x, y = a[i: i + BLOCK].astype(np.float64), b[i: i + BLOCK].astype(np.float64)
        ab, aa, bb = ab + float(x @ y), aa + float(x @ x), bb + float(y @ y)
    if aa == bb == 0:
        return 1.0  # both silent: the same
    energy = float(np.sqrt(aa * bb))
    return ab / energy if energy > 0 else 0.0


def _mix(a: Pcm16, b: Pcm16) -> Pcm16:
    out = np.empty(len(a), np.int16)
    for i in range(0, len(a), BLOCK):
        out[i: i + BLOCK] = (a[i: i + BLOCK].astype(np.int32) + b[i: i + BLOCK]) // 2
    return out


def transcribe_file(model: WhisperTranscriber, path: Path, speakers: tuple[str, str] = ("Left", "Right"),
                    progress: PassProgress | None = None) -> list[TranscriptLine]:
    channels = load_channels(path)
    lines = []
    parts = progress_in_turn(progress, [len(audio) for audio in channels])
    for i, (audio, part) in enumerate(zip(channels, parts, strict=True)):
        speaker = speakers[i] if len(channels) > 1 else None
        for seg in model.transcribe_file(audio, progress=part):
            lines.append(TranscriptLine(round(seg.start_s * 1000, 1), round(seg.end_s * 1000, 1), speaker, seg.text))
    return sorted(lines, key=lambda x: x.start_ms)
