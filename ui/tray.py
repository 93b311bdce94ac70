"""The tray icon: state at a glance, the menu, notifications; or a small window without a tray."""

from __future__ import annotations

from PySide6.QtCore import QObject, SignalInstance
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QLabel, QMenu, QPushButton, QSystemTrayIcon, QVBoxLayout, QWidget

from transcription.formats import clock, percent
from ui.actions import AppActions
from ui.controller import RecorderController
from ui.icons import app_icon, tray_icon

NOTIFY_MS = 6000


def tray_state(app_state: str, sync_kind: str) -> str:
    """Which icon: what the recorder does first, then what sync needs."""
    if app_state in ("starting", "recording"):
        return "recording"
    if app_state == "error" or sync_kind == "blocked":
        return "error"
    if app_state == "finishing" or sync_kind == "pending":
        return "syncing"
    if sync_kind == "offline":
        return "offline"
    return "idle"


def status_inputs(controller: RecorderController) -> tuple[SignalInstance, ...]:
    """What the status text is made of: a front end refreshes when one of them is told."""
    c = controller
    return (c.state_changed, c.sync_changed, c.elapsed, c.model_progress, c.finishing_progress, c.recovery_progress)


class StatusText(QObject):
    """The status both front ends show (tooltip, or the fallback window's label)."""

    def __init__(self, controller: RecorderController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.sync_kind, self.sync_text, self.elapsed_s = "off", "", 0.0
        self.download: tuple[int, int] | None = None
        self.finishing = ""  # how far a long pass at stop is
        self.recovering: float | None = None  # how far an interrupted recording's end is transcribed
        controller.sync_changed.connect(self._on_sync)
        controller.elapsed.connect(self._on_elapsed)
        controller.model_progress.connect(self._on_download)
        controller.finishing_progress.connect(self._on_finishing)  # from the stop's thread: queued here
        controller.state_changed.connect(self._on_state)
        controller.recovery_progress.connect(self._on_recovery)

    def take_over(self, other: StatusText) -> None:
        """What ``other`` (the other front end's) was told, for a tray or window that came later."""
        self.sync_kind, self.sync_text, self.elapsed_s = other.sync_kind, other.sync_text, other.elapsed_s
        self.download, self.finishing, self.recovering = other.download, other.finishing, other.recovering

    def _on_state(self, _state: str) -> None:
        self.download, self.finishing = None, ""

    def _on_sync(self, kind: str, text: str) -> None:
        self.sync_kind, self.sync_text = kind, text

    def _on_elapsed(self, seconds: float) -> None:
        self.elapsed_s = seconds

    def _on_finishing(self, message: str) -> None:
        self.finishing = message

    def _on_recovery(self, share: float) -> None:
        self.recovering = share if share < 1 else None

    def _on_download(self, done: int, total: int) -> None:
        self.download = (done, total) if done < total else None

    @property
    def icon_state(self) -> str:
        return tray_state(self.controller.state, self.sync_kind)

    def text(self) -> str:
        state = self.controller.state
        loading = "Loading the speech model…"
        if self.download:
            done, total = self.download
            loading = f"Downloading the speech model… {percent(done / max(total, 1))} of {total / 1e6:.0f} MB"
        head = {"recording": f"Recording {clock(self.elapsed_s * 1000)}",
                "finishing": f"Finishing the recording… {self.finishing}".strip(),
                "starting": "Starting the recording…",
                "loading": loading, "error": "Cannot record"}.get(state, "Idle")
        recovering = (f"Transcribing the end of an interrupted recording… {percent(self.recovering)}"
                      if self.recovering is not None else "")
        return "\n".join(line for line in (f"Desktop Recorder — {head}", recovering, self.sync_text) if line)


class TrayIcon(QSystemTrayIcon):
    def __init__(self, actions: AppActions, on_toggle_live: object, parent: QObject | None = None) -> None:
        super().__init__(tray_icon("idle"), parent)
        self._shown_state = "idle"
        self.actions = actions
        self.status = StatusText(actions.controller, self)
        menu = QMenu()
        for action in (actions.record, None, actions.show_live, actions.recordings, actions.settings, None,
                       actions.quit):
            menu.addSeparator() if action is None else menu.addAction(action)
        self._menu = menu  # QSystemTrayIcon does not own its menu
        self.setContextMenu(menu)
        self.activated.connect(lambda reason: reason == QSystemTrayIcon.ActivationReason.Trigger
                               and on_toggle_live())  # type: ignore[operator]
        c = actions.controller
        for signal in status_inputs(c):
            signal.connect(self.refresh)
        c.notice.connect(self.notify)
        self.refresh()

    def refresh(self, *_: object) -> None:
        """Called ten times a second while recording (the clock): the icon and the tooltip are
        handed to the tray (over D-Bus on most Linux desktops) only when they change."""
        state, text = self.status.icon_state, self.status.text()
        if state != self._shown_state:
            self._shown_state = state
            self.setIcon(tray_icon(state))
        if text != self.toolTip():
            self.setToolTip(text)

    def notify(self, level: str, message: str) -> None:
        icon = {"error": QSystemTrayIcon.MessageIcon.Critical,
                "warning": QSystemTrayIcon.MessageIcon.Warning}.get(level, QSystemTrayIcon.MessageIcon.Information)
        self.showMessage("Desktop Recorder", message, icon, NOTIFY_MS)


class ControlWindow(QWidget):
    """Where no system tray exists: the same controls in a small window, never silently nothing."""

    def __init__(self, actions: AppActions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app_actions = actions
        self.setWindowTitle("Desktop Recorder")
        self.setWindowIcon(app_icon())
        self.status = StatusText(actions.controller, self)
        layout = QVBoxLayout(self)
        self.status_label = QLabel(wordWrap=True)
        self.notice_label = QLabel(wordWrap=True)
        self.notice_label.setStyleSheet("color: #8d4b00;")
        layout.addWidget(self.status_label)
        layout.addWidget(self.notice_label)
        self.buttons: dict[str, QPushButton] = {}
        for key in ("record", "show_live", "recordings", "settings", "quit"):
            action = getattr(actions, key)
            button = QPushButton(action.text())
            button.clicked.connect(action.trigger)
            action.changed.connect(lambda b=button, a=action: (b.setText(a.text()), b.setEnabled(a.isEnabled())))
            button.setEnabled(action.isEnabled())
            self.buttons[key] = button
            layout.addWidget(button)
        c = actions.controller
        for signal in status_inputs(c):
            signal.connect(self.refresh)
        c.notice.connect(self._on_notice)
        c.recording_starting.connect(self.notice_label.clear)
        c.state_changed.connect(lambda state: self.notice_label.clear() if state == "loading" else None)
        self.refresh()

    def _on_notice(self, level: str, message: str) -> None:
        if level != "info" and self.isVisible():  # hidden, the tray told it
            self.notice_label.setText(message)

    def refresh(self, *_: object) -> None:
        self.status_label.setText(self.status.text())

    def closeEvent(self, event: QCloseEvent) -> None:
        event.ignore()
        self.app_actions.quit.trigger()  # closing the only window means quitting (asks while recording)
