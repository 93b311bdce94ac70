"""Memory and time of the whole-recording pass: "Improve transcript" and ``desktop-recorder transcribe``.

    python benchmarks/offline_pass.py FILE [--reference TEXTFILE] [--model auto|PATH|NAME]

Reads FILE as the post-meeting pass reads a recording (both tracks, 16-bit for a 16 kHz file
such as the app's, held as it holds them), loads the model, then transcribes the first track
(the mic) in one offline pass (beam search + VAD) with the app's ``WhisperTranscriber``. Prints
one JSON object on the last line: ``{"audio_s", "peak_rss_mb", "pass_rss_mb", "wall_s",
"cpu_s", "wer"}``: ``peak_rss_mb`` is the process's peak during the pass (the peak is reset
just before it; Linux only, as it reads /proc), ``pass_rss_mb`` that peak minus the resident
memory before the pass (model and audio already in), ``wer`` against the reference when one is
given.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from desktop_recorder.config import AppPaths
from desktop_recorder.refine import read_tracks
from tests.conftest import wer
from transcription.download import prepare_model
from transcription.model import WhisperTranscriber
from transcription.types import SAMPLE_RATE_HZ


def rss_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith(field + ":"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--reference", type=Path)
    parser.add_argument("--model", default="auto")
    args = parser.parse_args()

    model = WhisperTranscriber(prepare_model(args.model, AppPaths.resolve().models_dir))
    model.transcribe(np.zeros(SAMPLE_RATE_HZ, np.float32))  # warm-up
    tracks = read_tracks(args.file)  # a mono file: the second track is silence
    audio = tracks["mic"]
    before = rss_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset the peak: reading the file and loading the model are not the pass
    cpu0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    segments = model.transcribe_file(audio)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    peak = rss_mb("VmHWM")
    text = " ".join(s.text for s in segments)
    print(text, file=sys.stderr)
    print(json.dumps({
        "audio_s": round(len(audio) / SAMPLE_RATE_HZ, 2),
        "peak_rss_mb": round(peak, 1),
        "pass_rss_mb": round(peak - before, 1),
        "wall_s": round(wall, 1),
        "cpu_s": round((cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime), 1),
        "wer": round(wer(args.reference.read_text(), text), 4) if args.reference else None,
    }))


if __name__ == "__main__":
    main()
