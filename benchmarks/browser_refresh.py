"""Recordings browser: what one new line of a running recording costs the GUI thread.

    python benchmarks/browser_refresh.py [--lines 1500] [--recordings 50] [--refreshes 20]

The browser is open on a running recording while the tray app stores its final lines; every
stored line makes the app re-read the local store (``reload_local``). This builds a real store
with ``--recordings`` finished recordings and one running recording of ``--lines`` lines (real
SQLite, real Qt widgets, offscreen), selects the running one, then adds ``--refreshes`` lines one
by one and times each refresh, with and without a search typed in the filter box.
Prints JSON: ``refresh_s`` p50/max (no search), ``refresh_search_s`` p50/max, ``lines``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SENTENCE = "so the next thing on the list is the release date and who signs off on the notes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1500)
    parser.add_argument("--recordings", type=int, default=50)
    parser.add_argument("--refreshes", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DESKTOP_RECORDER_HOME"] = tmp
        for var in ("POSTHOG_HOST", "POSTHOG_PROJECT_ID", "POSTHOG_PERSONAL_API_KEY"):
            os.environ.pop(var, None)
        from PySide6.QtWidgets import QApplication

        from api.client import PostHogClient
        from desktop_recorder.context import AppContext, SyncNotConfigured
        from ui.browser import RecordingsBrowser

        app = QApplication([])
        ctx = AppContext.open()
        store = ctx.store
        for n in range(args.recordings):
            rec = store.create_recording(platform="meet", title=f"Meeting {n}", participants=["Me"], audio_path=None)
            for i in range(200):
                store.add_segment(rec.id, start_ms=2000 * i, end_ms=2000 * i + 1500, source="system",
                                  speaker="Others", text=f"{SENTENCE} {n} {i}", confidence=0.9)
            store.finish_recording(rec.id, status="ready", duration_s=400.0, title=f"Meeting {n}", participants=["Me"])
        live = store.create_recording(platform="desktop_audio", title="Live", participants=["Me"], audio_path=None)
        ms = 0

        def add_line() -> None:
            nonlocal ms
            store.add_segment(live.id, start_ms=ms, end_ms=ms + 1500, source="mic", speaker="Me",
                              text=f"{SENTENCE} {ms}", confidence=0.9)
            ms += 2000

        for _ in range(args.lines):
            add_line()

        def offline() -> PostHogClient:
            raise SyncNotConfigured("benchmark")  # it measures the local store and the widgets only

        browser = RecordingsBrowser(ctx, offline, lambda: None)
        browser.resize(980, 640)
        browser.show()
        browser.select(live.id)
        app.processEvents()

        def timed(search: str) -> list[float]:
            browser.search_edit.setText(search)
            browser.refresh()
            browser.select(live.id)
            app.processEvents()
            times = []
            for _ in range(args.refreshes):
                add_line()
                t0 = time.perf_counter()
                browser.reload_local()
                app.processEvents()
                times.append(time.perf_counter() - t0)
            return times

        plain = timed("")
        searching = timed("release date")
        shown = browser.detail.transcript_view.toPlainText().count(SENTENCE)
        browser.shutdown()
        ctx.close()
        print(json.dumps({
            "lines": shown,
            "refresh_s": {"p50": round(statistics.median(plain), 4), "max": round(max(plain), 4)},
            "refresh_search_s": {"p50": round(statistics.median(searching), 4), "max": round(max(searching), 4)},
        }))


if __name__ == "__main__":
    main()
