"""The recordings browser: the view (``ui.browser_view``) plus what the user can do to the
selected recording: edit, delete, export, open its audio.

A recording with a local copy changes in the store (the outbox carries it to PostHog; the app's
sync worker is woken through ``on_local_change``). A server-only recording is changed on the
server directly, in the background.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget
from shiboken6 import isValid

from api.client import PostHogClient
from api.errors import NotFound
from api.models import RemoteRecording
from desktop_recorder.config import DEFAULT_MIC_LABEL
from desktop_recorder.context import AppContext
from desktop_recorder.store import LIVE_STATUSES, LocalRecording, is_owned
from transcription.formats import percent, render
from ui.background import run_in_background
from ui.browser_rows import changed_fields, current_fields
from ui.browser_view import RecordingsView

log = logging.getLogger(__name__)

EXPORT_FILTERS = {
    "Markdown (*.md)": "md",
    "SubRip subtitles (*.srt)": "srt",
    "WebVTT subtitles (*.vtt)": "vtt",
    "JSON (*.json)": "json",
    "Plain text (*.txt)": "txt",
}


class RecordingsBrowser(RecordingsView):
    """Every method runs on the GUI thread."""

    action_done = Signal(str)  # a background edit or delete finished (the notice shown)

    def __init__(
        self,
        ctx: AppContext,
        client_factory: Callable[[], PostHogClient],
        on_local_change: Callable[[], None],
        parent: QWidget | None = None,
        *,
        refine: Callable[[str], str | None] | None = None,
        refine_done: Callable[[str], float | None] = lambda _id: None,
    ) -> None:
        super().__init__(ctx, client_factory, parent)
        self.on_local_change = on_local_change
        self.refine = refine  # starts the post-meeting pass for a local recording id (None) or says why not
        self.refine_done = refine_done  # the share of a recording's pass done, None when none runs
        self.detail.refine_button.setVisible(refine is not None)
        self.detail.refine_requested.connect(self.refine_selected)
        self.ask: Callable[[str, str], bool] = self.ask_user  # replaceable: modal dialogs block tests
        self.detail.save_requested.connect(self.save_edits)
        self.detail.delete_requested.connect(self.delete_selected)
        self.detail.export_requested.connect(self.choose_export)
        self.detail.open_audio_requested.connect(self.open_audio)
        self.detail.restore_echo_requested.connect(self.restore_echo)

    def refine_selected(self) -> None:
        row = self.selected_row()
        if row is None or row.local is None or self.refine is None:
            return
        refused = self.refine(row.local.id)
        if refused:
            self.note(refused, error=True)
        self._show_refine_state()

    def on_refined(self, _recording_id: str) -> None:
        """The post-meeting pass finished (or failed): show what the store has now."""
        if isValid(self):
            self._show_selected(force=True)

    def on_refine_progress(self, _recording_id: str, _share: float) -> None:
        if isValid(self):
            self._show_refine_state()

    def _show_selected(self, *, force: bool = False) -> None:
        super()._show_selected(force=force)
        self._show_refine_state()

    def _show_refine_state(self) -> None:
        """The button says whether the shown recording's transcript is being improved."""
        row = self.selected_row()
        done = self.refine_done(row.local.id) if row is not None and row.local is not None else None
        self.detail.refine_button.setText("Improve transcript" if done is None else f"Improving… {percent(done)}")
        if done is not None:
            self.detail.refine_button.setEnabled(False)

    @contextlib.contextmanager
    def _says_store_errors(self, action: str) -> Iterator[None]:
        """A button's work on the local database: a failure (a full disk) is said under the list,
        not raised into Qt's event loop, where the user saw nothing happen."""
        try:
            yield
        except sqlite3.Error as exc:
            log.error("could not %s: %s", action, exc)
            self.note(f"Could not {action}: the recordings database refused it ({exc}).", error=True)

    def restore_echo(self, echo_ids: list[int]) -> None:
        """Lines wrongly left out as echo go back into the transcript (and the sync queue)."""
        with self._says_store_errors("put the lines back"):
            self._restore_echo(echo_ids)

    def _restore_echo(self, echo_ids: list[int]) -> None:
        row = self.selected_row()
        if row is None or row.local is None:
            return
        me = self.ctx.settings.user_name or DEFAULT_MIC_LABEL  # for lines stored before speakers were kept
        gone = self.ctx.store.restore_echoes(echo_ids, speaker=me)
        if gone:
            log.warning("echo lines %s are gone (restored already?)", gone)
        restored = len(set(echo_ids)) - len(gone)
        self.on_local_change()
        done = f"Put {restored} line{'s' if restored != 1 else ''} back in the transcript"
        if self.ctx.store.has_refined(row.local.id):
            done += " (the live one, which syncs; the improved transcript shown here predates it"
            done += ": improve it again to include it)" if self.refine is not None else ")"
        self.note(done + ".")
        self._show_selected(force=True)

    # -- edit ----------------------------------------------------------------------------------

    def save_edits(self, fields: dict[str, Any]) -> None:
        with self._says_store_errors("save the changes"):
            self._save_edits(fields)

    def _save_edits(self, fields: dict[str, Any]) -> None:
        row = self.selected_row()
        if row is None:
            return
        queued = self.ctx.store.pending_ops(row.local.id) if row.local else []
        changes = changed_fields(current_fields(row, queued), fields)
        if not changes:
            self.note("Nothing changed.")
            return
        if row.local is not None:
            self.ctx.store.edit_recording(row.local.id, changes)
            self.on_local_change()
            gone = row.local.remote_state == "deleted_on_server"
            self.note("Saved on this computer (PostHog's copy was deleted)." if gone else
                      "Saved. The change syncs to PostHog in the background.")
            self.reload_local()
            self._show_selected(force=True)
            return
        assert row.remote is not None
        self._patch_remote(row.remote.id, changes)

    def _patch_remote(self, server_id: str, changes: dict[str, Any]) -> None:
        self.detail.save_button.setEnabled(False)

        def job() -> RemoteRecording:
            with self.client_factory() as client:
                return client.update_recording(server_id, changes)

        def done(updated: RemoteRecording) -> None:
            self._replace_remote(updated)
            self._finish("Saved to PostHog.")

        run_in_background(job, self._alive(done), self._alive(lambda e: self._finish(f"Could not save: {e}", True)),
                          name="patch-recording")

    def _replace_remote(self, updated: RemoteRecording) -> None:
        self._remote = [updated if r.id == updated.id else r for r in self._remote]
        self._render()  # re-shows the recording if it is still the selected one

    # -- delete --------------------------------------------------------------------------------

    def delete_selected(self, confirm: bool = True) -> None:
        row = self.selected_row()
        if row is None:
            return
        on_server = row.remote is not None or bool(row.local and row.local.server_id)
        where = ("on this computer and on PostHog" if row.local and on_server else
                 "on this computer" if row.local else "on PostHog")
        question = f"Delete “{row.title or 'Untitled recording'}” {where}? This cannot be undone."
        if confirm and not self.ask("Delete recording", question):
            return
        if row.local is not None:
            with self._says_store_errors("delete the recording"):
                self._delete_local(row.local)
        else:
            assert row.remote is not None
            self._delete_remote(row.remote.id)

    def _delete_local(self, rec: LocalRecording) -> None:
        if rec.status in LIVE_STATUSES and is_owned(self.ctx.paths.data_dir, rec.id):
            self.note("This recording is still running; stop it first.", error=True)
            return
        if self.refine_done(rec.id) is not None:
            self.note("Its transcript is being improved; delete it once that is done.", error=True)
            return
        on_server = self.ctx.store.request_delete(rec.id)  # False: nothing there, removed at once
        if rec.audio_path:
            try:
                Path(rec.audio_path).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not delete %s: %s", rec.audio_path, exc)
        if rec.server_id is not None:  # its server copy as loaded would show as "server only" once the row is gone
            self._remote = [r for r in self._remote if r.id != rec.server_id]
            self._details.pop(rec.server_id, None)
        self.on_local_change()
        self.note("Deleted here; PostHog's copy goes with the next sync." if on_server else "Deleted.")
        self.reload_local()

    def _delete_remote(self, server_id: str) -> None:
        def job() -> None:
            with self.client_factory() as client, contextlib.suppress(NotFound):  # gone already: fine
                client.delete_recording(server_id)

        def done(_: object) -> None:
            self._remote = [r for r in self._remote if r.id != server_id]
            self._render()
            self._finish("Deleted on PostHog.")

        run_in_background(job, self._alive(done),
                          self._alive(lambda e: self._finish(f"Could not delete: {e}", True)),
                          name="delete-recording")

    def ask_user(self, title: str, question: str) -> bool:
        answer = QMessageBox.question(self, title, question)
        return answer == QMessageBox.StandardButton.Yes

    # -- export and audio ----------------------------------------------------------------------

    def export(self, path: Path, fmt: str) -> None:
        """Write the selected recording's transcript to ``path`` as ``fmt`` (txt/json/srt/vtt/md)."""
        row = self.selected_row()
        if row is None:
            raise LookupError("no recording selected")
        path.write_text(render(self.transcript(row), fmt, title=row.title), encoding="utf-8")
        self.note(f"Exported to {path}.")

    def choose_export(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        name = (row.title or "transcript").strip().replace("/", "-")
        path, chosen = QFileDialog.getSaveFileName(self, "Export transcript", str(Path.home() / name),
                                                   ";;".join(EXPORT_FILTERS))
        if not path:
            return
        typed = Path(path).suffix.lower().lstrip(".")  # a name typed as notes.txt is plain text
        fmt = typed if typed in EXPORT_FILTERS.values() else EXPORT_FILTERS.get(chosen, "md")
        target = Path(path) if Path(path).suffix else Path(path).with_suffix(f".{fmt}")
        try:
            self.export(target, fmt)
        except OSError as exc:
            self.note(f"Could not export: {exc}", error=True)

    def open_audio(self) -> None:
        row = self.selected_row()
        audio = row.local.audio_path if row and row.local else None
        if not audio or not Path(audio).exists():
            self.note(f"The audio file is missing: {audio}" if audio else "This recording has no local audio.",
                      error=True)
            return
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(audio)):
            self.note(f"No application could open {audio}.", error=True)

    # -- feedback ------------------------------------------------------------------------------

    def _finish(self, text: str, error: bool = False) -> None:
        self.detail.save_button.setEnabled(True)
        self.note(text, error)
        self.action_done.emit(text)

    def _alive(self, callback: Callable[[Any], None]) -> Callable[[Any], None]:
        """Drop a background job's answer that arrives after the browser was destroyed."""
        return lambda value: callback(value) if isValid(self) else None
