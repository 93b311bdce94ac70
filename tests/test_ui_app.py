"""The desktop app in real Qt widgets: start-up, the live window, the tray flow, quitting."""

from __future__ import annotations

import copy
import gc
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QMessageBox, QSystemTrayIcon

from api.client import PostHogClient
from desktop_recorder.secrets import SERVICE
from desktop_recorder.store import StoredSegment
from tests.conftest import JFK_TEXT, WRITE_KEY, cli_env, damaged_database, wer
from tests.recording import Recorder, play
from ui.app import DesktopApp, run_app
from ui.controller import KEYRING_WAITS, load_transcriber
from ui.tray import TrayIcon, tray_state


def segment(i: int, speaker: str = "Others", source: str = "system", text: str = "hello there") -> StoredSegment:
    return StoredSegment(i, "rec", i * 1000.0, i * 1000.0 + 800, source, speaker, f"{text} {i}", 0.9, False)


@pytest.fixture
def make_app(qtbot, qapp, ctx):
    apps: list[DesktopApp] = []

    def make(**kwargs) -> DesktopApp:
        quits: list[bool] = []
        app = DesktopApp(qapp, ctx, force_no_tray=True, quit_app=lambda: quits.append(True), **kwargs)
        app.quits = quits  # type: ignore[attr-defined]
        qtbot.addWidget(app.live)
        qtbot.addWidget(app.window)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.controller.shutdown()
    # An app and its Qt objects refer to each other: collected here, on the GUI thread, not by
    # whichever thread the collector next runs on (a worker's log call crashed there once).
    apps.clear()
    gc.collect()


def test_window_appears_before_the_model_is_loaded(make_app, qtbot):
    gate = threading.Event()

    def slow_model(context, progress):
        gate.wait(30)
        return load_transcriber(context, progress)

    app = make_app(controller_kwargs={"transcriber_factory": slow_model})
    app.start()
    assert app.window.isVisible()  # no tray offscreen: the fallback window, never nothing
    assert app.controller.state == "loading"
    assert not app.actions.record.isEnabled() and "Loading" in app.window.status_label.text()
    gate.set()
    qtbot.waitUntil(lambda: app.controller.state == "idle", timeout=30_000)
    assert app.actions.record.isEnabled() and app.window.buttons["record"].text() == "Start recording"


def test_changing_the_model_settings_reloads_the_model_and_shows_download_progress(make_app, qtbot):
    loads: list[str] = []

    def counting(context, progress):
        loads.append(context.settings.language)
        progress(25, 100)  # what a first download of a named model reports
        return load_transcriber(context, progress)

    app = make_app(controller_kwargs={"transcriber_factory": counting})
    app.start()
    qtbot.waitUntil(lambda: app.controller.state == "idle", timeout=30_000)
    app.controller.apply_settings(replace(app.ctx.settings, user_name="Ana"))  # not a model field
    assert app.controller.state == "idle" and loads == ["en"]
    texts: list[str] = []
    app.controller.model_progress.connect(lambda *_: texts.append(app.window.status_label.text()))
    app.controller.apply_settings(replace(app.ctx.settings, language="auto"))
    assert app.controller.state == "loading" and not app.actions.record.isEnabled()
    qtbot.waitUntil(lambda: app.controller.state == "idle", timeout=30_000)
    assert loads == ["en", "auto"]
    assert any("Downloading the speech model… 25%" in t for t in texts), texts


def test_saving_the_same_settings_after_a_failed_model_load_tries_again(make_app, qtbot):
    """Offline at start, a named model could not be downloaded: once the user has downloaded it
    in Settings (or is back online), Save loads it; the app is not stuck until restarted."""
    online = threading.Event()

    def model(context, progress):
        if not online.is_set():
            raise OSError("Cannot download model 'small': no connection")
        return load_transcriber(context, progress)

    app = make_app(controller_kwargs={"transcriber_factory": model})
    app.start()
    qtbot.waitUntil(lambda: app.controller.state == "error", timeout=30_000)
    assert not app.actions.record.isEnabled()
    online.set()
    app.controller.apply_settings(app.ctx.settings)
    qtbot.waitUntil(lambda: app.controller.state == "idle", timeout=30_000)
    assert app.actions.record.isEnabled()


