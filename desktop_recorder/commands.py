"""The CLI's commands, each a small function over the shared core."""

from __future__ import annotations

import argparse
import getpass
import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from api.client import PostHogClient, validate_host, validate_project
from api.errors import ApiError, CredentialsRejected, InvalidHost, MissingScope, NetworkError
from api.sync import SyncWorker
from desktop_recorder.cli import StopSignal, print_json, say
from desktop_recorder.config import DEFAULT_MIC_LABEL, save_settings
from desktop_recorder.context import AppContext, SyncNotConfigured
from desktop_recorder.recovery import recover_interrupted
from desktop_recorder.refine import CannotRefine, refine_recording
from desktop_recorder.secrets import ENV_KEY, SecretStoreUnavailable, has_api_key, keyring_check, set_api_key
from desktop_recorder.session import (
    FinalLine,
    Notice,
    Partial,
    RecordingSession,
    SessionEvent,
    SessionOptions,
    StopProgress,
)
from desktop_recorder.store import LIVE_STATUSES, LocalRecording, StoredSegment, is_owned
from desktop_recorder.terminal import DownloadBar, LiveTranscript, PassBar, TailBars
from recorder.capture import CaptureError
from recorder.devices import NoAudioDevice, device_table, load_sounddevice, loaded_library, resolve
from transcription.download import cached_model
from transcription.formats import clock, lines_of, render
from transcription.model import ModelUnavailable, WhisperTranscriber, resolve_model
from transcription.offline import UnreadableAudio, transcribe_file
from transcription.types import Transcriber
from transcription.vad import silero_scorer

log = logging.getLogger(__name__)
FINAL_SYNC_WAIT_S = 30.0


def _load_model(ctx: AppContext, spec: str | None) -> WhisperTranscriber:
    """The model, with a progress bar on stderr while a named model is first downloaded."""
    with DownloadBar(spec or ctx.settings.model) as bar:
        return ctx.load_transcriber(spec, progress=bar.update)


def _sync_worker(ctx: AppContext) -> SyncWorker | None:
    try:
        client = ctx.make_client()
    except SyncNotConfigured as exc:
        say(str(exc) + " Recordings are kept locally.")
        return None
    return SyncWorker(ctx.store, client)


def _printer(live: LiveTranscript) -> Callable[[SessionEvent], None]:
    def on_event(event: SessionEvent) -> None:
        if isinstance(event, FinalLine):
            seg = event.segment
            live.final(seg.speaker or "", f"[{clock(seg.timestamp_ms)}] {seg.speaker}: {seg.text}")
        elif isinstance(event, Notice):
            live.message(f"{event.level}: {event.message}" if event.level != "info" else event.message)
        elif isinstance(event, Partial):
            live.partial(event.speaker, event.text)
        elif isinstance(event, StopProgress):
            live.message(event.message)

    return on_event


def _recover(ctx: AppContext, model: Callable[[], Transcriber | None]) -> None:
    bars = TailBars()
    try:
        recovered = recover_interrupted(ctx.store, ctx.paths.data_dir, model, progress=bars.update)
    except KeyboardInterrupt:
        bars.close()  # before the words below
        say("Stopped: an interrupted recording is not finished yet. Its audio and the lines transcribed so far "
            "are kept; the next 'desktop-recorder sync' (or the app) goes on from there.")
        raise
    finally:
        bars.close()
    for rec in recovered:
        say(f"Recovered an interrupted recording ({rec.id}, {rec.duration_s or 0:.0f} s).")


def _model_for_recovery(ctx: AppContext) -> Transcriber | None:
    """The model, to transcribe what an interrupted recording saved after its last line."""
    say("Loading the model to transcribe the end of an interrupted recording…")
    try:
        return _load_model(ctx, None)
    except ModelUnavailable as exc:
        say(f"warning: {exc}; its audio after the last line stays untranscribed (`refine` can do it later)")
        return None


