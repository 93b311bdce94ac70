"""Live transcription benchmark: one or two sources at real-time pace through the app's engine.

    python benchmarks/live_transcription.py --system FILE [--mic FILE] --reference TEXTFILE
                                            [--model auto|PATH|NAME] [--speedup N] [--set KEY=VALUE ...]

Each file is fed in 20 ms blocks on a clock (``--speedup 2`` = twice real time) while one worker
thread owns the model and polls the engines as the recorder does (finals first). The last line
printed is one JSON object:

- ``final_latency_p50_s`` / ``p90``: audio clock from the end of a stretch of speech (offline
  Silero VAD over the clean file, pauses >= 300 ms) to the first final segment that covers it
  (a stretch finalised together with the next one waits for it, and that counts).
- ``partial_latency_p50_s``: for each word of an offline word-timestamped pass, audio clock from
  its end to the moment the live view (finals + current partial) first shows it.
- ``wer_live`` / ``wer_offline``: against the reference after normalising case and punctuation;
  live finals merged by time; offline = the same model and beam transcribing each whole file
  (the app's whole-recording pass), two files merged word by word by time (see ``offline_text``).
- ``cpu_percent``: process CPU time / (wall time x cores) while streaming; ``peak_rss_mb``: the
  process's peak resident memory up to the end of streaming (model + engines; the files are read
  from disk block by block as a recorder receives audio, and the offline passes that follow for the
  reference figures are not counted).
- ``dropped_audio_s``: audio fed but never given to an engine (0 unless the design drops audio);
  ``max_lag_s``: the most audio waiting for the worker (how far transcription fell behind).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from faster_whisper import decode_audio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.replay_wer import config_from
from desktop_recorder.config import AppPaths
from tests.conftest import normalize, wer
from transcription.download import prepare_model
from transcription.model import WhisperTranscriber
from transcription.stream import StreamConfig, StreamingEngine
from transcription.types import FinalSegment, PartialText, Source
from transcription.vad import StreamingVad, silero_scorer

SR = 16_000
BLOCK = 320


def speech_ends(audio: np.ndarray) -> list[float]:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return [r["end"] / SR for r in get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=300,
                                                                            speech_pad_ms=0))]


class FileFeed:
    """A sound file read block by block as 16 kHz mono, so a long file is never whole in memory.

    Resampled with soxr, as the recorder does; the figures computed afterwards decode the file with
    faster-whisper's own decoder, identical for 16 kHz files (as the test speech is)."""

    def __init__(self, path: Path) -> None:
        self._file = sf.SoundFile(str(path))
        self._resampler = soxr.ResampleStream(self._file.samplerate, SR, 1, dtype="float32")
        self.length = round(self._file.frames * SR / self._file.samplerate)
        self._given = 0
        self._ready = np.zeros(0, np.float32)

    def read(self, n: int) -> np.ndarray:
        """The next ``n`` samples (fewer only at the end of the file)."""
        want = min(n, self.length - self._given)
        while len(self._ready) < want:
            if self._file.closed:  # the resampler's rounding at the very end: silence
                self._ready = np.concatenate([self._ready, np.zeros(want - len(self._ready), np.float32)])
                break
            block = self._file.read(max(1024, want), dtype="float32", always_2d=True)
            self._ready = np.concatenate(
                [self._ready, self._resampler.resample_chunk(block.mean(axis=1), last=len(block) == 0)])
            if len(block) == 0:
                self._file.close()
        got, self._ready = self._ready[:want], self._ready[want:]
        self._given += want
        return got


class Stream:
    """One source: its audio, its engine, and what it showed when."""

    def __init__(self, source: Source, path: Path, model: WhisperTranscriber, config: StreamConfig) -> None:
        self.source, self.path = source, path
        self.feed = FileFeed(path)
        self.audio = np.zeros(0, np.float32)  # the whole file, loaded after streaming for the analysis
        self.engine = StreamingEngine(source, model, StreamingVad(silero_scorer()), config)
        self.inserted = 0
        self.finals: list[tuple[float, FinalSegment]] = []
        self.final_words: list[str] = []
        # (audio clock, final words shown so far, partial words): what the live view showed when.
        # Counts, not copies: a copy per event grows with the square of the recording's length.
        self.views: list[tuple[float, int, tuple[str, ...]]] = []
        self._partial: tuple[str, ...] = ()

    def record(self, clock: float, events: list) -> None:  # type: ignore[type-arg]
        for ev in events:
            if isinstance(ev, FinalSegment):
                self.finals.append((clock, ev))
                self.final_words += normalize(ev.text).split()
                self._partial = ()
            elif isinstance(ev, PartialText):
                self._partial = tuple(normalize(ev.text).split())
        self.views.append((clock, len(self.final_words), self._partial))


RECENT_WORDS = 120  # per view, only the newest words are aligned (enough for a 30 s window)