def test_live_window_shows_partials_greyed_then_replaces_them_with_finals(make_app):
    app = make_app()
    live = app.live
    app.controller.partial.emit("Others", "and so my fel")
    app.controller.partial.emit("Me", "hi every")
    assert "Others: and so my fel…" in live.partial_label.text() and "Me: hi every…" in live.partial_label.text()
    app.controller.final_line.emit(segment(1, text="And so my fellow Americans."))
    assert "Others" not in live.partial_label.text() and "Me: hi every…" in live.partial_label.text()
    assert "[00:01] Others: And so my fellow Americans. 1" in live.transcript.toPlainText()
    live.copy_transcript()
    assert live.transcript_text() == "[00:01] Others: And so my fellow Americans. 1\n"


def test_auto_scroll_pauses_when_scrolled_up_and_jump_to_live_resumes(make_app, qtbot):
    app = make_app()
    live = app.live
    live.resize(500, 300)
    live.show()
    for i in range(60):
        app.controller.final_line.emit(segment(i))
    bar = live.transcript.verticalScrollBar()
    assert bar.maximum() > 0 and bar.value() == bar.maximum()  # following the live end
    bar.setValue(0)  # the user scrolls up to reread
    assert live.jump_button.isVisible()
    app.controller.final_line.emit(segment(61))
    assert bar.value() == 0  # not yanked back down
    live.jump_button.click()
    assert bar.value() == bar.maximum() and not live.jump_button.isVisible()


@pytest.mark.parametrize(("app_state", "sync", "icon"), [
    ("recording", "offline", "recording"), ("idle", "blocked", "error"), ("error", "synced", "error"),
    ("finishing", "synced", "syncing"), ("idle", "pending", "syncing"), ("idle", "offline", "offline"),
    ("idle", "synced", "idle"), ("idle", "off", "idle"),
])
def test_tray_icon_state(app_state, sync, icon):
    assert tray_state(app_state, sync) == icon


def test_the_tray_app_refuses_a_database_damaged_past_its_first_page_and_leaves_it_alone(qapp, app_home,
                                                                                         monkeypatch):
    """Opening reads only the schema: without a check the app would start, fail at odd moments
    and write into the damage. It says what is wrong and what to do, before any window shows."""
    data = damaged_database(app_home)
    shown: list[str] = []
    monkeypatch.setattr("ui.app.QMessageBox.critical", lambda _parent, _title, text: shown.append(text))

    assert run_app([]) == 2
    assert len(shown) == 1 and "is not a readable recordings database" in shown[0] and "move it aside" in shown[0]
    assert (app_home / "data" / "recordings.sqlite3").read_bytes() == data


def test_tray_icon_is_handed_to_the_tray_only_when_its_state_changes(make_app):
    """The clock ticks ten times a second while recording; the icon must not be re-sent each time."""
    app = make_app()
    tray = TrayIcon(app.actions, lambda: None)
    idle = tray.icon().cacheKey()
    for second in (1.0, 1.1, 2.0):
        app.controller.elapsed.emit(second)
    assert tray.icon().cacheKey() == idle
    app.controller.sync_changed.emit("offline", "PostHog is unreachable")
    offline = tray.icon().cacheKey()
    assert offline != idle and "PostHog is unreachable" in tray.toolTip()
    app.controller.elapsed.emit(3.0)
    assert tray.icon().cacheKey() == offline


