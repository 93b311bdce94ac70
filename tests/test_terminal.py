"""The CLI's live transcript: partials rewritten in place on a terminal, finals as plain lines."""

from __future__ import annotations

import fcntl
import io
import logging
import os
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from typing import TextIO

import pytest

from desktop_recorder.terminal import CLEAR_LINE, CONSOLE_LOG, DIM, RESET, LiveTranscript, PassBar, TailBars
from tests.conftest import JFK_TEXT, cli_env, wer
from tests.recording import play


def test_partials_are_replaced_and_erased_before_finals_and_messages():
    out, err = io.StringIO(), io.StringIO()
    live = LiveTranscript(out, interactive=True)
    live.partial("Others", "ask not")
    live.partial("Others", "ask not what your")
    live.message("warning: something", err)
    live.final("Others", "[00:01] Others: Ask not what your country can do for you.")
    text = out.getvalue()
    assert text.count(CLEAR_LINE) == 3  # each partial replaced the previous one; the final erased it
    assert text.endswith("[00:01] Others: Ask not what your country can do for you.\n")  # no partial left
    assert f"{DIM}Others: ask not what your" in text
    assert err.getvalue() == "warning: something\n"


def test_a_log_line_while_partial_text_shows_erases_it_and_draws_it_again(capsys):
    """A sync warning from another thread was written after the dimmed partial text, which then
    stayed on screen glued to it."""
    out = io.StringIO()
    live = LiveTranscript(out, interactive=True)
    root = logging.getLogger()
    console = logging.StreamHandler(sys.stderr)  # as setup_logging makes it
    console.set_name(CONSOLE_LOG)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.addHandler(console)
    try:
        live.partial("Zoë", "He recognizes")
        with live.logging_here():
            logging.getLogger("api.sync").warning("sync failed; next try in 2 s")
            live.final("Zoë", "[00:03] Zoë: He recognizes a few things.")
        logging.getLogger("api.sync").warning("afterwards")
        assert root.handlers.count(console) == 1
    finally:
        root.removeHandler(console)
    partial = f"{DIM}Zoë: He recognizes{RESET}"
    assert out.getvalue() == f"{partial}{CLEAR_LINE}{partial}{CLEAR_LINE}[00:03] Zoë: He recognizes a few things.\n"
    assert capsys.readouterr().err == "WARNING: sync failed; next try in 2 s\nWARNING: afterwards\n"


def test_piped_output_gets_finals_only():
    out = io.StringIO()
    live = LiveTranscript(out, interactive=False)
    live.partial("Me", "hello")
    live.final("Me", "[00:00] Me: Hello.")
    assert out.getvalue() == "[00:00] Me: Hello.\n"


def test_output_whose_reader_left_is_dropped_not_raised():
    """`desktop-recorder record | head -n 3`: the reader leaves; the recording goes on (its lines
    are saved) and the output goes to /dev/null instead of raising in the transcription thread."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    out = os.fdopen(write_end, "w", buffering=1)
    live = LiveTranscript(out, interactive=True)
    live.final("Others", "[00:01] Others: Ask not.")
    live.partial("Others", "what your")
    live.final("Others", "[00:03] Others: What your country can do for you.")
    live.message("warning: still recording", io.StringIO())
    live.close()
    assert not live.interactive
    assert os.readlink(f"/proc/self/fd/{out.fileno()}") == os.devnull
    out.close()


def test_the_transcript_saying_its_output_is_gone_while_it_says_the_log_does_not_hang(capsys):
    """Its own warning is logged inside its lock: through it again, that would wait forever."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    out = os.fdopen(write_end, "w", buffering=1)
    live = LiveTranscript(out, interactive=True)
    console = logging.StreamHandler(sys.stderr)
    console.set_name(CONSOLE_LOG)
    logging.getLogger().addHandler(console)
    try:
        with live.logging_here():
            writer = threading.Thread(target=live.final, args=("Others", "[00:01] Others: Ask not."), daemon=True)
            writer.start()
            writer.join(10)
            assert not writer.is_alive()
    finally:
        logging.getLogger().removeHandler(console)
        out.close()
    assert "the live transcript cannot be written any more" in capsys.readouterr().err


