"""Screenshots of the tray menu, live window, recordings browser and settings, for the README.

    bash tests/rig/xvfb_tray.sh -- .venv/bin/python scripts/screenshots.py docs/screenshots

Runs the real app on a virtual screen with a real tray, against the local PostHog test server
filled with demo recordings; the live window is fed demo lines through the controller's signals.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QEventLoop, QPoint, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from api.client import PostHogClient  # noqa: E402
from tests.posthog_server import PostHogTestServer  # noqa: E402

KEY = "phx_demo"
DEMO = [
    ("Launch checklist standup", "zoom", 1423, ["Ana", "Priya"], [
        ("Ana", "Morning everyone, let's go through the launch checklist."),
        ("Others", "The landing page copy is final, design signed off yesterday."),
        ("Ana", "Great. What about the pricing table?"),
        ("Others", "Still waiting on legal for the enterprise tier wording.")]),
    ("Customer call: Acme Corp", "meet", 2034, ["Ana", "Jordan"], [
        ("Others", "We mostly need the export to run every night."),
        ("Ana", "That's on the roadmap for next month.")]),
    ("Hiring loop debrief", "teams", 917, ["Ana", "Sam"], [("Others", "Strong yes from me on the system design.")]),
]


def wait(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def seed(server: PostHogTestServer) -> None:
    with PostHogClient(server.url, KEY, 1) as client:
        for title, platform, duration, people, lines in DEMO:
            rec = client.create_recording(platform)
            client.update_recording(rec.id, {"meeting_title": title, "status": "ready", "participants": people,
                                             "duration_seconds": duration, "summary": "Agreed next steps.",
                                             "notes": "Follow up on Friday."})
            from api.models import WireSegment

            client.append_segments(rec.id, [WireSegment(i * 6000.0, who, text, 0.9)
                                            for i, (who, text) in enumerate(lines)])


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    server = PostHogTestServer(keys={KEY: {"desktop_recording:write"}}).start()
    seed(server)
    os.environ.update(DESKTOP_RECORDER_HOME=tempfile.mkdtemp(), POSTHOG_HOST=server.url,
                      POSTHOG_PERSONAL_API_KEY=KEY)
    from desktop_recorder.context import AppContext
    from desktop_recorder.store import StoredSegment
    from ui.app import DesktopApp

    qapp = QApplication(sys.argv[:1])
    qapp.setApplicationName("Desktop Recorder")
    qapp.setQuitOnLastWindowClosed(False)
    ctx = AppContext.open()
    app = DesktopApp(qapp, ctx, quit_app=lambda: None)
    app.start()
    wait(2500)
    screen = qapp.primaryScreen()

    assert app.tray is not None, "no tray: run under tests/rig/xvfb_tray.sh"
    icon = app.tray.geometry()
    menu = app.tray.contextMenu()
    menu.popup(QPoint(icon.left() - 180, icon.bottom() + 2))
    wait(600)
    shot = screen.grabWindow(0).copy(icon.left() - 420, 0, 460, menu.height() + 60)
    shot.save(str(out / "tray-menu.png"))
    menu.hide()

    live, c = app.live, app.controller
    live.title_edit.setText("Launch checklist standup")
    live.participants_edit.setText("Ana, Priya")
    live.show()
    lines = [("Ana", "mic", "Morning everyone, let's go through the launch checklist."),
             ("Others", "system", "The landing page copy is final, design signed off yesterday."),
             ("Ana", "mic", "Great. What about the pricing table?"),
             ("Others", "system", "Still waiting on legal for the enterprise tier wording.")]
    for i, (who, source, text) in enumerate(lines):
        c.final_line.emit(StoredSegment(i, "demo", 2000.0 + i * 6500, 0, source, who, text, 0.9, True))
    c.partial.emit("Ana", "Okay, I'll ping them today. Anything blocking the")
    c.levels.emit({"mic": -18.0, "system": -30.0})
    c.elapsed.emit(754.0)
    c.sync_changed.emit("synced", "Everything is synced")
    c.state_changed.emit("recording")  # as it looks mid-meeting (no audio is captured here)
    wait(400)
    live.grab().save(str(out / "live-window.png"))

    app.show_recordings()
    wait(2500)
    browser = app.browser
    assert browser is not None
    browser.resize(1100, 620)
    rows = browser.rows()
    if rows:
        browser.select(rows[0].key)
    wait(800)
    browser.grab().save(str(out / "recordings.png"))

    app.show_settings()
    wait(1500)
    assert app.settings is not None
    app.settings.grab().save(str(out / "settings.png"))

    app.controller.shutdown()
    ctx.close()
    server.stop()
    print("saved to", out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path("docs/screenshots"), help="folder for the PNGs")
    main(parser.parse_args().out)
