"""Shared fixtures: the real PostHog test server, the virtual audio rig, an isolated app home."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desktop_recorder.context import AppContext
from tests.posthog_server import PostHogTestServer

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # real widgets, no screen needed

DATA = Path(__file__).parent / "data"
RIG = Path(__file__).parent / "rig" / "audio.sh"
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")
LEFT_TEXT = "He began a confused complaint against the wizard, who had vanished behind the curtain on the left."
RIGHT_TEXT = "The horizon seems extremely distant."
WRITE_KEY = "phx_test_write"
READ_KEY = "phx_test_read"
ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _spelled(match: re.Match[str]) -> str:
    """Numbers below 100 as words: "4" and "four" are the same transcript."""
    n = int(match.group())
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else f" {ONES[n % 10]}")
    return match.group()


def normalize(text: str) -> str:
    """Lower case, no punctuation, numbers below 100 spelled out ("10%" = "ten percent")."""
    text = text.lower().replace("\u2019", "'").replace("%", " percent")
    text = re.sub(r"\b\d+\b", _spelled, text)
    text = re.sub("[-\u2013\u2014/]", " ", text)
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def wer(reference: str, hypothesis: str) -> float:
    import jiwer

    return float(jiwer.wer(normalize(reference), normalize(hypothesis)))


@pytest.fixture
def server() -> Iterator[PostHogTestServer]:
    srv = PostHogTestServer(keys={WRITE_KEY: {"desktop_recording:write"}, READ_KEY: {"desktop_recording:read"}})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def app_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty DESKTOP_RECORDER_HOME, with no PostHog configuration leaking in from outside."""
    home = tmp_path / "home"
    monkeypatch.setenv("DESKTOP_RECORDER_HOME", str(home))
    for var in ("POSTHOG_HOST", "POSTHOG_PROJECT_ID", "POSTHOG_PERSONAL_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def ctx(app_home: Path) -> Iterator[AppContext]:
    """The app's context (paths, settings, store) in the isolated home."""
    context = AppContext.open()
    yield context
    context.close()


@pytest.fixture(scope="session")
def audio_rig() -> dict[str, str]:
    """The virtual PulseAudio devices (tests/rig/audio.sh), started if .ci/run has not already."""
    for tool in ("pulseaudio", "pactl", "paplay"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: install pulseaudio and pulseaudio-utils (see .ci/run)")
    out = subprocess.run(["bash", str(RIG), "up"], check=True, capture_output=True, text=True).stdout
    env = dict(re.findall(r"export (\w+)='([^']*)'", out))
    os.environ.update(env)
    return env


@pytest.fixture(scope="session")
def model():  # type: ignore[no-untyped-def]
    from transcription.model import WhisperTranscriber, resolve_model

    return WhisperTranscriber(resolve_model("auto"))


@pytest.fixture(scope="session")
def playable(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """16-bit WAV copies of the test speech (paplay misplays 24-bit FLAC): jfk, left, right."""
    out = tmp_path_factory.mktemp("playable")
    jfk, rate = sf.read(DATA / "jfk.flac", dtype="float32")
    stereo, srate = sf.read(DATA / "stereo_diarization.wav", dtype="float32")
    files = {"jfk": (jfk.mean(axis=1) if jfk.ndim == 2 else jfk, rate),
             "left": (stereo[:, 0], srate), "right": (stereo[:, 1], srate)}
    paths = {}
    for name, (audio, sr) in files.items():
        paths[name] = out / f"{name}.wav"
        sf.write(paths[name], np.asarray(audio), sr, subtype="PCM_16")
    return paths


def cli_env(home: Path, server: PostHogTestServer | None, key: str = WRITE_KEY) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTHOG_")}
    env["DESKTOP_RECORDER_HOME"] = str(home)
    if server is not None:
        env["POSTHOG_HOST"] = server.url
        env["POSTHOG_PERSONAL_API_KEY"] = key
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "desktop_recorder", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def damaged_database(home: Path) -> bytes:
    """The app's database holding a 300-line recording, then every page but the schema's
    overwritten: it opens, and the damage shows at the first query. Returns its bytes."""
    from desktop_recorder.store import Store

    (home / "data").mkdir(parents=True, exist_ok=True)
    db = home / "data" / "recordings.sqlite3"
    store = Store(db)
    rid = store.create_recording(platform="zoom", title="Weekly", participants=["Ann"], audio_path=None).id
    for i in range(300):
        store.add_segment(rid, start_ms=i * 1000, end_ms=i * 1000 + 900, source="mic", speaker="Ann",
                          text=f"line {i} of a long meeting", confidence=0.9)
    store.close()
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page:] = b"\xa5" * (len(data) - page)
    db.write_bytes(bytes(data))
    return bytes(data)


@pytest.fixture
def locked_keyring() -> Iterator[tuple[threading.Event, dict[tuple[str, str], str], list[threading.Thread]]]:
    """A keyring that waits, as a locked one does until the user unlocks it (at login, before the
    desktop's keyring is open); yields the event that unlocks it, what it holds, and the threads
    it was asked on."""
    import keyring
    from keyring.backend import KeyringBackend

    unlocked = threading.Event()
    stored: dict[tuple[str, str], str] = {}
    asked_on: list[threading.Thread] = []

    class LockedKeyring(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def get_password(self, service: str, username: str) -> str | None:
            asked_on.append(threading.current_thread())
            unlocked.wait(60)
            return stored.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            asked_on.append(threading.current_thread())
            unlocked.wait(60)
            stored[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            asked_on.append(threading.current_thread())
            unlocked.wait(60)
            del stored[(service, username)]

    previous = keyring.get_keyring()
    keyring.set_keyring(LockedKeyring())
    yield unlocked, stored, asked_on
    unlocked.set()
    keyring.set_keyring(previous)
