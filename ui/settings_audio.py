"""The audio and transcription part of the settings: sources, your name, platform, model, language.

The sound server is asked for its sources in the background (it may take a moment, or be gone).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QWidget,
)
from shiboken6 import isValid

from api.models import PLATFORMS
from desktop_recorder.config import Settings
from recorder.devices import DeviceTable, NoAudioDevice, device_table, resolve
from recorder.meter import LevelMeter
from transcription.download import cached_model, download_model, model_names, repo_for
from transcription.model import ModelUnavailable, check_language_code, resolve_model
from transcription.types import Source
from ui.background import run_in_background
from ui.settings_posthog import HINT_STYLE

log = logging.getLogger(__name__)

METER_MS = 100
METER_FLOOR_DB = -60
LANGUAGES = ("en", "auto", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "ja", "zh")
KIND_NAMES = {"mic": "microphone", "system": "system audio", "virtual": "virtual device"}


class AudioSection(QGroupBox):
    devices_loaded = Signal()  # the source combos hold the sound server's devices (or say why not)
    download_progress = Signal(int, int)  # emitted from the download thread; queued to the GUI
    model_ready = Signal(str)  # a model download finished (its folder), or "" when it failed

    def __init__(self, settings: Settings, models_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__("Recording and transcription", parent)
        self.models_dir = models_dir
        self.form = QFormLayout(self)
        self.mic_combo = self._source_combo("microphone", settings.mic)
        self.system_combo = self._source_combo("system audio", settings.system)
        self.devices_label = QLabel("Looking for audio devices…")
        self.devices_label.setStyleSheet(HINT_STYLE)
        self.meters: dict[Source, QProgressBar] = {"mic": self._meter_bar(), "system": self._meter_bar()}
        self._meters: dict[Source, LevelMeter] = {}
        self._table: DeviceTable | None = None
        self.form.addRow("Microphone", self.mic_combo)
        self.form.addRow("", self.meters["mic"])
        self.form.addRow("System audio", self.system_combo)
        self.form.addRow("", self.meters["system"])
        self.form.addRow("", self.devices_label)
        self._meter_timer = QTimer(self, interval=METER_MS)
        self._meter_timer.timeout.connect(self._show_levels)
        self.mic_combo.currentIndexChanged.connect(lambda _i: self._restart_meter("mic"))
        self.system_combo.currentIndexChanged.connect(lambda _i: self._restart_meter("system"))
        self._build_identity(settings)
        self._build_model(settings)

    # -- builders ------------------------------------------------------------------------------

    @staticmethod
    def _meter_bar() -> QProgressBar:
        bar = QProgressBar()
        bar.setRange(METER_FLOOR_DB, 0)
        bar.setValue(METER_FLOOR_DB)
        bar.setFormat("no signal")
        bar.setMaximumHeight(14)
        return bar

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
        self.model_combo = self._editable_combo(("auto", *model_names()), settings.model)
        self.model_combo.setToolTip("auto = the embedded tiny.en model; or a faster-whisper model name or folder")
        browse = QPushButton("Folder…")
        browse.clicked.connect(self._choose_model_folder)
        row = QHBoxLayout()
        row.addWidget(self.model_combo, 1)
        row.addWidget(browse)
        self.model_label = QLabel(wordWrap=True)
        self.model_label.setStyleSheet(HINT_STYLE)
        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(self.download_model)
        self.download_bar = QProgressBar()
        self.download_bar.setVisible(False)
        status = QHBoxLayout()
        status.addWidget(self.model_label, 1)
        status.addWidget(self.download_button)
        self.language_combo = self._editable_combo(LANGUAGES, settings.language)
        self.language_combo.setToolTip("Spoken language, or auto to detect it (English-only models such as "
                                       "tiny.en always use en)")
        self.form.addRow("Model", row)
        self.form.addRow("", status)
        self.form.addRow("", self.download_bar)
        self.form.addRow("Language", self.language_combo)
        self.download_progress.connect(self._on_download_progress)
        self.model_combo.currentTextChanged.connect(self._show_model_status)
        self._downloading = False
        self._show_model_status()

    @staticmethod
    def _editable_combo(values: tuple[str, ...], current: str) -> QComboBox:
        combo = QComboBox()
        combo.setEditable(True)
        combo.addItems(list(values))
        combo.setCurrentText(current)
        return combo

    # -- model -------------------------------------------------------------------------------

    def _model_spec(self) -> str:
        return self.model_combo.currentText().strip() or "auto"

    def _model_status(self) -> tuple[str, bool]:
        """Embedded, a folder, downloaded, or still to download (checked on disk only), and
        whether it needs downloading; ``ModelUnavailable`` for a model that cannot be used."""
        spec = self._model_spec()
        choice = resolve_model(spec)
        if spec == "auto":
            return "The embedded tiny.en model (English): works offline.", False
        if choice.is_local:
            return f"Model folder {choice.path_or_name}.", False
        if cached_model(spec, self.models_dir) is not None:
            return f"{spec} is downloaded.", False
        repo_for(spec)  # an unknown name says so
        return f"{spec} is not downloaded yet: download it now, or it is fetched when first used.", True

    def _show_model_status(self) -> None:
        try:
            text, needs_download = self._model_status()
        except ModelUnavailable as exc:
            text, needs_download = str(exc), False
        self.model_label.setText(text)
        self.download_button.setVisible(needs_download)
        self.download_button.setEnabled(needs_download and not self._downloading)

    def download_model(self) -> None:
        spec = self._model_spec()
        self._downloading = True
        self.download_button.setEnabled(False)
        self.download_bar.setRange(0, 0)  # busy until the size is known
        self.download_bar.setVisible(True)
        self.model_label.setText(f"Downloading {spec}…")
        run_in_background(lambda: download_model(spec, self.models_dir, self.download_progress.emit),
                          self._downloaded, self._download_failed, name="model-download")

    def _on_download_progress(self, done: int, total: int) -> None:
        if isValid(self) and total > 0:
            self.download_bar.setRange(0, 1000)
            self.download_bar.setValue(int(1000 * done / total))
            self.download_bar.setFormat(f"{done / 1e6:.0f} of {total / 1e6:.0f} MB (%p%)")

    def _downloaded(self, folder: Path) -> None:
        self._download_ended(str(folder), None)

    def _download_failed(self, exc: Exception) -> None:
        self._download_ended("", str(exc))

    def _download_ended(self, folder: str, error: str | None) -> None:
        if not isValid(self):
            return
        self._downloading = False
        self.download_bar.setVisible(False)
        self._show_model_status()
        if error:
            self.model_label.setText(error)
        self.model_ready.emit(folder)

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
        self._table = table
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
        if table.system_hint and not table.default_system:
            self.devices_label.setText(f"{self.devices_label.text()} {table.system_hint}")
        for source in ("mic", "system"):
            self._restart_meter(source)
        self.devices_loaded.emit()

    # -- live levels -----------------------------------------------------------------------------

    def _restart_meter(self, source: Source) -> None:
        """Open the chosen device just to show its level (nothing is recorded)."""
        old = self._meters.pop(source, None)
        if old is not None:
            old.stop()
        bar = self.meters[source]
        bar.setValue(METER_FLOOR_DB)
        bar.setFormat("no signal")
        combo = self.mic_combo if source == "mic" else self.system_combo
        if self._table is None or not isValid(self) or not self.isVisible():
            return  # opened when shown: a closed dialog must not keep listening
        try:
            device = resolve(self._table, source, str(combo.currentData()))
        except NoAudioDevice:
            device = None
        if device is None:
            bar.setFormat("off" if combo.currentData() == "none" else "not available")
            return
        meter = LevelMeter(source, device)
        self._meters[source] = meter
        run_in_background(meter.start, lambda _r: self._meter_started(source, meter),
                          lambda exc: self._meter_failed(source, meter, exc), name=f"meter-{source}")

    def _meter_started(self, source: Source, meter: LevelMeter) -> None:
        if not isValid(self) or self._meters.get(source) is not meter or not self.isVisible():
            meter.stop()  # replaced or closed while it was opening
            if isValid(self) and self._meters.get(source) is meter:
                del self._meters[source]
            return
        self._meter_timer.start()

    def _meter_failed(self, source: Source, meter: LevelMeter, exc: Exception) -> None:
        if isValid(self) and self._meters.get(source) is meter:
            self._meters.pop(source)
            self.meters[source].setFormat(f"cannot open: {exc}")

    def _show_levels(self) -> None:
        if not isValid(self):
            return
        for source, meter in list(self._meters.items()):
            level = meter.level_dbfs()
            bar = self.meters[source]
            if level is None:
                continue
            bar.setValue(max(METER_FLOOR_DB, min(0, round(level))))
            bar.setFormat(f"{level:.0f} dBFS" if level > METER_FLOOR_DB else "silent")

    def hideEvent(self, event: QHideEvent) -> None:  # the dialog closed: release the devices
        self.stop_meters()
        super().hideEvent(event)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        for source in ("mic", "system"):
            if source not in self._meters:
                self._restart_meter(source)

    def stop_meters(self) -> None:
        self._meter_timer.stop()
        for meter in self._meters.values():
            meter.stop()
        self._meters.clear()

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
        """``settings`` with this section's fields as edited; ``ValueError`` for a model that
        cannot be used (saved, the app could not record at all)."""
        try:
            self._model_status()
        except ModelUnavailable as exc:
            raise ValueError(str(exc)) from exc
        return replace(
            settings,
            mic=str(self.mic_combo.currentData()),
            system=str(self.system_combo.currentData()),
            user_name=self.name_edit.text().strip() or None,
            default_platform=str(self.platform_combo.currentData()),
            model=self._model_spec(),
            language=check_language_code(self.language_combo.currentText()),
        )
