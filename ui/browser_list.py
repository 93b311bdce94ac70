"""The list half of the recordings browser: one line per recording, and "Load more"."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ui.browser_rows import BrowserRow, format_date, format_duration

log = logging.getLogger(__name__)

COLUMNS = ("Date", "Title", "Duration", "Status", "Sync")
KEY_ROLE = Qt.ItemDataRole.UserRole
SYNC_COLOURS = {"synced": "#15803d", "server only": "#1d4ed8", "local only": "#6b7280"}
WARNING_COLOUR = "#b91c1c"


class RecordingList(QWidget):
    selection_changed = Signal()
    load_more_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._more = False
        self._loading = False
        self._rebuilding = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._build_tree(), 1)
        layout.addLayout(self._build_footer())

    def _build_tree(self) -> QTreeWidget:
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setStretchLastSection(False)
        for column in range(len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.tree.currentItemChanged.connect(self._current_changed)
        self.tree.verticalScrollBar().valueChanged.connect(self._scrolled)
        return self.tree

    def _build_footer(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.count_label = QLabel()
        self.load_more_button = QPushButton("Load more")
        self.load_more_button.clicked.connect(self.load_more_requested.emit)
        row.addWidget(self.count_label, 1)
        row.addWidget(self.load_more_button)
        return row

    # -- content -------------------------------------------------------------------------------

    def set_rows(self, rows: Sequence[BrowserRow], *, loaded_remote: int, more: bool, loading: bool) -> None:
        """Replace the lines, keeping the selection and the scroll position."""
        selected = self.selected_key()
        scroll = self.tree.verticalScrollBar().value()
        self._rebuilding = True
        self.tree.blockSignals(True)
        try:
            self.tree.clear()
            items = [self._item(row) for row in rows]
            self.tree.addTopLevelItems(items)
            current = next((i for i in items if i.data(0, KEY_ROLE) == selected), None)
            if current is not None:
                self.tree.setCurrentItem(current)
            self.tree.verticalScrollBar().setValue(scroll)
        finally:
            self.tree.blockSignals(False)
            self._rebuilding = False
        self.count_label.setText(self._count_text(len(rows), loaded_remote, more))
        self.set_loading(loading, more)

    def _item(self, row: BrowserRow) -> QTreeWidgetItem:
        values = (format_date(row.started_at), row.title or "Untitled", format_duration(row.duration_s),
                  row.status, row.sync_label)
        item = QTreeWidgetItem(list(values))
        item.setData(0, KEY_ROLE, row.key)
        item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        colour = SYNC_COLOURS.get(row.sync_label)
        if colour is None and row.sync_label.startswith(("error", "deleted")):
            colour = WARNING_COLOUR
        if colour:
            item.setForeground(4, QBrush(QColor(colour)))
        if row.local and row.local.last_error:
            item.setToolTip(4, row.local.last_error)
        return item

    @staticmethod
    def _count_text(shown: int, loaded_remote: int, more: bool) -> str:
        noun = "recording" if shown == 1 else "recordings"
        server = f" · {loaded_remote} loaded from PostHog" if loaded_remote else ""
        return f"{shown} {noun}{server}{', more available' if more else ''}"

    def set_loading(self, loading: bool, more: bool) -> None:
        self._loading, self._more = loading, more
        self.load_more_button.setVisible(more or loading)
        self.load_more_button.setEnabled(more and not loading)
        self.load_more_button.setText("Loading…" if loading else "Load more")

    # -- selection -----------------------------------------------------------------------------

    def selected_key(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, KEY_ROLE) if item is not None else None

    def select_key(self, key: str) -> None:
        item = next((i for i in self._items() if i.data(0, KEY_ROLE) == key), None)
        if item is None:
            raise KeyError(key)
        self.tree.setCurrentItem(item)

    def row_keys(self) -> list[str]:
        return [item.data(0, KEY_ROLE) for item in self._items()]

    def _items(self) -> Iterator[QTreeWidgetItem]:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item is not None:
                yield item

    def _current_changed(self, *_: object) -> None:
        self.selection_changed.emit()

    def _scrolled(self, value: int) -> None:
        bar = self.tree.verticalScrollBar()
        if not self._rebuilding and self._more and not self._loading and value >= bar.maximum() > 0:
            self.load_more_requested.emit()