def cmd_record(ctx: AppContext, args: argparse.Namespace) -> int:
    s = ctx.settings
    options = SessionOptions(
        mic=args.mic or s.mic, system=args.system or s.system, title=args.title,
        platform=args.platform or s.default_platform, participants=tuple(args.participant),
        user_name=s.user_name, others_name=s.others_name,
    )
    try:
        started = time.perf_counter()
        model = _load_model(ctx, args.model)
        say(f"Model {model.choice.spec} loaded in {time.perf_counter() - started:.1f} s.")
    except ModelUnavailable as exc:
        say(f"error: {exc}")
        return 2
    worker = _sync_worker(ctx)
    live = LiveTranscript()
    session = RecordingSession(
        store=ctx.store, data_dir=ctx.paths.data_dir, transcriber=model, scorer_factory=silero_scorer,
        options=options, on_event=_printer(live), on_segment_stored=worker.wake if worker else (lambda: None),
        on_pause=worker.at_pause if worker else (lambda _rid: None),
    )
    stop = StopSignal()
    stop.install()
    with live.logging_here():  # a warning meanwhile must not land on the partial text
        try:
            recording = session.start()
        except (NoAudioDevice, CaptureError) as exc:
            say(f"error: {exc}")
            return 2
        except (OSError, sqlite3.Error) as exc:  # a full disk: the audio file or the recording cannot be made
            say(f"error: cannot start the recording: {exc}")
            return 2
        if worker:
            worker.start()
        say(f"Recording {recording.id}{f' ({args.duration:g} s)' if args.duration else ''}. Ctrl-C to stop.")
        stop.wait(args.duration)
        live.message(f"Stopping ({stop.reason}); transcribing the rest…")
        try:
            recording = session.stop()
        except sqlite3.OperationalError as exc:  # a disk still full: what was saved is kept
            live.close()
            say(f"error: cannot finish the recording ({exc}). Free some disk space and run "
                "'desktop-recorder sync': it finishes the recording from what was saved.")
            return 1
        live.close()
    say(f"Recorded {recording.duration_s or 0:.1f} s, {len(ctx.store.segments(recording.id))} segments; "
        f"audio in {recording.audio_path}.")
    if args.refine:
        _refine(ctx, model, recording.id, stop)
    _recover(ctx, lambda: model)  # after the meeting: transcribing an old tail must not delay this one
    if worker is None:
        return 0
    worker.stop(timeout=0)  # a request it has in flight is waited for by the drain, which Ctrl-C ends
    stop.listen_again()  # a Ctrl-C pressed while the tail was transcribed did not answer this offer
    say(f"Waiting up to {FINAL_SYNC_WAIT_S:.0f} s for PostHog ({'Ctrl-C again' if stop.signalled else 'Ctrl-C'} "
        "to stop waiting)…")
    return _final_sync(ctx, worker, recording.id, stop)


def _final_sync(ctx: AppContext, worker: SyncWorker, recording_id: str, stop: StopSignal) -> int:
    database_error = None
    try:
        if _drain_until_given_up(worker, stop):
            rec = ctx.store.get_recording(recording_id)
            say(f"Synced to PostHog as {rec.server_id}.")
            return 0
    except sqlite3.OperationalError as exc:  # a full disk: what the server took is sent again later
        database_error = f"the local database cannot be written: {exc}"
    ops, segs = ctx.store.pending_counts().get(recording_id, (0, 0))
    problem = ("you stopped waiting" if stop.again.is_set()
               else database_error or worker.status.blocked or worker.status.last_error or "server not reachable")
    say(f"Not synced yet ({problem}): {ops} operations and {segs} segments pending. The recording is safe "
        "locally; run 'desktop-recorder sync' later.")
    return 0