def test_a_tray_that_comes_later_takes_the_controls_and_what_they_showed(make_app, monkeypatch):
    """Started before the panel: once a tray is there the window goes, and the tray says what it said."""
    app = make_app()
    window = app.window
    assert window is not None and app.tray is None
    app.controller.sync_changed.emit("blocked", "The personal API key was rejected")
    app.controller.notice.emit("error", "The microphone was unplugged")
    told: list[tuple[str, str]] = []
    monkeypatch.setattr(TrayIcon, "notify", lambda _tray, level, message: told.append((level, message)))
    monkeypatch.setattr(QSystemTrayIcon, "isSystemTrayAvailable", staticmethod(lambda: True))
    box = QMessageBox(QMessageBox.Icon.Question, "Quit", "A recording is running. Stop it?", parent=window)
    box.setWindowModality(Qt.WindowModality.ApplicationModal)
    box.show()  # the window's quit question: deleting the window under it crashed the app
    app._follow_tray()
    assert app.tray is None and window.isVisible()
    box.close()
    app._follow_tray()
    assert app.tray is not None and app.window is None and not window.isVisible()
    assert "The personal API key was rejected" in app.tray.toolTip()
    assert app.tray.status.icon_state == tray_state(app.controller.state, "blocked")
    assert told == [("warning", "The microphone was unplugged")]
    app.controller.state_changed.emit("loading")  # the hidden window's connections still work
    app.tray.hide()


def test_a_tray_that_goes_away_gives_the_controls_back_to_the_window(make_app, monkeypatch):
    """A panel that quits or restarts took the only way to stop a recording with it."""
    app = make_app()
    window = app.window
    tray_here = [True]
    monkeypatch.setattr(QSystemTrayIcon, "isSystemTrayAvailable", staticmethod(lambda: tray_here[0]))
    told: list[tuple[str, str]] = []
    monkeypatch.setattr(TrayIcon, "notify", lambda _tray, level, message: told.append((level, message)))
    app._follow_tray()
    tray = app.tray
    assert tray is not None and app.window is None and not window.isVisible()
    app.controller.sync_changed.emit("offline", "PostHog is unreachable")  # told to both while hidden
    app.controller.notice.emit("warning", "Recovered an interrupted recording (30 s).")  # a balloon

    tray_here[0] = False
    app._follow_tray()
    assert app.window is None  # one check: a panel's quick restart shows nothing
    app._follow_tray()
    assert app.window is window and window.isVisible() and app.tray is tray  # Qt docks it again later
    assert "PostHog is unreachable" in window.status_label.text()
    assert window.notice_label.text() == ""  # the balloon's words are not shown again
    app.controller.notice.emit("error", "The microphone was unplugged")  # its balloon went nowhere
    app._follow_tray()
    assert app.window is window and window.isVisible()  # nothing moves while there is no tray

    tray_here[0] = True
    told.clear()
    app._follow_tray()
    assert app.window is None and not window.isVisible() and app.tray is tray
    assert told == [("warning", "The microphone was unplugged")]
    tray_here[0] = False  # the panel restarts again: what was told is not told a third time
    app._follow_tray()
    app._follow_tray()
    tray_here[0] = True
    app._follow_tray()
    assert app.window is None and told == [("warning", "The microphone was unplugged")]

    app._quitting = True  # a logout ends the panel too: no window while the recording finishes
    tray_here[0] = False
    app._follow_tray()
    app._follow_tray()
    assert app.window is None
    tray.hide()


HOLD_WATCHER = ("from PySide6.QtCore import QCoreApplication; from PySide6.QtDBus import QDBusConnection; import sys; "
                "app = QCoreApplication([]); "
                "print(QDBusConnection.sessionBus().registerService(sys.argv[1]), flush=True); sys.stdin.read()")
ASK = """
import subprocess, sys
from PySide6.QtCore import QCoreApplication
from ui.app import STATUS_NOTIFIER_WATCHER, dbus_tray
app = QCoreApplication([])
before = dbus_tray()
holder = subprocess.Popen([sys.executable, "-c", sys.argv[1], STATUS_NOTIFIER_WATCHER], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
registered = holder.stdout.readline().strip()
print(f"before={before} registered={registered} after={dbus_tray()}")
holder.stdin.close()
holder.wait(10)
"""


