"""``desktop-recorder`` with no arguments: the tray app (or a small window where there is no tray)."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer
from PySide6.QtDBus import QDBusConnection
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox, QSystemTrayIcon, QWidget

from desktop_recorder.config import Settings
from desktop_recorder.context import AppContext, CannotStart, setup_logging
from ui.actions import AppActions
from ui.controller import RecorderController
from ui.icons import app_icon
from ui.live_window import LiveTranscriptWindow
from ui.tray import ControlWindow, TrayIcon

if TYPE_CHECKING:
    from ui.browser import RecordingsBrowser

log = logging.getLogger(__name__)

TRAY_POLL_MS = 2000
TRAY_MISSED_CHECKS = 2
STATUS_NOTIFIER_WATCHER = "org.kde.StatusNotifierWatcher"


def dbus_tray() -> bool:
    """Whether Qt shows the tray icon over D-Bus (StatusNotifier): it does when a watcher is there
    at start. Qt then registers the icon again itself when a panel restarts, and each question
    whether a tray exists would open a new bus connection."""
    bus = QDBusConnection.sessionBus()
    return bus.isConnected() and bool(bus.interface().isServiceRegistered(STATUS_NOTIFIER_WATCHER).value())


def ask_quit_while_recording(parent: QWidget | None) -> bool:
    answer = QMessageBox.question(
        parent, "Quit Desktop Recorder",
        "A recording is running. Stop it, save it and quit?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


class DesktopApp:
    def __init__(
        self,
        qapp: QApplication,
        ctx: AppContext,
        *,
        confirm_quit: Callable[[QWidget | None], bool] = ask_quit_while_recording,
        force_no_tray: bool = False,
        controller_kwargs: dict[str, Any] | None = None,
        quit_app: Callable[[], None] | None = None,
    ) -> None:
        self.qapp = qapp
        self._quit_app = quit_app or qapp.quit
        self.ctx = ctx
        self.controller = RecorderController(ctx, **(controller_kwargs or {}))
        self.actions = AppActions(self.controller)
        self.live = LiveTranscriptWindow(self.controller)
        self.browser: RecordingsBrowser | None = None
        self.settings: QWidget | None = None
        self._confirm_quit = confirm_quit
        self._quitting = False
        self.tray: TrayIcon | None = None
        self.window: ControlWindow | None = None
        # Started at login, the app can come up before the panel's tray does, and a panel can quit or
        # restart: the app keeps looking, and the controls follow the tray (X11 only: Qt asks once per
        # process whether a D-Bus (StatusNotifier) tray exists, so elsewhere the answer never changes).
        self._retired_window: ControlWindow | None = None  # hidden, not deleted: back if the tray goes
        self._tray_watch = QTimer(self.live, interval=TRAY_POLL_MS)  # owned by a window: ends on the GUI thread
        self._tray_watch.timeout.connect(self._follow_tray)
        tray_at_start = QSystemTrayIcon.isSystemTrayAvailable() and not force_no_tray
        if tray_at_start:
            self._show_tray()
        else:
            log.warning("no system tray here: showing the control window instead")
            self._show_window()
        self._tray_missed = 0  # checks in a row that found no tray while it showed the icon
        if not force_no_tray and QGuiApplication.platformName() == "xcb" and not (tray_at_start and dbus_tray()):
            self._tray_watch.start()  # an XEmbed tray: asking costs an X round trip
        a = self.actions
        a.record.triggered.connect(self.live.toggle_recording)
        a.show_live.triggered.connect(self.show_live)
        a.recordings.triggered.connect(self.show_recordings)
        a.settings.triggered.connect(self.show_settings)
        a.quit.triggered.connect(self.request_quit)
        self.live.addActions([a.record, a.quit])  # the menu shows Ctrl+R and Ctrl+Q: they work in the windows
        self.controller.recording_finished.connect(self._after_recording)
        self.controller.stop_failed.connect(self._after_recording)  # quitting: quit anyway (logout waits)
        self.controller.recording_finished.connect(self._refresh_browser)
        self.controller.sync_changed.connect(self._refresh_browser)
        self.controller.final_line.connect(self._refresh_browser)  # a running recording shown there

    def _show_tray(self) -> TrayIcon:
        self.tray = TrayIcon(self.actions, self.toggle_live)
        self.tray.show()
        return self.tray

    def _show_window(self) -> None:
        window, self._retired_window = self._retired_window, None
        if window is None:
            window = ControlWindow(self.actions)
            window.addActions([self.actions.record, self.actions.quit])  # Ctrl+R, Ctrl+Q work there
            if self.tray is not None:
                window.status.take_over(self.tray.status)  # sync state and progress are told on change only
                window.refresh()
        window.show()
        self.window = window

    def _follow_tray(self) -> None:
        # A modal box (quit while recording?) may be the window's child: asked again after it.
        # Quitting (a logout ends the panel too): no window pops up while the recording finishes.
        if QApplication.activeModalWidget() is not None or self._quitting:
            return
        available = QSystemTrayIcon.isSystemTrayAvailable()
        self._tray_missed = 0 if available else self._tray_missed + 1
        if available and self.window is not None:
            log.info("a system tray is here: the controls move there from the control window")
            self._adopt_tray(self.window)
        elif self._tray_missed >= TRAY_MISSED_CHECKS and self.window is None:  # not a panel's quick restart
            log.warning("the system tray went away: showing the control window until it is back")
            self._show_window()  # the tray icon stays: Qt docks it again when a tray comes back

    def _adopt_tray(self, window: ControlWindow) -> None:
        tray = self.tray
        if tray is None:
            tray = self._show_tray()
            tray.status.take_over(window.status)
            tray.refresh()
        if window.notice_label.text():  # a problem it was showing (maybe told while no tray was there)
            tray.notify("warning", window.notice_label.text())
            window.notice_label.clear()  # told: not again at the next panel restart
        window.hide()  # not closed (that means quitting) nor deleted (its connections stay harmless)
        self.window, self._retired_window = None, window

    def start(self) -> None:
        """Everything visible first; the model then loads in the background."""
        self.controller.start()

    def toggle_live(self) -> None:
        self.live.setVisible(not self.live.isVisible())
        if self.live.isVisible():
            self.live.raise_()
            self.live.activateWindow()

    def show_live(self) -> None:
        self.live.show()
        self.live.raise_()

    def show_recordings(self) -> None:
        if self.browser is None:
            from ui.browser import RecordingsBrowser

            self.browser = RecordingsBrowser(self.ctx, self.controller.make_client, self.controller.wake_sync,
                                             refine=self.controller.refine_recording,
                                             refine_done=self.controller.refine_done)
            self.controller.refined.connect(self.browser.on_refined)
            self.controller.refine_progress.connect(self.browser.on_refine_progress)
            self.browser.setWindowTitle("Desktop Recorder — Recordings")
            self.browser.setWindowIcon(app_icon())
            self.browser.resize(980, 640)
            self.browser.addActions([self.actions.record, self.actions.quit])
        self.browser.show()
        self.browser.raise_()

    def _refresh_browser(self, *_: object) -> None:
        if self.browser is not None and self.browser.isVisible():
            self.browser.reload_local()

    def show_settings(self) -> None:
        from ui.settings_dialog import SettingsDialog

        if self.settings is not None and self.settings.isVisible():
            self.settings.raise_()  # one dialog: a second one, saved last, undid the first's changes
            self.settings.activateWindow()
            return
        self.settings = SettingsDialog(self.ctx, self._settings_saved)
        self.settings.setWindowIcon(app_icon())
        self.settings.finished.connect(self._settings_closed)
        self.settings.show()

    def _settings_closed(self, _result: int) -> None:
        """Deleted here, on the GUI thread: left to the garbage collector (it and this app refer
        to each other), a widget can be destroyed on whatever thread collects, and crash there."""
        if self.settings is not None:
            self.settings.deleteLater()
            self.settings = None

    def _settings_saved(self, settings: Settings) -> None:
        self.controller.apply_settings(settings)
        if self.browser is not None and self.browser.isVisible():
            self.browser.refresh()  # another server, or sync just set up: its banner and pages

    def request_quit(self) -> None:
        """Quit; while recording, ask, then finalise without blocking the GUI and quit after."""
        if self.controller.state in ("starting", "recording", "finishing"):
            if not self._confirm_quit(self.window or self.live):
                return
            self._quitting = True
            self.controller.stop_recording()
            return
        self._quit_now()

    def quit_gracefully(self) -> None:
        """SIGTERM / Ctrl-C / session logout: finalise a running recording without asking, then quit."""
        if self.controller.state in ("starting", "recording", "finishing"):
            self._quitting = True
            self.controller.stop_recording()
        else:
            self._quit_now()

    def _after_recording(self, _recording: object = None) -> None:
        if self._quitting:
            self._quit_now()

    def _quit_now(self) -> None:
        self._tray_watch.stop()
        self.controller.shutdown()
        if self.tray:
            self.tray.hide()
        self._quit_app()


def run_app(argv: list[str] | None = None) -> int:
    qapp = QApplication.instance() or QApplication(argv or sys.argv)
    assert isinstance(qapp, QApplication)
    qapp.setApplicationName("Desktop Recorder")
    qapp.setQuitOnLastWindowClosed(False)  # the tray keeps the app alive
    qapp.setWindowIcon(app_icon())
    try:
        ctx = AppContext.open(check=True)
    except CannotStart as exc:
        QMessageBox.critical(None, "Desktop Recorder", str(exc))
        return 2
    setup_logging(ctx.paths)
    app = DesktopApp(qapp, ctx)
    # SIGHUP: the terminal it was started from was closed; a recording is finished, not cut off
    for signum in (signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])):
        signal.signal(signum, lambda *_: QTimer.singleShot(0, app.quit_gracefully))
    wake = QTimer(interval=300)  # lets Python run its signal handlers while Qt's loop waits
    wake.timeout.connect(lambda: None)
    wake.start()
    app.start()
    try:
        return qapp.exec()
    finally:
        ctx.close()
