"""The real tiny.en model on real speech: offline, and streamed as the recorder streams it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr
from faster_whisper import decode_audio

from tests.conftest import DATA, JFK_TEXT, LEFT_TEXT, RIGHT_TEXT, wer
from transcription.model import ModelUnavailable, resolve_model
from transcription.offline import UnreadableAudio, load_channels, transcribe_file
from transcription.stream import StreamingEngine
from transcription.types import FinalSegment, PartialText
from transcription.vad import StreamingVad, silero_scorer

pytestmark = pytest.mark.slow


def test_offline_jfk(model):
    lines = transcribe_file(model, DATA / "jfk.flac")
    assert wer(JFK_TEXT, " ".join(x.text for x in lines)) == 0.0
    assert lines[0].speaker is None and lines[0].start_ms < 1000


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


def test_bad_inputs_give_clear_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("not audio")
    with pytest.raises(UnreadableAudio, match="Cannot read"):
        load_channels(tmp_path / "notes.txt")
    with pytest.raises(UnreadableAudio, match="No such file"):
        load_channels(tmp_path / "missing.wav")
    (tmp_path / "model").mkdir()
    with pytest.raises(ModelUnavailable, match=r"no model\.bin"):
        resolve_model(str(tmp_path / "model"))


def test_named_model_resolution_keeps_names_for_faster_whisper():
    choice = resolve_model("base.en")
    assert choice.path_or_name == "base.en" and choice.english_only
    assert Path(resolve_model("auto").path_or_name, "model.bin").exists()
