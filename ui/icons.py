"""The app's icons (SVG in assets/, crisp at any scale) by tray state."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QIcon

ASSETS = Path(__file__).resolve().parent.parent / "assets"
STATES = ("idle", "recording", "syncing", "offline", "error")


def tray_icon(state: str) -> QIcon:
    return QIcon(str(ASSETS / f"tray-{state if state in STATES else 'idle'}.svg"))


def app_icon() -> QIcon:
    return QIcon(str(ASSETS / "desktop-recorder.svg"))
