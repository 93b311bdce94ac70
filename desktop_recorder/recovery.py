"""Finalise recordings left live by a killed or crashed process, from what was saved."""

from __future__ import annotations

import logging
from pathlib import Path

import soundfile as sf

from desktop_recorder.session import is_owned
from desktop_recorder.store import LIVE_STATUSES, LocalRecording, Store
from recorder.wavfile import repair_wav

log = logging.getLogger(__name__)


def recover_interrupted(store: Store, data_dir: Path) -> list[LocalRecording]:
    """Every live recording no process owns any more becomes ``ready`` (or ``error``)."""
    recovered = []
    for rec in store.list_recordings():
        if rec.status not in LIVE_STATUSES or is_owned(data_dir, rec.id):
            continue
        duration = _audio_seconds(rec.audio_path)
        segments = store.segments(rec.id)
        if duration is None and segments:
            duration = max(s.end_ms for s in segments) / 1000
        names = rec.participants or list(dict.fromkeys(s.speaker for s in segments if s.speaker))
        if duration is None:
            store.finish_recording(rec.id, status="error", duration_s=0, title=rec.title, participants=names,
                                   error_message="The recorder stopped unexpectedly and no audio was saved.")
        else:
            store.finish_recording(rec.id, status="ready", duration_s=duration, title=rec.title, participants=names)
        log.warning("recovered interrupted recording %s (%.1f s of audio)", rec.id, duration or 0)
        recovered.append(store.get_recording(rec.id))
    return recovered


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
