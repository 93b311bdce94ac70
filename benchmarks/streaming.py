"""Streaming transcription benchmark: latency, accuracy, CPU and memory on real speech.

    python benchmarks/streaming.py [--beam 5] [--speed 1.0]

A "meeting" is built from the real speech in tests/data (JFK, then each channel of the stereo
file) with pauses between them, and fed to the streaming engine in 20 ms blocks at wall-clock
pace (``--speed 2`` plays it twice as fast) while a worker thread polls it, as the recorder does.
Prints one JSON object:

- ``final_latency_s``: wall time from the end of a stretch of speech to the final segment that
  ends in it. Speech ends are taken from the clean audio (30 ms frames above -45 dBFS, gaps under
  350 ms bridged), independent of the engine.
- ``first_partial_s``: from the onset of a stretch of speech to the first partial text for it.
- ``wer_live`` / ``wer_offline``: against the known sentences; offline = the same model on the
  whole stream at once. ``busy_fraction``: model time / audio time. ``peak_rss_mb``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np
from faster_whisper import decode_audio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import JFK_TEXT, LEFT_TEXT, RIGHT_TEXT, wer  # noqa: E402
from transcription.model import WhisperTranscriber, resolve_model  # noqa: E402
from transcription.stream import StreamingEngine  # noqa: E402
from transcription.types import FinalSegment, PartialText  # noqa: E402
from transcription.vad import StreamingVad, silero_scorer  # noqa: E402

SR = 16_000
BLOCK = 320  # 20 ms


def build_meeting() -> tuple[np.ndarray, str]:
    jfk = decode_audio(str(ROOT / "tests/data/jfk.flac"))
    left, right = decode_audio(str(ROOT / "tests/data/stereo_diarization.wav"), split_stereo=True)
    gap = np.zeros(int(1.5 * SR), np.float32)
    parts = [gap, jfk, gap, left, gap, right, gap, jfk, gap]
    return np.concatenate(parts).astype(np.float32), " ".join([JFK_TEXT, LEFT_TEXT, RIGHT_TEXT, JFK_TEXT])


def speech_regions(audio: np.ndarray) -> list[tuple[float, float]]:
    """Where speech starts and ends, from an offline Silero VAD pass over the clean audio."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(min_silence_duration_ms=300, speech_pad_ms=0)
    return [(r["start"] / SR, r["end"] / SR) for r in get_speech_timestamps(audio, options)]


class TimedTranscriber:
    def __init__(self, inner: WhisperTranscriber) -> None:
        self.inner = inner
        self.busy_s = 0.0
        self.passes = 0

    def transcribe(self, audio, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return self.inner.transcribe(audio, **kwargs)
        finally:
            self.busy_s += time.perf_counter() - started
            self.passes += 1


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(float(np.percentile(values, q)), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--speed", type=float, default=1.0)
    args = parser.parse_args()

    started = time.perf_counter()
    model = WhisperTranscriber(resolve_model("auto"), beam_size=args.beam)
    load_s = time.perf_counter() - started
    model.transcribe(np.zeros(SR, np.float32))  # warm-up
    audio, reference = build_meeting()
    regions = speech_regions(audio)
    timed = TimedTranscriber(model)
    engine = StreamingEngine("system", timed, StreamingVad(silero_scorer()))

    events: list[tuple[float, object]] = []
    lock = threading.Condition()
    fed = {"samples": 0, "done": False}
    t0 = time.perf_counter()

    def worker() -> None:
        consumed = 0
        while True:
            with lock:
                while fed["samples"] == consumed and not fed["done"] and not engine.has_work():
                    lock.wait(0.05)
                target, done = fed["samples"], fed["done"]
            if target > consumed:
                engine.insert_audio(audio[consumed:target])
                consumed = target
            if engine.has_work():
                for ev in engine.poll():
                    events.append(((time.perf_counter() - t0) * args.speed, ev))
            elif done and consumed == len(audio):
                for ev in engine.finish():
                    events.append(((time.perf_counter() - t0) * args.speed, ev))
                return

    thread = threading.Thread(target=worker)
    thread.start()
    for i in range(0, len(audio), BLOCK):
        due = t0 + (i + BLOCK) / SR / args.speed
        time.sleep(max(0.0, due - time.perf_counter()))
        with lock:
            fed["samples"] = min(i + BLOCK, len(audio))
            lock.notify()
    with lock:
        fed["done"] = True
        lock.notify()
    thread.join()
    wall_s = time.perf_counter() - t0

    finals = [(t, e) for t, e in events if isinstance(e, FinalSegment)]
    final_latency = []
    for start, end in regions:
        ends_here = [t for t, e in finals if start - 0.3 <= e.end_ms / 1000 <= end + 0.6]
        if ends_here:
            final_latency.append(min(ends_here) - end)
    first_partial = []
    for start, end in regions:
        texts = [t for t, e in events if isinstance(e, PartialText) and e.text and start <= t <= end + 1.0]
        if texts:
            first_partial.append(min(texts) - start)

    off_started = time.perf_counter()
    offline = " ".join(s.text for s in model.transcribe_file(audio))
    offline_s = time.perf_counter() - off_started
    live = " ".join(e.text for _, e in finals)
    audio_s = len(audio) / SR
    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "model": "tiny.en int8", "beam_final": args.beam, "speed": args.speed},
        "audio_s": round(audio_s, 2),
        "model_load_s": round(load_s, 3),
        "offline_rtf": round(offline_s / audio_s, 4),
        "final_latency_s": {"p50": pct(final_latency, 50), "p90": pct(final_latency, 90),
                            "max": round(max(final_latency), 3) if final_latency else None,
                            "n": len(final_latency), "of_regions": len(regions)},
        "first_partial_s": {"p50": pct(first_partial, 50), "p90": pct(first_partial, 90)},
        "wer_live": round(wer(reference, live), 4),
        "wer_offline": round(wer(reference, offline), 4),
        "busy_fraction": round(timed.busy_s / (wall_s * args.speed), 3),
        "model_passes": timed.passes,
        "mean_pass_s": round(timed.busy_s / max(timed.passes, 1), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "live_text": live,
    }, indent=1))


if __name__ == "__main__":
    main()
