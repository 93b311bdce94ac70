"""The recorder on PipeWire (its pulse service), as current Linux desktops run it.

A second sound server (tests/rig/pipewire.sh) beside the PulseAudio rig, with the same virtual
devices: nothing is configured for the recorder, it finds the default source and the monitor of
the default sink on its own.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import JFK_TEXT, LEFT_TEXT, cli_env, run_cli, wer
from tests.recording import Recorder, local_segments, said_by

pytestmark = [pytest.mark.slow, pytest.mark.audio]
RIG = Path(__file__).parent / "rig" / "pipewire.sh"


@pytest.fixture(scope="session")
def pipewire() -> dict[str, str]:
    for tool in ("pipewire", "pipewire-pulse", "wireplumber", "dbus-run-session"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: install pipewire, pipewire-pulse, wireplumber, dbus (see .ci/run)")
    out = subprocess.run(["bash", str(RIG), "up"], check=True, capture_output=True, text=True).stdout
    return dict(re.findall(r"export (\w+)='([^']*)'", out))


def paplay(path: Path, device: str, env: dict[str, str]) -> None:
    subprocess.run(["paplay", f"--device={device}", str(path)], env=env, check=True, timeout=60)


def test_record_on_pipewire_captures_both_sides_with_no_configuration(pipewire, app_home, playable):
    env = {**cli_env(app_home, None), **pipewire}
    devices = run_cli("devices", env=env)
    assert devices.returncode == 0 and "on PipeWire" in devices.stdout, devices.stdout
    rec = Recorder(["--duration", "20", "--participant", "Alice"], env)
    rec.wait_recording()
    time.sleep(1.0)
    paplay(playable["jfk"], "meet_speakers", env)
    time.sleep(0.5)
    paplay(playable["left"], "meet_mic_in", env)
    code, _out, err = rec.finish()
    assert code == 0, err
    segments = local_segments(app_home)
    others = said_by(segments, "Others")
    alice = said_by(segments, "Alice")
    assert wer(JFK_TEXT, others) <= 0.1, others
    assert wer(LEFT_TEXT, alice) <= 0.35, alice
