"""Smoke test of the built Linux bundle (dist/desktop-recorder, made by packaging/build.sh), run
from the bundle alone: no source tree, no virtualenv, no PYTHONPATH."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import DATA, JFK_TEXT, RIG, WRITE_KEY, wer
from tests.recording import Recorder, only_recording, play

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "dist" / "desktop-recorder"
EXE = BUNDLE / "desktop-recorder"
pytestmark = [pytest.mark.slow, pytest.mark.bundle]


@pytest.fixture(scope="module")
def exe() -> Path:
    if not EXE.exists():
        pytest.fail(f"no bundle at {BUNDLE}: build it with 'bash packaging/build.sh' (scripts/test.sh does)")
    return EXE


def bundle_env(home: Path, server=None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    keep = ("HOME", "LANG", "XDG_RUNTIME_DIR", "PULSE_SERVER", "PULSE_RUNTIME_PATH", "DISPLAY", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(PATH="/usr/bin:/bin", DESKTOP_RECORDER_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    if server is not None:
        env.update(POSTHOG_HOST=server.url, POSTHOG_PERSONAL_API_KEY=WRITE_KEY)
    return env


def run(exe: Path, *args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_version_and_transcribe(exe, app_home, tmp_path):
    env = bundle_env(app_home)
    assert run(exe, "--version", env=env, cwd=tmp_path).stdout.startswith("desktop-recorder ")
    clip = shutil.copy(DATA / "jfk.flac", tmp_path / "jfk.flac")
    result = run(exe, "transcribe", str(clip), env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert wer(JFK_TEXT, " ".join(line.split("] ", 1)[1] for line in result.stdout.splitlines())) == 0.0


@pytest.mark.audio
def test_doctor_and_record_against_the_server(exe, audio_rig, server, app_home, tmp_path, playable):
    env = bundle_env(app_home, server)
    doctor = run(exe, "doctor", env=env, cwd=tmp_path)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "[ok] model" in doctor.stdout and "desktop_recording:write granted" in doctor.stdout
    # The bundle's own PortAudio, not the system's: the target machine needs no libportaudio2.
    assert f"({BUNDLE.resolve()}/_internal/libportaudio.so.2)" in doctor.stdout, doctor.stdout
    rec = Recorder(["--duration", "15", "--mic", "none", "--title", "Bundle"], env, command=[str(exe)], cwd=tmp_path)
    rec.wait_recording()
    play(playable["jfk"], "meet_speakers").wait()
    code, _out, err = rec.finish(timeout=120)
    assert code == 0, err
    remote = only_recording(server)
    assert remote["status"] == "ready" and remote["meeting_title"] == "Bundle"
    assert wer(JFK_TEXT, remote["transcript_text"]) <= 0.1


CHECK = r"""
import subprocess, sys, time
started = time.monotonic()
app = subprocess.Popen([sys.argv[1]])
embedded_at = None
while time.monotonic() - started < 30 and embedded_at is None:
    tree = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True).stdout
    parts = tree.split('("panel" "trayer")', 1)
    if len(parts) == 2 and '"Desktop Recorder")' in parts[1]:
        embedded_at = time.monotonic() - started
    time.sleep(0.05)
time.sleep(3)
alive = app.poll() is None
app.terminate()
code = app.wait(30)
print(f"embedded={embedded_at is not None} alive={alive} exit={code} cold_start_s={embedded_at}")
"""


@pytest.mark.audio
def test_tray_app_from_the_bundle_under_xvfb(exe, audio_rig, app_home, tmp_path):
    env = bundle_env(app_home)
    env.pop("QT_QPA_PLATFORM")
    result = subprocess.run(["bash", str(RIG.parent / "xvfb_tray.sh"), "--", "/usr/bin/python3", "-c", CHECK,
                             str(exe)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "embedded=True alive=True exit=0" in result.stdout, result.stdout + result.stderr
