"""End-to-end latency: from the end of a spoken sentence to its segment on the PostHog server.

    eval "$(bash tests/rig/audio.sh up)"; python benchmarks/record_to_server.py [--runs 3] [--mic auto]

Runs ``desktop-recorder record`` against the local PostHog test server, plays the JFK clip into
the virtual speakers, and reads the server's own arrival times. Prints JSON:
``sentence_to_server_s`` (end of playback → the append carrying its last words; includes the
sync batching of up to 3 s), ``stop_to_final_patch_s`` (SIGINT → the finalising PATCH), and
``cli_start_s`` (process start → "Recording"). ``--mic auto`` records the (silent) virtual
microphone too: with two streams a line is sent once both are final up to its start.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.posthog_server import PostHogTestServer  # noqa: E402


def one_run(wav: Path, mic: str) -> dict[str, float]:
    server = PostHogTestServer(keys={"phx_bench": {"desktop_recording:write"}}).start()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "DESKTOP_RECORDER_HOME": home, "POSTHOG_HOST": server.url,
               "POSTHOG_PERSONAL_API_KEY": "phx_bench"}
        launched = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "desktop_recorder", "record", "--mic", mic],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("Recording "):
                break
        recording_at = time.monotonic()
        time.sleep(1.0)
        subprocess.run(["paplay", "--device=meet_speakers", str(wav)], check=True)
        played_end = time.monotonic()
        deadline = played_end + 15
        while time.monotonic() < deadline:
            texts = " ".join(str(b) for m, p, b in server.state.requests if p.endswith("append_segments/"))
            if "your country." in texts.lower().split("can do for you")[-1]:
                break
            time.sleep(0.02)
        appends = [(t, b) for (m, p, b), t in zip(server.state.requests, server.state.arrived_at, strict=True)
                   if p.endswith("append_segments/")]
        last_words_at = next(t for t, b in appends if "country." in str(b).lower().split("for you")[-1])
        stop_at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
        patches = [t for (m, p, b), t in zip(server.state.requests, server.state.arrived_at, strict=True)
                   if m == "PATCH" and isinstance(b, dict) and b.get("status") == "ready"]
    server.stop()
    return {"cli_start_s": recording_at - launched, "sentence_to_server_s": last_words_at - played_end,
            "stop_to_final_patch_s": patches[-1] - stop_at}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mic", default="none", help="the microphone to record too (default: none)")
    args = parser.parse_args()
    audio, rate = sf.read(ROOT / "tests/data/jfk.flac", dtype="float32")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "jfk.wav"
        sf.write(wav, audio.mean(axis=1) if audio.ndim == 2 else audio, rate, subtype="PCM_16")
        runs = [one_run(wav, args.mic) for _ in range(args.runs)]
    summary = {k: {"median": round(float(np.median([r[k] for r in runs])), 3),
                   "max": round(max(r[k] for r in runs), 3)} for k in runs[0]}
    print(json.dumps({"machine": {"cpus": os.cpu_count()}, "runs": args.runs, "mic": args.mic, **summary}, indent=1))


if __name__ == "__main__":
    main()
