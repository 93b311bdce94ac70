"""The live transcript: finals as they come, the partial greyed, meters, warnings, sync state."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from api.models import PLATFORMS
from desktop_recorder.config import Settings
from desktop_recorder.store import StoredSegment
from transcription.formats import TranscriptLine, clock, render
from ui.controller import RecorderController
from ui.icons import app_icon

SPEAKER_COLOURS = {"mic": "#1565c0", "system": "#2e7d32"}
METER_FLOOR_DBFS = -60.0
SYNC_COLOURS = {"synced": "#2e7d32", "pending": "#1565c0", "offline": "#757575", "blocked": "#c62828",
                "off": "#757575"}


class LiveTranscriptWindow(QWidget):
    def __init__(self, controller: RecorderController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.lines: list[StoredSegment] = []
        self._partials: dict[str, str] = {}
        self._stored: dict[str, object] = {}  # the meeting fields as this window last stored them
        self.setWindowTitle("Desktop Recorder — Live transcript")
        self.setWindowIcon(app_icon())
        self.resize(720, 560)
        layout = QVBoxLayout(self)
        layout.addLayout(self._build_meeting_fields())
        layout.addLayout(self._build_status_row())
        layout.addWidget(self._build_warning())
        layout.addWidget(self._build_transcript(), stretch=1)
        layout.addLayout(self._build_footer())
        self._bind(controller)
        self._on_state(controller.state)

    # -- builders ------------------------------------------------------------------------------

    def _build_meeting_fields(self) -> QFormLayout:
        form = QFormLayout()
        self.title_edit = QLineEdit(placeholderText="Meeting title")
        self.platform_combo = QComboBox()
        self.platform_combo.addItems(PLATFORMS)
        self.platform_combo.setCurrentText(self.controller.ctx.settings.default_platform)
        self.participants_edit = QLineEdit(placeholderText="Participants, comma-separated")
        form.addRow("Title", self.title_edit)
        form.addRow("Platform", self.platform_combo)
        form.addRow("Participants", self.participants_edit)
        self.title_edit.editingFinished.connect(lambda: self._edited("meeting_title"))
        self.participants_edit.editingFinished.connect(lambda: self._edited("participants"))
        self.platform_combo.currentTextChanged.connect(lambda _t: self._edited("platform"))
        return form

    def _build_status_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.record_button = QPushButton("Start recording")
        self.record_button.clicked.connect(self.toggle_recording)
        self.elapsed_label = QLabel("00:00")
        self.elapsed_label.setStyleSheet("font-size: 18px; font-weight: 600;")
        row.addWidget(self.record_button)
        row.addWidget(self.elapsed_label)
        self.meters: dict[str, QProgressBar] = {}
        for source, label in (("mic", "Mic"), ("system", "System")):
            meter = QProgressBar(maximum=int(-METER_FLOOR_DBFS), textVisible=False)
            meter.setFixedWidth(110)
            meter.setToolTip(f"{label} level")
            self.meters[source] = meter
            row.addWidget(QLabel(label))
            row.addWidget(meter)
        row.addStretch(1)
        self.sync_label = QLabel()
        row.addWidget(self.sync_label)
        return row

    def _build_warning(self) -> QLabel:
        self.warning_label = QLabel(wordWrap=True)
        self.warning_label.setStyleSheet("background: #fff3e0; color: #8d4b00; padding: 6px; border-radius: 4px;")
        self.warning_label.hide()
        return self.warning_label

    def _build_transcript(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        self.transcript = QTextBrowser(openExternalLinks=False)
        self.transcript.setPlaceholderText("The transcript appears here as people speak.")
        self.transcript.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self.partial_label = QLabel(wordWrap=True)
        self.partial_label.setStyleSheet("color: #888888; font-style: italic;")
        self.jump_button = QPushButton("Jump to live ↓")
        self.jump_button.clicked.connect(self.jump_to_live)
        self.jump_button.hide()
        layout.addWidget(self.transcript, stretch=1)
        layout.addWidget(self.partial_label)
        layout.addWidget(self.jump_button, alignment=Qt.AlignmentFlag.AlignRight)
        return box

    def _build_footer(self) -> QHBoxLayout:
        row = QHBoxLayout()
        copy = QPushButton("Copy transcript")
        copy.clicked.connect(self.copy_transcript)
        row.addStretch(1)
        row.addWidget(copy)
        QShortcut(QKeySequence("Ctrl+Shift+C"), self, self.copy_transcript)
        return row

    def _bind(self, c: RecorderController) -> None:
        c.state_changed.connect(self._on_state)
        c.final_line.connect(self.add_final)
        c.partial.connect(self.set_partial)
        c.levels.connect(self._on_levels)
        c.elapsed.connect(lambda s: self.elapsed_label.setText(clock(s * 1000)))
        c.notice.connect(self._on_notice)
        c.sync_changed.connect(self._on_sync)
        c.recording_starting.connect(self._new_recording)
        c.recording_finished.connect(lambda _rec: self._clear_meeting_fields())
        c.settings_applied.connect(self._on_settings)

    def _new_recording(self) -> None:
        """Started here or from the tray: the last meeting's lines and warnings go."""
        self.transcript.clear()
        self.lines.clear()
        self.set_partial("", "")
        self.warning_label.hide()
        self._stored = self._fields()  # what the recording starts with

    def _clear_meeting_fields(self) -> None:
        """The meeting is over (its title and participants were saved with it): the fields are
        for the next one, which must not silently inherit them."""
        self.title_edit.clear()
        self.participants_edit.clear()
        self.platform_combo.setCurrentText(self.controller.ctx.settings.default_platform)

    def _on_settings(self, settings: Settings) -> None:
        if self.controller.state != "recording":
            self.platform_combo.setCurrentText(settings.default_platform)

    # -- behaviour -----------------------------------------------------------------------------

    @property
    def following(self) -> bool:
        bar = self.transcript.verticalScrollBar()
        return bar.value() >= bar.maximum() - 4

    def add_final(self, seg: StoredSegment) -> None:
        follow = self.following
        self.lines.append(seg)
        self._partials.pop(seg.speaker or "", None)
        self._render_partials()
        colour = SPEAKER_COLOURS.get(seg.source, "#444444")
        self.transcript.append(
            f"<span style='color:#888'>[{clock(seg.timestamp_ms)}]</span> "
            f"<b style='color:{colour}'>{html.escape(seg.speaker or '')}:</b> {html.escape(seg.text)}"
        )
        if follow:
            self.jump_to_live()

    def set_partial(self, speaker: str, text: str) -> None:
        if not speaker:
            self._partials.clear()
        elif text:
            self._partials[speaker] = text
        else:
            self._partials.pop(speaker, None)
        self._render_partials()

    def _render_partials(self) -> None:
        self.partial_label.setText("\n".join(f"{who}: {text}…" for who, text in self._partials.items()))

    def _on_scrolled(self, _value: int) -> None:
        self.jump_button.setVisible(not self.following)

    def jump_to_live(self) -> None:
        bar = self.transcript.verticalScrollBar()
        bar.setValue(bar.maximum())
        self.jump_button.hide()

    def transcript_text(self) -> str:
        lines = [TranscriptLine(s.timestamp_ms, s.end_ms, s.speaker, s.text) for s in self.lines]
        return render(lines, "txt")

    def copy_transcript(self) -> None:
        QGuiApplication.clipboard().setText(self.transcript_text())

    def toggle_recording(self) -> None:
        c = self.controller
        if c.state == "idle":
            c.start_recording(title=self.title_edit.text().strip() or None,
                              platform=self.platform_combo.currentText(), participants=self._participants())
        elif c.state == "recording":
            # Only what was typed here and not stored yet (a stop by shortcut or from the tray
            # ends no edit): the rest is as stored, which the recordings browser may have edited.
            typed = {f: v for f, v in self._fields().items() if v != self._stored.get(f)}
            title, names = typed.get("meeting_title"), typed.get("participants")
            c.stop_recording(title=title if isinstance(title, str) else None,
                             participants=names if isinstance(names, list) and names else None)

    def _participants(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.participants_edit.text().split(",") if p.strip())

    def _fields(self) -> dict[str, object]:
        return {"meeting_title": self.title_edit.text().strip() or None, "participants": list(self._participants()),
                "platform": self.platform_combo.currentText()}

    def _edited(self, field: str) -> None:
        """Stored at once, if it changed here: leaving the field untouched must not put its old
        value over an edit made in the recordings browser meanwhile."""
        value = self._fields()[field]
        if self.controller.state != "recording" or value == self._stored.get(field):
            return
        if self.controller.edit_live({field: value}):  # else given to the stop
            self._stored[field] = value

    def _on_state(self, state: str) -> None:
        text = {"loading": "Loading model…", "idle": "Start recording", "recording": "Stop recording",
                "finishing": "Finishing…", "starting": "Starting…", "error": "Unavailable"}.get(state, state)
        self.record_button.setText(text)
        self.record_button.setEnabled(state in ("idle", "recording"))
        for field in (self.title_edit, self.platform_combo, self.participants_edit):
            field.setEnabled(state != "finishing")  # the stop has taken what they held
        if state == "loading":
            self.warning_label.hide()  # a model (re)load: its earlier failure no longer holds
        if state != "recording":
            for meter in self.meters.values():
                meter.setValue(0)

    def _on_levels(self, levels: dict[str, float]) -> None:
        for source, meter in self.meters.items():
            level = levels.get(source)
            meter.setEnabled(level is not None)
            meter.setValue(int(max(0.0, (level if level is not None else METER_FLOOR_DBFS) - METER_FLOOR_DBFS)))

    def _on_notice(self, level: str, message: str) -> None:
        if level in ("warning", "error"):
            self.warning_label.setText(message)
            self.warning_label.show()

    def _on_sync(self, kind: str, text: str) -> None:
        self.sync_label.setText(f"● {'Sync off' if kind == 'off' else kind.capitalize()}")
        self.sync_label.setStyleSheet(f"color: {SYNC_COLOURS.get(kind, '#444')};")
        self.sync_label.setToolTip(text)

    def closeEvent(self, event: QCloseEvent) -> None:
        event.ignore()
        self.hide()  # closing the window never stops the recording; the tray keeps running