def test_a_dbus_tray_is_told_apart_from_an_xembed_one():
    """Asking Qt whether a D-Bus tray exists opens a bus connection each time: only an XEmbed
    tray is watched. On a private session bus, without and with a StatusNotifier watcher."""
    root = Path(__file__).parent.parent
    result = subprocess.run(["dbus-run-session", "--", sys.executable, "-c", ASK, HOLD_WATCHER], capture_output=True,
                            text=True, timeout=60, cwd=root)
    assert "before=False registered=True after=True" in result.stdout, result.stdout + result.stderr
    no_bus = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    outside = subprocess.run([sys.executable, "-c", "from ui.app import dbus_tray; print(dbus_tray())"],
                             capture_output=True, text=True, timeout=60, cwd=root, env=no_bus)
    assert outside.stdout.strip() == "False", outside.stderr


@pytest.mark.slow
@pytest.mark.audio
def test_tray_flow_start_live_lines_stop_synced(audio_rig, server, make_app, qtbot, monkeypatch, playable):
    """Start from the menu → live lines appear → stop → the recording is stored, synced, browsable."""
    monkeypatch.setenv("POSTHOG_HOST", server.url)
    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", WRITE_KEY)
    app = make_app()
    app.ctx.settings = app.ctx.settings.with_env()
    app.start()
    qtbot.waitUntil(lambda: app.controller.state == "idle", timeout=30_000)
    app.live.title_edit.setText("Tray flow")
    app.controller.notice.emit("warning", "A warning about an earlier recording")
    notices: list[str] = []
    app.controller.notice.connect(lambda _level, text: notices.append(text))
    app.actions.record.trigger()
    qtbot.waitUntil(lambda: app.controller.state == "recording", timeout=10_000)
    assert app.actions.record.text() == "Stop recording"
    assert app.live.warning_label.isHidden() and app.window.notice_label.text() == ""
    assert len(notices) == 1 and notices[0].startswith("Recording started (Microphone: ")  # one balloon
    assert "System audio: " in notices[0]
    play(playable["jfk"], "meet_speakers").wait()
    qtbot.waitUntil(lambda: "country" in " ".join(s.text for s in app.live.lines[-1:]), timeout=20_000)
    with qtbot.waitSignal(app.controller.recording_finished, timeout=60_000) as finished:
        app.actions.record.trigger()
    recording = finished.args[0]
    assert recording.status == "ready" and recording.title == "Tray flow"
    assert app.live.title_edit.text() == ""  # the next meeting does not inherit this one's title
    assert wer(JFK_TEXT, " ".join(s.text for s in app.live.lines)) <= 0.1
    qtbot.waitUntil(lambda: any(r["status"] == "ready" for r in server.state.recordings.values()), timeout=30_000)
    remote = next(iter(server.state.recordings.values()))
    assert remote["meeting_title"] == "Tray flow" and len(remote["transcript_segments"]) == len(app.live.lines)

    app.actions.recordings.trigger()  # … and the recording is in the browser
    browser = app.browser
    qtbot.addWidget(browser)
    qtbot.waitUntil(lambda: any(r.title == "Tray flow" and r.remote is not None for r in browser.rows()),
                    timeout=15_000)

    # "Improve transcript": the saved audio is transcribed again; the result is local only.
    browser.select(recording.id)
    assert browser.detail.refine_button.isVisibleTo(browser) and browser.detail.refine_button.isEnabled()
    requests_before = len(server.state.requests)
    server_segments = copy.deepcopy(remote["transcript_segments"])  # the server's dict changes in place
    shown: list[str] = []  # the button as each progress report left it (queued: run here, after the browser's)
    app.controller.refine_progress.connect(lambda *_: shown.append(browser.detail.refine_button.text()),
                                           Qt.ConnectionType.QueuedConnection)
    with qtbot.waitSignal(app.controller.refined, timeout=60_000):
        qtbot.mouseClick(browser.detail.refine_button, Qt.MouseButton.LeftButton)
        # until the pass reports (on this thread, so after this block): one pass, no delete under it
        assert browser.detail.refine_button.text() == "Improving… 0%"
        assert not browser.detail.refine_button.isEnabled()
        assert app.controller.refine_recording(recording.id) == "This transcript is already being improved."
        browser.delete_selected(confirm=False)
        assert "being improved" in browser.notice.text() and app.ctx.store.pending_ops(recording.id) == []
    assert shown and shown[-1] == "Improving… 100%" and len(shown) >= 2, shown  # how far it was, as it went
    refined = app.ctx.store.refined_segments(recording.id)
    assert refined and wer(JFK_TEXT, " ".join(s.text for s in refined)) <= 0.1
    assert refined[0].text in browser.detail.transcript_view.toPlainText()
    assert browser.detail.refine_button.text() == "Improve transcript"
    assert all(p.endswith("/desktop_recordings/") for _m, p, _b in server.state.requests[requests_before:])  # lists
    assert next(iter(server.state.recordings.values()))["transcript_segments"] == server_segments


