"""What the recordings browser shows: server recordings (a page at a time) merged with the local
store, filters, and the detail of the selected one (the actions are in ``ui.browser``).

Works offline on local data; a banner says why the server's recordings are missing. Network work
runs through ``run_in_background``; the store (local SQLite) is read on the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from api.client import PostHogClient
from api.errors import ApiError, NetworkError
from api.models import PLATFORMS, STATUSES, RemoteRecording
from desktop_recorder.context import AppContext, SyncNotConfigured
from desktop_recorder.store import DETAIL_FIELDS
from transcription.formats import TranscriptLine, lines_of
from ui.background import run_in_background
from ui.browser_list import RecordingList
from ui.browser_rows import BrowserRow, Filters, current_fields, merge_rows, remote_lines
from ui.controller import off_text
from ui.recording_detail import RecordingDetail
from ui.remote_pages import RemotePager

log = logging.getLogger(__name__)

SEARCH_DEBOUNCE_MS = 400
ERROR_STYLE = "color: #b91c1c;"
BANNER_STYLE = "background: #fff4ce; color: #5c4400; border: 1px solid #e8d48a; border-radius: 4px; padding: 6px;"


class RecordingsView(QWidget):
    page_loaded = Signal(int)  # recordings in the page that just arrived
    load_failed = Signal(str)  # the banner's message

    def __init__(
        self, ctx: AppContext, client_factory: Callable[[], PostHogClient], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.client_factory = client_factory
        self._filters = Filters()
        self._remote: list[RemoteRecording] = []
        self._details: dict[str, RemoteRecording] = {}  # fetched server copies of local recordings
        self._rows: dict[str, BrowserRow] = {}
        self._shown: BrowserRow | None = None
        self._pager: RemotePager | None = None
        self._loading = False
        self.setWindowTitle("Recordings")
        self.resize(1180, 720)
        self._build()
        self.reload_local()

    # -- builders ------------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addLayout(self._build_filters())
        layout.addWidget(self._build_banner())
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._build_list())
        splitter.addWidget(self._build_detail())
        splitter.setStretchFactor(0, 5)
        splitter.setStretchFactor(1, 4)
        splitter.setSizes([620, 520])
        layout.addWidget(splitter, 1)
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        layout.addWidget(self.notice)

    def _build_filters(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search transcripts…")
        self.search_edit.setClearButtonEnabled(True)
        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DEBOUNCE_MS)
        self._search_timer.timeout.connect(self.refresh)
        self.search_edit.textChanged.connect(self._search_timer.start)
        self.search_edit.returnPressed.connect(self.refresh)
        self.status_combo = self._filter_combo("All statuses", STATUSES)
        self.platform_combo = self._filter_combo("All platforms", PLATFORMS)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        row.addWidget(self.search_edit, 1)
        row.addWidget(self.status_combo)
        row.addWidget(self.platform_combo)
        row.addWidget(self.refresh_button)
        return row

    def _filter_combo(self, everything: str, values: tuple[str, ...]) -> QComboBox:
        combo = QComboBox()
        combo.addItem(everything, "")
        for value in values:
            combo.addItem(value.replace("_", " ").capitalize(), value)
        combo.currentIndexChanged.connect(self.refresh)
        return combo

    def _build_banner(self) -> QLabel:
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(BANNER_STYLE)
        self.banner.hide()
        return self.banner

    def _build_list(self) -> QWidget:
        self.recording_list = RecordingList()
        self.recording_list.selection_changed.connect(self._show_selected)
        self.recording_list.load_more_requested.connect(self.load_more)
        return self.recording_list

    def _build_detail(self) -> QWidget:
        self.detail = RecordingDetail()
        return self.detail

    # -- loading -------------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._pager is None:
            self.refresh()
        else:
            self.reload_local()  # recordings made since it was last shown

    def refresh(self) -> None:
        """Reload local data now and the server's first page in the background."""
        self._search_timer.stop()
        self._filters = Filters(self.search_edit.text().strip(), self.status_combo.currentData(),
                                self.platform_combo.currentData())
        self._drop_pager()
        self._remote = []
        self._pager = RemotePager(self.client_factory, self._filters)
        self.reload_local()
        self._fetch_page()

    def load_more(self) -> None:
        if self._pager is not None and self._pager.has_more and not self._loading:
            self._fetch_page()

    def _fetch_page(self) -> None:
        pager = self._pager
        assert pager is not None
        self._loading = True
        self.recording_list.set_loading(True, pager.has_more)
        run_in_background(pager.next_page, lambda page: self._on_page(pager, page),
                          lambda exc: self._on_page_failed(pager, exc), name="list-recordings")

    def _on_page(self, pager: RemotePager, page: list[RemoteRecording]) -> None:
        if not isValid(self) or pager is not self._pager:
            pager.close()
            return
        self._loading = False
        self._remote.extend(page)
        self.banner.hide()
        self._render()
        self.page_loaded.emit(len(page))

    def _on_page_failed(self, pager: RemotePager, exc: Exception) -> None:
        if not isValid(self) or pager is not self._pager:
            pager.close()
            return
        self._loading = False
        pager.has_more = False
        message = offline_message(exc)
        self.banner.setText(message)
        self.banner.show()
        self._render()
        self.load_failed.emit(message)

    def _drop_pager(self) -> None:
        if self._pager is not None and not self._loading:
            self._pager.close()  # else its job's callback closes it (it is stale by then)
        self._pager = None
        self._loading = False

    def shutdown(self) -> None:
        """Close the listing's connection (call when the browser goes away for good)."""
        if self._pager is not None:
            self._pager.close()
        self._pager = None

    def note(self, text: str, error: bool = False) -> None:
        """A one-line result of the user's last action, under the list."""
        self.notice.setStyleSheet(ERROR_STYLE if error else "")
        self.notice.setText(text)

    def reload_local(self) -> None:
        """Re-read the local store (after a change, or when the sync worker made progress)."""
        self._render()

    # -- rows ----------------------------------------------------------------------------------

    def _render(self) -> None:
        local = self.ctx.store.list_recordings()
        found = self.ctx.store.transcripts_containing(self._filters.search) if self._filters.search else None
        matches = [r.id for r in local if self._filters.matches(r, found)]
        merged = merge_rows(local, self._remote, self.ctx.store.pending_counts(), matches)
        merged = [self._with_detail(r) for r in merged]
        self._rows = {r.key: r for r in merged}
        more = self._pager is not None and self._pager.has_more
        self.recording_list.set_rows(merged, loaded_remote=len(self._remote), more=more, loading=self._loading)
        self._show_selected()

    def _with_detail(self, row: BrowserRow) -> BrowserRow:
        if row.remote is None and row.local is not None and row.local.server_id in self._details:
            return replace(row, remote=self._details[row.local.server_id])
        return row

    def selected_row(self) -> BrowserRow | None:
        key = self.recording_list.selected_key()
        return self._rows.get(key) if key else None

    def rows(self) -> list[BrowserRow]:
        """The rows in list order."""
        return [self._rows[k] for k in self.recording_list.row_keys() if k in self._rows]

    def select(self, key: str) -> None:
        self.recording_list.select_key(key)

    def _show_selected(self, *, force: bool = False) -> None:
        row = self.selected_row()
        if row == self._shown and not force:
            return  # unchanged: keep what the user is typing in the form
        self._shown = row
        if row is None:
            self.detail.show_recording(None, [], {})
            return
        queued = self.ctx.store.pending_ops(row.local.id) if row.local else []
        if row.local is not None and row.remote is not None:  # keep the server's notes for offline reading
            known = {k: row.remote.raw[k] for k in DETAIL_FIELDS if k in row.remote.raw}
            if any(row.local.details.get(k) != v for k, v in known.items()):
                self.ctx.store.remember_details(row.local.id, known, row.remote.raw.get("updated_at"))
        echo = self.ctx.store.echo_segments(row.local.id) if row.local else []
        improved = bool(row.local and self.ctx.store.has_refined(row.local.id))
        self.detail.show_recording(row, self.transcript(row), current_fields(row, queued), echo, improved=improved)
        self._maybe_fetch_detail(row)

    def transcript(self, row: BrowserRow) -> list[TranscriptLine]:
        """The refined local transcript if there is one, else the live one, else the server's."""
        if row.local is not None:
            lines = lines_of(self.ctx.store.transcript(row.local.id))
            if lines or row.remote is None:
                return lines
        return remote_lines(row.remote.transcript_segments) if row.remote else []

    def _maybe_fetch_detail(self, row: BrowserRow) -> None:
        """A synced local recording whose server copy is on a page not loaded yet: fetch it."""
        local = row.local
        if row.remote is not None or local is None or not local.server_id or local.server_id in self._details:
            return
        if local.remote_state in ("deleted_on_server", "deleting"):
            return
        server_id, project = local.server_id, local.server_project

        def job() -> RemoteRecording:
            with self.client_factory() as client:
                return (client.in_project(project) if project else client).get_recording(server_id)

        def done(remote: RemoteRecording) -> None:
            if isValid(self):
                self._details[server_id] = remote
                self._render()

        run_in_background(job, done, lambda exc: log.info("no server copy of %s: %s", server_id, exc),
                          name="get-recording")


def offline_message(exc: Exception) -> str:
    local = "Showing the recordings on this computer."
    if isinstance(exc, SyncNotConfigured):
        return f"{off_text(exc)} {local}"
    if isinstance(exc, NetworkError):
        return f"PostHog is unreachable: {exc}. {local} Changes are kept and sync when it is back."
    if isinstance(exc, ApiError):
        return f"PostHog refused the request: {exc} {local}"
    return f"Could not load the server's recordings ({exc}). {local}"
