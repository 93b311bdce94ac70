"""The audio and transcription part of the settings: sources, your name, platform, model, language.

The sound server is asked for its sources in the background (it may take a moment, or be gone).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)
from shiboken6 import isValid

from api.models import PLATFORMS
from desktop_recorder.config import Settings
from recorder.devices import DeviceTable, device_table
from ui.background import run_in_background
from ui.settings_posthog import HINT_STYLE

log = logging.getLogger(__name__)

MODELS = ("auto", "tiny.en", "base.en", "small.en", "small", "medium.en", "large-v3")
LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "ja", "zh")
KIND_NAMES = {"mic": "microphone", "system": "system audio", "virtual": "virtual device"}


class AudioSection(QGroupBox):
    devices_loaded = Signal()  # the source combos hold the sound server's devices (or say why not)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__("Recording and transcription", parent)
        self.form = QFormLayout(self)
        self.mic_combo = self._source_combo("microphone", settings.mic)
        self.system_combo = self._source_combo("system audio", settings.system)
        self.devices_label = QLabel("Looking for audio devices…")
        self.devices_label.setStyleSheet(HINT_STYLE)
        self.form.addRow("Microphone", self.mic_combo)
        self.form.addRow("System audio", self.system_combo)
        self.form.addRow("", self.devices_label)
        self._build_identity(settings)
        self._build_model(settings)

    # -- builders ------------------------------------------------------------------------------

    def _source_combo(self, role: str, current: str) -> QComboBox:
        combo = QComboBox()
        combo.addItem(f"Automatic (the default {role})", "auto")
        combo.addItem(f"None (don't record the {role})", "none")
        if current not in ("auto", "none"):
            combo.addItem(current, current)
        combo.setCurrentIndex(combo.findData(current))
        combo.setMinimumContentsLength(28)
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        return combo

    def _build_identity(self, settings: Settings) -> None:
        self.name_edit = QLineEdit(settings.user_name or "")
        self.name_edit.setPlaceholderText("Me")
        self.name_edit.setToolTip("The speaker label of your microphone in transcripts")
        self.platform_combo = QComboBox()
        for platform in PLATFORMS:
            self.platform_combo.addItem(platform.replace("_", " ").capitalize(), platform)
        self.platform_combo.setCurrentIndex(max(0, self.platform_combo.findData(settings.default_platform)))
        self.form.addRow("Your name", self.name_edit)
        self.form.addRow("Default platform", self.platform_combo)

    def _build_model(self, settings: Settings) -> None:
        self.model_combo = self._editable_combo(MODELS, settings.model)
        self.model_combo.setToolTip("auto = the embedded tiny.en model; or a faster-whisper model name or folder")
        browse = QPushButton("Folder…")
        browse.clicked.connect(self._choose_model_folder)
        row = QHBoxLayout()
        row.addWidget(self.model_combo, 1)
        row.addWidget(browse)
        self.language_combo = self._editable_combo(LANGUAGES, settings.language)
        self.language_combo.setToolTip("Spoken language (English-only models such as tiny.en always use en)")
        self.form.addRow("Model", row)
        self.form.addRow("Language", self.language_combo)

    @staticmethod
    def _editable_combo(values: tuple[str, ...], current: str) -> QComboBox:
        combo = QComboBox()
        combo.setEditable(True)
        combo.addItems(list(values))
        combo.setCurrentText(current)
        return combo

    def _choose_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of a CTranslate2 faster-whisper model")
        if folder:
            self.model_combo.setCurrentText(str(Path(folder)))

    # -- devices -------------------------------------------------------------------------------

    def load_devices(self) -> None:
        run_in_background(device_table, self._fill_devices, self._devices_failed, name="device-table")

    def _fill_devices(self, table: DeviceTable) -> None:
        if not isValid(self):
            return
        for combo, default in ((self.mic_combo, table.default_mic), (self.system_combo, table.default_system)):
            chosen = combo.currentData()
            while combo.count() > 2:
                combo.removeItem(2)
            for dev in table.devices:
                combo.addItem(f"{dev.description} ({KIND_NAMES[dev.kind]})", dev.name)
                combo.setItemData(combo.count() - 1, dev.name, Qt.ItemDataRole.ToolTipRole)
            if combo.findData(chosen) < 0:
                combo.addItem(f"{chosen} (not connected)", chosen)
            combo.setCurrentIndex(combo.findData(chosen))
            combo.setItemText(0, f"Automatic ({self._name_of(table, default)})")
        found = len(table.devices)
        where = f" on {table.server}" if table.server else ""
        self.devices_label.setText(f"{found} input{'s' if found != 1 else ''} found{where}." if found else
                                   "No audio inputs found: is PulseAudio or PipeWire running?")
        self.devices_loaded.emit()

    @staticmethod
    def _name_of(table: DeviceTable, name: str | None) -> str:
        if name is None:
            return "no default found"
        return next((d.description for d in table.devices if d.name == name), name)

    def _devices_failed(self, exc: Exception) -> None:
        if isValid(self):
            self.devices_label.setText(f"Could not list audio devices: {exc}")
            self.devices_loaded.emit()

    # -- values --------------------------------------------------------------------------------

    def apply(self, settings: Settings) -> Settings:
        """``settings`` with this section's fields as edited."""
        return replace(
            settings,
            mic=str(self.mic_combo.currentData()),
            system=str(self.system_combo.currentData()),
            user_name=self.name_edit.text().strip() or None,
            default_platform=str(self.platform_combo.currentData()),
            model=self.model_combo.currentText().strip() or "auto",
            language=self.language_combo.currentText().strip() or "en",
        )
