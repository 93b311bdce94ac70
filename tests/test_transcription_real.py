"""The real tiny.en model on real speech: offline, and streamed as the recorder streams it."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from faster_whisper import decode_audio
from faster_whisper.feature_extractor import FeatureExtractor

from tests.conftest import DATA, JFK_TEXT, LEFT_TEXT, RIGHT_TEXT, normalize, wer
from transcription.features import BLOCK_FRAMES, BlockwiseFeatures
from transcription.model import ModelUnavailable, _segment, resolve_model
from transcription.offline import UnreadableAudio, load_channels, transcribe_file
from transcription.stream import StreamingEngine
from transcription.types import FinalSegment, PartialText, as_float
from transcription.vad import WINDOW, StreamingVad, silero_scorer, speech_spans, whole_recording_scores

pytestmark = pytest.mark.slow


def test_offline_jfk(model):
    lines = transcribe_file(model, DATA / "jfk.flac")
    assert wer(JFK_TEXT, " ".join(x.text for x in lines)) == 0.0
    assert lines[0].speaker is None and lines[0].start_ms < 1000


def test_offline_lines_keep_to_their_speech_across_a_pause(model, tmp_path):
    """Whisper's segment times, mapped back over the silences VAD skipped, stretched a line over
    the pause after it, or started the next one where the previous speech ended (an SRT off by
    seconds); word times keep each line to its words."""
    jfk = decode_audio(str(DATA / "jfk.flac"))
    left, _right = decode_audio(str(DATA / "stereo_diarization.wav"), split_stereo=True)
    gap_ms = 6000
    path = tmp_path / "pause.wav"
    sf.write(path, np.concatenate([jfk, np.zeros(gap_ms * 16, np.float32), left]), 16000, subtype="PCM_16")
    pause_ms, onset_ms = len(jfk) / 16, len(jfk) / 16 + gap_ms + speech_spans(as_float(left))[0][0] / 16
    lines = transcribe_file(model, path)
    second = next(i for i, line in enumerate(lines) if "wizard" in normalize(line.text))
    assert abs(lines[second].start_ms - onset_ms) <= 500, (onset_ms, lines)
    assert all(line.end_ms <= pause_ms + 500 for line in lines[:second]), (pause_ms, lines)


def test_offline_stereo_file_is_transcribed_per_channel(model):
    lines = transcribe_file(model, DATA / "stereo_diarization.wav")
    left = " ".join(x.text for x in lines if x.speaker == "Left")
    right = " ".join(x.text for x in lines if x.speaker == "Right")
    assert wer(LEFT_TEXT, left) <= 0.2, left
    assert wer(RIGHT_TEXT, right) <= 0.2, right


def test_streamed_jfk_at_48k_through_the_resampler(model):
    """As captured: 48 kHz blocks of 20 ms, resampled, VAD-endpointed, with partials first."""
    audio = np.concatenate([np.zeros(24000, np.float32), decode_audio(str(DATA / "jfk.flac")),
                            np.zeros(16000, np.float32)])
    audio48 = soxr.resample(audio, 16000, 48000)
    resampler = soxr.ResampleStream(48000, 16000, 1, dtype="float32")
    engine = StreamingEngine("system", model, StreamingVad(silero_scorer()))
    events = []
    for i in range(0, len(audio48), 960):
        engine.insert_audio(resampler.resample_chunk(audio48[i:i + 960].astype(np.float32)))
        while engine.has_work():
            events += engine.poll()
    events += engine.finish()
    finals = [e for e in events if isinstance(e, FinalSegment)]
    assert wer(JFK_TEXT, " ".join(f.text for f in finals)) <= 0.1  # offline is 0.0; see benchmarks
    assert any(isinstance(e, PartialText) and e.text for e in events)
    starts = [f.start_ms for f in finals]
    assert starts == sorted(starts) and 1400 <= starts[0] <= 2000  # speech begins ~0.3 s into the clip
    assert all(0 < f.confidence <= 1 for f in finals if f.confidence is not None)


def noise(kind: str, seconds: float, seed: int = 7) -> np.ndarray:
    """Non-speech a meeting has: hiss, rumble (a fan, a car), typing (clicks), music, mains hum."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    if kind == "hiss":
        x = rng.normal(0, 0.03, n)
    elif kind == "rumble":
        x = np.cumsum(rng.normal(0, 1, n))
        x = 0.1 * (x - np.convolve(x, np.ones(400) / 400, "same")) / np.abs(x).max()  # brownian, no drift
    elif kind == "typing":
        x = np.zeros(n)
        for at in rng.integers(0, n - 800, int(seconds * 6)):  # ~6 keys a second, 20 ms decaying bursts
            x[at: at + 320] += rng.normal(0, 0.2, 320) * np.exp(-np.arange(320) / 60)
    elif kind == "music":  # half-second notes with five harmonics and vibrato
        t = np.arange(n) / 16000
        x = np.zeros(n)
        for k, f in enumerate(rng.choice([220, 247, 262, 294, 330, 349, 392], int(seconds * 2))):
            note = (t >= k * 0.5) & (t < k * 0.5 + 0.5)
            for h in range(1, 6):
                x[note] += 0.1 / h * np.sin(2 * np.pi * f * h * t[note] + 0.3 * np.sin(2 * np.pi * 5 * t[note]))
    else:  # hum
        x = 0.05 * np.sin(2 * np.pi * 50 * np.arange(n) / 16000)
    return x.astype(np.float32)