def _drain_until_given_up(worker: SyncWorker, stop: StopSignal) -> bool:
    """``worker.drain`` that another signal (``stop.again``) ends at once, even in the middle of a
    request (which can take the whole read timeout): the request is left to the exiting process.
    Nothing is lost by that: what the server took without our knowing is sent again and
    deduplicated, and a create is adopted as an orphan by the next sync."""
    give_up = stop.again
    outcome: list[bool | Exception] = []

    def run() -> None:
        try:
            outcome.append(worker.drain(FINAL_SYNC_WAIT_S, give_up=give_up))
        except Exception as exc:  # noqa: BLE001 - raised again below unless the user stopped waiting
            outcome.append(exc)

    thread = threading.Thread(target=run, name="final-sync", daemon=True)
    thread.start()
    while thread.is_alive() and not give_up.is_set():
        thread.join(0.1)
        stop.poll()
    thread.join(0.5)  # a wait between retries ends at once when given up
    if outcome and isinstance(outcome[0], Exception) and not give_up.is_set():
        raise outcome[0]
    return outcome == [True]


def cmd_transcribe(ctx: AppContext, args: argparse.Namespace) -> int:
    try:
        model = _load_model(ctx, args.model)
        with PassBar(f"Transcribing {args.file.name}") as bar:
            lines = transcribe_file(model, args.file, progress=bar.update)
    except (ModelUnavailable, UnreadableAudio) as exc:
        say(f"error: {exc}")
        return 2
    sys.stdout.write(render(lines, args.format, title=args.file.name))
    if not lines:
        say(f"No speech found in {args.file}.")
    return 0


def cmd_devices(_ctx: AppContext, _args: argparse.Namespace) -> int:
    table = device_table()
    print(f"Audio backend: {table.server or 'PortAudio (no PulseAudio/PipeWire server found)'}")
    if not table.devices:
        print("No input devices. Is PulseAudio or PipeWire running, and is a microphone connected?")
        return 1
    for dev in table.devices:
        marks = [m for m, name in (("MIC", table.default_mic), ("SYSTEM", table.default_system)) if name == dev.name]
        print(f"{'/'.join(marks) or '-':<10} {dev.label}")
    if table.system_hint:
        print(table.system_hint)
    return 0


def cmd_sync(ctx: AppContext, _args: argparse.Namespace) -> int:
    _recover(ctx, lambda: _model_for_recovery(ctx))
    try:
        worker = SyncWorker(ctx.store, ctx.make_client())
    except SyncNotConfigured as exc:
        say(f"error: {exc}")
        return 1 if ctx.store.pending_counts() else 0
    stop = StopSignal()  # Ctrl-C ends the wait at once, even mid-request, and says what is left
    stop.install()
    stop.listen_again()
    if waiting := len(worker.pending()):  # a slow host is not taken for a hung command
        say(f"Syncing {waiting} recording{'s' if waiting != 1 else ''} with {worker.client.host} (Ctrl-C stops)…")
    done = _drain_until_given_up(worker, stop)
    pending = worker.pending()
    if done:
        say("Everything is synced.")
        return 0
    why = "You stopped it." if stop.again.is_set() else worker.status.blocked or worker.status.last_error or ""
    say(f"Still pending: {len(pending)} recording{'s' if len(pending) != 1 else ''} "
        f"({sum(o for o, _ in pending.values())} operations, {sum(s for _, s in pending.values())} segments). "
        f"{why}".strip())
    return 130 if stop.again.is_set() else 1


def cmd_list(ctx: AppContext, args: argparse.Namespace) -> int:
    pending = ctx.store.pending_counts()
    rows = []
    for rec in ctx.store.list_recordings():
        ops, segs = pending.get(rec.id, (0, 0))
        rows.append({
            "id": rec.id, "server_id": rec.server_id, "title": rec.title, "status": rec.status,
            "started_at": rec.started_at, "duration_seconds": rec.duration_s,
            "segments": len(ctx.store.segments(rec.id)), "sync_state": rec.remote_state,
            "pending_operations": ops, "pending_segments": segs, "last_error": rec.last_error,
            "audio_path": rec.audio_path, "error_message": rec.error_message, "interrupted": _interrupted(ctx, rec),
        })
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("No recordings yet. Start one with: desktop-recorder record")
    else:
        print(f"{'ID':<36}  {'STARTED (UTC)':<24}  {'STATUS':<11} {'SYNC':<17} {'DURATION':>9}  {'SEGMENTS':>8}  "
              f"{'SERVER ID':<36}  TITLE")
    for r in rows:
        print(f"{r['id']}  {r['started_at']}  {'interrupted' if r['interrupted'] else r['status']:<11} "
              f"{r['sync_state']:<17} {r['duration_seconds'] or 0:7.1f} s  {r['segments']:4d} seg  "
              f"{r['server_id'] or '(not on server)':<36}  {r['title'] or ''}")
    if any(r["interrupted"] for r in rows):
        say(INTERRUPTED)
    return 0


