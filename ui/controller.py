"""The app's state and the one bridge from the core's threads to the GUI thread.

Core components take plain callbacks; here they become Qt signals of a QObject that lives on
the GUI thread, so every connected slot runs there (queued) whatever thread emitted.
Slow work (loading the model, finalising a recording) runs through ``run_in_background``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from api.client import PostHogClient
from api.sync import SyncStatus, SyncWorker
from desktop_recorder.config import Settings
from desktop_recorder.context import AppContext, SyncNotConfigured
from desktop_recorder.recovery import recover_interrupted
from desktop_recorder.refine import refine_recording
from desktop_recorder.session import (
    FinalLine,
    Notice,
    Partial,
    RecordingSession,
    SessionEvent,
    SessionOptions,
    StopProgress,
)
from desktop_recorder.store import LocalRecording, StoredSegment
from recorder.devices import device_table
from transcription.download import Progress
from transcription.types import Transcriber
from transcription.vad import silero_scorer
from ui.background import run_in_background

log = logging.getLogger(__name__)
TICK_MS = 100
SYNC_POLL_MS = 2000
KEYRING_WAIT_MS = 2000  # building the sync client takes longer: it waits for a locked keyring
KEYRING_WAITS = "PostHog sync is waiting for the system keyring (unlock it if it asks)."
RECOVER_EVERY_MS = 60_000  # a recording whose recorder died while the app runs (a killed `record`)


MODEL_FIELDS = ("model", "language", "device", "compute_type")


def load_transcriber(ctx: AppContext, progress: Progress) -> Transcriber:
    """The settings' model; a named one is downloaded first, reporting ``progress``."""
    return ctx.load_transcriber(progress=progress)


