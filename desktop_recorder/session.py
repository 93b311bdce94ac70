"""One meeting being recorded: capture → streaming transcription → store (→ sync worker).

Plain callbacks out (``on_event``); the tray app's bridge turns them into Qt signals, the CLI
prints them. Threads: the capture pipeline (audio to disk), one transcription worker that owns
the model, and the caller's.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from desktop_recorder.config import DEFAULT_MIC_LABEL
from desktop_recorder.recovery import transcribe_tail
from desktop_recorder.store import LocalRecording, Store, StoredSegment, new_recording_id, recording_lock
from recorder.devices import DeviceTable, InputDevice, NoAudioDevice, device_table, resolve
from recorder.health import AudioFileWatch, HealthWatch, LagWatch
from recorder.pipeline import CapturePipeline, SourceHealth
from transcription.echo import EchoGate, EchoVerdict
from transcription.formats import clock, percent
from transcription.stream import StreamingEngine
from transcription.types import Audio, FinalSegment, PartialText, Source, Transcriber
from transcription.vad import SpeechScorer, StreamingVad

log = logging.getLogger(__name__)
_STOP = None
HEALTH_EVERY_S = 0.5
PROGRESS_EVERY_S = 20.0  # how often a long pass at stop says how far it is
SETTLED_EVERY_S = 10.0  # the settled time is stored at once for a line waiting for it, else this often


@dataclass(frozen=True)
class SessionOptions:
    mic: str = "auto"
    system: str = "auto"
    title: str | None = None
    platform: str = "desktop_audio"
    participants: tuple[str, ...] = ()
    user_name: str | None = None
    others_name: str = "Others"

    @property
    def mic_label(self) -> str:
        return self.user_name or (self.participants[0] if self.participants else DEFAULT_MIC_LABEL)


@dataclass(frozen=True)
class FinalLine:
    segment: StoredSegment


@dataclass(frozen=True)
class Partial:
    speaker: str
    text: str


@dataclass(frozen=True)
class Notice:
    level: str  # "info" | "warning" | "error"
    message: str


@dataclass(frozen=True)
class StopProgress:
    """How far a long pass at stop is (what was said after a model failure): a status, not news."""

    message: str


SessionEvent = FinalLine | Partial | Notice | StopProgress




@dataclass
class RecordingSession:
    store: Store
    data_dir: Path
    transcriber: Transcriber
    scorer_factory: Callable[[], SpeechScorer]
    options: SessionOptions
    on_event: Callable[[SessionEvent], None]
    on_segment_stored: Callable[[], None] = lambda: None
    # A pause with lines stored since the last one (see ``_tell_pause``); given the recording's id.
    on_pause: Callable[[str], None] = lambda _rid: None
    table_factory: Callable[[], DeviceTable] = device_table
    recording: LocalRecording | None = None
    _audio: queue.Queue[tuple[Source, Audio] | None] = field(default_factory=queue.Queue)
    _engines: dict[Source, StreamingEngine] = field(default_factory=dict)
    _speakers_heard: dict[str, None] = field(default_factory=dict)
    _pipeline: CapturePipeline | None = None
    _worker: threading.Thread | None = None
    _lock: FileLock | None = None
    _file_watch: AudioFileWatch = field(default_factory=AudioFileWatch)
    _health_checked_at: float = 0.0
    _watch: HealthWatch = field(default_factory=lambda: HealthWatch(()))
    _lag: LagWatch = field(default_factory=LagWatch)
    _echo: EchoGate | None = None  # with both sources: keeps mic echoes of the speakers out of "Me"
    _echo_told: bool = False
    _listener_failed: bool = False  # said once: the listener raised
    # Lines decided but not yet stored (the database refused them: a full disk), in order, with
    # the echo verdict of a mic line left out; retried until stored. ``_unsaved_told``: said so.
    _unsaved: list[tuple[FinalSegment, EchoVerdict | None]] = field(default_factory=list)
    _unsaved_told: bool = False
    # What the database holds of ``_settled_ms`` and where the latest line stored starts.
    _settled_written: float = 0.0
    _settled_written_at: float = 0.0  # time.monotonic()
    _stored_up_to_ms: float = -1.0
    _pause_told_ms: float = -1.0  # ``_stored_up_to_ms`` when a pause was last told
    # Live transcription failed (the model raised): why, and about when in the recording.
    _failed: tuple[str, float] | None = None
    _stop_seen: bool = False  # the worker has taken the stop sentinel off the queue

    def resolve_devices(self) -> dict[Source, InputDevice]:
        table = self.table_factory()
        devices: dict[Source, InputDevice] = {}
        for role, spec in (("mic", self.options.mic), ("system", self.options.system)):
            try:
                dev = resolve(table, role, spec)  # type: ignore[arg-type]
            except NoAudioDevice as exc:
                if spec != "auto":
                    raise
                self._tell(Notice("warning", f"{exc} Recording without it."))
                continue
            if dev is not None:
                devices[role] = dev  # type: ignore[index]
        if not devices:
            raise NoAudioDevice("Nothing to record: no microphone and no system-audio source.")
        mic, system = devices.get("mic"), devices.get("system")
        if mic is not None and system is not None and mic.name == system.name:  # chosen twice: heard twice
            as_system = mic.kind == "system"  # a loopback source: what the others say
            del devices["mic" if as_system else "system"]
            self._tell(Notice("warning", f"The microphone and the system audio are the same input ({mic.label}): "
                                         f"recorded once, as the {'system audio' if as_system else 'microphone'}."))
        return devices

    def _current_device(self, source: Source) -> InputDevice | None:
        """The device ``source`` should use now: the current default for ``auto`` (the user may
        have switched to headphones), else the chosen one. Only the sound server is asked."""
        spec = self.options.mic if source == "mic" else self.options.system
        table = self.table_factory()
        if table.server is None:  # PortAudio cannot re-list devices while streams are open
            return None
        try:
            return resolve(table, source, spec)
        except NoAudioDevice:
            return None

    def start(self) -> LocalRecording:
        devices = self.resolve_devices()
        # Locked before the row exists: a recovery running meanwhile (the tray starting, a `sync`)
        # must never take a recording that is just starting for one whose recorder was killed.
        rid = new_recording_id()
        self._lock = recording_lock(self.data_dir, rid)
        self._lock.acquire()
        try:
            self.recording = self.store.create_recording(
                platform=self.options.platform, title=self.options.title,
                participants=list(self.options.participants), audio_path=None, recording_id=rid,
                settled_ms=0.0 if len(devices) > 1 else None,  # two streams: their lines are sent in time order
            )
        except BaseException:
            self._lock.release()
            raise
        try:  # a full disk (the audio file, the database) or a device that cannot be opened
            wav = self.data_dir / "audio" / f"{rid}.wav"
            self.store.set_audio_path(rid, str(wav))
            self._echo = EchoGate() if len(devices) == 2 else None
            for source, dev in devices.items():
                self._engines[source] = StreamingEngine(source, self.transcriber, StreamingVad(self.scorer_factory()))
                self._tell(Notice("info", f"{'Microphone' if source == 'mic' else 'System audio'}: {dev.label}"))
            self._watch = HealthWatch(tuple(devices))
            self._pipeline = CapturePipeline(devices, wav, lambda s, a: self._audio.put((s, a)),
                                             follow=self._current_device,
                                             on_notice=lambda message: self._tell(Notice("warning", message)))
            self._pipeline.start()
        except Exception as exc:
            self._pipeline = None
            self._engines.clear()
            try:
                self.store.finish_recording(rid, status="error", duration_s=0, title=self.options.title,
                                            participants=list(self.options.participants), error_message=str(exc))
            except sqlite3.Error as db_exc:  # left "recording" and unlocked: the next recovery finishes it
                log.error("recording %s: cannot mark it failed: %s", rid, db_exc)
            finally:
                self._lock.release()
            raise
        self._worker = threading.Thread(target=self._transcribe_loop, name="transcriber", daemon=True)
        self._worker.start()
        return self.recording

    def health(self) -> list[SourceHealth]:
        """Per source: level (dBFS) for meters, capture counters, silence inserted for gaps."""
        return self._pipeline.health() if self._pipeline else []

    @property
    def backlog_s(self) -> float:
        """Audio heard but not yet final, across sources: how far transcription is behind."""
        return max((e.backlog_s for e in self._engines.values()), default=0.0)

    @property
    def elapsed_s(self) -> float:
        return self._pipeline.duration_s if self._pipeline else 0.0

    def stop(self, *, title: str | None = None, participants: list[str] | None = None) -> LocalRecording:
        """Stop capture, transcribe the tail, store the last finals, enqueue the final PATCH."""
        assert self.recording is not None and self._pipeline is not None and self._worker is not None
        rid = self.recording.id
        started = time.monotonic()
        self._pipeline.stop()
        try:
            self.store.set_status(rid, "processing")
        except sqlite3.OperationalError as exc:  # a full disk: the tail is still transcribed and kept
            log.error("recording %s: cannot mark it processing: %s", rid, exc)
        self._audio.put(_STOP)
        self._worker.join()
        self._tell_audio_file_state(final=True)
        try:
            self._save()
            problem = self._transcribe_rest() if self._failed else None
            self._settle_all()  # if finishing fails below, the lines stored still sync
            if self._unsaved:  # still refused, and this process is ending: say what is lost
                log.error("recording %s: %d transcript lines could not be stored", rid, len(self._unsaved))
                self._tell(Notice("error", f"{len(self._unsaved)} transcript lines could not be saved and are "
                                              "lost (the database still refuses them)."))
            # Not given: as stored, which the recordings browser may have edited during the meeting.
            stored = self.store.get_recording(rid)
            names = participants if participants is not None else stored.participants
            if not names:
                names = list(self._speakers_heard)
            # Refused too (disk still full): raised, the recording stays live and unlocked, and
            # the next start or `sync` finishes it from what was saved.
            self.store.finish_recording(rid, status="ready", duration_s=self._pipeline.duration_s,
                                        title=title or stored.title, participants=names, error_message=problem)
        finally:
            if self._lock:
                self._lock.release()
        self.on_segment_stored()
        log.info("recording %s finalised in %.2f s after stop", rid, time.monotonic() - started)
        self.recording = self.store.get_recording(rid)
        return self.recording

    def _transcribe_rest(self) -> str | None:
        """Live transcription failed: what each source said after its last line is transcribed
        now from the audio file, as a recovery would. None once it is, else what went wrong."""
        assert self.recording is not None and self._failed is not None
        reason, at_ms = self._failed
        rid = self.recording.id
        before = {seg.id for seg in self.store.segments(rid)}
        self._tell(Notice("info", f"Transcribing the audio recorded since transcription stopped at {clock(at_ms)}…"))
        told = [time.monotonic()]

        def progress(done: float) -> None:  # an hour's audio after an early failure takes minutes
            if done < 1 and time.monotonic() - told[0] >= PROGRESS_EVERY_S:
                told[0] = time.monotonic()
                self._tell(StopProgress(f"Transcribing the audio since {clock(at_ms)}: {percent(done)} done…"))

        try:
            added = transcribe_tail(self.store, self.transcriber, self.store.get_recording(rid),
                                    {source: self._speaker(source) for source in ("mic", "system")}, progress)
        except Exception as exc:
            log.exception("recording %s: cannot transcribe the audio after the failure", rid)
            self._show_added(before)  # those stored before it failed
            self._tell(Notice("error", f"The audio after {clock(at_ms)} could not be transcribed: {exc}. "
                                       "It is kept; refine the recording to transcribe it."))
            return (f"Transcription stopped at {clock(at_ms)} ({reason}); the audio after that is saved "
                    "but not all of it is transcribed.")
        self._show_added(before)
        self._tell(Notice("info", f"Transcribed {added} more lines from the audio after {clock(at_ms)}."))
        return None

    def _show_added(self, before: set[int]) -> None:
        """Lines stored since the ids in ``before`` to the listeners, their speakers as heard."""
        assert self.recording is not None
        for seg in self.store.segments(self.recording.id):
            if seg.id not in before:
                if seg.speaker:
                    self._speakers_heard[seg.speaker] = None
                self._tell(FinalLine(seg))

    # -- transcription worker ------------------------------------------------------------------

    def _transcribe_loop(self) -> None:
        try:
            while self._feed(block=not any(e.has_work() for e in self._engines.values())):
                self._check_health()
                engine = self._next_engine()
                if engine is not None:
                    self._handle(engine.poll())
                self._release_mic()
                # Only now: a poll's engine is settled past all its finals before the first is
                # stored, so marking between them would let a later line pass an earlier one.
                self._mark_settled()
                self._tell_pause()
            for engine in sorted(self._engines.values(), key=lambda e: e.source != "system"):
                self._handle(engine.finish())
            self._release_mic(flush=True)
        except Exception as exc:  # keep the audio file; say what happened
            log.exception("transcription failed")
            # Where the transcript stops: the earliest audio an engine had not finalised.
            self._failed = (str(exc) or type(exc).__name__,
                            min((e.settled_ms for e in self._engines.values()), default=0.0))
            self._keep_held_lines()  # not settled: lines from the audio after this come at stop
            self._tell(Notice("error", f"Transcription stopped: {exc}. The audio is still being recorded; "
                                       "it is transcribed when the recording stops."))
            while not self._stop_seen and self._audio.get() is not _STOP:  # failed in the final flush: seen
                pass

    def _tell_audio_file_state(self, *, final: bool = False) -> None:
        assert self._pipeline is not None
        for level, message in self._file_watch.update(self._pipeline.write_error, self._pipeline.silenced_s,
                                                      time.monotonic(), final=final):
            self._tell(Notice(level, message))

    def _check_health(self) -> None:
        if self._pipeline is None:
            return
        self._tell_audio_file_state()
        now = time.monotonic()
        if now - self._health_checked_at < HEALTH_EVERY_S:
            return
        self._health_checked_at = now
        if self._unsaved:
            self._save()  # space may have been freed while nobody spoke
        health = self._pipeline.health()
        for warning in self._watch.update(now, {h.source: h.level_dbfs for h in health},
                                          {h.source: h.alive for h in health}, self._pipeline.echo_db):
            self._tell(Notice("warning", warning))
        lag = self._lag.update(self.backlog_s)
        if lag:
            self._tell(Notice("warning" if self._lag.behind else "info", lag))

    def _feed(self, *, block: bool) -> bool:
        """Move all queued audio into the engines; False once the stop sentinel is seen."""
        try:
            item = self._audio.get(timeout=0.2) if block else self._audio.get_nowait()
        except queue.Empty:
            return True
        while True:
            if item is _STOP:
                self._stop_seen = True
                return False
            source, audio = item
            self._engines[source].insert_audio(audio)
            if self._echo is not None:
                self._echo.add_audio(source, audio)
            try:
                item = self._audio.get_nowait()
            except queue.Empty:
                return True

    def _next_engine(self) -> StreamingEngine | None:
        """Finals first (closed utterances), then the partial that waited longest."""
        engines = [e for e in self._engines.values() if e.has_work()]
        engines.sort(key=lambda e: (not e.has_final_work(), -e.backlog_s))
        return engines[0] if engines else None

    @property
    def _in_time_order(self) -> bool:
        """Two streams: their lines go to the server in time order, up to the settled time."""
        return len(self._engines) > 1

    def _settled_ms(self) -> float:
        """Audio time before which every line of both streams is decided and stored: no engine
        has audio before it left to finalise, no mic line before it waits for the echo check, no
        line before it waits for the database."""
        bounds = [engine.settled_ms for engine in self._engines.values()]
        if self._echo is not None and self._echo.held_from_ms is not None:
            bounds.append(self._echo.held_from_ms)
        bounds += [line.start_ms for line, _echo in self._unsaved]
        return min(bounds, default=0.0)

    def _mark_settled(self) -> None:
        """Tell the sync (through the database, which a ``sync`` run elsewhere reads too) how
        far the transcript is settled: at once when a line this session stored waits for it, and
        every ``SETTLED_EVERY_S`` for one stored by others (an echo line put back meanwhile)."""
        assert self.recording is not None
        now = time.monotonic()
        if not self._in_time_order or (self._stored_up_to_ms < self._settled_written
                                       and now - self._settled_written_at < SETTLED_EVERY_S):
            return
        settled = self._settled_ms()
        if settled <= self._settled_written:
            return
        try:
            self.store.set_settled(self.recording.id, settled)
        except sqlite3.OperationalError as exc:  # a full disk: the lines wait, stored, until it is told
            log.debug("cannot record how far the transcript is settled: %s", exc)
            return
        self._settled_written, self._settled_written_at = settled, now
        self.on_segment_stored()

    def _tell_pause(self) -> None:
        """At a pause (nobody speaking on either stream, every line heard decided and stored) no
        line is coming soon to join the lines stored since the last one: the sync may send them
        now rather than when their batch is due (a few seconds later)."""
        assert self.recording is not None
        if self._stored_up_to_ms <= self._pause_told_ms or self._unsaved:
            return
        if not all(engine.idle for engine in self._engines.values()) or (self._echo is not None and self._echo.held):
            return
        self._pause_told_ms = self._stored_up_to_ms
        self.on_pause(self.recording.id)

    def _settle_all(self) -> None:
        """No more lines will come from this session: every stored one may be sent."""
        assert self.recording is not None
        if not self._in_time_order:
            return
        try:
            self.store.set_settled(self.recording.id, None)
        except sqlite3.Error as exc:  # a full disk: they go once the recording is finished or recovered
            log.error("recording %s: cannot let all its lines sync: %s", self.recording.id, exc)

    def _speaker(self, source: Source) -> str:
        return self.options.mic_label if source == "mic" else self.options.others_name

    def _handle(self, events: list[FinalSegment | PartialText]) -> None:
        assert self.recording is not None
        for ev in events:
            speaker = self._speaker(ev.source)
            if isinstance(ev, PartialText):
                self._tell(Partial(speaker, ev.text))
            elif self._echo is not None and ev.source == "mic":
                self._echo.hold(ev)  # until the system side of its time window is final
            else:
                if self._echo is not None:
                    self._echo.add_system(ev)
                self._commit(ev)

    def _release_mic(self, *, flush: bool = False) -> None:
        if self._echo is None or not self._echo.held:
            return
        for seg, verdict in self._echo.release(self._engines["system"].settled_ms, flush=flush):
            if verdict.echo:
                log.info("left out mic echo at %.1f s (audio %s, text %.2f): %r",
                         seg.start_ms / 1000, verdict.audio_share, verdict.text_share, seg.text)
            self._save(seg, verdict if verdict.echo else None)

    def _keep_held_lines(self) -> None:
        """Transcription failed: mic lines waiting for the echo check are stored as they are."""
        if self._echo is None:
            return
        try:
            for seg, _verdict in self._echo.release(0.0, flush=True):
                self._commit(seg)
        except Exception:
            log.exception("could not store the mic lines held for the echo check")

    def _commit(self, ev: FinalSegment) -> None:
        self._save(ev, None)

    def _save(self, line: FinalSegment | None = None, echo: EchoVerdict | None = None) -> None:
        """Store ``line`` (with ``echo``: as a mic line left out) after any still waiting. When
        the database cannot take them (a full disk), they wait in memory, in order, and are tried
        again with the next line, every half second, and at stop: freeing space loses nothing."""
        if line is not None:
            self._unsaved.append((line, echo))
        stored_any = False
        while self._unsaved:
            try:
                stored = self._store(*self._unsaved[0])
            except sqlite3.OperationalError as exc:  # disk full, I/O error, locked too long
                if not self._unsaved_told:
                    self._unsaved_told = True
                    log.error("cannot store transcript lines: %s", exc)
                    self._tell(Notice("error", f"Transcript lines cannot be saved ({exc}). They are kept "
                                                  "and saved once they can be: free some disk space."))
                break
            self._unsaved.pop(0)  # stored: whatever showing it does, it is never stored again
            stored_any = True
            self._shown(stored)
        if stored_any:
            if not self._in_time_order:  # else once the settled time lets them go (``_mark_settled``)
                self.on_segment_stored()
            if self._unsaved_told and not self._unsaved:
                self._unsaved_told = False
                self._tell(Notice("info", "The transcript lines that were waiting are saved."))

    def _store(self, line: FinalSegment, echo: EchoVerdict | None) -> StoredSegment | None:
        """One line into the database (None: stored as a left-out echo)."""
        assert self.recording is not None
        speaker = self._speaker(line.source)
        if echo is None:
            self._speakers_heard[speaker] = None
            stored = self.store.add_segment(
                self.recording.id, start_ms=line.start_ms, end_ms=line.end_ms, source=line.source,
                speaker=speaker, text=line.text, confidence=line.confidence,
            )
            self._stored_up_to_ms = max(self._stored_up_to_ms, line.start_ms)
            return stored
        self.store.add_echo_segment(self.recording.id, start_ms=line.start_ms, end_ms=line.end_ms, text=line.text,
                                    speaker=speaker, confidence=line.confidence,
                                    audio_share=echo.audio_share, text_share=echo.text_share)
        return None

    def _tell(self, event: SessionEvent) -> None:
        """To the listener (the terminal, the tray app's bridge); its failure is not the
        recording's: output into a closed pipe or onto a full disk must not stop transcription."""
        try:
            self.on_event(event)
        except Exception:
            if not self._listener_failed:
                self._listener_failed = True
                log.exception("showing the live transcript failed; recording and transcribing go on")

    def _shown(self, stored: StoredSegment | None) -> None:
        """A stored line to the listeners (None: an echo left out, which clears the mic's partial)."""
        if stored is not None:
            self._tell(FinalLine(stored))
            return
        self._tell(Partial(self.options.mic_label, ""))
        if not self._echo_told:
            self._echo_told = True
            self._tell(Notice("info", "Lines your microphone picked up from the speakers were not added "
                                         "as yours (echo). Headphones avoid this."))