MIN_ID_PREFIX = 4
INTERRUPTED = ("An interrupted recording's recorder stopped without finishing it; 'desktop-recorder sync' "
               "finishes it and transcribes what it had not.")


def _interrupted(ctx: AppContext, rec: LocalRecording) -> bool:
    """Live in the store, but no process records it any more (killed): the app or `sync` finishes it."""
    try:
        return rec.status in LIVE_STATUSES and not is_owned(ctx.paths.data_dir, rec.id)
    except OSError as exc:  # its lock file cannot be made (a read-only data folder): cannot tell
        log.warning("cannot check whether recording %s is still running: %s", rec.id, exc)
        return False


class _Skipped(Exception):
    """Ctrl-C during the pass after a recording: the recording is safe, only the pass is left."""


def _refine(ctx: AppContext, model: Transcriber, recording_id: str, stop: StopSignal | None = None
            ) -> list[StoredSegment] | None:
    """The post-meeting pass with a bar; after `record`, a signal (``stop``) skips it."""
    started = time.perf_counter()
    say(f"Refining the transcript from the saved audio{' (Ctrl-C skips it)' if stop else ''}…")
    if stop is not None:
        stop.listen_again()  # a Ctrl-C that stopped the recording does not skip this

    def progress(done: float) -> None:  # after each decoded segment: a skip is answered within seconds
        bar.update(done)
        if stop is not None and done < 1:  # a pass already done is kept
            stop.poll()
            if stop.again.is_set():
                raise _Skipped

    try:
        with PassBar("Refining") as bar:
            refined = refine_recording(ctx.store, model, recording_id, progress=progress)
    except CannotRefine as exc:
        say(f"error: {exc}")
        return None
    except _Skipped:
        say(f"Refining skipped; the live transcript stays ('desktop-recorder refine {recording_id}' can do it later).")
        return None
    say(f"Refined transcript: {len(refined)} segments in {time.perf_counter() - started:.1f} s (kept locally; "
        f"the server keeps the live transcript; 'desktop-recorder export {recording_id}' prints it).")
    return refined


def _find(ctx: AppContext, recording_id: str) -> LocalRecording | None:
    """The recording with this local or server id, or the only one whose id starts with it (at
    least ``MIN_ID_PREFIX`` characters, as git and docker take short ids)."""
    recordings = ctx.store.list_recordings()
    match = [r for r in recordings if recording_id in (r.id, r.server_id)]
    wanted = recording_id.strip().lower()
    if not match and len(wanted) >= MIN_ID_PREFIX:
        match = [r for r in recordings if any(i and i.lower().startswith(wanted) for i in (r.id, r.server_id))]
        if len(match) > 1:
            say(f"error: {len(match)} recordings have ids starting with {recording_id!r}; give more of the id")
            return None
        if match:  # which one it took, before anything is done to it
            say(f"Recording {match[0].id} ({match[0].title or 'no title'}, started {match[0].started_at}).")
    if not match:
        say(f"error: no recording {recording_id!r}; see 'desktop-recorder list'")
    return match[0] if match else None


def cmd_refine(ctx: AppContext, args: argparse.Namespace) -> int:
    rec = _find(ctx, args.recording_id)
    if rec is None:
        return 2
    try:
        model = _load_model(ctx, args.model)
    except ModelUnavailable as exc:
        say(f"error: {exc}")
        return 2
    _recover(ctx, lambda: model)  # a recording whose process died is finished first, not "still running"
    refined = _refine(ctx, model, rec.id)
    if refined is None:
        return 2
    sys.stdout.write(render(lines_of(refined), args.format, title=rec.title or rec.id))
    return 0


