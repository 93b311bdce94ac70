"""`desktop-recorder` with no arguments on a real X screen with a real system tray (Xvfb + trayer)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import cli_env

RIG = Path(__file__).parent / "rig" / "xvfb_tray.sh"
CHECK = r"""
import re, signal, subprocess, sys, time
app = subprocess.Popen([sys.executable, "-m", "desktop_recorder"])
deadline, embedded = time.monotonic() + 30, False
while time.monotonic() < deadline and not embedded:
    tree = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True).stdout
    panel = tree.split('("panel" "trayer")', 1)
    embedded = len(panel) == 2 and '"Desktop Recorder")' in panel[1]  # WM_CLASS class name
    time.sleep(0.2)
time.sleep(3)
alive = app.poll() is None
app.send_signal(signal.SIGTERM)
code = app.wait(30)
print(f"embedded={embedded} alive={alive} exit={code}")
"""


@pytest.mark.slow
@pytest.mark.audio
def test_tray_icon_is_embedded_in_a_real_tray_and_sigterm_quits_cleanly(audio_rig, app_home):
    result = subprocess.run(["bash", str(RIG), "--", sys.executable, "-c", CHECK], env=cli_env(app_home, None),
                            capture_output=True, text=True, timeout=120)
    assert "embedded=True alive=True exit=0" in result.stdout, result.stdout + result.stderr
