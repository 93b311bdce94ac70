"""Reading audio files for ``transcribe`` and the post-meeting pass: 16-bit, no float copies."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from faster_whisper import decode_audio

from tests.conftest import DATA
from transcription.offline import UnreadableAudio, load_channels, read_channels

SR = 16_000


def test_a_16_khz_file_comes_back_as_the_columns_of_the_one_array_read():
    left, right = read_channels(DATA / "stereo_diarization.wav")
    assert left.dtype == right.dtype == np.int16 and np.may_share_memory(left, right)
    pcm, rate = sf.read(DATA / "stereo_diarization.wav", dtype="int16")
    assert rate == SR and np.array_equal(left, pcm[:, 0]) and np.array_equal(right, pcm[:, 1])
    assert len(load_channels(DATA / "stereo_diarization.wav")) == 2  # one speaker per channel


def test_other_rates_and_formats_are_decoded_as_faster_whisper_decodes_them_but_kept_16_bit(tmp_path):
    """jfk.flac is 44.1 kHz stereo: FFmpeg resamples it. Every sample equals faster-whisper's
    ``decode_audio`` (which returns floats, the 16-bit samples / 32768)."""
    channels = read_channels(DATA / "jfk.flac")
    expected = decode_audio(str(DATA / "jfk.flac"), split_stereo=True)
    assert len(channels) == 2 and all(c.dtype == np.int16 for c in channels)
    for got, want in zip(channels, expected, strict=True):
        assert np.array_equal(got / 32768, want)
    aac = tmp_path / "jfk.m4a"  # a format libsndfile cannot read, mono
    encode_mono(aac, channels[0], "aac")
    (mono,) = read_channels(aac)
    assert mono.dtype == np.int16 and np.array_equal(mono / 32768, decode_audio(str(aac)))
    assert abs(len(mono) - len(channels[0])) < SR // 10 and 0.8 < rms(mono) / rms(channels[0]) < 1.25


def test_equal_channels_give_one_track_close_ones_their_mix_and_different_ones_two(tmp_path):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal(3 * SR) * 3000).astype(np.int16)
    near = np.clip(a + rng.integers(-200, 200, len(a)), -32768, 32767).astype(np.int16)
    other = (rng.standard_normal(3 * SR) * 3000).astype(np.int16)
    for name, right in (("equal", a), ("near", near), ("other", other)):
        sf.write(tmp_path / f"{name}.wav", np.stack([a, right], axis=1), SR, subtype="PCM_16")
    (same,) = load_channels(tmp_path / "equal.wav")
    assert np.array_equal(same, a) and same.flags.c_contiguous  # not a view holding both columns
    (mixed,) = load_channels(tmp_path / "near.wav")
    assert mixed.dtype == np.int16 and np.array_equal(mixed, (a.astype(np.int32) + near) // 2)
    assert [np.array_equal(c, x) for c, x in zip(load_channels(tmp_path / "other.wav"), (a, other), strict=True)] == [
        True, True]


def test_files_that_hold_no_audio_are_refused_clearly(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros((0, 2), np.int16), SR, subtype="PCM_16")
    with pytest.raises(UnreadableAudio, match="holds no audio"):
        read_channels(tmp_path / "empty.wav")
    (tmp_path / "broken.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(64))
    with pytest.raises(UnreadableAudio, match="Cannot read"):
        read_channels(tmp_path / "broken.m4a")


def test_float_files_flac_of_unknown_length_and_corrupt_stretches_are_read_by_ffmpeg(tmp_path):
    """libsndfile reads only 16 kHz integer WAV/AIFF here: it would not scale floats to 16-bit,
    refuses a FLAC whose header gives no length (as one written to a pipe), and stops at the
    first bad packet where FFmpeg, packet by packet, goes on."""
    tone = (0.5 * np.sin(np.arange(2 * SR) * 0.05)).astype(np.float32)
    sf.write(tmp_path / "float.wav", tone, SR, subtype="FLOAT")
    (got,) = read_channels(tmp_path / "float.wav")
    assert np.max(np.abs(got.astype(np.int32) - np.round(tone * 32768))) <= 1

    piped = tmp_path / "piped.flac"
    pcm = (np.random.default_rng(1).standard_normal(4 * SR) * 3000).astype(np.int16)
    encode_mono(piped, pcm, "flac", to_pipe=True)
    assert sf.info(str(piped)).frames > 10**15  # libsndfile: length unknown
    (got,) = read_channels(piped)
    assert np.array_equal(got, pcm)

    speech = read_channels(DATA / "jfk.flac")[0]
    clean = tmp_path / "jfk.m4a"
    encode_mono(clean, speech, "aac")
    data = bytearray(clean.read_bytes())
    rng = np.random.default_rng(2)
    middle = len(data) // 3
    data[middle: middle + 5_000: 3] = rng.integers(0, 256, len(range(middle, middle + 5_000, 3)), np.uint8).tobytes()
    broken = tmp_path / "broken.m4a"
    broken.write_bytes(bytes(data))
    (got,) = read_channels(broken)
    stopped_at_first_error = len(decode_audio(str(broken)))  # faster-whisper's decoder
    assert stopped_at_first_error < 0.6 * len(speech) and len(got) > 0.8 * len(speech)


def test_a_wav_whose_header_was_never_finished_is_read_to_its_end(tmp_path):
    """A writer killed before it wrote the lengths: libsndfile sees no samples, FFmpeg reads on."""
    pcm = (np.random.default_rng(3).standard_normal((3 * SR, 2)) * 3000).astype(np.int16)
    sf.write(tmp_path / "killed.wav", pcm, SR, subtype="PCM_16")
    data = bytearray((tmp_path / "killed.wav").read_bytes())
    at = data.index(b"data") + 4
    data[at: at + 4] = bytes(4)  # the data chunk's length, as written before any sample
    (tmp_path / "killed.wav").write_bytes(bytes(data))
    assert sf.info(str(tmp_path / "killed.wav")).frames == 0
    left, right = read_channels(tmp_path / "killed.wav")
    assert np.array_equal(left, pcm[:, 0]) and np.array_equal(right, pcm[:, 1])


def test_two_silent_channels_are_one_track(tmp_path):
    sf.write(tmp_path / "silent.wav", np.zeros((SR, 2), np.int16), SR, subtype="PCM_16")
    assert len(load_channels(tmp_path / "silent.wav")) == 1


def encode_mono(path: Path, samples: np.ndarray, codec: str, *, to_pipe: bool = False) -> None:
    """``samples`` encoded with ``codec``; ``to_pipe``: written as to a pipe (nothing seekable,
    so the header cannot be completed at the end)."""
    samples = np.ascontiguousarray(samples)
    pipe = Unseekable() if to_pipe else None
    with av.open(pipe if pipe is not None else str(path), "w", format=path.suffix[1:] if pipe else None) as out:
        stream = out.add_stream(codec, rate=SR, layout="mono")
        for i in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, i: i + 1024], format="s16", layout="mono")
            frame.sample_rate = SR
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    if pipe is not None:
        path.write_bytes(bytes(pipe.written))


class Unseekable(io.RawIOBase):
    def __init__(self) -> None:
        self.written = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[no-untyped-def, override]
        self.written += bytes(data)
        return len(data)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