@pytest.mark.slow
@pytest.mark.audio
def test_a_long_pass_at_stop_says_how_far_it_is_in_the_status_and_not_in_notifications(
        audio_rig, make_app, qtbot, monkeypatch, playable):
    """The model failed mid-meeting, so at stop the rest is transcribed from the audio file: the
    status says how far that is, and no notification pops up for each step."""
    from desktop_recorder import session
    from tests.test_e2e_record import FailingModel

    monkeypatch.setattr(session, "PROGRESS_EVERY_S", 0.0)  # JFK takes a second, not minutes
    def failing(context, progress):
        return FailingModel(load_transcriber(context, progress), fail_from=3)

    app = make_app(controller_kwargs={"transcriber_factory": failing})
    app.start()
    qtbot.waitUntil(lambda: app.controller.state == "idle", timeout=30_000)
    notices: list[str] = []
    app.controller.notice.connect(lambda _level, text: notices.append(text))
    shown: list[str] = []  # the status as each report left it (queued: run here, after the window's)
    app.controller.finishing_progress.connect(lambda _message: shown.append(app.window.status_label.text()),
                                              Qt.ConnectionType.QueuedConnection)
    app.actions.record.trigger()
    qtbot.waitUntil(lambda: app.controller.state == "recording", timeout=10_000)
    play(playable["jfk"], "meet_speakers").wait()
    with qtbot.waitSignal(app.controller.recording_finished, timeout=60_000):
        app.actions.record.trigger()
    assert any(n.startswith("Transcription stopped: CUDA failed") for n in notices), notices
    status = r"Desktop Recorder — Finishing the recording… Transcribing the audio since 00:\d\d: \d+% done…"
    assert shown and all(re.match(status, text) for text in shown), shown
    assert not any("done…" in n for n in notices), notices
    assert app.window.status_label.text().startswith("Desktop Recorder — Idle")


@pytest.mark.slow
@pytest.mark.audio
def test_a_stop_keeps_browser_edits_and_what_was_typed_in_the_live_window(audio_rig, make_app, qtbot):
    """The browser renames the running meeting; the live window, left untouched (or only
    clicked through), must not put its old title back at the stop. Participants typed there and
    stopped by shortcut, before the field was left, are kept."""
    app = make_app()
    app.start()
    qtbot.waitUntil(lambda: app.controller.state == "idle", timeout=30_000)
    app.live.title_edit.setText("Standup")
    app.live.participants_edit.setText("Ana")
    app.actions.record.trigger()
    qtbot.waitUntil(lambda: app.controller.state == "recording", timeout=10_000)
    rid = app.controller.session.recording.id
    app.show_recordings()
    app.browser.select(rid)
    app.browser.detail.title_edit.setText("Board meeting")
    app.browser.detail.save_button.click()
    assert app.ctx.store.get_recording(rid).title == "Board meeting"
    app.live.title_edit.editingFinished.emit()  # clicked into and out of, unchanged
    app.live.participants_edit.setText("Ana, Dee")  # typed, still in the field
    with qtbot.waitSignal(app.controller.recording_finished, timeout=60_000) as finished:
        app.actions.record.trigger()
    rec = finished.args[0]
    assert (rec.title, rec.participants) == ("Board meeting", ["Ana", "Dee"])
    last_patch = [op.payload for op in app.ctx.store.pending_ops(rid) if op.op == "patch"][-1]
    assert (last_patch["meeting_title"], last_patch["participants"]) == ("Board meeting", ["Ana", "Dee"])


