"""Health watchdog: tell the user, once, when a source looks wrong while the other one works.

Pure logic over (time, per-source level, stream alive): the session feeds it every tick and
shows what it returns. "Silent" is digital silence or near it; a source only counts as
"active" when it carries sound, so a quiet meeting raises nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recorder.wavfile import HELD_MAX_S
from transcription.types import Source

SILENT_DBFS = -70.0
ACTIVE_DBFS = -45.0
SILENT_FOR_S = 20.0

MESSAGES = {
    "system": ("System audio has been silent for {s:.0f} s while your microphone picks up sound. Is the right "
               "output device selected, and may Desktop Recorder record it?"),
    "mic": ("Your microphone has been silent for {s:.0f} s while the others can be heard. Is it muted, or is "
            "another microphone selected?"),
}
ECHO_DB = -25.0  # louder than this, the others' words are likely transcribed from the mic too
ECHO_FOR_S = 4.0
ECHO_MESSAGE = ("Your microphone hears the speakers (echo {db:.0f} dB). Use headphones: what the mic hears from "
                "the speakers is left out of your side, and your own words can be lost under it.")
LOST = {
    "system": "System audio capture stopped (the output device went away?). Recording continues with the microphone.",
    "mic": "The microphone stopped (unplugged?). Recording continues with the system audio.",
}


@dataclass
class HealthWatch:
    sources: tuple[Source, ...]
    silent_for_s: float = SILENT_FOR_S
    _silent_since: dict[str, float] = field(default_factory=dict)  # per source, and "echo"
    _other_active_at: dict[str, float] = field(default_factory=dict)
    _told: set[str] = field(default_factory=set)

    def update(self, now: float, levels: dict[Source, float], alive: dict[Source, bool],
               echo_db: float | None = None) -> list[str]:
        """New warnings (each said once per recording)."""
        warnings = []
        if echo_db is not None and echo_db >= ECHO_DB:
            since = self._silent_since.setdefault("echo", now)
            if now - since >= ECHO_FOR_S and "echo" not in self._told:
                self._told.add("echo")
                warnings.append(ECHO_MESSAGE.format(db=echo_db))
        else:
            self._silent_since.pop("echo", None)
        for source in self.sources:
            if not alive.get(source, True) and f"lost:{source}" not in self._told:
                self._told.add(f"lost:{source}")
                warnings.append(LOST[source])
        if len(self.sources) < 2:
            return warnings
        for source in self.sources:
            other: Source = "mic" if source == "system" else "system"
            if levels.get(other, -120.0) > ACTIVE_DBFS:
                self._other_active_at[source] = now
            if levels.get(source, -120.0) > SILENT_DBFS:
                self._silent_since.pop(source, None)
                continue
            since = self._silent_since.setdefault(source, now)
            other_recently = now - self._other_active_at.get(source, -1e9) < self.silent_for_s
            if now - since >= self.silent_for_s and other_recently and f"silent:{source}" not in self._told:
                self._told.add(f"silent:{source}")
                warnings.append(MESSAGES[source].format(s=now - since))
        return warnings


LAG_WARN_S = 15.0
LAG_CLEAR_S = 3.0


@dataclass
class LagWatch:
    """Says when transcription falls behind the audio, and when it has caught up (audio is never
    dropped: it waits, and stopping transcribes what is left)."""

    warn_s: float = LAG_WARN_S
    clear_s: float = LAG_CLEAR_S
    behind: bool = False

    def update(self, backlog_s: float) -> str | None:
        if not self.behind and backlog_s >= self.warn_s:
            self.behind = True
            return (f"Transcription is {backlog_s:.0f} s behind the audio (the computer is busy). Nothing is "
                    "lost: it catches up, and stopping waits for it.")
        if self.behind and backlog_s <= self.clear_s:
            self.behind = False
            return "Transcription has caught up."
        return None


FILE_BACK_FOR_S = 3.0  # writing works this long before "written again": a disk at the edge of full flips


@dataclass
class AudioFileWatch:
    """Says when the audio file stops being written, when waiting audio starts to become silence
    (the writer's memory cap), and when writing has worked again for a while, with what that
    outage cost. Pure: the session feeds it the pipeline's state every tick."""

    back_for_s: float = FILE_BACK_FOR_S
    told: str | None = None  # the problem last told, until "written again" is
    _silenced_before: float = 0.0  # the writer's silence total when this outage began
    _cap_told: bool = False
    _ok_since: float | None = None

    def update(self, problem: str | None, silenced_s: float, now: float, *, final: bool = False
               ) -> list[tuple[str, str]]:
        """(level, message) to show; ``final``: the file is closed, say how it ended now."""
        said: list[tuple[str, str]] = []
        if problem:
            self._ok_since = None
            if self.told is None:
                self._silenced_before, self._cap_told = silenced_s, False
            if problem != self.told:
                said.append(("error", problem))
                self.told = problem
            if not self._cap_told and silenced_s > self._silenced_before:
                self._cap_told = True
                said.append(("warning", f"The disk has refused the audio for {HELD_MAX_S / 60:.0f} minutes: from "
                                        "now on, the oldest audio waiting for it becomes silence in the file."))
        elif self.told is not None:
            self._ok_since = now if self._ok_since is None else self._ok_since
            if final or now - self._ok_since >= self.back_for_s:
                lost = silenced_s - self._silenced_before
                shown = f"{lost:.0f}" if lost >= 1 else f"{max(lost, 0.1):.1f}"  # never "0.0 s" of a loss
                said.append(("warning", f"The audio file is written again; {shown} s of audio waited too long "
                                        "and are silence in it.") if lost > 0
                            else ("info", "The audio file is written again; no audio was lost."))
                self.told = None
        return said
