"""Sync cost and speed: requests per recorded minute, and final segment → server acknowledgement.

    python benchmarks/sync.py [--seconds 60] [--segments-per-minute 30]

A live recording receives final segments at a meeting's pace (two speakers, one segment every
``60 / segments-per-minute`` s, in real time) while the real SyncWorker thread drains the real
SQLite outbox into the local PostHog test server; then the recording is finished and flushed.
Prints JSON: ``requests_per_minute`` (all requests, create and PATCHes included),
``ack_latency_s`` p50/p90/max (segment committed locally → its append acknowledged).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.client import PostHogClient  # noqa: E402
from api.sync import SyncWorker  # noqa: E402
from desktop_recorder.store import Store  # noqa: E402
from tests.posthog_server import PostHogTestServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--segments-per-minute", type=float, default=30.0)
    args = parser.parse_args()

    server = PostHogTestServer(keys={"phx_bench": {"desktop_recording:write"}}).start()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "db.sqlite3")
        client = PostHogClient(server.url, "phx_bench", 1)
        worker = SyncWorker(store, client)
        committed: dict[float, float] = {}
        acked: dict[float, float] = {}
        append = client.append_segments

        def timed_append(recording_id, segments):  # type: ignore[no-untyped-def]
            result = append(recording_id, segments)
            now = time.monotonic()
            for seg in segments:
                acked.setdefault(seg.timestamp_ms, now)
            return result

        client.append_segments = timed_append  # type: ignore[method-assign]
        rec = store.create_recording(platform="meet", title="Benchmark", participants=[], audio_path=None)
        worker.start()
        started = time.monotonic()
        interval = 60.0 / args.segments_per_minute
        n = 0
        while (elapsed := time.monotonic() - started) < args.seconds:
            seg = store.add_segment(rec.id, start_ms=elapsed * 1000, end_ms=elapsed * 1000 + 1500,
                                    source="mic" if n % 2 else "system", speaker="Me" if n % 2 else "Others",
                                    text=f"Sentence number {n} of the benchmark meeting.", confidence=0.9)
            committed[seg.timestamp_ms] = time.monotonic()
            worker.wake()
            n += 1
            time.sleep(max(0.0, started + n * interval - time.monotonic()))
        store.finish_recording(rec.id, status="ready", duration_s=args.seconds, title="Benchmark", participants=[])
        worker.wake()
        worker.stop()
        assert worker.drain(30)
        requests = len(server.state.requests)
        lat = [acked[t] - committed[t] for t in committed if t in acked]
        store.close()
        client.close()
    server.stop()
    print(json.dumps({
        "machine": {"cpus": os.cpu_count()},
        "recorded_minutes": round(args.seconds / 60, 2),
        "segments": len(committed),
        "requests": requests,
        "requests_per_minute": round(requests / (args.seconds / 60), 1),
        "ack_latency_s": {"p50": round(float(np.percentile(lat, 50)), 3),
                          "p90": round(float(np.percentile(lat, 90)), 3), "max": round(max(lat), 3)},
    }, indent=1))


if __name__ == "__main__":
    main()
