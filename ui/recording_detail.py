"""The detail pane of the recordings browser: header, actions, transcript and the edit form.

It only shows what it is given and reports what the user asks for (signals); the browser owns
the store, the server and the decisions.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QItemSelectionModel, Qt, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop_recorder.store import EchoLine
from transcription.formats import TranscriptLine, clock
from ui.browser_rows import (
    BrowserRow,
    format_date,
    format_duration,
    parse_participants,
    parse_tasks,
    tasks_to_text,
)

log = logging.getLogger(__name__)

SPEAKER_COLOURS = ("#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c")
LINE_STYLE = "margin-top:2px; margin-bottom:2px"


class RecordingDetail(QWidget):
    save_requested = Signal(dict)  # every editable field, as the form now holds it
    export_requested = Signal()
    open_audio_requested = Signal()
    refine_requested = Signal()
    delete_requested = Signal()
    restore_echo_requested = Signal(list)  # ids of lines left out as echo, to put back in the transcript

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._fields: dict[str, Any] = {}
        self._key: str | None = None  # the recording shown
        self._head = ""  # the transcript tab's sections above the lines
        self._lines: tuple[TranscriptLine, ...] = ()  # the lines it shows
        self._colours: dict[str, str] = {}  # speaker → colour, in order of first appearance
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 0, 0, 0)
        layout.addWidget(self._build_header())
        layout.addLayout(self._build_actions())
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_transcript(), "Transcript")
        self.tabs.addTab(self._build_form(), "Details && notes")
        self._echo_tab = self.tabs.addTab(self._build_echo(), "Left out as echo")
        layout.addWidget(self.tabs, 1)
        self.show_recording(None, [], {})

    # -- builders ------------------------------------------------------------------------------

    def _build_header(self) -> QWidget:
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 0, 4)
        self.title_label = QLabel()
        self.title_label.setStyleSheet("font-size: 16pt; font-weight: 600;")
        self.title_label.setWordWrap(True)
        self.meta_label = QLabel()
        self.meta_label.setStyleSheet("color: #6b7280;")
        self.meta_label.setWordWrap(True)
        self.error_label = QLabel()  # the recording's error_message, when it has one
        self.error_label.setObjectName("recordingError")
        self.error_label.setStyleSheet("QLabel#recordingError { background: #fdecea; border: 1px solid #f5c2c0;"
                                       " border-radius: 4px; padding: 4px 6px; }")
        self.error_label.setWordWrap(True)
        self.error_label.setTextFormat(Qt.TextFormat.PlainText)  # the server's text, or an exception's
        self.error_label.hide()
        col.addWidget(self.title_label)
        col.addWidget(self.meta_label)
        col.addWidget(self.error_label)
        return box

    def _build_actions(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.export_button = self._action_button("Export transcript…", self.export_requested.emit)
        self.audio_button = self._action_button("Open audio file", self.open_audio_requested.emit)
        self.refine_button = self._action_button("Improve transcript", self.refine_requested.emit)
        self.refine_button.setToolTip("Transcribe the saved audio again, slower and more accurately. The better "
                                      "transcript is kept on this computer; the server keeps the live one.")
        self.refine_button.setVisible(False)  # shown where the app can refine (a model is loaded)
        self.delete_button = self._action_button("Delete…", self.delete_requested.emit)
        row.addWidget(self.export_button)
        row.addWidget(self.audio_button)
        row.addWidget(self.refine_button)
        row.addStretch(1)
        row.addWidget(self.delete_button)
        return row

    def _action_button(self, text: str, slot: Any) -> QPushButton:
        button = QPushButton(text)
        button.clicked.connect(slot)
        return button

    def _build_transcript(self) -> QWidget:
        self.transcript_view = QTextBrowser()
        self.transcript_view.setOpenLinks(False)
        return self.transcript_view

    def _build_echo(self) -> QWidget:
        box = QWidget()
        col = QVBoxLayout(box)
        about = QLabel("Your microphone picked these lines up from the speakers while the others talked, so "
                       "they were not added as yours. If you said one of them, put it back: it joins the "
                       "transcript and syncs to PostHog.")
        about.setWordWrap(True)
        self.echo_list = QListWidget()
        self.echo_list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.restore_button = QPushButton("Put back in the transcript")
        self.restore_button.setEnabled(False)
        self.echo_list.itemSelectionChanged.connect(
            lambda: self.restore_button.setEnabled(bool(self.echo_list.selectedItems())))
        self.restore_button.clicked.connect(self._emit_restore)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.restore_button)
        col.addWidget(about)
        col.addWidget(self.echo_list, 1)
        col.addLayout(buttons)
        return box

    def _build_form(self) -> QWidget:
        box = QWidget()
        form = QFormLayout(box)
        self.title_edit = QLineEdit()
        self.participants_edit = QLineEdit()
        self.participants_edit.setPlaceholderText("Comma-separated, e.g. Ana, Bo")
        self.notes_edit = self._text_edit("Your notes")
        self.summary_edit = self._text_edit("Meeting summary")
        self.tasks_edit = self._text_edit("One task per line")
        form.addRow("Title", self.title_edit)
        form.addRow("Participants", self.participants_edit)
        form.addRow("Notes", self.notes_edit)
        form.addRow("Summary", self.summary_edit)
        form.addRow("Tasks", self.tasks_edit)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.revert_button = self._action_button("Revert", lambda: self._fill_form())
        self.save_button = self._action_button("Save changes", self._emit_save)
        self.save_button.setDefault(True)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.save_button)
        form.addRow(buttons)
        return box

    def _text_edit(self, placeholder: str) -> QPlainTextEdit:
        edit = QPlainTextEdit()
        edit.setPlaceholderText(placeholder)
        edit.setTabChangesFocus(True)
        return edit

    # -- showing -------------------------------------------------------------------------------

    def show_recording(self, row: BrowserRow | None, lines: Sequence[TranscriptLine], fields: dict[str, Any],
                       echo: Sequence[EchoLine] = (), *, improved: bool = False) -> None:
        """``improved``: ``lines`` are the post-meeting pass's, which transcribed all the saved audio."""
        same = row is not None and row.key == self._key  # refreshed (sync progress, new lines), not another one
        filled, self._fields = self._fields, dict(fields)
        self._key = row.key if row is not None else None
        self._show_echo(echo)
        for widget in (self.export_button, self.delete_button, self.tabs):
            widget.setEnabled(row is not None)
        has_audio = bool(row and row.local and row.local.audio_path)
        self.audio_button.setEnabled(has_audio)
        self.refine_button.setEnabled(has_audio)
        problem = row.error_message if row is not None else None
        if problem and improved:  # a gap in the live transcript, which the improved one has closed
            problem += " The improved transcript shown here covers all the saved audio; the synced one keeps the gap."
        self.error_label.setText(problem or "")
        self.error_label.setVisible(bool(problem))
        if row is None:
            self.title_label.setText("No recording selected")
            self.meta_label.setText("Pick a recording on the left to see its transcript.")
            self._show_transcript("", (), same=False)
        else:
            self.title_label.setText(row.title or "Untitled recording")
            self.meta_label.setText(self._meta(row))
            self._show_transcript(head_html(fields), tuple(lines), same=same)
        self._fill_form(keep_edits_from=filled if same else None)

    def _show_transcript(self, head: str, lines: tuple[TranscriptLine, ...], *, same: bool) -> None:
        """The transcript tab. Refreshing the same recording leaves an unchanged one alone, adds
        new lines at the end without touching the rest (a running recording refreshes once per
        line: a selection being made survives and the cost does not grow with the length), and
        keeps the reader's place, following new lines if they were at the end."""
        bar = self.transcript_view.verticalScrollBar()
        at, at_end = bar.value(), bar.value() >= bar.maximum()
        if same and head == self._head and self._lines and lines[:len(self._lines)] == self._lines:
            if len(lines) == len(self._lines):
                return
            cursor = QTextCursor(self.transcript_view.document())
            cursor.movePosition(QTextCursor.MoveOperation.End)
            for line in lines[len(self._lines):]:
                cursor.insertBlock()
                cursor.insertHtml(_line_html(line, self._colours))
        else:
            self._colours = {}
            body = "".join(f"<p style='{LINE_STYLE}'>{_line_html(line, self._colours)}</p>" for line in lines)
            self.transcript_view.setHtml(head + (body or "<p><i>No transcript yet.</i></p>"))
        self._head, self._lines = head, lines
        if same:
            bar.setValue(bar.maximum() if at_end else at)

    def _show_echo(self, echo: Sequence[EchoLine]) -> None:
        """The lines left out. The row refreshes while a recording goes on: an unchanged list is
        left alone, and a changed one keeps what the user had selected, the current line (the
        anchor of a shift-click) and the scroll position (ids are unique across recordings)."""
        lines = [(line.id, f"[{clock(line.timestamp_ms)}]  {line.text}") for line in echo]
        shown = [(item.data(Qt.ItemDataRole.UserRole), item.text())
                 for item in map(self.echo_list.item, range(self.echo_list.count()))]
        if lines != shown:
            selected = {item.data(Qt.ItemDataRole.UserRole) for item in self.echo_list.selectedItems()}
            current = self.echo_list.currentItem()
            current_id = current.data(Qt.ItemDataRole.UserRole) if current is not None else None
            scroll = self.echo_list.verticalScrollBar().value()
            self.echo_list.clear()
            for line_id, text in lines:
                item = QListWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, line_id)
                self.echo_list.addItem(item)
                if line_id == current_id:
                    self.echo_list.setCurrentItem(item, QItemSelectionModel.SelectionFlag.NoUpdate)
                item.setSelected(line_id in selected)
            self.echo_list.verticalScrollBar().setValue(scroll)
        self.tabs.setTabText(self._echo_tab, f"Left out as echo ({len(echo)})")
        self.tabs.setTabVisible(self._echo_tab, bool(echo))

    def _emit_restore(self) -> None:
        ids = [item.data(Qt.ItemDataRole.UserRole) for item in self.echo_list.selectedItems()]
        if ids:
            self.restore_echo_requested.emit(ids)

    def _meta(self, row: BrowserRow) -> str:
        parts = [format_date(row.started_at), format_duration(row.duration_s), row.platform.replace("_", " "),
                 row.status, row.sync_label]
        if row.participants:
            parts.append(", ".join(row.participants))
        return "  ·  ".join(p for p in parts if p)

    def _fill_form(self, keep_edits_from: dict[str, Any] | None = None) -> None:
        """The form from the fields. With ``keep_edits_from`` (the fields it was filled from
        before, same recording), a field the user has changed since keeps their text."""
        edited: set[str] = set()
        if keep_edits_from is not None:  # compared as values: "Ana,Bo" is what "Ana, Bo" was
            tasks = keep_edits_from.get("extracted_tasks") or []
            before = _parsed(_form_texts(keep_edits_from), tasks)
            now = _parsed(self._form_now(), tasks)
            edited = {key for key in now if now[key] != before[key]}
        for key, text in _form_texts(self._fields).items():
            widget = self._form_widgets()[key]
            shown = widget.text() if isinstance(widget, QLineEdit) else widget.toPlainText()
            if key in edited:
                continue  # being edited: the user's, until they save or revert
            if shown != text:
                if isinstance(widget, QLineEdit):
                    widget.setText(text)
                else:
                    widget.setPlainText(text)

    def _form_widgets(self) -> dict[str, QLineEdit | QPlainTextEdit]:
        return {"meeting_title": self.title_edit, "participants": self.participants_edit, "notes": self.notes_edit,
                "summary": self.summary_edit, "extracted_tasks": self.tasks_edit}

    def _form_now(self) -> dict[str, str]:
        return {key: widget.text() if isinstance(widget, QLineEdit) else widget.toPlainText()
                for key, widget in self._form_widgets().items()}

    def form_fields(self) -> dict[str, Any]:
        """The editable fields as the form holds them (blank text → null)."""
        return _parsed(self._form_now(), self._fields.get("extracted_tasks") or [])

    def _emit_save(self) -> None:
        self.save_requested.emit(self.form_fields())