def cmd_export(ctx: AppContext, args: argparse.Namespace) -> int:
    rec = _find(ctx, args.recording_id)
    if rec is None:
        return 2
    segments = ctx.store.transcript(rec.id, live=args.live)
    sys.stdout.write(render(lines_of(segments), args.format, title=rec.title or rec.id))
    if not segments:
        say(f"The recording has no transcript lines{' yet' if rec.status in LIVE_STATUSES else ''}.")
    if _interrupted(ctx, rec):
        say(INTERRUPTED)
    if rec.error_message:
        say(f"note: {rec.error_message}")
    return 0


def cmd_delete(ctx: AppContext, args: argparse.Namespace) -> int:
    rec = _find(ctx, args.recording_id)
    if rec is None:
        return 2
    if rec.status in ("recording", "processing") and rec.owner_pid and is_owned(ctx.paths.data_dir, rec.id):
        say("error: that recording is still running; stop it first")
        return 2
    on_server = ctx.store.request_delete(rec.id)
    if rec.audio_path:
        Path(rec.audio_path).unlink(missing_ok=True)
    if not on_server:
        say("Deleted.")
        return 0
    try:
        worker = SyncWorker(ctx.store, ctx.make_client())
    except SyncNotConfigured as exc:
        say(f"Deleted locally; the server copy will be deleted by the next sync ({exc})")
        return 0
    if worker.drain(FINAL_SYNC_WAIT_S):
        say("Deleted here and on the server.")
        return 0
    say(f"Deleted locally; the server copy is queued for deletion ({worker.status.last_error}).")
    return 0


def cmd_echo(ctx: AppContext, args: argparse.Namespace) -> int:
    rec = _find(ctx, args.recording_id)
    if rec is None:
        return 2
    lines = {line.id: line for line in ctx.store.echo_segments(rec.id)}  # numbered by their stable row id
    unknown = [n for n in args.restore if n not in lines]
    if unknown:
        say(f"error: no line {', '.join(map(str, unknown))} left out in this recording; "
            f"see 'desktop-recorder echo {args.recording_id}'")
        return 2
    if not args.restore:
        if not lines:
            say("No lines were left out as echo.")
        for line in lines.values():
            print(f"{line.id:4d}  [{clock(line.timestamp_ms)}] {line.text}")
        return 0
    wanted = sorted(set(args.restore))
    gone = ctx.store.restore_echoes(wanted, speaker=ctx.settings.user_name or DEFAULT_MIC_LABEL)
    for n in gone:  # put back meanwhile (by the app)
        say(f"Line {n} was already put back.")
    say(f"Put {len(wanted) - len(gone)} line(s) back in the transcript.")
    if ctx.store.has_refined(rec.id):  # what `export` prints
        say(f"That is the live transcript, which syncs; the improved one predates it: run "
            f"'desktop-recorder refine {args.recording_id}' to include it.")
    try:
        worker = SyncWorker(ctx.store, ctx.make_client())
    except SyncNotConfigured:
        return 0  # local only: nothing to send
    if not worker.drain(FINAL_SYNC_WAIT_S):
        say(f"They stay queued and sync later ({worker.status.last_error}).")
    return 0


def cmd_configure(ctx: AppContext, args: argparse.Namespace) -> int:
    settings = ctx.settings
    try:
        if args.host:
            settings = replace(settings, host=validate_host(args.host))
        if args.project:
            settings = replace(settings, project_id=validate_project(args.project))
        host = validate_host(settings.host) if settings.host else None  # also one from a hand-edited file
    except (InvalidHost, ValueError) as exc:
        say(f"error: {str(exc).rstrip('.')}. Nothing was saved.")
        return 2
    if args.api_key_stdin and not host:
        say("error: there is no PostHog host to keep the key for; give one with --host. Nothing was saved.")
        return 2
    key = sys.stdin.readline().strip() if args.api_key_stdin else None
    if args.api_key_stdin and not key:
        say("error: no API key on standard input. Nothing was saved.")
        return 2
    if args.name is not None:  # '' clears it: the microphone is "Me" again
        settings = replace(settings, user_name=args.name.strip() or None)
    save_settings(ctx.paths, settings)
    if host and (outcome := _keep_api_key(host, key, ctx.paths.settings_file)):
        return outcome
    say(f"Settings saved to {ctx.paths.settings_file}.")
    return 0