@pytest.mark.audio
@pytest.mark.parametrize("confirm", [True, False])
def test_quit_while_recording_asks_then_finalises(audio_rig, make_app, qtbot, confirm):
    app = make_app(confirm_quit=lambda _parent: confirm)
    app.start()
    qtbot.waitUntil(lambda: app.controller.state == "idle", timeout=30_000)
    app.actions.record.trigger()
    qtbot.waitUntil(lambda: app.controller.state == "recording", timeout=10_000)
    app.actions.quit.trigger()
    if not confirm:
        assert app.controller.state == "recording" and app.quits == []
        app.actions.record.trigger()
        qtbot.waitUntil(lambda: app.controller.state == "idle", timeout=60_000)
        return
    assert app.controller.state == "finishing"  # finalising without blocking the GUI thread
    qtbot.waitUntil(lambda: app.quits == [True], timeout=60_000)
    assert [r.status for r in app.ctx.store.list_recordings()] == ["ready"]


def test_a_slow_start_leaves_the_gui_free_and_its_failure_is_said(make_app, qtbot, monkeypatch):
    """A device that refuses to open is tried again for seconds: the start runs off the GUI
    thread (the tray and windows froze for 5 s), and its failure is said when it comes."""
    from desktop_recorder.session import RecordingSession
    from recorder.capture import CaptureError

    gate = threading.Event()

    def refused_after_a_while(_session: RecordingSession) -> None:
        gate.wait(30)
        raise CaptureError("Cannot open Microphone: Device unavailable")

    monkeypatch.setattr(RecordingSession, "start", refused_after_a_while)
    app = make_app()
    app.start()
    qtbot.waitUntil(lambda: app.controller.state == "idle", timeout=30_000)
    app.actions.record.trigger()  # returns while the start is still trying
    assert app.controller.state == "starting" and not app.actions.record.isEnabled()
    assert app.live.record_button.text() == "Starting…"
    gate.set()
    qtbot.waitUntil(lambda: "Could not start recording: Cannot open Microphone" in app.window.notice_label.text(),
                    timeout=10_000)
    assert app.controller.state == "idle" and app.actions.record.isEnabled()


@pytest.mark.audio
def test_quit_while_a_recording_starts_stops_it_once_started_then_quits(audio_rig, make_app, qtbot, monkeypatch):
    from desktop_recorder.session import RecordingSession

    gate = threading.Event()
    start = RecordingSession.start

    def slow_start(session: RecordingSession):
        gate.wait(30)
        return start(session)

    monkeypatch.setattr(RecordingSession, "start", slow_start)
    app = make_app(confirm_quit=lambda _parent: True)
    app.start()
    qtbot.waitUntil(lambda: app.controller.state == "idle", timeout=30_000)
    app.actions.record.trigger()
    app.actions.quit.trigger()
    assert app.controller.state == "starting" and app.quits == []
    gate.set()
    qtbot.waitUntil(lambda: app.quits == [True], timeout=60_000)
    assert [r.status for r in app.ctx.store.list_recordings()] == ["ready"]


def test_quitting_while_the_stop_fails_still_quits(make_app, qtbot):
    """Quit (or logout's SIGTERM) during a recording whose stop then fails (a full disk): the app
    quits all the same (it used to stay up, and quit at the end of the next recording instead)."""

    class FailingSession:
        recording = None

        def stop(self, **_kwargs: object) -> None:
            raise OSError(28, "No space left on device")

    app = make_app(confirm_quit=lambda _parent: True)
    app.controller.session = FailingSession()  # type: ignore[assignment]
    app.controller._set_state("recording")
    app.actions.quit.trigger()
    qtbot.waitUntil(lambda: app.quits == [True], timeout=10_000)
    assert app.controller.state == "idle"


