"""`desktop-recorder` with no arguments on a real X screen with a real system tray (Xvfb + trayer)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import cli_env

RIG = Path(__file__).parent / "rig" / "xvfb_tray.sh"
# Run on the rig's screen: starts the app, and (last) ends it with SIGTERM, printing what it saw.
SCRIPT = r"""
import os, signal, subprocess, sys, time


def embedded():
    tree = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True).stdout
    panel = tree.split('("panel" "trayer")', 1)
    return len(panel) == 2 and '"Desktop Recorder")' in panel[1]  # WM_CLASS class name


def window_viewable():  # the control window: a child of the root (no window manager here), not the icon
    children = subprocess.run(["xwininfo", "-root", "-children"], capture_output=True, text=True).stdout
    ours = [line.split()[0] for line in children.splitlines() if '"Desktop Recorder")' in line]
    return any("Map State: IsViewable" in subprocess.run(["xwininfo", "-id", window], capture_output=True,
                                                         text=True).stdout for window in ours)


def within(seconds, condition):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


app = subprocess.Popen([sys.executable, "-m", "desktop_recorder"])
seen = {}
%s
alive = app.poll() is None
app.send_signal(signal.SIGTERM)
print(" ".join(f"{k}={v}" for k, v in seen.items()), f"alive={alive} exit={app.wait(30)}")
"""


def on_the_rig(app_home, steps: str, *rig_args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(RIG), *rig_args, "--", sys.executable, "-c", SCRIPT % steps],
                          env=cli_env(app_home, None), capture_output=True, text=True, timeout=150)


def a_tray_comes(*, seen_as: str) -> list[str]:
    """Steps: a tray starts, then the icon is in it and the control window hidden (seen as ``seen_as``)."""
    return ['seen["tray"] = subprocess.run(os.environ["XVFB_TRAY_START"], shell=True).returncode == 0',
            f'seen["{seen_as}"] = within(30, lambda: embedded() and not window_viewable())']


def saw(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert expected in result.stdout, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr


@pytest.mark.slow
@pytest.mark.audio
def test_tray_icon_is_embedded_in_a_real_tray_and_sigterm_quits_cleanly(audio_rig, app_home):
    """… and when the panel quits, the control window takes over until a tray is back."""
    result = on_the_rig(app_home, "\n".join([
        'seen["embedded"] = within(30, embedded)',
        'seen["window"] = window_viewable()',
        'subprocess.run(os.environ["XVFB_TRAY_STOP"], shell=True)',
        'seen["gone"] = within(30, window_viewable)',
        *a_tray_comes(seen_as="back"),
    ]))
    saw(result, "embedded=True window=False gone=True tray=True back=True alive=True exit=0")


@pytest.mark.slow
@pytest.mark.audio
def test_a_tray_that_appears_after_the_app_gets_its_controls(audio_rig, app_home):
    """Started at login before the panel: the control window first, then the tray icon in its place."""
    result = on_the_rig(app_home, "\n".join([
        'seen["shown"] = within(30, window_viewable)',
        *a_tray_comes(seen_as="moved"),
    ]), "--late-tray")
    saw(result, "shown=True tray=True moved=True alive=True exit=0")