def streamed(model, audio: np.ndarray) -> list:  # type: ignore[no-untyped-def]
    engine = StreamingEngine("system", model, StreamingVad(silero_scorer()))
    events = []
    for i in range(0, len(audio), 320):
        engine.insert_audio(audio[i:i + 320])
        while engine.has_work():
            events += engine.poll()
    return events + engine.finish()


def in_noise(speech: np.ndarray, kind: str, snr_db: float) -> np.ndarray:
    """``speech`` with steady ``noise`` under it, ``snr_db`` below the speech's level."""
    level = float(np.sqrt(np.mean(speech[speech != 0] ** 2)))
    hum = noise(kind, len(speech) / 16000 + 1, seed=3)[: len(speech)]
    return (speech + hum * level / float(np.sqrt(np.mean(hum ** 2))) * 10 ** (-snr_db / 20)).astype(np.float32)


def three_speakers() -> np.ndarray:
    """JFK, then each channel of stereo_diarization, a second apart: three sentences of real speech."""
    left, right = decode_audio(str(DATA / "stereo_diarization.wav"), split_stereo=True)
    gap = np.zeros(16000, np.float32)
    return np.concatenate([gap, decode_audio(str(DATA / "jfk.flac")), gap, left, gap, right, gap, gap])


def test_streamed_vad_scores_are_those_of_one_pass_over_the_whole_audio():
    """Silero is recurrent: scored block by block without its state, speech under hiss scored
    ~0.1 instead of ~0.9 (and phrases went untranscribed)."""
    from faster_whisper.vad import get_vad_model

    audio = in_noise(three_speakers(), "hiss", 10.0)
    audio = audio[: len(audio) // WINDOW * WINDOW]
    whole = np.asarray(get_vad_model()(audio)).reshape(-1)
    for block in (320, 960, 4096):
        vad, probs = StreamingVad(silero_scorer()), []
        for i in range(0, len(audio), block):
            probs += vad.push(audio[i:i + block])
        np.testing.assert_allclose(probs, whole, atol=1e-5)


@pytest.mark.parametrize(("kind", "snr_db"), [("hiss", 15.0), ("rumble", 5.0)])
def test_real_speech_in_steady_noise_is_all_transcribed(model, kind, snr_db):
    """Three sentences under steady noise: every one of them, to its last words. Measured here
    (WER live / offline, 8 beams): hiss 15 dB 0.11 / 0.09, rumble 5 dB 0.05 / 0.07 (5 beams: 0.23
    / 0.05 and 0.11 / 0.11); with the stateless scorer 0.30 and 0.34, "against the wizard" and "on
    the left" never transcribed."""
    finals = [e for e in streamed(model, in_noise(three_speakers(), kind, snr_db)) if isinstance(e, FinalSegment)]
    text = normalize(" ".join(f.text for f in finals))
    for phrase in ("for your country", "against the wizard", "curtain on the left", "extremely distant"):
        assert phrase in text, finals
    assert wer(" ".join([JFK_TEXT, LEFT_TEXT, RIGHT_TEXT]), text) <= 0.25, finals


@pytest.mark.parametrize("kind", ["hiss", "rumble", "typing", "hum", "music"])
def test_noise_alone_and_noise_after_speech_yield_no_text(model, kind):
    """Alone, and right after speech. Silero keeps most noise from the model; music passes it, and
    after speech (this clip) came out as "Thank you. Thank you." under Whisper's own silence rule."""
    alone = [e for e in streamed(model, np.concatenate([noise(kind, 8.0), np.zeros(16000, np.float32)])) if e.text]
    assert alone == []
    jfk = decode_audio(str(DATA / "jfk.flac"))
    after = np.concatenate([jfk, noise(kind, 6.0, seed=1), np.zeros(16000, np.float32)])
    finals = [e for e in streamed(model, after) if isinstance(e, FinalSegment)]
    text = " ".join(f.text for f in finals)
    assert wer(JFK_TEXT, text) <= 0.1 and normalize(text).endswith("for your country"), finals
    assert all(f.start_ms < len(jfk) / 16 for f in finals), finals  # nothing from the noise


def test_bad_inputs_give_clear_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("not audio")
    with pytest.raises(UnreadableAudio, match="Cannot read"):
        load_channels(tmp_path / "notes.txt")
    with pytest.raises(UnreadableAudio, match="No such file"):
        load_channels(tmp_path / "missing.wav")
    with pytest.raises(UnreadableAudio, match="is a folder"):
        load_channels(tmp_path)
    (tmp_path / "model").mkdir()
    with pytest.raises(ModelUnavailable, match=r"no model\.bin"):
        resolve_model(str(tmp_path / "model"))


def test_named_model_resolution_keeps_names_for_faster_whisper():
    choice = resolve_model("base.en")
    assert choice.path_or_name == "base.en" and choice.english_only
    assert Path(resolve_model("auto").path_or_name, "model.bin").exists()


@pytest.mark.parametrize("padding", [160, 0])
@pytest.mark.parametrize("seconds", [12.0, 30.01, 61.0, 95.0049, 300.0])
def test_features_of_long_audio_are_computed_in_blocks_and_equal_faster_whispers(model, seconds, padding,
                                                                                  monkeypatch):
    """Also from 16-bit samples, made floats a block at a time: the features of the same floats."""
    speech = decode_audio(str(DATA / "jfk.flac"))
    audio = np.resize(speech[40_000:], round(seconds * 16_000))  # from mid-word, again and again
    features = model._model.feature_extractor  # what the offline passes use
    assert isinstance(features, BlockwiseFeatures)
    blocks = []
    monkeypatch.setattr(features, "stft", lambda block, *a, **kw: blocks.append(len(block))
                        or BlockwiseFeatures.stft(block, *a, **kw))
    blockwise = features(audio, padding=padding)
    assert np.array_equal(blockwise, FeatureExtractor(**model._model.feat_kwargs)(audio, padding=padding))
    assert len(blocks) == -(-blockwise.shape[1] // BLOCK_FRAMES) and max(blocks) < 31 * 16_000
    pcm = np.round(audio * 32767).astype(np.int16)
    assert np.array_equal(features(pcm, padding=padding),
                          FeatureExtractor(**model._model.feat_kwargs)(as_float(pcm), padding=padding))


def paused_speech(minutes: float) -> np.ndarray:
    """Real speech from the first sample, with pauses of 0.3-4 s, under hiss, cut off mid-word."""
    speakers = three_speakers()
    pieces, total, k = [], 0, 0
    while total < minutes * 60 * 16_000:
        pause = np.zeros(int((0.3, 4.0, 1.2, 2.5)[k % 4] * 16_000), np.float32)
        pieces += [speakers[16_000:-32_000], pause]
        total += len(speakers) - 48_000 + len(pause)
        k += 1
    return in_noise(np.concatenate(pieces)[: int(minutes * 60 * 16_000)], "hiss", 30.0)


@pytest.mark.parametrize("remainder", [0, 1, 256, 449, 511])
def test_whole_recording_vad_scores_are_faster_whispers(remainder):
    """Every window's score, bit for bit, over two runs of the VAD, speech to the last sample (a
    partial last window, or a whole one and the silent window faster-whisper adds after it)."""
    from faster_whisper.vad import get_vad_model

    audio = paused_speech(5.9)[: 10_500 * WINDOW + remainder]
    padded = np.pad(audio, (0, WINDOW - len(audio) % WINDOW))
    assert np.array_equal(whole_recording_scores(audio), get_vad_model()(padded).reshape(-1))


@pytest.mark.parametrize(("silence_s", "cut"), [(0.0, 0), (0.0, 256), (1.3, 0)])
def test_speech_spans_of_a_whole_recording_are_faster_whispers(silence_s, cut):
    """Over six runs of the VAD (its state carried from run to run); from the first sample to the
    last, mid-word (a whole number of windows, or not), or with silence before and after."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    silence = np.zeros(int(silence_s * 16_000), np.float32)
    audio = np.concatenate([silence, paused_speech(5.9), silence, silence])[: -cut or None]
    spans = speech_spans(audio)
    assert spans == [(s["start"], s["end"]) for s in get_speech_timestamps(audio, VadOptions())]
    assert len(spans) > 10 and (spans[0][0] == 0 and spans[-1][1] == len(audio)) == (silence_s == 0)


def test_whole_recording_pass_is_faster_whispers_vad_pass(model, monkeypatch):
    """The same segments, words and timestamps as faster-whisper's ``vad_filter=True``, without
    its whole-recording VAD step (which held two more copies of the recording), from 16-bit
    samples as from float ones."""
    import faster_whisper.transcribe

    pcm = np.round(paused_speech(1.5) * 32767).astype(np.int16)  # as the recording's file holds it
    options = {"language": "en", "beam_size": model.beam_size, "temperature": 0.0, "vad_filter": True,
               "word_timestamps": True}
    expected = [_segment(s) for s in model._model.transcribe(as_float(pcm), **options)[0]]
    monkeypatch.setattr(faster_whisper.transcribe, "get_speech_timestamps", None)
    for audio in (pcm, as_float(pcm)):
        segments = model.transcribe_file(audio, word_timestamps=True)
        assert segments == expected
    assert len(segments) > 4 and segments[-1].end_s > 80
    done: list[float] = []
    assert model.transcribe_file(pcm, word_timestamps=True, progress=done.append) == expected
    # as each segment is decoded, how far into the speech it ends: the pauses skipped count for nothing
    assert done == sorted(done) and done[-1] == 1.0 and len(done) == len(expected) + 1, done
    speech_s = sum(end - start for start, end in speech_spans(pcm)) / 16_000
    assert abs(done[0] - expected[0].end_s / speech_s) < 0.05, (done, expected[0])
    assert 0 < done[len(done) // 2] < 1 and done[-2] > 0.9


HEAP_PROBE = """
import sys
import numpy as np
from transcription.model import WhisperTranscriber, resolve_model

def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS"))

if sys.argv[1] == "model":
    WhisperTranscriber(resolve_model("auto"))
before = rss_mb()
for _ in range(3):  # touched and freed, as a decoding pass does with its biggest buffers
    block = np.ones(16 << 20, np.uint8)
    del block
print(rss_mb() - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's malloc options")
def test_loading_the_model_makes_freed_decoding_buffers_go_back_to_the_os():
    kept_mb = {}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    for mode in ("plain", "model"):
        probe = subprocess.run([sys.executable, "-c", HEAP_PROBE, mode], capture_output=True, text=True,
                               cwd=Path(__file__).parent.parent, check=True, env=env)
        kept_mb[mode] = float(probe.stdout.split()[-1])
    assert kept_mb["plain"] >= 12, kept_mb  # glibc's default: a freed 16 MB block stays resident
    assert kept_mb["model"] < 4, kept_mb
