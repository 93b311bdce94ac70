"""Echo on synthetic signals with known echo: the estimate (headphone hint) and the suppression gate."""

from __future__ import annotations

import numpy as np
import pytest

from recorder.echo import EchoMeter
from transcription.echo import EchoConfig, EchoGate
from transcription.types import FinalSegment, as_float

SR = 16_000
rng = np.random.default_rng(3)


def speechlike(seconds: float) -> np.ndarray:
    noise = rng.standard_normal(int(seconds * SR)).astype(np.float32)
    envelope = (np.sin(np.arange(len(noise)) / SR * 2 * np.pi * 3) > 0).astype(np.float32)
    return 0.2 * noise * envelope


def feed(meter: EchoMeter, mic: np.ndarray, system: np.ndarray) -> None:
    for i in range(0, len(mic), 1600):
        meter.add(mic[i:i + 1600], system[i:i + 1600])


def test_speakers_heard_by_the_mic_give_their_level_in_db():
    far = speechlike(3)
    delay = int(0.08 * SR)  # 80 ms from the speakers to the mic
    echo = np.concatenate([np.zeros(delay, np.float32), far[:-delay]]) * 0.5  # -6 dB
    meter = EchoMeter()
    feed(meter, echo + 0.01 * speechlike(3), far)
    assert abs(meter.estimate_db() + 6.0) < 1.0


def test_headphones_no_echo_and_a_silent_far_end_give_none():
    meter = EchoMeter()
    feed(meter, speechlike(3), speechlike(3))  # both talk, different speech
    assert meter.estimate_db() is None
    silent = EchoMeter()
    feed(silent, speechlike(3), np.zeros(3 * SR, np.float32))
    assert silent.estimate_db() is None


# -- echo suppression (EchoGate) -----------------------------------------------------------------

def seg(source, start_s, end_s, text):
    return FinalSegment(source, start_s * 1000, end_s * 1000, text, 0.9)


def gate_with(mic: np.ndarray, system: np.ndarray, config: EchoConfig | None = None) -> EchoGate:
    gate = EchoGate(config)
    for i in range(0, len(mic), 1600):
        gate.add_audio("mic", mic[i:i + 1600])
        gate.add_audio("system", system[i:i + 1600])
    return gate


def delayed(x: np.ndarray, seconds: float, gain: float) -> np.ndarray:
    d = int(seconds * SR)
    return gain * np.concatenate([np.zeros(d, np.float32), x[:-d]])


def test_a_mic_segment_that_is_the_speakers_heard_again_is_an_echo():
    far = np.concatenate([np.zeros(SR, np.float32), speechlike(4), np.zeros(SR, np.float32)])
    mic = delayed(far, 0.12, 0.7) + 0.003 * speechlike(6)
    gate = gate_with(mic, far)
    gate.add_system(seg("system", 1.0, 5.0, "Ask not what your country can do for you."))
    gate.hold(seg("mic", 1.1, 5.1, "I'm not what your country can do for you."))
    [(_, verdict)] = list(gate.release(system_settled_ms=6000))
    assert verdict.echo and verdict.audio_share is not None and verdict.audio_share > 0.9
    assert gate.suppressed == 1


def test_double_talk_is_kept():
    """The user talks over the far end (heard at -3 dB below the user): not an echo."""
    far = speechlike(5)
    near = speechlike(5)
    mic = delayed(far, 0.05, 0.5) + 0.7 * near
    gate = gate_with(mic, far)
    gate.add_system(seg("system", 0.0, 5.0, "The horizon seems extremely distant."))
    gate.hold(seg("mic", 0.5, 4.5, "Sorry, can I add something about the budget?"))
    [(_, verdict)] = list(gate.release(system_settled_ms=6000))
    assert not verdict.echo
    assert verdict.audio_share is not None and verdict.audio_share < 0.5
    assert verdict.text_share < 0.3  # "the" is common to both


def test_room_echo_is_caught_by_the_words():
    """Reverberation blurs the audio evidence; the model still heard the others' words."""
    far, room = speechlike(4), speechlike(4)  # room: unrelated to the far end, sample by sample
    gate = gate_with(0.3 * room, far)
    gate.add_system(seg("system", 0.0, 3.8, "He began a confused complaint against the wizard."))
    gate.hold(seg("mic", 0.2, 3.9, "began a confused complaint against wizard"))
    [(_, verdict)] = list(gate.release(system_settled_ms=5000))
    assert verdict.echo and verdict.text_share == 1.0
    assert verdict.audio_share is not None and verdict.audio_share < 0.1


def test_one_shared_word_or_far_away_text_is_no_evidence():
    far, near = speechlike(12), speechlike(12)
    gate = gate_with(near, far)
    gate.add_system(seg("system", 0.0, 2.0, "Okay."))
    gate.add_system(seg("system", 8.0, 10.0, "So what do you think about the budget?"))
    gate.hold(seg("mic", 0.5, 1.0, "Okay."))
    gate.hold(seg("mic", 3.0, 5.0, "What do you think about the budget?"))  # 3 s before the far end said it
    verdicts = [v for _, v in gate.release(system_settled_ms=12_000)]
    assert [v.echo for v in verdicts] == [False, False]


