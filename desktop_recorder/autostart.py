"""Start Desktop Recorder at login (freedesktop autostart; Linux desktops)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ENTRY = """[Desktop Entry]
Type=Application
Name=Desktop Recorder
Comment=Meeting recorder in the system tray
Exec={command}
Icon=desktop-recorder
Terminal=false
X-GNOME-Autostart-enabled=true
"""


def supported() -> bool:
    return sys.platform.startswith(("linux", "freebsd"))


def entry_path() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "autostart" / "desktop-recorder.desktop"


def launch_command() -> str:
    """How this installation is started: the bundle's binary, or the venv's script."""
    if getattr(sys, "frozen", False):
        return sys.executable
    script = Path(sys.executable).with_name("desktop-recorder")
    return str(script) if script.exists() else (shutil.which("desktop-recorder") or "desktop-recorder")


def is_enabled() -> bool:
    return entry_path().exists()


def set_enabled(enabled: bool) -> None:
    path = entry_path()
    if not enabled:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ENTRY.format(command=launch_command()), encoding="utf-8")
