"""The audio file writer: its cost, and the memory audio takes while the disk refuses it.

    python benchmarks/wav_writer.py [--minutes 60] [--full-minutes 15]

Writes ``--minutes`` of stereo audio in 100 ms blocks (as the capture pipeline does) and times
it. Then writes a minute, makes the disk refuse every further byte (a file-size limit, as a full
disk does), writes ``--full-minutes`` more, lifts the limit and writes one more block: the file
must resume, with what waited longer than the writer's cap as silence. Linux/macOS only (it uses
RLIMIT_FSIZE). Prints JSON: ``minutes``, ``cpu_s_per_hour`` (writer CPU per hour of audio),
``full_minutes``, ``held_cap_s``, ``peak_rss_growth_mb`` (while refused), ``waiting_s_at_peak``,
``waiting_s_after`` (0: all written), ``silenced_s``, ``file_s`` and ``expected_s``.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recorder.wavfile import FRAME_BYTES, HEADER_BYTES, HELD_MAX_S, StereoWavWriter
from transcription.types import SAMPLE_RATE_HZ

BLOCK = SAMPLE_RATE_HZ // 10


def blocks(minutes: float, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """A few distinct blocks of noise, reused (making an hour of fresh noise would dominate)."""
    pool = [(rng.uniform(-0.5, 0.5, BLOCK).astype(np.float32), rng.uniform(-0.5, 0.5, BLOCK).astype(np.float32))
            for _ in range(16)]
    return [pool[i % len(pool)] for i in range(int(minutes * 600))]


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--full-minutes", type=float, default=15.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a refused write is an EFBIG error, not a kill

    with tempfile.TemporaryDirectory() as tmp:
        writer = StereoWavWriter(Path(tmp) / "normal.wav")
        started = time.process_time()
        for mic, system in blocks(args.minutes, rng):
            writer.write(mic, system)
        writer.close()
        cpu_s = time.process_time() - started

        path = Path(tmp) / "full.wav"
        writer = StereoWavWriter(path)
        for mic, system in blocks(1, rng):
            writer.write(mic, system)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (HEADER_BYTES + writer.frames * FRAME_BYTES, hard))
        before = peak_rss_mb()
        for mic, system in blocks(args.full_minutes, rng):
            writer.write(mic, system)
        growth = peak_rss_mb() - before
        waiting_at_peak = writer.waiting_s
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        mic, system = blocks(0.1 / 60, rng)[0]
        writer.write(mic, system)
        waiting_after = writer.waiting_s
        silenced_s = writer.silenced_frames / SAMPLE_RATE_HZ
        expected_s = writer.frames / SAMPLE_RATE_HZ
        writer.close()
        file_s = sf.info(str(path)).duration

    print(json.dumps({
        "minutes": args.minutes,
        "cpu_s_per_hour": round(cpu_s * 60 / args.minutes, 2),
        "full_minutes": args.full_minutes,
        "held_cap_s": HELD_MAX_S,
        "peak_rss_growth_mb": round(growth, 1),
        "waiting_s_at_peak": round(waiting_at_peak, 1),
        "waiting_s_after": round(waiting_after, 1),
        "silenced_s": round(silenced_s, 1),
        "file_s": round(file_s, 1),
        "expected_s": round(expected_s, 1),
    }))


if __name__ == "__main__":
    main()