def test_mic_segments_wait_until_the_system_side_is_final():
    gate = gate_with(np.zeros(10 * SR, np.float32), np.zeros(10 * SR, np.float32))
    gate.hold(seg("mic", 1.0, 3.0, "Hello there everyone."))
    assert list(gate.release(system_settled_ms=2000)) == []  # a system utterance may still cover it
    assert gate.held == 1
    assert list(gate.release(system_settled_ms=3400)) == []  # a system line ending by 3.8 s is compared too
    [(kept, verdict)] = list(gate.release(system_settled_ms=3900))
    assert kept.text == "Hello there everyone." and not verdict.echo
    assert verdict.audio_share is None  # silent far end: nothing to compare
    gate.hold(seg("mic", 4.0, 5.0, "Bye."))
    assert [s.text for s, _ in gate.release(system_settled_ms=0, flush=True)] == ["Bye."]


def test_a_stuck_system_side_does_not_hold_the_users_words_forever():
    gate = gate_with(np.zeros(3 * SR, np.float32), np.zeros(3 * SR, np.float32), EchoConfig(max_hold_ms=2000))
    gate.hold(seg("mic", 0.5, 1.5, "Are you there?"))
    assert list(gate.release(system_settled_ms=0)) == []
    gate.add_audio("mic", np.zeros(SR, np.float32))
    gate.add_audio("system", np.zeros(SR, np.float32))
    assert [s.text for s, _ in gate.release(system_settled_ms=0)] == ["Are you there?"]


def test_repeating_the_far_ends_words_after_they_stopped_is_kept():
    """'Thank you so much' right after the other side said it: words match, but the far end is
    silent while the user speaks, so it cannot be an echo."""
    far = np.concatenate([speechlike(2), np.zeros(3 * SR, np.float32)])
    near = np.concatenate([np.zeros(2 * SR, np.float32), speechlike(2), np.zeros(SR, np.float32)])
    gate = gate_with(near, far)
    gate.add_system(seg("system", 0.2, 1.9, "Thank you so much."))
    gate.hold(seg("mic", 2.2, 3.8, "Thank you so much."))
    [(_, verdict)] = list(gate.release(system_settled_ms=5000))
    assert not verdict.echo and verdict.audio_share is None and verdict.text_share == 1.0


def test_the_ring_buffer_returns_exactly_what_was_added():
    gate = EchoGate(EchoConfig(history_s=1.0))
    ramp = np.arange(int(2.5 * SR), dtype=np.float32)
    for i in range(0, len(ramp), 700):  # chunks that do not divide the ring
        gate.add_audio("mic", ramp[i:i + 700])
    history = gate._audio["mic"]
    assert np.array_equal(history.get(int(1.6 * SR), int(2.5 * SR)), ramp[int(1.6 * SR):])
    assert not np.any(history.get(0, 100))  # older than the ring: gone, read as silence


def pcm16(audio: np.ndarray) -> np.ndarray:
    return np.round(audio * 32767).astype(np.int16)


def test_a_whole_recording_held_as_16_bit_is_read_as_the_same_floats():
    pcm = pcm16(speechlike(2))
    assert as_float(pcm).dtype == np.float32 and np.array_equal(as_float(pcm), pcm.astype(np.float64) / 32768)
    floats = as_float(pcm)
    assert as_float(floats) is floats
    history = EchoGate(whole={"mic": pcm, "system": pcm})._audio["system"]
    got = history.get(-10, SR)
    assert got.dtype == np.float32 and not np.any(got[:10]) and np.array_equal(got[10:], floats[:SR])


@pytest.mark.parametrize("as_file_holds_it", [False, True])
def test_over_a_whole_recording_early_system_lines_are_still_compared(as_file_holds_it):
    """The post-meeting pass adds every system line first, then judges the mic lines: the early
    ones must not have been dropped as 'older than the history' of a live gate."""
    n = 200 * SR
    far = np.zeros(n, np.float32)
    far[SR: 4 * SR] = speechlike(3)
    room = np.zeros(n, np.float32)
    room[SR: 4 * SR] = 0.3 * speechlike(3)  # echo blurred by the room: only the words tell
    gate = EchoGate(whole={"mic": pcm16(room), "system": pcm16(far)} if as_file_holds_it
                    else {"mic": room, "system": far})
    gate.add_system(seg("system", 1.0, 4.0, "He began a confused complaint against the wizard."))
    gate.add_system(seg("system", 190.0, 195.0, "Thanks everyone, bye."))
    assert gate.judge(seg("mic", 1.1, 4.0, "began a confused complaint against wizard")).echo
