"""After the meeting: a slower, better pass over the saved audio, for the local transcript.

Live decoding hears each utterance once, soon after it ends. Here each channel of the
recording's WAV (left = mic, right = system) is transcribed whole, with beam search and VAD;
mic lines that echo the system audio are left out as they are live, except where the user put a
line left out live back (they said it was theirs). The result is stored next
to the live transcript and shown and exported instead of it — locally only: the server keeps
what was appended live (its transcript text cannot be rewritten through the API).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from desktop_recorder.config import DEFAULT_MIC_LABEL
from desktop_recorder.store import LIVE_STATUSES, Store, StoredSegment
from transcription.echo import EchoConfig, EchoGate
from transcription.model import confidence
from transcription.offline import UnreadableAudio, read_channels
from transcription.types import FinalSegment, PassProgress, Samples, Source, Transcriber, progress_in_turn


class CannotRefine(Exception):
    """No audio to work from (deleted, never written, unreadable); the live transcript stays."""


def read_tracks(path: Path) -> dict[Source, Samples]:
    """The recording's two tracks at 16 kHz, 16-bit: for the app's own files, the two columns of
    the one array read, no copy (an hour of both takes 230 MB; float copies would take twice
    that). A mono file has a silent system track."""
    try:
        channels = read_channels(path)
    except UnreadableAudio as exc:
        raise CannotRefine(str(exc)) from exc  # "Cannot read PATH as audio: ..."
    mic = channels[0]
    return {"mic": mic, "system": channels[1] if len(channels) > 1 else np.zeros(len(mic), np.int16)}


def speaker_names(store: Store, recording_id: str) -> dict[Source, str]:
    """Each source's speaker as the live transcript names it."""
    live = store.segments(recording_id)
    mic = (next((s.speaker for s in live if s.source == "mic" and s.speaker), None)
           or next((e.speaker for e in store.echo_segments(recording_id) if e.speaker), DEFAULT_MIC_LABEL))
    return {"mic": mic, "system": next((s.speaker for s in live if s.source == "system" and s.speaker), "Others")}


def refine_recording(store: Store, model: Transcriber, recording_id: str,
                     progress: PassProgress | None = None) -> list[StoredSegment]:
    """Transcribe the saved audio again, store the result as the refined transcript, return it.
    ``progress`` hears the share of the audio transcribed as the pass goes."""
    rec = store.get_recording(recording_id)
    if rec.status in LIVE_STATUSES:  # its audio is still growing: the result would replace the whole transcript
        raise CannotRefine("The recording is still running; improve its transcript once it has stopped.")
    if not rec.audio_path or not Path(rec.audio_path).is_file():
        raise CannotRefine("The recording has no audio file (deleted, or never written).")
    tracks = read_tracks(Path(rec.audio_path))
    names = speaker_names(store, recording_id)
    lines: dict[Source, list[FinalSegment]] = {source: [] for source in tracks}
    heard = {source: audio for source, audio in tracks.items() if np.any(audio)}
    for (source, audio), part in zip(heard.items(), progress_in_turn(progress, [len(a) for a in heard.values()]),
                                     strict=True):
        lines[source] = [
            FinalSegment(source, round(seg.start_s * 1000, 1), round(seg.end_s * 1000, 1), seg.text,
                         confidence(seg.avg_logprob))
            for seg in model.transcribe_file(audio, progress=part)
        ]
    if progress is not None and not heard:
        progress(1.0)
    gate = EchoGate(EchoConfig(), whole=tracks)
    for seg in lines["system"]:
        gate.add_system(seg)
    restored = [FinalSegment("mic", s.timestamp_ms, s.end_ms, s.text, s.confidence)
                for s in store.restored_segments(recording_id)]
    kept = lines["system"] + mic_lines(lines["mic"], [gate.judge(seg).echo for seg in lines["mic"]], restored)
    refined = [
        StoredSegment(0, recording_id, seg.start_ms, seg.end_ms, seg.source, names[seg.source], seg.text,
                      seg.confidence, True)
        for seg in sorted(kept, key=lambda s: s.start_ms)
    ]
    store.replace_refined(recording_id, refined)
    return store.refined_segments(recording_id)


def mic_lines(mic: list[FinalSegment], echo: list[bool], restored: list[FinalSegment]) -> list[FinalSegment]:
    """The refined pass's mic lines: those its echo check keeps; those it would leave out that
    lines the user put back cover for at least half; and each put-back line that no kept line
    covers for at least half, as it was live. So the user's correction survives, and a long
    stretch of echo around a short put-back line stays out."""
    spans = [(r.start_ms, r.end_ms) for r in restored]
    kept = [seg for seg, is_echo in zip(mic, echo, strict=True) if not is_echo or _covered(seg, spans) >= 0.5]
    kept_spans = [(seg.start_ms, seg.end_ms) for seg in kept]
    return kept + [r for r in restored if _covered(r, kept_spans) < 0.5]


def _covered(seg: FinalSegment, spans: list[tuple[float, float]]) -> float:
    """The share of ``seg``'s time that lies inside ``spans`` (0 for a segment without length)."""
    length = seg.end_ms - seg.start_ms
    if length <= 0:
        return 0.0
    shared = sum(max(0.0, min(seg.end_ms, end) - max(seg.start_ms, start)) for start, end in spans)
    return min(1.0, shared / length)