def partial_latencies(stream: Stream, model: WhisperTranscriber) -> list[float]:
    """For each word of an offline pass: when the live view first showed it, minus when it was
    spoken. Each view is aligned with the reference words of the preceding 30 s only, and a word
    "seen" before it was spoken is a misalignment (repeated phrases), not a latency."""
    words = [w for s in model.transcribe(stream.audio, word_timestamps=True, prompt=None)
             for w in s.words]
    truth = [(normalize(w.text), w.end_s) for w in words if normalize(w.text)]
    ends = np.array([end for _, end in truth])
    first_seen: dict[int, float] = {}
    for clock, n_final, partial in stream.views:
        lo, hi = int(np.searchsorted(ends, clock - 30.0)), int(np.searchsorted(ends, clock + 0.5))
        shown = stream.final_words[max(0, n_final - RECENT_WORDS): n_final] + list(partial)
        matcher = SequenceMatcher(a=[t for t, _ in truth[lo:hi]], b=shown, autojunk=False)
        for block in matcher.get_matching_blocks():
            for i in range(lo + block.a, lo + block.a + block.size):
                if clock >= truth[i][1] - 0.5:
                    first_seen.setdefault(i, clock)
    return [first_seen[i] - truth[i][1] for i in first_seen]


def run(streams: list[Stream], speedup: float) -> dict[str, float]:
    total = max(s.feed.length for s in streams)
    fed = {"n": 0, "done": False}
    cond = threading.Condition()
    max_lag = [0.0]
    t0 = time.perf_counter()

    def clock() -> float:
        return (time.perf_counter() - t0) * speedup

    def worker() -> None:
        while True:
            with cond:
                while not fed["done"] and all(s.inserted >= min(fed["n"], s.feed.length) for s in streams) \
                        and not any(s.engine.has_work() for s in streams):
                    cond.wait(0.05)
                target, done = fed["n"], fed["done"]
            for s in streams:
                end = min(target, s.feed.length)
                max_lag[0] = max(max_lag[0], (end - s.inserted) / SR)
                if end > s.inserted:
                    s.engine.insert_audio(s.feed.read(end - s.inserted))
                    s.inserted = end
            busy = [s for s in streams if s.engine.has_work()]
            if busy:
                busy.sort(key=lambda s: (not s.engine.has_final_work(), -s.engine.backlog_s))
                busy[0].record(clock(), busy[0].engine.poll())
            elif done and all(s.inserted == s.feed.length for s in streams):
                for s in streams:
                    s.record(clock(), s.engine.finish())
                return

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    thread = threading.Thread(target=worker)
    thread.start()
    for i in range(0, total, BLOCK):
        time.sleep(max(0.0, t0 + (i + BLOCK) / SR / speedup - time.perf_counter()))
        with cond:
            fed["n"] = min(i + BLOCK, total)
            cond.notify()
    with cond:
        fed["done"] = True
        cond.notify()
    thread.join()
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {"cpu_percent": 100 * cpu / (wall * (os.cpu_count() or 1)), "max_lag_s": max_lag[0],
            "dropped_audio_s": sum(s.feed.length - s.inserted for s in streams) / SR}


def offline_text(streams: list[Stream], model: WhisperTranscriber) -> str:
    """Each whole file in one pass, as the app's whole-recording pass decodes it (``refine``),
    merged word by word by time (with VAD one offline segment can hold two turns of a speaker)."""
    words = sorted((w.start_s, w.text) for s in streams for seg in model.transcribe_file(s.audio) for w in seg.words)
    return "".join(text for _, text in words)


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", type=Path, required=True)
    parser.add_argument("--mic", type=Path)
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--model", default="auto")
    parser.add_argument("--speedup", type=float, default=1.0)
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="an engine setting other than the app's (StreamConfig), as in replay_wer.py")
    args = parser.parse_args()
    config = config_from(args.settings)

    model = WhisperTranscriber(prepare_model(args.model, AppPaths.resolve().models_dir))
    model.transcribe(np.zeros(SR, np.float32))  # warm-up: load-time costs are not latency
    files: list[tuple[Source, Path]] = [("system", args.system)] + ([("mic", args.mic)] if args.mic else [])
    streams = [Stream(src, path, model, config) for src, path in files]
    measured = run(streams, args.speedup)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the live part only
    for s in streams:
        s.audio = decode_audio(str(s.path)).astype(np.float32)

    final_latency, partial_latency = [], []
    for s in streams:
        for end in speech_ends(s.audio):
            done = [clock for clock, f in s.finals if f.start_ms / 1000 - 0.3 <= end <= f.end_ms / 1000 + 0.6]
            if done:
                final_latency.append(min(done) - end)
        partial_latency += partial_latencies(s, model)
    live = " ".join(f.text for _, f in sorted((f for s in streams for f in s.finals), key=lambda x: x[1].start_ms))
    offline = offline_text(streams, model)
    reference = args.reference.read_text(encoding="utf-8")
    print(f"live:    {live}\noffline: {offline.strip()}", file=sys.stderr)
    print(json.dumps({
        "audio_s": round(max(len(s.audio) for s in streams) / SR, 2),
        "wer_live": round(wer(reference, live), 4),
        "wer_offline": round(wer(reference, offline), 4),
        "final_latency_p50_s": pct(final_latency, 50),
        "final_latency_p90_s": pct(final_latency, 90),
        "partial_latency_p50_s": pct(partial_latency, 50),
        "cpu_percent": round(measured["cpu_percent"], 1),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "dropped_audio_s": round(measured["dropped_audio_s"], 3),
        "max_lag_s": round(measured["max_lag_s"], 3),
    }))


if __name__ == "__main__":
    main()
