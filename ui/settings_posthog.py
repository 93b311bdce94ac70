"""The PostHog part of the settings: server, project, personal API key and 'Test connection'."""

from __future__ import annotations

import logging
import os

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)
from shiboken6 import isValid

from api.client import validate_host, validate_project
from api.errors import InvalidHost
from desktop_recorder.config import DEFAULT_HOSTS, Settings
from ui.background import run_in_background
from ui.connection_check import ConnectionReport, check_connection

log = logging.getLogger(__name__)

OFF, CUSTOM = "off", "custom"
REGIONS = (
    ("Off: keep recordings on this computer", OFF),
    (f"US cloud ({DEFAULT_HOSTS['us']})", DEFAULT_HOSTS["us"]),
    (f"EU cloud ({DEFAULT_HOSTS['eu']})", DEFAULT_HOSTS["eu"]),
    ("Self-hosted (custom URL)", CUSTOM),
)
GOOD_STYLE, BAD_STYLE, HINT_STYLE = "color: #15803d;", "color: #b91c1c;", "color: #6b7280;"


class PostHogSection(QGroupBox):
    connection_checked = Signal(str)  # the message shown after 'Test connection'

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__("PostHog sync", parent)
        self.form = QFormLayout(self)
        self._build_server(settings.host)
        self._build_project(settings.project_id)
        self._build_key()
        self._build_test()
        self._region_changed()

    # -- builders ------------------------------------------------------------------------------

    def _build_server(self, host: str | None) -> None:
        self.region_combo = QComboBox()
        for label, value in REGIONS:
            self.region_combo.addItem(label, value)
        self.custom_edit = QLineEdit()
        self.custom_edit.setPlaceholderText("https://posthog.example.com")
        region = OFF if not host else host if host in DEFAULT_HOSTS.values() else CUSTOM
        self.region_combo.setCurrentIndex(self.region_combo.findData(region))
        if region == CUSTOM:
            self.custom_edit.setText(host or "")
        self.region_combo.currentIndexChanged.connect(self._region_changed)
        self.form.addRow("Server", self.region_combo)
        self.form.addRow("URL", self.custom_edit)
        if os.environ.get("POSTHOG_HOST"):
            self.form.addRow("", self._hint("POSTHOG_HOST is set in the environment: it overrides this, unsaved."))

    def _build_project(self, project: str) -> None:
        self.project_edit = QLineEdit(project)
        self.project_edit.setPlaceholderText("@current")
        self.project_edit.setToolTip("The numeric project (environment) id, or @current for the key's current one")
        self.project_pick = QComboBox()
        self.project_pick.setToolTip("Your projects, as the server listed them for 'Test connection'")
        self.project_pick.activated.connect(self._project_picked)
        row = QHBoxLayout()
        row.addWidget(self.project_edit, 1)
        row.addWidget(self.project_pick)
        self.project_pick.setVisible(False)  # filled by a successful connection test
        self.form.addRow("Project", row)

    def _build_key(self) -> None:
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("phx_…  (leave empty to keep the stored key)")
        self.form.addRow("Personal API key", self.key_edit)
        self.form.addRow("", self._hint("Needs the desktop_recording:write scope. Kept in the OS keyring, "
                                        "never in a file."))

    def _build_test(self) -> None:
        row = QHBoxLayout()
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self.test_connection)
        row.addWidget(self.test_button)
        row.addStretch(1)
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.form.addRow(row)
        self.form.addRow(self.result_label)

    @staticmethod
    def _hint(text: str) -> QLabel:
        label = QLabel(text)
        label.setWordWrap(True)
        label.setStyleSheet(HINT_STYLE)
        return label

    def _region_changed(self) -> None:
        choice = self.region_combo.currentData()
        self.form.setRowVisible(self.custom_edit, choice == CUSTOM)
        for widget in (self.project_edit, self.key_edit, self.test_button):
            widget.setEnabled(choice != OFF)

    # -- values --------------------------------------------------------------------------------

    def host(self) -> str | None:
        """The chosen host, validated (``InvalidHost`` says why not); None = sync off."""
        choice = self.region_combo.currentData()
        if choice == OFF:
            return None
        if choice == CUSTOM:
            return validate_host(self.custom_edit.text())
        return str(choice)

    def project(self) -> str:
        return validate_project(self.project_edit.text())

    def typed_key(self) -> str:
        return self.key_edit.text().strip()

    # -- test connection -----------------------------------------------------------------------

    def test_connection(self) -> None:
        """Check the fields as edited (not saved) against the server, in the background."""
        try:
            host, project = self.host(), self.project()
        except (InvalidHost, ValueError) as exc:
            self._show_result(str(exc), good=False)
            return
        if host is None:
            self._show_result("Sync is off: choose a PostHog server first.", good=False)
            return
        key = self.typed_key()
        self.test_button.setEnabled(False)
        self.result_label.setStyleSheet("")
        self.result_label.setText(f"Testing {host}…")
        run_in_background(lambda: check_connection(host, key, project), self._tested, self._test_failed,
                          name="test-connection")

    def _tested(self, report: ConnectionReport) -> None:
        if isValid(self):
            self._fill_projects(report)
            self._show_result(report.describe(), good=report.can_write)

    def _fill_projects(self, report: ConnectionReport) -> None:
        self.project_pick.clear()
        self.project_pick.addItem("Pick a project…", None)
        for project_id, name in report.projects:
            self.project_pick.addItem(f"{name} ({project_id})", project_id)
        self.project_pick.setVisible(bool(report.projects))

    def _project_picked(self, index: int) -> None:
        project_id = self.project_pick.itemData(index)
        if project_id is not None:
            self.project_edit.setText(str(project_id))

    def _test_failed(self, exc: Exception) -> None:
        if isValid(self):
            self._show_result(f"Connection failed: {exc}", good=False)

    def _show_result(self, text: str, *, good: bool) -> None:
        self.test_button.setEnabled(True)
        self.result_label.setStyleSheet(GOOD_STYLE if good else BAD_STYLE)
        self.result_label.setText(text)
        self.connection_checked.emit(text)
