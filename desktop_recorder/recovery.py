"""Finalise recordings left live by a killed or crashed process, from what was saved."""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
from filelock import Timeout

from desktop_recorder.refine import CannotRefine, read_tracks, speaker_names
from desktop_recorder.store import LIVE_STATUSES, LocalRecording, Store, recording_lock, time_after
from recorder.wavfile import repair_wav
from transcription.echo import EchoConfig, EchoGate
from transcription.guards import is_hallucination
from transcription.model import confidence
from transcription.types import (
    SAMPLE_RATE_HZ,
    AsrSegment,
    FinalSegment,
    PassProgress,
    Samples,
    Source,
    Transcriber,
    progress_in_turn,
)

log = logging.getLogger(__name__)
MIN_TAIL_S = 0.5  # less audio after the last line than this holds no words


def recover_interrupted(store: Store, data_dir: Path, transcriber: Callable[[], Transcriber | None] | None = None,
                        *, progress: Callable[[str, float], None] | None = None) -> list[LocalRecording]:
    """Every live recording no process owns any more becomes ``ready`` (or ``error``).

    With a ``transcriber`` (asked for once, and only if there is such a recording), the speech
    saved after each source's last line, which the process died before decoding, is transcribed
    first and added as final lines (and so synced). The recording's lock is held meanwhile, so
    two processes recovering at once do not both add them; killed during that, the recording
    stays live and the next recovery resumes from the last line stored. ``progress`` hears, per
    recording id, the share of that tail transcribed (minutes of audio for a long meeting)."""
    recovered = []
    models: list[Transcriber | None] = []  # the transcriber's answer, once asked

    def model() -> Transcriber | None:
        if not models:
            models.append(transcriber() if transcriber else None)
        return models[0]

    for listed in store.list_recordings():
        if listed.status not in LIVE_STATUSES:
            continue
        lock = recording_lock(data_dir, listed.id)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue  # its recorder is alive, or another process is recovering it
        try:
            rec = store.get_recording(listed.id)  # as it is now that no one else can finish it
            if rec.status in LIVE_STATUSES:
                recovered.append(_recover(store, rec, model, functools.partial(progress, rec.id) if progress else None))
        except (KeyError, sqlite3.IntegrityError) as exc:  # deleted meanwhile: nothing to finish
            log.warning("recording %s went away while it was recovered (%s)", listed.id, exc)
        finally:
            lock.release()
    return recovered


def _recover(store: Store, rec: LocalRecording, model: Callable[[], Transcriber | None],
             progress: PassProgress | None) -> LocalRecording:
    duration = _audio_seconds(rec.audio_path)
    tail_model = model() if duration is not None else None
    if tail_model is not None:
        try:
            added = transcribe_tail(store, tail_model, rec, progress=progress)
        except CannotRefine as exc:
            log.error("recording %s: cannot read its audio for the unfinished tail: %s", rec.id, exc)
            added = 0
        if added:
            log.warning("recording %s: %d lines transcribed from the audio after its last line", rec.id, added)
    segments = store.segments(rec.id)
    if duration is None and segments:
        duration = max(s.end_ms for s in segments) / 1000
    rec = store.get_recording(rec.id)  # a title or participants edited meanwhile are kept
    names = rec.participants or list(dict.fromkeys(s.speaker for s in segments if s.speaker))
    # It ended when its audio did (not now: `sync` may run days later).
    ended = time_after(rec.started_at, duration or 0)
    if duration is None:
        store.finish_recording(rec.id, status="error", duration_s=0, title=rec.title, participants=names,
                               error_message="The recorder stopped unexpectedly and no audio was saved.",
                               completed_at=ended)
    else:
        store.finish_recording(rec.id, status="ready", duration_s=duration, title=rec.title, participants=names,
                               completed_at=ended)
    log.warning("recovered interrupted recording %s (%.1f s of audio)", rec.id, duration or 0)
    return store.get_recording(rec.id)


def transcribe_tail(store: Store, model: Transcriber, rec: LocalRecording,
                    names: dict[Source, str] | None = None, progress: PassProgress | None = None) -> int:
    """Add the lines of each source's speech after its last line (the mic's echo of the system
    audio left out, as live); returns how many were added. Each line is stored as soon as it is
    decoded, so a pass stopped or killed halfway keeps what it did: the next one starts after
    it. ``names``: each source's speaker (else as its lines name it); ``progress``: hears the
    share of that audio transcribed. Raises CannotRefine when the audio cannot be read."""
    tracks = read_tracks(Path(str(rec.audio_path)))
    names = names or speaker_names(store, rec.id)
    rests: dict[Source, tuple[float, Samples]] = {}
    for source in ("system", "mic"):  # the system side first: a mic line is judged against it
        # Before the settled time every line is stored (speech dropped there was dropped live, and
        # a line from there would be appended after later ones already on the server).
        after_ms = max(store.decided_until_ms(rec.id, source), rec.settled_ms or 0.0)
        rest = tracks[source][int(after_ms * SAMPLE_RATE_HZ / 1000):]
        if len(rest) >= MIN_TAIL_S * SAMPLE_RATE_HZ and np.any(rest):
            rests[source] = after_ms, rest
    if len(rests) > 1 and rec.settled_ms is None:  # its recorder had said "send them all" (at stop)
        # The system side is stored first: its lines must not go before earlier mic lines. Held
        # until the recording is finished, they then go in time order.
        store.set_settled(rec.id, min(after_ms for after_ms, _rest in rests.values()))
    gate = EchoGate(EchoConfig(), whole=tracks)
    for seg in store.segments(rec.id):
        if seg.source == "system":
            gate.add_system(FinalSegment("system", seg.timestamp_ms, seg.end_ms, seg.text, seg.confidence))
    added = 0

    def keep(source: Source, after_ms: float, seg: AsrSegment) -> None:
        nonlocal added
        if is_hallucination(seg):  # the live guards too: a last word's fading end came out as "Thank you."
            return
        line = FinalSegment(source, round(after_ms + seg.start_s * 1000, 1), round(after_ms + seg.end_s * 1000, 1),
                            seg.text, confidence(seg.avg_logprob))
        if source == "system":
            gate.add_system(line)
        elif (verdict := gate.judge(line)).echo:
            store.add_echo_segment(rec.id, start_ms=line.start_ms, end_ms=line.end_ms, text=line.text,
                                   speaker=names["mic"], confidence=line.confidence,
                                   audio_share=verdict.audio_share, text_share=verdict.text_share)
            return
        store.add_segment(rec.id, start_ms=line.start_ms, end_ms=line.end_ms, source=source,
                          speaker=names[source], text=line.text, confidence=line.confidence)
        added += 1

    parts = progress_in_turn(progress, [len(rest) for _after, rest in rests.values()])
    for (source, (after_ms, rest)), part in zip(rests.items(), parts, strict=True):
        model.transcribe_file(rest, progress=part, on_segment=functools.partial(keep, source, after_ms))
    return added


def _audio_seconds(path: str | None) -> float | None:
    if not path or not Path(path).exists():
        return None
    try:
        if repair_wav(Path(path)):
            log.warning("repaired the header of %s", path)
        return float(sf.info(path).duration)
    except (OSError, RuntimeError, sf.LibsndfileError) as exc:
        log.error("cannot read %s: %s", path, exc)
        return None
