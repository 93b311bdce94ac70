"""The post-meeting pass: the saved stereo audio transcribed again into a local-only transcript."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from faster_whisper import decode_audio

from desktop_recorder.refine import CannotRefine, mic_lines, read_tracks, refine_recording
from desktop_recorder.store import Store
from recorder.wavfile import StereoWavWriter
from tests.conftest import DATA, JFK_TEXT, LEFT_TEXT, cli_env, run_cli, wer
from transcription.types import FinalSegment, as_float, progress_in_turn

SR = 16_000


def speech(name: str) -> np.ndarray:
    if name == "jfk":
        return decode_audio(str(DATA / "jfk.flac")).astype(np.float32)
    left, _right = decode_audio(str(DATA / "stereo_diarization.wav"), split_stereo=True)
    return left.astype(np.float32)


def recording_with(store: Store, folder: Path, mic: np.ndarray, system: np.ndarray) -> str:
    """A finished local recording whose WAV holds ``mic`` left and ``system`` right, and one live line."""
    n = max(len(mic), len(system))
    mic, system = np.pad(mic, (0, n - len(mic))), np.pad(system, (0, n - len(system)))
    rec = store.create_recording(platform="zoom", title="Refine me", participants=["Ana"], audio_path=None)
    wav = folder / f"{rec.id}.wav"
    writer = StereoWavWriter(wav)
    for i in range(0, n, SR):
        writer.write(mic[i:i + SR], system[i:i + SR])
    writer.close()
    store.set_audio_path(rec.id, str(wav))
    store.add_segment(rec.id, start_ms=300, end_ms=2000, source="mic", speaker="Ana", text="live words",
                      confidence=0.5)
    store.finish_recording(rec.id, status="ready", duration_s=n / SR, title="Refine me", participants=["Ana"])
    return rec.id


def mic(start_s: float, end_s: float, text: str) -> FinalSegment:
    return FinalSegment("mic", start_s * 1000, end_s * 1000, text, 0.9)


def test_mic_lines_keep_what_the_user_put_back_and_no_more():
    refined = [mic(0, 10, "ten seconds heard from the speakers"), mic(12, 14, "my own words"),
               mic(20, 22, "echo the user put back"), mic(30, 31, "echo")]
    echo = [True, False, True, True]
    restored = [mic(3, 4.5, "a short line inside the echo"),  # covers 15 % of the 10 s echo line
                mic(20.2, 22.1, "echo the user put back, live"),  # covers 90 % of a refined one
                mic(12.5, 13.5, "my own words, live")]  # kept anyway: the refined line says it
    kept = mic_lines(refined, echo, restored)
    assert [line.text for line in kept] == ["my own words", "echo the user put back", "a short line inside the echo"]
    assert mic_lines(refined, echo, []) == [refined[1]]  # nothing put back: the echo check decides
    assert mic_lines([], [], restored[:1]) == restored[:1]  # the pass heard nothing there: the live line


def test_progress_over_parts_in_turn_is_the_share_of_the_whole_done():
    heard: list[float] = []
    first, second, empty = progress_in_turn(heard.append, [300, 100, 0])
    for part, done in ((first, 0.5), (first, 1.0), (second, 0.5), (empty, 1.0), (second, 1.0)):
        part(done)
    assert heard == [0.375, 0.75, 0.875, 1.0, 1.0]
    assert progress_in_turn(None, [1, 2]) == [None, None]


def test_the_tracks_are_read_as_the_file_holds_them_and_resampled_when_not_at_16_khz(tmp_path):
    """16-bit columns of the one array read (an hour of both is 230 MB; float copies were twice
    that); another rate is resampled to 16 kHz, still 16-bit; a mono file has a silent system track."""
    import soundfile as sf

    left, right = speech("left"), speech("jfk")[: len(speech("left"))]
    sf.write(tmp_path / "rec.wav", np.stack([left, right], axis=1), SR, subtype="PCM_16")
    tracks = read_tracks(tmp_path / "rec.wav")
    assert all(t.dtype == np.int16 for t in tracks.values()) and np.may_share_memory(tracks["mic"], tracks["system"])
    assert np.max(np.abs(as_float(tracks["mic"]) - left)) <= 1 / 32768
    assert np.max(np.abs(as_float(tracks["system"]) - right)) <= 1 / 32768
    sf.write(tmp_path / "mono48k.wav", np.repeat(left, 3), 48_000, subtype="PCM_16")
    tracks = read_tracks(tmp_path / "mono48k.wav")
    assert tracks["mic"].dtype == np.int16 and abs(len(tracks["mic"]) - len(left)) <= SR // 100
    n = min(len(tracks["mic"]), len(left)) - SR
    assert np.corrcoef(tracks["mic"][SR:n], left[SR:n])[0, 1] > 0.99 and not np.any(tracks["system"])


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "db.sqlite3")
    yield s
    s.close()


@pytest.mark.slow
def test_both_sides_are_transcribed_again_and_kept_apart_from_the_live_transcript(store, tmp_path, model):
    rid = recording_with(store, tmp_path, speech("left"), np.pad(speech("jfk"), (SR * 8, 0)))
    pending_before = store.pending_counts()
    done: list[float] = []
    refined = refine_recording(store, model, rid, progress=done.append)
    # both tracks, one after the other, each half of the whole: all the way, never backwards
    assert done == sorted(done) and done[-1] == 1.0 and 0.5 in done and 0 < done[0] < 0.5, done
    others = " ".join(s.text for s in refined if s.speaker == "Others")
    ana = " ".join(s.text for s in refined if s.speaker == "Ana")  # the live mic speaker's name
    assert wer(JFK_TEXT, others) <= 0.05, others
    assert wer(LEFT_TEXT, ana) <= 0.2, ana
    assert min(s.timestamp_ms for s in refined if s.speaker == "Others") >= 7_500  # the JFK clip starts at 8 s
    assert store.refined_segments(rid) == refined
    assert [s.text for s in store.segments(rid)] == ["live words"]  # the live (server) transcript is untouched
    assert store.pending_counts() == pending_before  # nothing new for the server
    refine_recording(store, model, rid)  # again: replaced, not doubled
    assert len(store.refined_segments(rid)) == len(refined)


@pytest.mark.slow
def test_the_speakers_heard_by_the_mic_are_left_out_of_the_refined_transcript(store, tmp_path, model):
    jfk = speech("jfk")
    echo = 0.7 * np.concatenate([np.zeros(int(0.05 * SR), np.float32), jfk])[: len(jfk)]
    rid = recording_with(store, tmp_path, echo, jfk)
    refined = refine_recording(store, model, rid)
    assert [s.speaker for s in refined] and all(s.speaker == "Others" for s in refined), refined


@pytest.mark.slow
def test_a_line_the_user_put_back_after_the_echo_check_stays_in_the_refined_transcript(store, tmp_path, model):
    """The mic heard the speakers, but the user said a line left out live was theirs: the refined
    pass, whose echo check would leave it out again, keeps it."""
    jfk = speech("jfk")
    echo = 0.7 * np.concatenate([np.zeros(int(0.05 * SR), np.float32), jfk])[: len(jfk)]
    rid = recording_with(store, tmp_path, echo, jfk)
    store.add_echo_segment(rid, start_ms=0, end_ms=len(jfk) * 1000 / SR, text=JFK_TEXT, speaker="Ana",
                           confidence=0.8, audio_share=0.9, text_share=1.0)
    (line,) = store.echo_segments(rid)
    store.restore_echo(line.id, speaker="Ana")
    refined = refine_recording(store, model, rid)
    mine = " ".join(s.text for s in refined if s.speaker == "Ana")
    assert wer(JFK_TEXT, mine) <= 0.1, refined
    assert wer(JFK_TEXT, " ".join(s.text for s in refined if s.speaker == "Others")) <= 0.05, refined


@pytest.mark.slow
def test_without_audio_there_is_a_clear_error_and_nothing_changes(store, tmp_path, model, app_home):
    rid = recording_with(store, tmp_path, speech("left"), np.zeros(SR, np.float32))
    Path(store.get_recording(rid).audio_path).unlink()
    with pytest.raises(CannotRefine, match="no audio file"):
        refine_recording(store, model, rid)
    corrupt = recording_with(store, tmp_path, speech("left"), np.zeros(SR, np.float32))
    Path(store.get_recording(corrupt).audio_path).write_bytes(b"RIFF nonsense")
    with pytest.raises(CannotRefine, match="Cannot read"):
        refine_recording(store, model, corrupt)
    assert store.refined_segments(rid) == [] and store.refined_segments(corrupt) == []


def test_a_recording_still_running_is_not_refined(store, tmp_path, model):
    """Its audio is still growing: a refined transcript of its start would replace the whole live one."""
    rid = recording_with(store, tmp_path, speech("left"), np.zeros(SR, np.float32))
    running = store.create_recording(platform="zoom", title=None, participants=[],
                                     audio_path=store.get_recording(rid).audio_path).id
    with pytest.raises(CannotRefine, match="still running"):
        refine_recording(store, model, running)
    assert store.refined_segments(running) == []


@pytest.mark.slow
def test_refine_command_prints_the_refined_transcript(app_home, tmp_path):
    (app_home / "data").mkdir(parents=True, exist_ok=True)
    home_store = Store(app_home / "data" / "recordings.sqlite3")
    try:
        rid = recording_with(home_store, tmp_path, np.zeros(SR, np.float32), speech("jfk"))
    finally:
        home_store.close()
    result = run_cli("refine", rid, "--format", "srt", env=cli_env(app_home, None))
    assert result.returncode == 0, result.stderr
    assert "-->" in result.stdout and "Others" in result.stdout
    assert wer(JFK_TEXT, " ".join(line for line in result.stdout.splitlines()
                                  if line and "-->" not in line and not line.isdigit()).replace("Others:", "")) <= 0.1
    missing = run_cli("refine", "no-such-id", env=cli_env(app_home, None))
    assert missing.returncode == 2 and "no recording 'no-such-id'" in missing.stderr




@pytest.mark.slow
@pytest.mark.parametrize("pressed", ["never", "during", "as it ends"])
def test_ctrl_c_during_the_pass_after_record_skips_it_and_keeps_the_live_transcript(ctx, tmp_path, model, capsys,
                                                                                    pressed):
    """`record --refine`: the Ctrl-C that stopped the recording does not skip the pass; one
    pressed during it does, within a segment, and stores nothing of it; one pressed as its last
    segment is decoded keeps the finished pass."""
    import signal

    from desktop_recorder.cli import StopSignal
    from desktop_recorder.commands import _refine

    rid = recording_with(ctx.store, tmp_path, speech("left"), np.pad(speech("jfk"), (SR * 8, 0)))
    stop = StopSignal()
    stop._handler(signal.SIGINT, None)  # what stopped the recording
    stop.wait(None)
    passes: list[int] = []

    class Pressed:
        def transcribe_file(self, audio, *, progress, **options):
            passes.append(len(audio))
            if pressed == "during":
                stop._handler(signal.SIGINT, None)

            def report(done: float) -> None:
                if pressed == "as it ends" and len(passes) == 2 and done == 1.0:
                    stop._handler(signal.SIGINT, None)
                progress(done)

            return model.transcribe_file(audio, progress=report, **options)

    refined = _refine(ctx, Pressed(), rid, stop)
    err = capsys.readouterr().err
    if pressed == "during":
        assert refined is None and ctx.store.refined_segments(rid) == [] and len(passes) == 1, err
        assert f"Refining skipped; the live transcript stays ('desktop-recorder refine {rid}'" in err
    else:
        assert refined and wer(JFK_TEXT, " ".join(s.text for s in refined if s.speaker == "Others")) <= 0.05
        assert len(passes) == 2 and "skipped" not in err, err