def test_recording_without_any_audio_device_says_so_and_stays_usable(make_app, qtbot, monkeypatch):
    monkeypatch.setenv("PULSE_SERVER", "unix:/nonexistent/native")
    app = make_app()
    app.start()
    qtbot.waitUntil(lambda: app.controller.state == "idle", timeout=30_000)
    with qtbot.waitSignal(app.controller.notice, timeout=30_000) as notice:  # each device is tried for 5 s
        app.actions.record.trigger()
    assert notice.args[0] == "warning" or "Could not start" in notice.args[1]
    qtbot.waitUntil(lambda: "Could not start recording" in app.window.notice_label.text(), timeout=30_000)
    assert app.controller.state == "idle" and app.actions.record.isEnabled()


@pytest.mark.parametrize(("fault", "expected"), [
    ("create_unavailable", "cannot create desktop recordings"),
    ("revoked", "Sync stopped: PostHog rejected the personal API key"),
])
def test_sync_problems_that_need_the_user_are_notified(make_app, qtbot, server, monkeypatch, fault, expected):
    monkeypatch.setenv("POSTHOG_HOST", server.url)
    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", WRITE_KEY)
    if fault == "revoked":
        server.state.keys.clear()
    else:
        server.state.faults.create_unavailable = True
    app = make_app()
    app.ctx.settings = app.ctx.settings.with_env()
    app.ctx.store.create_recording(platform="meet", title="Waiting", participants=[], audio_path=None)
    notices: list[str] = []
    app.controller.notice.connect(lambda level, message: notices.append(message))
    app.controller.restart_sync()
    qtbot.waitUntil(lambda: any(expected in n for n in notices), timeout=15_000)
    qtbot.waitUntil(lambda: app.window.status.icon_state == "error", timeout=5_000)


def test_an_interrupted_recording_is_recovered_with_its_unfinished_speech_once_the_model_is_there(
        make_app, qtbot, ctx):
    from tests.test_recovery import interrupted
    from tests.test_refine import speech

    jfk = speech("jfk")
    rid = interrupted(ctx.store, ctx.paths.audio_dir, 0 * jfk, jfk)  # killed before any line was final
    app = make_app()
    notices: list[str] = []
    app.controller.notice.connect(lambda _level, text: notices.append(text))
    shown: list[str] = []  # the window's status after each step of the recovery (connected after it)
    app.controller.recovery_progress.connect(lambda _share: shown.append(app.window.status_label.text()))
    app.start()
    qtbot.waitUntil(lambda: ctx.store.get_recording(rid).status == "ready", timeout=60_000)
    assert wer(JFK_TEXT, " ".join(s.text for s in ctx.store.segments(rid))) <= 0.1
    qtbot.waitUntil(lambda: any("Recovered an interrupted recording" in n for n in notices), timeout=5_000)
    assert any("Transcribing the end of an interrupted recording" in n for n in notices)  # said while it worked
    how_far = [re.search(r"interrupted recording… (\d+)%", text) for text in shown]
    assert len(shown) >= 2 and all(how_far[:-1]) and how_far[-1] is None, shown  # how far, then gone
    done = [int(m[1]) for m in how_far[:-1]]
    assert done == sorted(done) and done[-1] < 100, shown  # never "100%" while it still works


def test_settings_open_once_and_the_default_platform_applies_at_once(make_app, qtbot):
    app = make_app()
    app.show_settings()
    dialog = app.settings
    qtbot.addWidget(dialog)
    qtbot.waitSignal(dialog.audio.devices_loaded, timeout=15_000).wait()
    app.show_settings()  # a second one, saved after the first, would undo the first's changes
    assert app.settings is dialog
    dialog.audio.platform_combo.setCurrentIndex(dialog.audio.platform_combo.findData("zoom"))
    dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    assert app.live.platform_combo.currentText() == "zoom"  # the next recording's platform, not after a restart


