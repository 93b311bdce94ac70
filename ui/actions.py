"""The app's actions, shared by the tray menu and the no-tray fallback window."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence

from ui.controller import RecorderController


class AppActions(QObject):
    def __init__(self, controller: RecorderController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.record = QAction("Start recording", self)
        self.record.setShortcut(QKeySequence("Ctrl+R"))
        self.show_live = QAction("Show live transcript", self)
        self.recordings = QAction("Recordings…", self)
        self.settings = QAction("Settings…", self)
        self.quit = QAction("Quit", self)
        self.quit.setShortcut(QKeySequence("Ctrl+Q"))
        controller.state_changed.connect(self._on_state)
        self._on_state(controller.state)

    def _on_state(self, state: str) -> None:
        self.record.setText({"recording": "Stop recording", "finishing": "Finishing…", "starting": "Starting…",
                             "loading": "Loading model…"}.get(state, "Start recording"))
        self.record.setEnabled(state in ("idle", "recording"))
