"""Driving a real `desktop-recorder record` process in tests, and reading what it left behind."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from desktop_recorder.store import LocalRecording, Store, StoredSegment
from tests.posthog_server import PostHogTestServer


class Recorder:
    """A `desktop-recorder record` process whose stderr is read as it comes."""

    def __init__(self, args: list[str], env: dict[str, str], *, command: list[str] | None = None,
                 cwd: Path | None = None) -> None:
        command = command or [sys.executable, "-m", "desktop_recorder"]
        self.proc = subprocess.Popen([*command, "record", *args], env=env, cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr: list[str] = []
        self.recording = threading.Event()
        self.started_at = 0.0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            if line.startswith("Recording ") and not self.recording.is_set():
                self.started_at = time.monotonic()
                self.recording.set()

    def wait_recording(self, timeout: float = 60) -> None:
        if not self.recording.wait(timeout):
            self.proc.kill()
            self.finish()  # closes the pipes: a leak would fail a later test with a ResourceWarning
            pytest.fail("recorder never started:\n" + "".join(self.stderr))

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        assert self.proc.stdout is not None
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:  # never left running: it would record into later tests
            self.proc.kill()
            self.proc.wait()
            raise
        out = self.proc.stdout.read()  # small: one line per final segment
        self._reader.join(5)
        self.proc.stdout.close()
        if self.proc.stderr:
            self.proc.stderr.close()
        return self.proc.returncode, out, "".join(self.stderr)


def play(path: Path, device: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["paplay", f"--device={device}", str(path)])


def only_recording(server: PostHogTestServer) -> dict[str, Any]:
    recordings = list(server.state.recordings.values())
    assert len(recordings) == 1, f"expected one recording on the server, got {len(recordings)}"
    return recordings[0]


def local_segments(home: Path) -> list[StoredSegment]:
    """Every segment the recorder committed locally, in time order, across recordings."""
    store = Store(home / "data" / "recordings.sqlite3")
    try:
        return [s for rec in store.list_recordings() for s in store.segments(rec.id)]
    finally:
        store.close()


def only_local_recording(home: Path) -> LocalRecording:
    store = Store(home / "data" / "recordings.sqlite3")
    try:
        recordings = store.list_recordings()
    finally:
        store.close()
    assert len(recordings) == 1, f"expected one local recording, got {len(recordings)}"
    return recordings[0]


def said_by(segments: list[StoredSegment], speaker: str) -> str:
    """Everything one speaker said, in time order."""
    return " ".join(s.text for s in segments if s.speaker == speaker)