def test_the_menus_shortcuts_work_in_the_apps_windows(make_app, qtbot):
    app = make_app()
    app.show_live()
    qtbot.waitExposed(app.live)
    app.live.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is app.live, timeout=5_000)
    qtbot.keyClick(app.live, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert app.quits == [True]


def test_a_recorder_killed_while_the_app_runs_is_recovered_by_the_app(make_app, qtbot, app_home, audio_rig,
                                                                     playable, monkeypatch):
    """A `desktop-recorder record` in a terminal is killed while the tray app runs: the app
    finalises its recording, with the speech it never decoded, without being restarted."""
    monkeypatch.setattr("ui.controller.RECOVER_EVERY_MS", 1_000)
    app = make_app()
    notices: list[str] = []
    app.controller.notice.connect(lambda _level, text: notices.append(text))
    app.start()
    qtbot.waitUntil(lambda: app.controller.state == "idle", timeout=30_000)
    rec = Recorder(["--mic", "none"], cli_env(app_home, None))
    rec.wait_recording()
    play(playable["jfk"], "meet_speakers").wait()
    rec.proc.send_signal(signal.SIGKILL)
    rec.finish()
    (killed,) = app.ctx.store.list_recordings()
    qtbot.waitUntil(lambda: app.ctx.store.get_recording(killed.id).status == "ready", timeout=60_000)
    assert wer(JFK_TEXT, " ".join(s.text for s in app.ctx.store.segments(killed.id))) <= 0.1
    qtbot.waitUntil(lambda: any("Recovered an interrupted recording" in n for n in notices), timeout=5_000)


def test_a_keyring_waiting_to_be_unlocked_does_not_hold_the_app(make_app, qtbot, ctx, server, locked_keyring):
    """At login the desktop's keyring can wait for the user to unlock it. The key is read off the
    GUI thread: the model loads and Record is usable meanwhile, the app says what sync waits for,
    and sync starts once the keyring answers."""
    unlocked, stored, asked_on = locked_keyring
    stored[(SERVICE, server.url)] = WRITE_KEY
    ctx.settings = replace(ctx.settings, host=server.url)
    app = make_app()
    states: list[tuple[str, str]] = []
    app.controller.sync_changed.connect(lambda kind, text: states.append((kind, text)))
    app.start()
    qtbot.waitUntil(lambda: app.controller.state == "idle", timeout=30_000)
    assert asked_on and threading.main_thread() not in asked_on
    assert app.controller.sync is None and app.actions.record.isEnabled()
    qtbot.waitUntil(lambda: bool(states), timeout=5_000)  # what sync waits for is said
    assert states == [("offline", KEYRING_WAITS)]
    assert KEYRING_WAITS in app.window.status_label.text()
    unlocked.set()
    qtbot.waitUntil(lambda: app.controller.sync is not None and len(states) > 1, timeout=10_000)
    assert app.controller.sync.client.host == server.url
    assert states[-1][0] == "synced", states


def test_restarting_sync_does_not_wait_for_a_request_in_flight(make_app, qtbot, ctx):
    """Settings → Save restarts sync. The old worker, in a request to a server that accepted the
    connection and never answers, stops in the background (the GUI froze for it); the new one
    starts once it has stopped, never beside it."""
    with socket.socket() as hanging:
        hanging.bind(("127.0.0.1", 0))
        hanging.listen()
        hanging.settimeout(10)
        url = f"http://127.0.0.1:{hanging.getsockname()[1]}"
        ctx.store.create_recording(platform="meet", title="Waiting", participants=[], audio_path=None)
        app = make_app(controller_kwargs={
            "client_factory": lambda: PostHogClient(url, WRITE_KEY, timeout=httpx.Timeout(3.0))})
        app.controller.restart_sync()
        qtbot.waitUntil(lambda: app.controller.sync is not None, timeout=5_000)  # its client is built on a thread
        first = app.controller.sync
        connection, _ = hanging.accept()  # the worker's create, which gets no answer
        with connection:
            app.controller.restart_sync()
            assert app.controller.sync is None and first.running  # returned at once; stopping goes on
            # its create times out after 3 s and is not retried (stopping ends retries: 16 s otherwise)
            qtbot.waitUntil(lambda: app.controller.sync is not None, timeout=8_000)
            assert not first.running
