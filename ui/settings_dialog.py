"""Settings: PostHog (server, project, key, test connection) and recording (devices, name, model).

The key goes to the OS keyring (``set_api_key``, off the GUI thread: a locked keyring waits for
the user), never to settings.json. Without a keyring the
dialog says so and offers to use the key for this session only (in this process's memory, for
that server only: ``keep_api_key_for_session``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from api.errors import InvalidHost
from desktop_recorder import autostart
from desktop_recorder.config import Settings, save_settings
from desktop_recorder.context import AppContext
from desktop_recorder.secrets import (
    SecretStoreUnavailable,
    keep_api_key_for_session,
    set_api_key,
    undo_set_api_key,
)
from ui.background import run_in_background
from ui.settings_audio import AudioSection
from ui.settings_posthog import BAD_STYLE, PostHogSection

log = logging.getLogger(__name__)

WARNING_STYLE = "QFrame#keyringWarning { background: #fff4ce; border: 1px solid #e8d48a; border-radius: 4px; }"


class SettingsDialog(QDialog):
    def __init__(self, ctx: AppContext, on_saved: Callable[[Settings], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.on_saved = on_saved
        self.setWindowTitle("Desktop Recorder — Settings")
        self.setMinimumWidth(620)
        layout = QVBoxLayout(self)
        self.posthog = PostHogSection(ctx.settings)
        self.audio = AudioSection(ctx.settings, ctx.paths.models_dir)
        layout.addWidget(self.posthog)
        layout.addWidget(self._build_keyring_warning())
        layout.addWidget(self.audio)
        layout.addWidget(self._build_autostart())
        layout.addStretch(1)
        layout.addWidget(self._build_status())
        layout.addWidget(self._build_error())
        layout.addWidget(self._build_buttons())
        self.posthog.connection_checked.connect(self.fit_height)
        self._closed = False  # saved or cancelled: a key stored late changes nothing more
        self.finished.connect(self._on_finished)
        self.audio.load_devices()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.fit_height()

    def fit_height(self) -> None:
        """Grow to show every wrapped line (Qt sizes windows without height-for-width)."""
        needed = self.heightForWidth(self.width())
        if needed > self.height():
            self.resize(self.width(), needed)

    def _on_finished(self, _result: int) -> None:
        self._closed = True

    # -- builders ------------------------------------------------------------------------------

    def _build_keyring_warning(self) -> QFrame:
        self.keyring_warning = QFrame()
        self.keyring_warning.setObjectName("keyringWarning")
        self.keyring_warning.setStyleSheet(WARNING_STYLE)
        row = QHBoxLayout(self.keyring_warning)
        self.keyring_label = QLabel()
        self.keyring_label.setWordWrap(True)
        self.session_button = QPushButton("Use this key for this session only")
        self.session_button.clicked.connect(self.use_key_for_session)
        row.addWidget(self.keyring_label, 1)
        row.addWidget(self.session_button)
        self.keyring_warning.hide()
        return self.keyring_warning

    def _build_autostart(self) -> QCheckBox:
        self.autostart_box = QCheckBox("Start Desktop Recorder when I log in")
        self.autostart_box.setChecked(autostart.is_enabled())
        self.autostart_box.setEnabled(autostart.supported())
        return self.autostart_box

    def _build_status(self) -> QLabel:
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.hide()
        return self.status_label

    def _build_error(self) -> QLabel:
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(BAD_STYLE)
        self.error_label.hide()
        return self.error_label

    def _build_buttons(self) -> QDialogButtonBox:
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        return self.buttons

    # -- saving --------------------------------------------------------------------------------

    def edited_settings(self) -> Settings:
        """The settings as edited; ``InvalidHost`` / ``ValueError`` say what is wrong."""
        return self.audio.apply(replace(self.ctx.settings, host=self.posthog.host(), project_id=self.posthog.project()))

    def save(self) -> bool:
        """Store the key (keyring), write settings.json, tell the app. False if something needs
        the user now. A typed key is stored off the GUI thread (a locked keyring waits for the
        user to unlock it); the settings as they are now are saved once it is stored."""
        self.error_label.hide()
        try:
            settings = self.edited_settings()
        except (InvalidHost, ValueError) as exc:
            return self._refuse(str(exc))
        key = self.posthog.typed_key()
        if key and settings.host is None:
            return self._refuse("Choose a PostHog server for this API key, or clear the key field.")
        if not (key and settings.host):
            return self._commit(settings)
        host = settings.host
        self._storing(True)

        def store() -> str | SecretStoreUnavailable | None:
            try:
                return set_api_key(host, key)  # the key it replaced
            except SecretStoreUnavailable as exc:  # expected without a keyring: said here, not logged as a failure
                return exc

        def stored(result: str | SecretStoreUnavailable | None) -> None:
            if isinstance(result, SecretStoreUnavailable):
                self._if_open(self._no_keyring)(result)
            elif not self._open():  # cancelled meanwhile: the key it replaced goes back
                run_in_background(lambda: undo_set_api_key(host, key, result), lambda _: None, name="undo-api-key")
            else:
                self._key_stored(settings)

        run_in_background(store, stored, self._if_open(self._key_refused), name="store-api-key")
        return True

    def _open(self) -> bool:
        """Neither saved nor cancelled (nor deleted) since the keyring was asked."""
        return isValid(self) and not self._closed

    def _if_open(self, callback: Callable[[Any], None]) -> Callable[[Any], None]:
        return lambda value: callback(value) if self._open() else None

    def _storing(self, busy: bool) -> None:
        """While the keyring is asked: nothing can be edited or saved again; Cancel still works."""
        for widget in (self.posthog, self.audio, self.keyring_warning):
            widget.setEnabled(not busy)
        self.autostart_box.setEnabled(not busy and autostart.supported())
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(not busy)
        self.status_label.setText("Storing the API key in the system keyring… unlock it if it asks." if busy else "")
        self.status_label.setVisible(busy)

    def _key_stored(self, settings: Settings) -> None:
        self._storing(False)
        self._commit(settings)

    def _key_refused(self, exc: Exception) -> None:
        self._storing(False)
        self._refuse(f"Could not store the API key in the system keyring: {exc}")

    def _no_keyring(self, exc: SecretStoreUnavailable) -> None:
        self._storing(False)
        self.keyring_label.setText(f"{exc}\nYou can use the key until Desktop Recorder quits instead; "
                                   "it is not written anywhere.")
        self.keyring_warning.show()
        self.fit_height()

    def use_key_for_session(self) -> None:
        """The keyring is unavailable: keep the key in this process's environment only."""
        # As edited now: the fields may have changed since the keyring refused (another server).
        self.error_label.hide()
        try:
            settings = self.edited_settings()
        except (InvalidHost, ValueError) as exc:
            self._refuse(str(exc))
            return
        key = self.posthog.typed_key()
        if not key or settings.host is None:
            self._refuse("Choose a PostHog server and type its API key to use it for this session.")
            return
        keep_api_key_for_session(settings.host, key)
        log.info("API key kept for this session only (no OS keyring)")
        self.keyring_warning.hide()
        self._commit(settings)

    def _commit(self, settings: Settings) -> bool:
        try:
            save_settings(self.ctx.paths, settings)
        except OSError as exc:
            return self._refuse(f"Could not write {self.ctx.paths.settings_file}: {exc}")
        if autostart.supported() and self.autostart_box.isChecked() != autostart.is_enabled():
            try:
                autostart.set_enabled(self.autostart_box.isChecked())
            except OSError as exc:
                return self._refuse(f"Could not change starting at login: {exc}")
        log.info("settings saved to %s", self.ctx.paths.settings_file)
        self.on_saved(settings)
        self.accept()
        return True

    def _refuse(self, message: str) -> bool:
        self.error_label.setText(message)
        self.error_label.show()
        self.fit_height()
        return False