def test_a_warning_from_another_thread_while_the_transcript_finds_its_output_gone_does_not_deadlock(capsys):
    """The sync thread logs, and waits for the transcript's lock; the thread holding it finds its
    output gone and logs that too. With a handler lock as well, each held what the other needed."""

    others: list[threading.Thread] = []

    class Full(io.StringIO):
        def write(self, text: str) -> int:  # in the transcript's lock
            others.append(threading.Thread(target=logging.getLogger("api.sync").warning, args=("sync failed",),
                                           daemon=True))
            others[-1].start()
            others[-1].join(0.3)  # it waits for the transcript's lock, which this write holds
            raise OSError(28, "No space left on device")

    console = logging.StreamHandler(sys.stderr)
    console.set_name(CONSOLE_LOG)
    logging.getLogger().addHandler(console)
    live = LiveTranscript(Full(), interactive=True)
    try:
        with live.logging_here():
            writer = threading.Thread(target=live.final, args=("Others", "[00:01] Others: Ask not."), daemon=True)
            writer.start()
            writer.join(10)
            others[0].join(10)
            assert not writer.is_alive() and not others[0].is_alive()
    finally:
        logging.getLogger().removeHandler(console)
    err = capsys.readouterr().err
    assert "the live transcript cannot be written any more" in err and "sync failed" in err, err


def on_a_terminal(write: Callable[[TextIO], None]) -> str:
    """What ``write`` shows on an 80-column pty."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a new pty is 0 wide
    with os.fdopen(slave, "w") as terminal:
        write(terminal)
    screen = b""
    while True:  # all of it: the slave end is closed, so the read ends with EIO (Linux) or EOF
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    return screen.decode()


def test_a_pass_shows_its_share_done_on_a_terminal_and_nothing_elsewhere():
    def refine(terminal: TextIO) -> None:
        with PassBar("Refining", terminal) as bar:
            bar.update(0.25)
            bar.update(1.0)

    shown = on_a_terminal(refine)
    assert "Refining:  25%" in shown and "Refining: 100%" in shown, shown
    piped = io.StringIO()
    with PassBar("Refining", piped) as bar:
        bar.update(0.5)
    assert piped.getvalue() == ""  # a log or a script gets no bar lines


def test_each_interrupted_recordings_tail_gets_its_own_bar():
    def recover(terminal: TextIO) -> None:
        bars = TailBars(terminal)
        for rid, done in (("aaaa1111-x", 0.5), ("aaaa1111-x", 1.0), ("bbbb2222-y", 0.25)):
            bars.update(rid, done)
        bars.close()

    lines = [[part for part in line.split("\r") if part] for line in on_a_terminal(recover).split("\n")]
    assert [line[-1].split("|")[0] for line in lines if line] == [  # each line as it was left
        "Transcribing the end of aaaa1111: 100%", "Transcribing the end of bbbb2222:  25%"]


@pytest.mark.slow
@pytest.mark.audio
def test_record_in_a_terminal_shows_partials_then_finals(audio_rig, app_home, playable):
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "desktop_recorder", "record", "--duration", "15", "--mic", "none"],
                            env=cli_env(app_home, None), stdout=slave, stderr=subprocess.PIPE, text=True)
    os.close(slave)
    screen = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the recorder closed the terminal
                return
            if not chunk:
                return
            screen.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("Recording "):
            break
    time.sleep(0.5)
    play(playable["jfk"], "meet_speakers").wait()
    proc.stderr.read()
    assert proc.wait(120) == 0
    proc.stderr.close()
    reader.join(5)
    os.close(master)

    text = screen.decode()
    partials = [p.split("\x1b")[0] for p in text.split(f"{DIM}Others: ")[1:]]
    finals = [line.split("] Others: ")[-1] for line in text.splitlines() if "] Others: " in line]
    assert partials and finals
    assert any("country" in p.lower() for p in partials), partials  # words shown before they were final
    assert text.index(f"{DIM}Others: ") < text.index("] Others: ")
    assert wer(JFK_TEXT, " ".join(finals)) <= 0.1, finals
