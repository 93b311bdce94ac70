"""``desktop-recorder``: the command line front end of the same core the tray app uses."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from api.models import PLATFORMS
from desktop_recorder import __version__
from desktop_recorder.context import AppContext, CannotStart, setup_logging, unreadable_database
from desktop_recorder.terminal import to_devnull
from transcription.formats import FORMATS

RECORDING_ID_HELP = "the local id or the server id, as 'list' shows (or their first characters, 4 or more)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="desktop-recorder", description="Record, transcribe locally, sync to PostHog.")
    p.add_argument("--version", action="version", version=f"desktop-recorder {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log everything to stderr")
    sub = p.add_subparsers(dest="command")

    rec = sub.add_parser("record", help="record the microphone and the system audio, transcribing live")
    rec.add_argument("--mic", default=None, help="auto | none | DEVICE (default: settings, else auto)")
    rec.add_argument("--system", default=None, help="auto | none | DEVICE (default: settings, else auto)")
    rec.add_argument("--duration", type=_seconds, default=None, metavar="SECONDS", help="stop after this long")
    rec.add_argument("--title", default=None, help="meeting title")
    rec.add_argument("--platform", choices=PLATFORMS, default=None)
    rec.add_argument("--participant", action="append", default=[], metavar="NAME",
                     help="a participant (repeat); the first names the microphone's speaker")
    rec.add_argument("--model", default=None, help="auto (embedded tiny.en) | PATH | NAME")
    rec.add_argument("--refine", action="store_true",
                     help="after stopping, transcribe the saved audio again, slower and better (local transcript only)")

    tr = sub.add_parser("transcribe", help="transcribe an audio file")
    tr.add_argument("file", type=Path)
    tr.add_argument("--format", choices=FORMATS, default="txt")
    tr.add_argument("--model", default=None, help="auto (embedded tiny.en) | PATH | NAME")

    sub.add_parser("devices", help="list inputs, marking the microphone and the system-audio source")
    sub.add_parser("sync", help="push everything pending; exit 1 if anything is still unsynced")
    ls = sub.add_parser("list", help="local recordings with their sync state and server id")
    ls.add_argument("--json", action="store_true")
    sub.add_parser("doctor", help="check audio, devices, model, keyring, server and scopes")
    rf = sub.add_parser("refine", help="transcribe a recording's saved audio again for a better local transcript "
                                       "(the server keeps the live one)")
    rf.add_argument("recording_id", help=RECORDING_ID_HELP)
    rf.add_argument("--model", default=None, help="auto (embedded tiny.en) | PATH | NAME")
    rf.add_argument("--format", choices=FORMATS, default="txt")
    ex = sub.add_parser("export", help="print a recording's transcript (the improved one, if it was refined)")
    ex.add_argument("recording_id", help=RECORDING_ID_HELP)
    ex.add_argument("--format", choices=FORMATS, default="txt")
    ex.add_argument("--live", action="store_true", help="the live transcript (the one on the server), even if refined")
    rm = sub.add_parser("delete", help="delete a recording here and on the server (its audio file too)")
    rm.add_argument("recording_id", help=RECORDING_ID_HELP)
    ec = sub.add_parser("echo", help="lines the echo check left out of 'Me' (heard from the speakers); "
                                     "put wrongly left-out ones back")
    ec.add_argument("recording_id", help=RECORDING_ID_HELP)
    ec.add_argument("--restore", type=int, nargs="+", default=[], metavar="N",
                    help="put these lines (numbers as listed, which never change) back in the transcript; "
                         "they then sync")
    cfg = sub.add_parser("configure", help="set the PostHog host and project; store the API key in the keyring")
    cfg.add_argument("--host", help="https://us.posthog.com, https://eu.posthog.com or your instance's URL")
    cfg.add_argument("--project", help="numeric project id or @current")
    cfg.add_argument("--name", help="your name, the speaker label of the microphone ('' for \"Me\")")
    cfg.add_argument("--api-key-stdin", action="store_true", help="read the personal API key from stdin")
    return p


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command
    if command is None:
        if _no_display():
            print("desktop-recorder: the tray app needs a desktop session (no display found). Record from "
                  "the command line with 'desktop-recorder record'; see 'desktop-recorder --help'.", file=sys.stderr)
            return 2
        from ui.app import run_app  # the tray app; Qt is imported only in ui/

        return run_app()
    try:
        ctx = AppContext.open(check=command == "record")  # runs for hours: never into a damaged database
    except CannotStart as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(ctx.paths, verbose=args.verbose)
    try:
        from desktop_recorder import commands

        handler = getattr(commands, f"cmd_{command}")
        code = int(handler(ctx, args))
        sys.stdout.flush()  # here, where a closed pipe is handled, not at exit
        return code
    except KeyboardInterrupt:
        return 130
    except sqlite3.DatabaseError as exc:  # damaged past the pages read at open, or unusable (disk I/O)
        logging.getLogger(__name__).info("the recordings database failed", exc_info=True)  # the log file
        if isinstance(exc, sqlite3.OperationalError):
            print(f"error: cannot use the recordings database {ctx.paths.database}: {exc}", file=sys.stderr)
        else:
            print(f"error: {unreadable_database(ctx.paths.database, exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `list | head`: the reader has what it wanted
        to_devnull(sys.stdout)  # Python's flush at exit would fail again
        return 1
    finally:
        ctx.close()


def _no_display() -> bool:
    """On Linux/BSD a GUI needs X11 or Wayland (or an explicit Qt platform such as offscreen)."""
    if not sys.platform.startswith(("linux", "freebsd")):
        return False
    return not any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


class StopSignal:
    """Ctrl-C / SIGTERM / SIGHUP (or the duration) set ``event``; the main thread waits for it. A
    second signal sets ``again``: stop waiting for the server (what it has not acknowledged stays
    queued locally).

    The handler only counts: it runs on the main thread between two of its bytecodes, even inside
    another run of itself, and ``Event.set`` takes the event's lock, which is not reentrant: had
    that thread been holding it (inside ``Event.wait``, ``set`` or ``clear``), the handler would
    wait for it forever (once in CI a Ctrl-C was never answered: the recorder hung until killed).
    The main thread turns the counts into the events (``poll``) in its own time."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.again = threading.Event()
        self.reason = ""
        self._signals = 0  # Ctrl-C / SIGTERM: written by the handler only
        self._hung_up = False  # the terminal closed: it stops, but never asks to stop waiting
        self._again_after = 1  # signals past this many mean "stop waiting"

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handler)
        signal.signal(signal.SIGTERM, self._handler)
        if hasattr(signal, "SIGHUP"):  # not on Windows
            signal.signal(signal.SIGHUP, self._handler)

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        if not self.signalled:
            self.reason = signal.Signals(signum).name
        if signum == getattr(signal, "SIGHUP", None):
            _detach_from_terminal()
            self._hung_up = True  # the terminal closing sends more than one; only a person asks twice
        else:
            self._signals += 1

    def poll(self) -> None:
        """The signals counted so far, as the events (on the main thread, never in the handler)."""
        if self.signalled:
            self.event.set()
        if self._signals > self._again_after:
            self.again.set()

    def wait(self, duration_s: float | None) -> None:
        deadline = None if duration_s is None else time.monotonic() + duration_s
        while True:
            self.poll()
            if self.event.is_set():
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                self.reason = "duration reached"
                return
            time.sleep(0.1 if remaining is None else min(0.1, remaining))

    @property
    def signalled(self) -> bool:
        """Whether a signal came (else the duration ended the wait, or none was waited for)."""
        return self._signals > 0 or self._hung_up

    def listen_again(self) -> None:
        """From now on a Ctrl-C or SIGTERM means "stop waiting"; one that came before does not.
        After a stop by the duration, that is the first one. A hangup never does: the recorder
        goes on to the end of its wait, as when the terminal is closed during the meeting."""
        self._again_after = self._signals
        self.again = threading.Event()


def _detach_from_terminal() -> None:
    """The terminal was closed (SIGHUP): output goes nowhere from now on, instead of failing the
    writes that stopping the recording still makes (and so leaving it unfinished)."""
    to_devnull(sys.stdout, sys.stderr)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2))