def _keep_api_key(host: str, key: str | None, settings_file: Path) -> int:
    """Store ``key`` for ``host``, asking for it on a terminal when none was given; 0 or an exit
    code. The other settings are in ``settings_file`` by then."""
    if key is None and sys.stdin.isatty():
        held = has_api_key(host)  # None: the keyring cannot tell
        key = getpass.getpass(f"Personal API key (Enter {'keeps the current one' if held else 'skips'}): ").strip()
        if not key and held is False:
            say(f"No API key is kept for {host}: sync stays off until you give one to "
                f"'desktop-recorder configure' or set {ENV_KEY}.")
    if not key:
        return 0
    try:
        set_api_key(host, key)  # where sync looks it up
    except SecretStoreUnavailable as exc:
        say(f"error: {exc} The other settings were saved to {settings_file}; the key was not.")
        return 1
    say("API key stored in the OS keyring.")
    return 0


def cmd_doctor(ctx: AppContext, _args: argparse.Namespace) -> int:
    ok = True

    def check(name: str, good: bool, detail: str) -> None:
        nonlocal ok
        ok &= good
        print(f"[{'ok' if good else 'FAIL'}] {name}: {detail}")

    table = device_table()
    check("audio backend", table.server is not None or bool(table.devices),
          table.server or "no PulseAudio/PipeWire server; PortAudio inputs only")
    try:
        sd = load_sounddevice()  # every stream is opened through it, also with a sound server
        check("portaudio", True, f"{sd.get_portaudio_version()[1]} ({loaded_library('libportaudio') or 'loaded'})")
    except OSError as exc:
        check("portaudio", False, str(exc))
    for role in ("mic", "system"):
        try:
            dev = resolve(table, role, getattr(ctx.settings, role))
            check(role, True, dev.label if dev else "disabled")
        except NoAudioDevice as exc:
            check(role, False, exc.problem)
    try:
        choice = resolve_model(ctx.settings.model)
        if not choice.is_local and cached_model(choice.path_or_name, ctx.paths.models_dir) is None:
            check("model", True, f"{choice.spec}: not downloaded yet; fetched on first use")
        else:
            started = time.perf_counter()
            model = _load_model(ctx, None)
            check("model", True, f"{model.choice.spec}: {model.choice.path_or_name} ({model.device}, "
                                 f"{model.compute_type}; loaded in {time.perf_counter() - started:.2f} s)")
    except ModelUnavailable as exc:
        check("model", False, str(exc))
    kept, holder = keyring_check()
    if kept or ctx.settings.host:
        check("keyring", kept, holder)
    else:  # local only: nothing needs a key until a PostHog host is set
        print(f"[--] keyring: {holder} (only sync needs it)")
    check("data", True, str(ctx.paths.data_dir))
    try:
        client = ctx.make_client()
    except SyncNotConfigured as exc:
        if ctx.settings.host:  # asked for, and it cannot work (a bad host or project, no key)
            check("sync", False, exc.detail)
        else:
            print(f"[off] sync: {exc}")
        return 0 if ok else 1
    check("server", *_server_check(client))
    return 0 if ok else 1


def _server_check(client: PostHogClient) -> tuple[bool, str]:
    try:
        me = client.me()
        project = client.resolve_project()
        next(iter(client.list_recordings(page_size=1)), None)
        writable = client.probe_write_scope()
    except (CredentialsRejected, MissingScope) as exc:
        return False, str(exc)
    except NetworkError as exc:
        return False, f"{client.host} unreachable: {exc}"
    except ApiError as exc:
        return False, f"{client.host}: {exc}"
    finally:
        client.close()
    who = me.get("email") or me.get("first_name") or "?"
    scope = "desktop_recording:write granted" if writable else "MISSING desktop_recording:write"
    return writable, f"{client.host} as {who}, project {project}, {scope}"


