"""Live vs offline WER over many files, replayed as fast as the model goes (finals only).

    python benchmarks/replay_wer.py FILE_OR_DIR [...] [--model auto|PATH|NAME] [--set KEY=VALUE ...]

Each WAV (with ``NAME.txt`` beside it holding what was said) is fed through the app's streaming
engine in 20 ms blocks, every final decoded as soon as it is due; partial passes are skipped.
So it differs from a real-time run in two ways: utterances longer than ``long_utterance_s``
(12 s) are not committed early (that needs partial passes), and nothing falls behind, so waiting
utterances are never merged. ``live_transcription.py`` measures the real thing, and latency;
this one compares engine settings (``--set context_s=6``) on enough words to see past one
misheard word (the espeak-ng sets have no utterance over 12 s). Prints per-file figures on
stderr and one JSON object on the last line: ``{"files", "words", "wer_live", "wer_offline",
"cpu_s"}`` (WER word-weighted over all files; ``cpu_s``: process CPU of the live replays only).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from faster_whisper import decode_audio

from desktop_recorder.config import AppPaths
from tests.conftest import normalize, wer
from transcription.download import prepare_model
from transcription.model import WhisperTranscriber
from transcription.stream import StreamConfig, StreamingEngine
from transcription.types import FinalSegment
from transcription.vad import StreamingVad, silero_scorer

BLOCK = 320


def config_from(pairs: list[str]) -> StreamConfig:
    """``KEY=VALUE`` settings of ``StreamConfig``, each parsed as the type of its default."""
    defaults = StreamConfig()
    values: dict[str, object] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        if not hasattr(defaults, key):
            raise SystemExit(f"unknown setting {key!r}; known: {', '.join(vars(defaults))}")
        default = getattr(defaults, key)
        values[key] = None if raw == "None" else (type(default) if default is not None else str)(raw)
    return dataclasses.replace(defaults, **values)  # type: ignore[arg-type]


def live_text(model: WhisperTranscriber, audio: np.ndarray, config: StreamConfig) -> str:
    engine = StreamingEngine("system", model, StreamingVad(silero_scorer()), config)
    finals: list[FinalSegment] = []
    for i in range(0, len(audio), BLOCK):
        engine.insert_audio(audio[i: i + BLOCK])
        while engine.has_final_work():
            finals += [e for e in engine.poll() if isinstance(e, FinalSegment)]
    finals += [e for e in engine.finish() if isinstance(e, FinalSegment)]
    return " ".join(f.text for f in finals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--model", default="auto")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    config = config_from(args.settings)
    files = sorted(f for p in args.paths for f in ([p] if p.is_file() else p.glob("*.wav")))
    model = WhisperTranscriber(prepare_model(args.model, AppPaths.resolve().models_dir))
    words = live_errors = offline_errors = cpu = 0.0
    for path in files:
        reference = path.with_suffix(".txt").read_text(encoding="utf-8")
        n = len(normalize(reference).split())
        if not n:
            raise SystemExit(f"{path.with_suffix('.txt')}: no words to compare with")
        audio = decode_audio(str(path))
        started = time.process_time()
        text = live_text(model, audio, config)
        cpu += time.process_time() - started
        live = wer(reference, text) * n
        offline = wer(reference, " ".join(s.text for s in model.transcribe_file(audio))) * n
        print(f"{path.name}: live {100 * live / n:.1f} % offline {100 * offline / n:.1f} % ({n} words)",
              file=sys.stderr)
        words, live_errors, offline_errors = words + n, live_errors + live, offline_errors + offline
    print(json.dumps({
        "files": len(files),
        "words": int(words),
        "wer_live": round(live_errors / words, 4),
        "wer_offline": round(offline_errors / words, 4),
        "cpu_s": round(cpu, 1),
    }))


if __name__ == "__main__":
    main()
