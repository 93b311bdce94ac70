"""Mic/system alignment over a long recording: does the timeline drift?

    eval "$(bash tests/rig/audio.sh up)"; python benchmarks/alignment.py [--minutes 10]

Plays the same click train (a 10 ms burst every 5 s) into the virtual speakers and the virtual
microphone at once, records both with the capture pipeline the app uses (no transcription), and
finds every click in both channels of the saved WAV. The two players start a few ms apart, so
the offset between the channels is not 0; what matters is whether it moves. Prints JSON:
``duration_s``, ``clicks``, ``offset_first_ms``, ``offset_last_ms``, ``drift_ms`` (last - first),
``spread_ms`` (max - min over all clicks), ``drift_ms_per_hour`` (a linear fit, scaled to an hour).
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recorder.devices import device_table, resolve
from recorder.pipeline import CapturePipeline

SR = 16_000
PLAY_SR = 48_000
EVERY_S = 5.0


def click_train(seconds: float) -> np.ndarray:
    audio = np.zeros(int(seconds * PLAY_SR), np.float32)
    burst = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(int(0.01 * PLAY_SR)) / PLAY_SR)
    for start in np.arange(1.0, seconds - 1.0, EVERY_S):
        i = int(start * PLAY_SR)
        audio[i:i + len(burst)] = burst
    return audio


def onsets(channel: np.ndarray) -> list[float]:
    """Times (s) where a click starts: the first sample above half the peak after a quiet gap."""
    threshold = 0.5 * float(np.max(np.abs(channel)))
    loud = np.flatnonzero(np.abs(channel) > threshold)
    starts = [int(loud[0])] + [int(b) for a, b in itertools.pairwise(loud) if b - a > SR]
    return [s / SR for s in starts]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    seconds = args.minutes * 60
    table = device_table()
    devices = {"mic": resolve(table, "mic", "auto"), "system": resolve(table, "system", "auto")}
    with tempfile.TemporaryDirectory() as tmp:
        clicks = Path(tmp) / "clicks.wav"
        sf.write(clicks, click_train(seconds), PLAY_SR, subtype="PCM_16")
        wav = Path(tmp) / "recording.wav"
        pipeline = CapturePipeline({k: v for k, v in devices.items() if v is not None}, wav, lambda _s, _a: None)
        pipeline.start()
        time.sleep(0.5)
        players = [subprocess.Popen(["paplay", f"--device={sink}", str(clicks)])
                   for sink in ("meet_speakers", "meet_mic_in")]
        for p in players:
            p.wait()
        time.sleep(0.5)
        pipeline.stop()
        audio, _ = sf.read(wav, dtype="float32")
    mic, system = onsets(audio[:, 0]), onsets(audio[:, 1])
    pairs = [(m, min(system, key=lambda s, m=m: abs(s - m))) for m in mic]
    offsets = np.array([(s - m) * 1000 for m, s in pairs if abs(s - m) < 0.5])
    times = np.array([m for m, s in pairs if abs(s - m) < 0.5])
    slope = float(np.polyfit(times, offsets, 1)[0]) if len(times) > 2 else 0.0
    print(json.dumps({
        "duration_s": round(len(audio) / SR, 1),
        "clicks": len(offsets),
        "offset_first_ms": round(float(offsets[0]), 2),
        "offset_last_ms": round(float(offsets[-1]), 2),
        "drift_ms": round(float(offsets[-1] - offsets[0]), 2),
        "spread_ms": round(float(offsets.max() - offsets.min()), 2),
        "drift_ms_per_hour": round(slope * 3600, 2),
    }))


if __name__ == "__main__":
    main()
