"""The health watchdog's rules, on scripted levels."""

from __future__ import annotations

from recorder.health import AudioFileWatch, HealthWatch, LagWatch


def feed(watch, seconds, mic, system, alive=None, start=0.0):
    said = []
    t = start
    while t < start + seconds:
        said += watch.update(t, {"mic": mic, "system": system}, alive or {"mic": True, "system": True})
        t += 0.5
    return said


def test_silent_system_audio_while_the_user_speaks_is_reported_once():
    watch = HealthWatch(("mic", "system"))
    assert feed(watch, 19, mic=-30, system=-120) == []
    said = feed(watch, 30, mic=-30, system=-120, start=19)
    assert len(said) == 1 and "System audio has been silent" in said[0]


def test_a_quiet_meeting_raises_nothing():
    watch = HealthWatch(("mic", "system"))
    assert feed(watch, 120, mic=-120, system=-120) == []


def test_muted_microphone_while_others_talk():
    watch = HealthWatch(("mic", "system"))
    said = feed(watch, 30, mic=-120, system=-25)
    assert len(said) == 1 and "microphone has been silent" in said[0]


def test_sound_in_between_resets_the_silence():
    watch = HealthWatch(("mic", "system"))
    feed(watch, 15, mic=-30, system=-120)
    feed(watch, 1, mic=-30, system=-40, start=15)
    assert feed(watch, 15, mic=-30, system=-120, start=16) == []


def test_lost_device_is_reported_once_even_for_a_single_source():
    watch = HealthWatch(("mic",))
    said = feed(watch, 5, mic=-30, system=-120, alive={"mic": False})
    assert said == ["The microphone stopped (unplugged?). Recording continues with the system audio."]


def test_echo_hint_after_a_few_seconds_of_clear_echo_only():
    watch = HealthWatch(("mic", "system"))
    levels, alive = {"mic": -30.0, "system": -25.0}, {"mic": True, "system": True}
    assert [w for t in range(6) for w in watch.update(t, levels, alive, echo_db=-40.0)] == []  # faint: fine
    said = [w for t in range(6, 14) for w in watch.update(t, levels, alive, echo_db=-8.0)]
    assert len(said) == 1 and "Use headphones" in said[0] and "-8 dB" in said[0]


def test_lag_is_told_once_when_transcription_falls_behind_and_again_when_it_caught_up():
    watch = LagWatch(warn_s=15, clear_s=3)
    assert [watch.update(s) for s in (0.5, 8.0, 14.9)] == [None, None, None]
    told = watch.update(16.0)
    assert told and "16 s behind" in told and "Nothing is lost" in told
    assert [watch.update(s) for s in (30.0, 10.0, 3.5)] == [None, None, None]  # once, until it caught up
    assert watch.update(2.0) == "Transcription has caught up."
    assert watch.update(1.0) is None


FULL = "Cannot write the audio file (No space left on device). ..."


def test_audio_file_trouble_is_told_once_and_written_again_only_after_it_held():
    watch = AudioFileWatch(back_for_s=3.0)
    assert watch.update(None, 0.0, 0.0) == []
    assert watch.update(FULL, 0.0, 1.0) == [("error", FULL)]
    assert watch.update(FULL, 0.0, 2.0) == []
    # a disk at the edge of full: writing works for a moment, then fails again; nothing more is said
    assert watch.update(None, 0.0, 2.5) == [] and watch.update(None, 0.0, 5.4) == []
    assert watch.update(FULL, 0.0, 5.5) == []
    assert watch.update(None, 0.0, 6.0) == [] and watch.update(None, 0.0, 8.9) == []
    assert watch.update(None, 0.0, 9.0) == [("info", "The audio file is written again; no audio was lost.")]
    assert watch.update(None, 0.0, 20.0) == []


def test_audio_let_go_at_the_cap_is_told_when_it_starts_and_counted_per_outage():
    watch = AudioFileWatch(back_for_s=3.0)
    watch.update(FULL, 0.0, 0.0)
    said = watch.update(FULL, 0.1, 600.0)  # the writer's cap: waiting audio starts to become silence
    assert [level for level, _ in said] == ["warning"] and "refused the audio for 10 minutes" in said[0][1]
    assert watch.update(FULL, 30.0, 630.0) == []
    assert watch.update(None, 30.0, 631.0) == []
    assert watch.update(None, 30.0, 634.0) == [
        ("warning", "The audio file is written again; 30 s of audio waited too long and are silence in it.")]
    # a later, shorter outage lost nothing: the earlier 30 s are not counted again
    assert watch.update(FULL, 30.0, 700.0) == [("error", FULL)]
    assert watch.update(None, 30.0, 701.0, final=True) == [
        ("info", "The audio file is written again; no audio was lost.")]


def test_audio_file_watch_counts_a_fraction_of_a_second_silenced():
    """Told that audio becomes silence, the user is not told afterwards that none was lost."""
    watch = AudioFileWatch()
    watch.update(FULL, 0.0, 0.0)
    assert watch.update(FULL, 0.2, 600.0)[0][0] == "warning"
    assert watch.update(None, 0.2, 601.0, final=True) == [
        ("warning", "The audio file is written again; 0.2 s of audio waited too long and are silence in it.")]
    watch.update(FULL, 0.2, 700.0)
    watch.update(FULL, 0.2 + 1 / 16000, 1300.0)  # one frame let go
    assert watch.update(None, 0.2 + 1 / 16000, 1301.0, final=True) == [
        ("warning", "The audio file is written again; 0.1 s of audio waited too long and are silence in it.")]


def test_a_file_that_cannot_be_finished_is_told_even_after_the_outage_was():
    watch = AudioFileWatch()
    watch.update(FULL, 0.0, 0.0)
    end = "Cannot finish the audio file: 3.0 s of audio could not be written (No space left on device)."
    assert watch.update(end, 0.0, 1.0, final=True) == [("error", end)]
