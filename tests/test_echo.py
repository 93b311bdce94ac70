"""The echo estimate on synthetic signals with known echo."""

from __future__ import annotations

import numpy as np

from recorder.echo import EchoMeter

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
