"""Transcript export: plain text, JSON, SubRip, WebVTT, Markdown."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

FORMATS = ("txt", "json", "srt", "vtt", "md")


@dataclass(frozen=True)
class TranscriptLine:
    start_ms: float
    end_ms: float
    speaker: str | None
    text: str


class _Timed(Protocol):  # a stored transcript line
    @property
    def timestamp_ms(self) -> float: ...
    @property
    def end_ms(self) -> float: ...
    @property
    def speaker(self) -> str | None: ...
    @property
    def text(self) -> str: ...


def lines_of(segments: Iterable[_Timed]) -> list[TranscriptLine]:
    return [TranscriptLine(s.timestamp_ms, s.end_ms, s.speaker, s.text) for s in segments]


def clock(ms: float) -> str:
    """``mm:ss`` (``h:mm:ss`` past an hour), as the live transcript shows it."""
    s = int(ms // 1000)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def percent(share: float) -> str:
    """A share done as a whole percentage, rounded down: "100%" only once it is all done."""
    return f"{int(min(max(share, 0.0), 1.0) * 100 + 1e-9)}%"  # 0.29 * 100 is 28.999999999999996


def _cue_time(ms: float, sep: str) -> str:
    ms = max(0, round(ms))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


def _who(line: TranscriptLine) -> str:
    return f"{line.speaker}: " if line.speaker else ""


def render(lines: Sequence[TranscriptLine], fmt: str, *, title: str | None = None) -> str:
    if fmt == "txt":
        return "".join(f"[{clock(x.start_ms)}] {_who(x)}{x.text}\n" for x in lines)
    if fmt == "json":
        return json.dumps({"title": title, "segments": [asdict(x) for x in lines]}, indent=2) + "\n"
    if fmt == "srt":
        return "\n".join(
            f"{i}\n{_cue_time(x.start_ms, ',')} --> {_cue_time(x.end_ms, ',')}\n{_who(x)}{x.text}\n"
            for i, x in enumerate(lines, 1)
        )
    if fmt == "vtt":
        cues = "".join(
            f"\n{_cue_time(x.start_ms, '.')} --> {_cue_time(x.end_ms, '.')}\n"
            f"{f'<v {x.speaker}>' if x.speaker else ''}{x.text}\n"
            for x in lines
        )
        return "WEBVTT\n" + cues
    if fmt == "md":
        head = f"# {title}\n\n" if title else ""
        return head + "".join(
            f"- **{clock(x.start_ms)}**{f' *{x.speaker}*' if x.speaker else ''}: {x.text}\n" for x in lines
        )
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