def _parsed(texts: dict[str, str], tasks: Sequence[Any]) -> dict[str, Any]:
    """Field values from the form's texts (blank → null; ``tasks``: the known ones, whose
    description and assignee a line naming them keeps)."""
    return {
        "meeting_title": texts["meeting_title"].strip() or None,
        "participants": parse_participants(texts["participants"]),
        "notes": texts["notes"].strip() or None,
        "summary": texts["summary"].strip() or None,
        "extracted_tasks": parse_tasks(texts["extracted_tasks"], tasks),
    }


def _form_texts(f: dict[str, Any]) -> dict[str, str]:
    """What each form widget shows for these fields."""
    return {"meeting_title": f.get("meeting_title") or "", "participants": ", ".join(f.get("participants") or []),
            "notes": f.get("notes") or "", "summary": f.get("summary") or "",
            "extracted_tasks": tasks_to_text(f.get("extracted_tasks") or [])}


def head_html(fields: dict[str, Any]) -> str:
    """The sections above the transcript's lines: summary, tasks and notes, then its heading."""
    parts: list[str] = []
    if fields.get("summary"):
        parts.append(_section("Summary", f"<p>{_text(fields['summary'])}</p>"))
    if fields.get("extracted_tasks"):
        items = "".join(f"<li>{_task(t)}</li>" for t in fields["extracted_tasks"])
        parts.append(_section("Tasks", f"<ul>{items}</ul>"))
    if fields.get("notes"):
        parts.append(_section("Notes", f"<p>{_text(fields['notes'])}</p>"))
    parts.append(_section("Transcript", ""))
    return "".join(parts)


def _section(title: str, body: str) -> str:
    return f"<h3 style='margin-bottom:4px'>{title}</h3>{body}"


def _text(value: Any) -> str:
    return html.escape(str(value)).replace("\n", "<br>")


def _task(task: Any) -> str:
    if not isinstance(task, dict):
        return _text(task)
    text = f"<b>{_text(task.get('title') or '')}</b>"
    if task.get("description"):
        text += f" — {_text(task['description'])}"
    if task.get("assignee"):
        text += f" <i>({_text(task['assignee'])})</i>"
    return text


def _line_html(line: TranscriptLine, colours: dict[str, str]) -> str:
    """One line: one paragraph each (a table's layout is redone whole on every added row)."""
    who = line.speaker or ""
    colour = colours.setdefault(who, SPEAKER_COLOURS[len(colours) % len(SPEAKER_COLOURS)])
    return (f"<span style='color:gray'>[{clock(line.start_ms)}]</span>&nbsp;&nbsp;"
            f"<span style='color:{colour}; font-weight:600'>{html.escape(who)}</span>&nbsp;&nbsp;"
            f"{html.escape(line.text)}")
