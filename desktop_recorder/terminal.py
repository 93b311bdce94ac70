"""The live transcript in a terminal: final lines as they come, the partial text rewritten in place.

Finals go to stdout one per line (scripts read them). Only when stdout is a terminal, the text
still being decided is shown dimmed on the last line and replaced as it firms up; it is erased
before anything else is printed, so finals and messages never mix with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

from tqdm import tqdm

log = logging.getLogger(__name__)

CONSOLE_LOG = "console"  # the name of the log handler writing to the terminal (``setup_logging``)
CLEAR_LINE = "\r\x1b[2K"
DIM, RESET = "\x1b[2m", "\x1b[0m"


class LiveTranscript:
    """Called from the transcription worker, the capture thread (notices) and the main thread:
    one lock keeps the lines whole."""

    def __init__(self, out: TextIO | None = None, *, interactive: bool | None = None) -> None:
        self._out = out or sys.stdout
        self.interactive = self._out.isatty() if interactive is None else interactive
        self._partials: dict[str, str] = {}
        self._shown = False
        self._lock = threading.Lock()

    def final(self, speaker: str, line: str) -> None:
        with self._lock, self._unless_gone():
            self._partials.pop(speaker, None)
            self._erase()
            self._out.write(line + "\n")
            self._redraw()

    def partial(self, speaker: str, text: str) -> None:
        if not self.interactive:
            return
        with self._lock, self._unless_gone():
            if text:
                self._partials[speaker] = text
            else:
                self._partials.pop(speaker, None)
            self._erase()
            self._redraw()

    def message(self, text: str, err: TextIO | None = None) -> None:
        """A line on stderr, without tearing the partial line on the same terminal."""
        with self._lock:
            with self._unless_gone():
                self._erase()
            with contextlib.suppress(OSError, ValueError):  # stderr gone too: the log file has it
                print(text, file=err or sys.stderr, flush=True)
            with self._unless_gone():
                self._redraw()

    def close(self) -> None:
        """The recording is over: no partial text stays on screen."""
        with self._lock, self._unless_gone():
            self._partials.clear()
            self._erase()

    @contextlib.contextmanager
    def _unless_gone(self) -> Iterator[None]:
        """A write the output refuses (`record | head`: the reader left; a file on a full disk)
        sends the rest to /dev/null: the recording, its transcription and its saved lines go on."""
        try:
            yield
        except (OSError, ValueError) as exc:  # ValueError: the file was closed
            log.warning("the live transcript cannot be written any more (%s); recording goes on", exc)
            to_devnull(self._out)
            self.interactive = False
            self._partials.clear()
            self._shown = False

    @contextlib.contextmanager
    def logging_here(self) -> Iterator[None]:
        """While it runs, the log lines meant for the terminal go through ``message``: a warning
        from the sync thread landed on the dimmed partial text, which then stayed on screen."""
        root = logging.getLogger()
        console = next((h for h in root.handlers if h.get_name() == CONSOLE_LOG), None)
        if console is None:  # logging not set up (tests): nothing goes to the terminal
            yield
            return
        here = _ThroughTranscript(self, console)
        # One assignment each way: a line logged meanwhile by another thread meets one of the two
        root.handlers = [here if h is console else h for h in root.handlers]
        try:
            yield
        finally:
            root.handlers = [console if h is here else h for h in root.handlers]

    def _erase(self) -> None:
        if self._shown:
            self._out.write(CLEAR_LINE)
            self._shown = False
        self._out.flush()

    def _redraw(self) -> None:
        if self.interactive and self._partials:
            width = max(shutil.get_terminal_size().columns - 1, 20)
            text = "  ".join(f"{who}: {said}" for who, said in self._partials.items())
            if len(text) > width:  # one line, its newest words
                text = "…" + text[-(width - 1):]
            self._out.write(f"{DIM}{text}{RESET}")
            self._shown = True
        self._out.flush()


class DownloadBar:
    """A tqdm bar on stderr for a model download; shows nothing when the model is already there."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._bar: tqdm[None] | None = None

    def update(self, done: int, total: int) -> None:
        if self._bar is None:
            if done >= total:  # already complete: nothing was downloaded
                return
            self._bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                             desc=f"Downloading model {self._name}", file=sys.stderr, dynamic_ncols=True)
        self._bar.n = done
        self._bar.refresh()

    def __enter__(self) -> DownloadBar:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


class PassBar:
    """A percentage bar on stderr for a long pass over saved audio (an hour takes minutes), with
    the time left; on a terminal only, so logs and scripts get no bar lines."""

    def __init__(self, desc: str, stream: TextIO | None = None) -> None:
        self._bar: tqdm[None] = tqdm(total=100, desc=desc, file=stream or sys.stderr, dynamic_ncols=True,
                                     disable=None, bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")

    def update(self, done: float) -> None:
        """``done``: the share of the pass done, from 0 to 1."""
        self._bar.n = round(100 * min(max(done, 0.0), 1.0), 1)
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> PassBar:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class _ThroughTranscript(logging.Handler):
    """The console log handler's lines, said by the live transcript."""

    def __init__(self, live: LiveTranscript, console: logging.Handler) -> None:
        super().__init__(console.level)
        self.setFormatter(console.formatter)
        self._live, self._console = live, console

    def handle(self, record: logging.LogRecord) -> bool:
        """As ``Handler.handle`` without the handler's lock: the transcript's lock orders the
        lines, and both would deadlock (a thread waiting in ``message`` holding the handler's lock
        while the one in the transcript's lock logs that its output is gone)."""
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == log.name:  # logged inside the transcript's own lock: it cannot write any more
            self._console.handle(record)
            return
        try:
            self._live.message(self.format(record))
        except Exception:  # noqa: BLE001 - logging's own report, as any handler's
            self.handleError(record)


class TailBars:
    """A ``PassBar`` per interrupted recording whose unfinished tail is transcribed, in turn."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._shown: tuple[str, PassBar] | None = None

    def update(self, recording_id: str, done: float) -> None:
        if self._shown is None or self._shown[0] != recording_id:
            self.close()
            self._shown = (recording_id, PassBar(f"Transcribing the end of {recording_id[:8]}", self._stream))
        self._shown[1].update(done)

    def close(self) -> None:
        if self._shown is not None:
            self._shown[1].close()
            self._shown = None


def to_devnull(*streams: TextIO) -> None:
    """What is still buffered is written if it can be; everything after goes to /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in streams:
        # what the closed terminal would not take; RuntimeError: the main thread was in a write
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            stream.flush()
        with contextlib.suppress(AttributeError, OSError, ValueError):  # not a file: nothing to detach
            os.dup2(devnull, stream.fileno())
    os.close(devnull)