class RecorderController(QObject):
    state_changed = Signal(str)  # loading | idle | recording | finishing | error
    final_line = Signal(object)  # StoredSegment
    partial = Signal(str, str)  # speaker, text ("" clears)
    notice = Signal(str, str)  # level, message
    sync_changed = Signal(str, str)  # kind (synced | pending | offline | blocked | off), text
    levels = Signal(dict)  # source -> dBFS
    elapsed = Signal(float)
    model_progress = Signal(int, int)  # bytes downloaded, total (a named model's first use)
    finishing_progress = Signal(str)  # how far a long pass at stop is (a status, not a notification)
    recovery_progress = Signal(float)  # share of an interrupted recording's untranscribed end done (1: over)
    refined = Signal(str)  # a recording's post-meeting pass ended (local id), well or not
    refine_progress = Signal(str, float)  # a post-meeting pass's local id, and its share done (0-1)
    recording_finished = Signal(object)  # LocalRecording
    stop_failed = Signal()  # the stop could not finish the recording (the next start recovers it)
    recording_starting = Signal()  # a new recording: what was shown of the last one goes
    settings_applied = Signal(object)  # Settings, as saved by the user
    _sync_status = Signal()  # emitted from the sync thread, handled on the GUI thread

    def __init__(
        self,
        ctx: AppContext,
        *,
        transcriber_factory: Callable[[AppContext, Progress], Transcriber] = load_transcriber,
        client_factory: Callable[[], PostHogClient] | None = None,
        session_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.state = "loading"
        self.session: RecordingSession | None = None
        self.transcriber: Transcriber | None = None
        self.sync: SyncWorker | None = None
        self._transcriber_factory = transcriber_factory
        self._client_factory = client_factory or ctx.make_client
        self._session_kwargs = session_kwargs or {}
        self._last_sync_kind = ""
        self._last_sync_state: tuple[str, str] | None = None  # what sync_changed last said
        self._sync_stopping = 0  # old sync workers still stopping: the new one waits for them
        self._sync_opening = False  # a client is being built off the GUI thread (the keyring may wait)
        self._sync_generation = 0  # restart_sync() makes a client built for older settings stale
        self._shut_down = False
        self._devices: list[str] | None = None  # while a recording starts: its device notices
        self._stop_when_started: dict[str, Any] | None = None  # a stop asked for while it started
        self._model_generation = 0  # only the newest load's result (and progress) counts
        # recordings whose post-meeting pass runs on the shared model, and their share done
        self._refining: dict[str, float] = {}
        self.refine_progress.connect(self._on_refine_progress)  # emitted on the pass's thread: queued here
        self._recovering = False  # a recovery runs (the first once the model is there, then every minute)
        self._reload_after_recording = False
        self._tick = QTimer(self, interval=TICK_MS)
        self._tick.timeout.connect(self._on_tick)
        self._sync_poll = QTimer(self, interval=SYNC_POLL_MS)
        self._sync_poll.timeout.connect(self.refresh_sync_state)
        self._sync_status.connect(self.refresh_sync_state)
        self._recover_timer = QTimer(self, interval=RECOVER_EVERY_MS)
        self._recover_timer.timeout.connect(self._recover_again)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start syncing, load the model in the background, then recover crashed recordings
        (with the model: what they saved after their last line is transcribed first)."""
        self.restart_sync()
        self._sync_poll.start()
        self.load_model()

    def _recover(self, transcriber: Transcriber | None) -> None:
        """Finalise the recordings no process owns any more; then again every minute, for a
        recorder that dies while the app runs (its own recordings hold their locks: skipped)."""
        if self._recovering or self._shut_down:
            return
        self._recovering = True
        self._recover_timer.start()

        def done(recovered: list[LocalRecording]) -> None:
            self._recovering = False
            self.recovery_progress.emit(1.0)
            for rec in recovered:
                self.notice.emit("warning", f"Recovered an interrupted recording ({rec.duration_s or 0:.0f} s).")
            if recovered:
                self.wake_sync()

        def failed(exc: Exception) -> None:
            self._recovering = False
            self.recovery_progress.emit(1.0)
            self.notice.emit("error", f"An interrupted recording could not be recovered: {exc}")

        def model() -> Transcriber | None:  # asked only when there is a recording to recover
            if transcriber is not None:  # it shares the model with any recording started meanwhile
                self.notice.emit("info", "Transcribing the end of an interrupted recording; a recording "
                                         "started meanwhile may show its lines a little later.")
            return transcriber

        def progress(_recording_id: str, share: float) -> None:  # on the recovery's thread: queued
            self.recovery_progress.emit(min(share, 0.999))  # 1 means over, said by done() or failed()

        run_in_background(lambda: recover_interrupted(self.ctx.store, self.ctx.paths.data_dir, model,
                                                      progress=progress), done, failed, name="recovery")

    def _recover_again(self) -> None:
        if self.transcriber is not None:  # without one their ends would stay untranscribed: a later
            self._recover(self.transcriber)  # load, or a CLI `sync`, finishes them with the model

    def load_model(self) -> None:
        """(Re)load the settings' model in the background; recording waits until it is there."""
        self._model_generation += 1
        generation = self._model_generation
        self.transcriber = None
        self._set_state("loading")
        def progress(done: int, total: int) -> None:
            if generation == self._model_generation:  # a superseded download stays quiet
                self.model_progress.emit(done, total)

        run_in_background(lambda: self._transcriber_factory(self.ctx, progress),
                          lambda t: self._on_model_loaded(generation, t),
                          lambda exc: self._on_model_failed(generation, exc), name="model-loader")

    def _on_model_loaded(self, generation: int, transcriber: Transcriber) -> None:
        if generation == self._model_generation:
            self.transcriber = transcriber
            self._set_state("idle")
            self._recover(transcriber)

    def _on_model_failed(self, generation: int, exc: Exception) -> None:
        if generation == self._model_generation:
            self.notice.emit("error", f"The speech model could not be loaded: {exc}")
            self._set_state("error")
            self._recover(None)  # still finalised; `refine` can transcribe their ends later

    def shutdown(self) -> None:
        """Quitting: the sync worker is asked to stop but not waited for past a moment. What a
        request in flight sends is kept queued and sent again next time (appends are deduplicated
        by timestamp; a create that may have happened is looked up before it is repeated)."""
        self._shut_down = True
        self._tick.stop()
        self._sync_poll.stop()
        self._recover_timer.stop()
        if self.sync:
            _stop_worker(self.sync, timeout_s=0.5)
            self.sync = None

    def make_client(self) -> PostHogClient:
        return self._client_factory()

    def apply_settings(self, settings: Settings) -> None:
        before = self.ctx.settings
        self.ctx.settings = settings.with_env()
        self.restart_sync()
        self.settings_applied.emit(self.ctx.settings)
        # After a failed load the same settings are tried again: the user may just have
        # downloaded the model in the dialog, or come back online.
        if self.state == "error" or any(getattr(before, f) != getattr(self.ctx.settings, f) for f in MODEL_FIELDS):
            if self.state in ("starting", "recording", "finishing"):
                self._reload_after_recording = True
                self.notice.emit("info", "The new model is used from the next recording.")
            else:
                self.load_model()

    # -- sync ----------------------------------------------------------------------------------

    def restart_sync(self) -> None:
        """A sync worker for the current settings. The old one is stopped in the background (a
        request in flight runs to its timeout: the GUI froze for it) and the new one starts once
        it has: one worker at a time, so never two batches of a recording at once."""
        self._sync_generation += 1
        old, self.sync = self.sync, None
        if old is not None:
            self._sync_stopping += 1

            def stopped(_: object) -> None:
                self._sync_stopping -= 1
                self._start_sync()

            run_in_background(lambda: _stop_worker(old, timeout_s=None), stopped, stopped, name="sync-stop")
        self._start_sync()

    def _start_sync(self) -> None:
        """The client is built on a thread: reading the key may wait for the user to unlock the
        OS keyring (at login, before the desktop's keyring is open), and the tray must not."""
        if self.sync is not None or self._sync_stopping or self._shut_down or self._sync_opening:
            return  # started already, being started, or once the old worker has stopped
        self._sync_opening = True
        self._last_sync_state = None
        generation = self._sync_generation
        run_in_background(self._client_factory, lambda client: self._on_client(generation, client),
                          lambda exc: self._on_client_failed(generation, exc), name="sync-client")
        QTimer.singleShot(KEYRING_WAIT_MS, self, lambda: self._say_keyring_waits(generation))

    def _say_keyring_waits(self, generation: int) -> None:
        """The client is still being built: the keyring waits for the user (nothing else in it can)."""
        if self._sync_opening and generation == self._sync_generation and not self._shut_down:
            self._last_sync_state = ("offline", KEYRING_WAITS)
            self.sync_changed.emit(*self._last_sync_state)

    def _on_client(self, generation: int, client: PostHogClient) -> None:
        self._sync_opening = False
        if generation != self._sync_generation or self._shut_down:
            client.close()  # built for settings changed meanwhile
            self._start_sync()
            return
        self.sync = SyncWorker(self.ctx.store, client, on_change=self._on_sync_status)
        self.sync.start()
        self.refresh_sync_state()

    def _on_client_failed(self, generation: int, exc: Exception) -> None:
        self._sync_opening = False
        if generation != self._sync_generation:
            self._start_sync()
            return
        text = off_text(exc) if isinstance(exc, SyncNotConfigured) else f"PostHog sync is off: {exc}"
        self._last_sync_state = ("off", text)
        self.sync_changed.emit("off", text)

    def wake_sync(self) -> None:  # also the session's thread: ``self.sync`` may be swapped meanwhile
        if sync := self.sync:
            sync.wake()

    def sync_at_pause(self, rid: str) -> None:  # the session's thread
        if sync := self.sync:
            sync.at_pause(rid)

    def _on_sync_status(self, _status: SyncStatus) -> None:  # sync thread
        self._sync_status.emit()

    def refresh_sync_state(self) -> None:
        if self.sync is None:
            return
        pending = self.sync.pending()
        ops = sum(o for o, _ in pending.values())
        segs = sum(s for _, s in pending.values())
        status = self.sync.status
        if status.blocked or status.needs_user:
            kind, text = "blocked", status.blocked or status.needs_user or ""
        elif pending and status.last_error and status.backoff_until:
            kind, text = "offline", f"Offline: {ops} changes and {segs} segments wait ({status.last_error})"
        elif pending:
            kind, text = "pending", f"Syncing: {ops} changes and {segs} segments to send"
        else:
            kind, text = "synced", "Everything is synced"
        if kind != self._last_sync_kind and kind == "synced" and self._last_sync_kind == "offline":
            self.notice.emit("info", "Back online: everything is synced.")
        if kind == "blocked" and self._last_sync_kind != "blocked":
            self.notice.emit("error", f"Sync stopped: {text}" if status.blocked else text)
        self._last_sync_kind = kind
        if (kind, text) != self._last_sync_state:  # polled every 2 s: the browser rebuilds on each
            self._last_sync_state = (kind, text)
            self.sync_changed.emit(kind, text)

    # -- recording -----------------------------------------------------------------------------

    def start_recording(self, *, title: str | None = None, platform: str | None = None,
                        participants: tuple[str, ...] = ()) -> None:
        if self.state != "idle" or self.transcriber is None:
            return
        self.recording_starting.emit()  # before the start's own notices (a missing microphone)
        s = self.ctx.settings
        options = SessionOptions(mic=s.mic, system=s.system, title=title, platform=platform or s.default_platform,
                                 participants=participants, user_name=s.user_name, others_name=s.others_name)
        session = RecordingSession(
            store=self.ctx.store, data_dir=self.ctx.paths.data_dir, transcriber=self.transcriber,
            scorer_factory=silero_scorer, options=options, on_event=self._on_session_event,
            on_segment_stored=self.wake_sync, on_pause=self.sync_at_pause,
            **{"table_factory": device_table, **self._session_kwargs},
        )
        self._devices = []
        self._stop_when_started = None
        self._set_state("starting")
        # Off the GUI thread: a device that refuses to open is tried again for seconds.
        run_in_background(session.start, lambda _rec: self._on_started(session), self._on_start_failed,
                          name="start-recording")

    def _on_started(self, session: RecordingSession) -> None:
        devices, self._devices = self._devices or [], None
        self.session = session
        self._set_state("recording")
        self._tick.start()
        self.notice.emit("info", f"Recording started ({'; '.join(devices)})." + (
            " A transcript is still being improved: live lines may come slower until it is done."
            if self._refining else ""))
        self.wake_sync()
        if self._stop_when_started is not None:  # stopped (or quit) while it started
            self.stop_recording(**self._stop_when_started)

    def _on_start_failed(self, exc: Exception) -> None:  # no device, device busy, disk: say it, stay usable
        log.error("could not start recording", exc_info=exc)
        self._devices = None
        self._set_state("idle")
        self.notice.emit("error", f"Could not start recording: {exc}")
        if self._stop_when_started is not None:
            self.stop_failed.emit()  # nothing to stop: a quit waiting for it goes on
        self._reload_if_asked()

    def stop_recording(self, *, title: str | None = None, participants: list[str] | None = None) -> None:
        """Finalise in the background (tail transcription, final PATCH queued); the GUI stays live."""
        session = self.session
        if self.state == "starting":
            self._stop_when_started = {"title": title, "participants": participants}
            return
        if self.state != "recording" or session is None:
            return
        self._set_state("finishing")
        self._tick.stop()
        run_in_background(lambda: session.stop(title=title, participants=participants), self._on_stopped,
                          self._on_stop_failed, name="finalise-recording")

    def _on_stopped(self, recording: LocalRecording) -> None:
        self.session = None
        self.partial.emit("", "")
        self._set_state("idle")
        self.notice.emit("info", f"Recording stopped ({recording.duration_s or 0:.0f} s).")
        self.recording_finished.emit(recording)
        self.wake_sync()
        self._reload_if_asked()

    def _reload_if_asked(self) -> None:
        if self._reload_after_recording:
            self._reload_after_recording = False
            self.load_model()

    def _on_stop_failed(self, exc: Exception) -> None:
        self.session = None
        self.notice.emit("error", f"Finishing the recording failed: {exc}. It will be recovered on the next start.")
        self._set_state("idle")
        self.stop_failed.emit()
        self._reload_if_asked()

    def refine_recording(self, recording_id: str) -> str | None:
        """Transcribe a recording's saved audio again with the loaded model; None once started,
        else why not. Started only while idle; a recording started meanwhile shares the model
        (and is told it may be slower)."""
        transcriber = self.transcriber
        if recording_id in self._refining:
            return "This transcript is already being improved."
        if self.state != "idle" or transcriber is None:
            why = "The transcript can be improved once the model is loaded and nothing is being recorded."
            self.notice.emit("warning", why)
            return why
        self._refining[recording_id] = 0.0

        def done(lines: list[StoredSegment]) -> None:
            self._refining.pop(recording_id, None)
            self.notice.emit("info", f"Transcript improved: {len(lines)} lines (kept on this computer).")
            self.refined.emit(recording_id)

        def failed(exc: Exception) -> None:
            self._refining.pop(recording_id, None)
            if self._deleted(recording_id):  # e.g. by `desktop-recorder delete` meanwhile
                self.notice.emit("info", "The recording was deleted while its transcript was being improved.")
            else:
                self.notice.emit("error", f"The transcript could not be improved: {exc}")
            self.refined.emit(recording_id)

        def progress(share: float) -> None:
            self.refine_progress.emit(recording_id, share)

        run_in_background(lambda: refine_recording(self.ctx.store, transcriber, recording_id, progress), done,
                          failed, name="refine")
        return None

    def refine_done(self, recording_id: str) -> float | None:
        """The share of a recording's post-meeting pass done, None when none runs."""
        return self._refining.get(recording_id)

    def _on_refine_progress(self, recording_id: str, share: float) -> None:
        if recording_id in self._refining:  # not a late one after the pass ended
            self._refining[recording_id] = share

    def _deleted(self, recording_id: str) -> bool:
        try:
            return self.ctx.store.get_recording(recording_id).remote_state == "deleting"
        except KeyError:
            return True

    def edit_live(self, fields: dict[str, Any]) -> bool:
        """Title/platform/participants edited during the meeting (the session's stop keeps what
        is stored then, so the final PATCH carries them); False if they could not be stored."""
        if not (self.session and self.session.recording):
            return False
        try:
            self.ctx.store.edit_recording(self.session.recording.id, fields)
        except sqlite3.Error as exc:  # a full disk: said, not raised into the event loop
            log.error("could not store the meeting's details: %s", exc)
            self.notice.emit("error", f"Could not save the meeting's details ({exc}); the stop saves them.")
            return False
        self.wake_sync()
        return True

    # -- bridge: core threads → signals --------------------------------------------------------

    def _on_session_event(self, event: SessionEvent) -> None:  # transcriber / capture threads
        if isinstance(event, FinalLine):
            self.final_line.emit(event.segment)
        elif isinstance(event, Partial):
            self.partial.emit(event.speaker, event.text)
        elif isinstance(event, StopProgress):
            self.finishing_progress.emit(event.message)
        elif isinstance(event, Notice):
            if self._devices is not None and event.level == "info":  # during start (its background thread)
                self._devices.append(event.message)  # said once, with "Recording started"
            else:
                self.notice.emit(event.level, event.message)

    def _on_tick(self) -> None:
        if self.session is None:
            return
        self.levels.emit({h.source: h.level_dbfs for h in self.session.health()})
        self.elapsed.emit(self.session.elapsed_s)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_changed.emit(state)


def _stop_worker(worker: SyncWorker, *, timeout_s: float | None) -> None:
    """``timeout_s`` None: until it has stopped (a request in flight ends at its timeout)."""
    worker.stop(timeout=timeout_s)
    if not worker.running:
        worker.client.close()


def off_text(exc: SyncNotConfigured) -> str:
    """Why sync is off, with where to turn it on in this app (the core's message names the CLI)."""
    return f"PostHog sync is off: {exc.reason}. Connect PostHog in Settings to sync recordings."
