"""The recordings browser with real widgets, the real PostHog test server and a real SQLite store."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtGui import QDesktopServices

from api.client import PostHogClient
from api.retry import RetryPolicy
from api.sync import SyncWorker
from desktop_recorder.context import AppContext
from desktop_recorder.store import StoredSegment, recording_lock
from tests.conftest import READ_KEY, WRITE_KEY
from tests.posthog_server import PostHogState, PostHogTestServer
from ui.browser import RecordingsBrowser

LIST_PATH = "/api/environments/@current/desktop_recordings/"


@pytest.fixture
def factory(server: PostHogTestServer) -> Callable[[], PostHogClient]:
    return lambda: PostHogClient(server.url, WRITE_KEY)


@pytest.fixture
def woken() -> list[int]:
    return []


@pytest.fixture
def make_browser(qtbot, ctx: AppContext, woken: list[int]) -> Iterator[Callable[..., RecordingsBrowser]]:
    made: list[RecordingsBrowser] = []

    def make(client_factory: Callable[[], PostHogClient]) -> RecordingsBrowser:
        browser = RecordingsBrowser(ctx, client_factory, lambda: woken.append(1))
        qtbot.addWidget(browser)
        made.append(browser)
        return browser

    yield make
    for browser in made:
        browser.shutdown()


def loaded(qtbot, browser: RecordingsBrowser, action: Callable[[], Any] | None = None) -> None:
    with qtbot.waitSignal(browser.page_loaded, timeout=10_000):
        (action or browser.refresh)()


def add_remote(server: PostHogTestServer, title: str, *, minutes: int = 0, **fields: Any) -> dict[str, Any]:
    """A recording made on the server directly (by another client), started in 2024."""
    with server.state.lock:
        rec = PostHogState(server.state).new_recording(fields.pop("platform", "zoom"))
        started = datetime(2024, 3, 1, 9, 0, tzinfo=UTC) + timedelta(minutes=minutes)
        rec.update({"meeting_title": title, "status": "ready", "duration_seconds": 1800,
                    "started_at": started.isoformat().replace("+00:00", "Z"), **fields})
        segments = rec["transcript_segments"]
        rec["transcript_text"] = " ".join(s["text"] for s in segments)
    return rec


def add_local(ctx: AppContext, title: str, texts: tuple[str, ...] = ("Hello there", "Shall we start"),
              audio: Path | None = None) -> str:
    rec = ctx.store.create_recording(platform="desktop_audio", title=title, participants=["Me"],
                                     audio_path=str(audio) if audio else None)
    for i, text in enumerate(texts):
        ctx.store.add_segment(rec.id, start_ms=1500 + 2000 * i, end_ms=3000 + 2000 * i, source="mic",
                              speaker="Me" if i % 2 == 0 else "Ana", text=text, confidence=0.9)
    ctx.store.finish_recording(rec.id, status="ready", duration_s=65.0, title=title, participants=["Me", "Ana"])
    return rec.id


def sync_all(ctx: AppContext, server: PostHogTestServer) -> None:
    with PostHogClient(server.url, WRITE_KEY) as client:
        assert SyncWorker(ctx.store, client).drain(20)


def list_requests(server: PostHogTestServer) -> int:
    return sum(1 for method, path, _ in server.state.requests if method == "GET" and path == LIST_PATH)


def titles(browser: RecordingsBrowser) -> list[str | None]:
    return [row.title for row in browser.rows()]


# -- listing -------------------------------------------------------------------------------------


def test_first_page_is_100_and_load_more_gets_the_rest_without_losing_the_form(qtbot, server, factory,
                                                                                make_browser):
    for i in range(130):
        add_remote(server, f"Meeting {i:03d}", minutes=i)
    browser = make_browser(factory)
    loaded(qtbot, browser)
    assert len(browser.rows()) == 100 and list_requests(server) == 1
    assert titles(browser)[:2] == ["Meeting 129", "Meeting 128"]  # newest first
    assert browser.recording_list.load_more_button.isEnabled()
    assert "more available" in browser.recording_list.count_label.text()
    browser.select(browser.rows()[0].key)
    browser.detail.title_edit.setText("Typing while the next page loads")

    loaded(qtbot, browser, browser.recording_list.load_more_button.click)

    assert len(browser.rows()) == 130 and list_requests(server) == 2
    assert titles(browser)[-1] == "Meeting 000"
    assert browser.recording_list.load_more_button.isHidden()
    assert browser.selected_row().title == "Meeting 129"
    assert browser.detail.title_edit.text() == "Typing while the next page loads"


def test_scrolling_to_the_end_loads_the_next_page(qtbot, server, factory, make_browser):
    for i in range(105):
        add_remote(server, f"Meeting {i}", minutes=i)
    browser = make_browser(factory)
    loaded(qtbot, browser)
    browser.show()
    bar = browser.recording_list.tree.verticalScrollBar()
    assert len(browser.rows()) == 100 and bar.maximum() > 0

    loaded(qtbot, browser, lambda: bar.setValue(bar.maximum()))

    assert len(browser.rows()) == 105


def test_search_and_status_filters_apply_to_server_and_local_recordings(qtbot, server, ctx, factory, make_browser):
    seg = {"timestamp": 1000.0, "speaker": "Ana", "text": "The budget is approved", "confidence": None,
           "is_final": True}
    add_remote(server, "Budget sync", transcript_segments=[seg])
    add_remote(server, "Design review", minutes=1, status="error")
    add_local(ctx, "Local budget talk", texts=("Let us talk budget",))
    add_local(ctx, "Local standup", texts=("Yesterday I fixed the bug",))
    browser = make_browser(factory)
    loaded(qtbot, browser)
    assert len(browser.rows()) == 4

    loaded(qtbot, browser, lambda: browser.search_edit.setText("BUDGET"))  # debounced, case-insensitive
    assert sorted(titles(browser)) == ["Budget sync", "Local budget talk"]

    browser.search_edit.clear()
    loaded(qtbot, browser, lambda: browser.status_combo.setCurrentIndex(browser.status_combo.findData("error")))
    assert titles(browser) == ["Design review"]


def test_local_recordings_merge_with_their_server_copy_and_local_only_ones_are_listed(qtbot, server, ctx, factory,
                                                                                     make_browser):
    synced_id = add_local(ctx, "Synced standup")
    sync_all(ctx, server)
    local_only_id = add_local(ctx, "Offline retro")
    add_remote(server, "Made elsewhere")
    browser = make_browser(factory)
    loaded(qtbot, browser)

    rows = {row.title: row for row in browser.rows()}
    assert set(rows) == {"Synced standup", "Offline retro", "Made elsewhere"}
    assert rows["Synced standup"].local.id == synced_id and rows["Synced standup"].remote is not None
    assert rows["Synced standup"].sync_label == "synced"
    assert rows["Offline retro"].local.id == local_only_id and rows["Offline retro"].sync_label == "local only"
    assert rows["Made elsewhere"].local is None and rows["Made elsewhere"].sync_label == "server only"
    sync_column = [browser.recording_list.tree.topLevelItem(i).text(4) for i in range(3)]
    assert sorted(sync_column) == ["local only", "server only", "synced"]


def test_detail_shows_the_transcript_with_speakers_and_times_summary_and_tasks(qtbot, server, ctx, factory,
                                                                               make_browser):
    segments = [{"timestamp": 1500.0, "speaker": "Ana", "text": "Welcome everyone", "confidence": None,
                 "is_final": True},
                {"timestamp": 65000.0, "speaker": "Bo", "text": "Thanks, bye", "confidence": None, "is_final": True}]
    remote = add_remote(server, "Planning", transcript_segments=segments, summary="We agreed on the plan.",
                        extracted_tasks=[{"title": "Send the notes", "assignee": "Ana"}], notes="Room 4")
    local_id = add_local(ctx, "Local call")
    browser = make_browser(factory)
    loaded(qtbot, browser)

    browser.select(f"server:{remote['id']}")
    text = browser.detail.transcript_view.toPlainText()
    for expected in ("[00:01]", "Ana", "Welcome everyone", "[01:05]", "Bo", "We agreed on the plan.",
                     "Send the notes", "(Ana)", "Room 4"):
        assert expected in text
    assert browser.detail.title_label.text() == "Planning"

    browser.select(local_id)
    text = browser.detail.transcript_view.toPlainText()
    assert "[00:01]" in text and "Hello there" in text and "[00:03]" in text and "Shall we start" in text
    assert "Summary" not in text
    assert not browser.detail.audio_button.isEnabled()  # no audio file


def test_detail_says_what_went_wrong_with_a_recording(qtbot, server, ctx, factory, make_browser):
    """A recording with an error (a transcript with a gap, a start that failed), local or only on
    the server, says so above its transcript; one without has no such box."""
    gap = "Transcription stopped at 00:03 (CUDA failed); the audio after that is saved but not transcribed."
    rec = ctx.store.create_recording(platform="desktop_audio", title="Gap", participants=[], audio_path=None)
    ctx.store.finish_recording(rec.id, status="ready", duration_s=9.0, title="Gap", participants=[],
                               error_message=gap)
    fine_id = add_local(ctx, "Fine")
    remote = add_remote(server, "Failed elsewhere", status="error", error_message="No audio device.")
    browser = make_browser(factory)
    loaded(qtbot, browser)

    for key, expected in ((rec.id, gap), (f"server:{remote['id']}", "No audio device."), (fine_id, "")):
        browser.select(key)
        assert browser.detail.error_label.text() == expected
        assert browser.detail.error_label.isHidden() == (not expected)

    # Improved since: the transcript shown has no gap, the synced one still has; the box says both.
    ctx.store.replace_refined(rec.id, [StoredSegment(0, rec.id, 1000.0, 8000.0, "system", "Others",
                                                     "All of it, transcribed.", 0.9, True)])
    browser.select(fine_id)
    browser.select(rec.id)
    assert "All of it, transcribed." in browser.detail.transcript_view.toPlainText()
    said = browser.detail.error_label.text()
    assert said.startswith(gap) and "improved transcript shown here covers all the saved audio" in said


def test_detail_of_a_synced_recording_beyond_the_loaded_pages_is_fetched(qtbot, server, ctx, factory,
                                                                         make_browser):
    local_id = add_local(ctx, "Older call")
    sync_all(ctx, server)
    server_id = ctx.store.get_recording(local_id).server_id
    with server.state.lock:
        server.state.recordings[server_id]["notes"] = "Notes written on the web"
    for i in range(100):  # newer than the local one: it falls on page 2
        add_remote(server, f"Future {i}", minutes=10**7 + i)
    browser = make_browser(factory)
    loaded(qtbot, browser)
    assert browser.rows()[-1].local.id == local_id and browser.rows()[-1].remote is None

    browser.select(local_id)
    qtbot.waitUntil(lambda: browser.detail.notes_edit.toPlainText() == "Notes written on the web", timeout=10_000)
    assert browser.selected_row().remote.id == server_id


# -- editing -------------------------------------------------------------------------------------


def test_editing_a_local_recording_queues_a_patch_and_wakes_sync(qtbot, server, ctx, factory, make_browser, woken):
    local_id = add_local(ctx, "Standup")
    sync_all(ctx, server)
    browser = make_browser(factory)
    loaded(qtbot, browser)
    browser.select(local_id)
    form = browser.detail
    form.title_edit.setText("Standup (Tuesday)")
    form.participants_edit.setText("Me, Ana ,Bo,")
    form.notes_edit.setPlainText("Follow up with Bo")
    form.save_button.click()

    patch = ctx.store.pending_ops(local_id)[-1]
    assert patch.op == "patch"
    assert patch.payload == {"meeting_title": "Standup (Tuesday)", "participants": ["Me", "Ana", "Bo"],
                             "notes": "Follow up with Bo"}
    assert woken == [1]
    assert ctx.store.get_recording(local_id).title == "Standup (Tuesday)"
    assert browser.selected_row().sync_label == "pending (1)"
    assert browser.recording_list.tree.currentItem().text(1) == "Standup (Tuesday)"
    assert form.notes_edit.toPlainText() == "Follow up with Bo"  # the queued edit is what the form shows

    sync_all(ctx, server)  # what the app's sync worker does when woken
    remote = server.state.recordings[ctx.store.get_recording(local_id).server_id]
    assert remote["meeting_title"] == "Standup (Tuesday)" and remote["notes"] == "Follow up with Bo"


def test_a_line_left_out_as_echo_can_be_put_back_and_syncs(qtbot, server, ctx, factory, make_browser, woken):
    local_id = add_local(ctx, "Call", texts=("Hello there",))
    ctx.store.add_echo_segment(local_id, start_ms=4000, end_ms=5200, text="That was me talking", speaker="Me",
                               confidence=0.8, audio_share=0.7, text_share=0.0)
    plain_id = add_local(ctx, "No echo here")
    sync_all(ctx, server)
    browser = make_browser(factory)
    loaded(qtbot, browser)
    detail = browser.detail
    browser.select(plain_id)
    assert not detail.tabs.isTabVisible(detail._echo_tab)  # nothing left out: no tab
    browser.select(local_id)
    assert detail.tabs.isTabVisible(detail._echo_tab)
    assert detail.tabs.tabText(detail._echo_tab) == "Left out as echo (1)"
    assert detail.echo_list.item(0).text() == "[00:04]  That was me talking"
    assert "That was me talking" not in detail.transcript_view.toPlainText()
    assert not detail.restore_button.isEnabled()  # nothing selected yet
    detail.echo_list.item(0).setSelected(True)
    detail.restore_button.click()

    assert "That was me talking" in detail.transcript_view.toPlainText()
    assert not detail.tabs.isTabVisible(detail._echo_tab) and woken == [1]
    assert "Put 1 line back" in browser.notice.text()
    sync_all(ctx, server)
    remote = server.state.recordings[ctx.store.get_recording(local_id).server_id]
    assert [(s["text"], s["speaker"]) for s in remote["transcript_segments"]][-1] == ("That was me talking", "Me")


def test_echo_lines_picked_stay_picked_while_the_recording_refreshes(qtbot, ctx, factory, make_browser):
    local_id = add_local(ctx, "Call")
    for i, text in enumerate(("First echo", "Second echo")):
        ctx.store.add_echo_segment(local_id, start_ms=4000 + 1000 * i, end_ms=4800 + 1000 * i, text=text,
                                   speaker="Me", confidence=0.8, audio_share=0.7, text_share=0.0)
    browser = make_browser(factory)
    browser.select(local_id)
    detail = browser.detail
    detail.echo_list.setCurrentRow(1)  # as a click does

    # The recording goes on: a new line and a new echo, and the browser re-reads the store.
    ctx.store.add_segment(local_id, start_ms=9000, end_ms=9800, source="system", speaker="Ana", text="More",
                          confidence=0.9)
    ctx.store.add_echo_segment(local_id, start_ms=9000, end_ms=9800, text="Third echo", speaker="Me",
                               confidence=0.8, audio_share=0.7, text_share=0.0)
    browser.reload_local()

    assert detail.echo_list.count() == 3
    assert [item.text() for item in detail.echo_list.selectedItems()] == ["[00:05]  Second echo"]
    assert detail.echo_list.currentRow() == 1  # where a shift-click extends from
    assert detail.restore_button.isEnabled()


def test_typing_and_the_readers_place_survive_refreshes_of_the_same_recording(qtbot, server, ctx, factory,
                                                                               make_browser):
    """The app re-reads the store every time sync makes progress: a note being typed stays, a
    field not being edited shows its new value, and the transcript stays where it was read."""
    local_id = add_local(ctx, "Standup", tuple(f"Line number {i}" for i in range(150)))
    sync_all(ctx, server)
    browser = make_browser(factory)
    browser.resize(900, 500)
    browser.show()
    loaded(qtbot, browser)
    browser.select(local_id)
    detail = browser.detail
    detail.notes_edit.setPlainText("Ask Bo about QA")
    bar = detail.transcript_view.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)
    place = bar.value()

    browser.reload_local()  # the first showing kept the server's fields locally: the row changed
    ctx.store.edit_recording(local_id, {"summary": "We ship on Friday."})  # e.g. from the CLI
    browser.reload_local()

    assert detail.notes_edit.toPlainText() == "Ask Bo about QA"
    assert detail.summary_edit.toPlainText() == "We ship on Friday."
    assert "We ship on Friday." in detail.transcript_view.toPlainText() and bar.value() == place
    detail.revert_button.click()
    assert detail.notes_edit.toPlainText() == ""
    detail.participants_edit.setText("Me,Ana,Bo")  # saved as typed: the same value as "Me, Ana, Bo"
    detail.save_button.click()
    ctx.store.edit_recording(local_id, {"participants": ["Me", "Ana", "Bo", "Cy"]})  # changed elsewhere later
    browser.reload_local()
    assert detail.participants_edit.text() == "Me, Ana, Bo, Cy"


def test_new_lines_of_a_running_recording_are_added_without_redrawing_the_rest(qtbot, server, ctx, factory,
                                                                              make_browser):
    """The app refreshes the browser once per stored line: a selection the user is making in
    the transcript (to copy it) survives, and the text is what a fresh showing would draw."""
    rec = ctx.store.create_recording(platform="meet", title="Live", participants=["Me"], audio_path=None)

    def line(i: int) -> None:
        ctx.store.add_segment(rec.id, start_ms=2000 * i, end_ms=2000 * i + 1500, source="mic" if i % 2 else "system",
                              speaker="Me" if i % 2 else "Others", text=f"Point number {i}", confidence=0.9)

    for i in range(3):
        line(i)
    other = add_local(ctx, "Earlier call")
    browser = make_browser(factory)
    loaded(qtbot, browser)
    browser.select(rec.id)
    view = browser.detail.transcript_view
    cursor = view.document().find("number 1")
    view.setTextCursor(cursor)

    for i in range(3, 5):
        line(i)
        browser.reload_local()

    assert view.textCursor().selectedText() == "number 1"
    appended = view.toPlainText()
    assert "[00:08]  Others  Point number 4" in appended
    browser.select(other)
    browser.select(rec.id)  # drawn whole
    assert view.toPlainText() == appended


def test_notes_summary_and_tasks_stay_readable_offline(qtbot, server, ctx, factory, make_browser):
    """What was seen or written here is kept locally, so it shows when PostHog cannot be reached."""
    local_id = add_local(ctx, "Standup")
    sync_all(ctx, server)
    with server.state.lock:  # written on the server (e.g. its AI summary), seen once in the browser
        remote = server.state.recordings[ctx.store.get_recording(local_id).server_id]
        remote["summary"] = "We agreed to ship on Friday."
        remote["extracted_tasks"] = [{"title": "Write the release notes", "assignee": "Ana"}]
    browser = make_browser(factory)
    loaded(qtbot, browser)
    browser.select(local_id)
    browser.detail.notes_edit.setPlainText("Ask Bo about QA")
    browser.detail.save_button.click()
    sync_all(ctx, server)

    offline = make_browser(lambda: PostHogClient("http://127.0.0.1:9", WRITE_KEY, retry=RetryPolicy(max_attempts=1)))
    with qtbot.waitSignal(offline.load_failed, timeout=10_000):
        offline.refresh()
    offline.select(local_id)
    text = offline.detail.transcript_view.toPlainText()
    assert "We agreed to ship on Friday." in text and "Write the release notes" in text
    assert offline.detail.notes_edit.toPlainText() == "Ask Bo about QA"


def test_editing_a_server_only_recording_patches_the_server(qtbot, server, factory, make_browser, woken):
    remote = add_remote(server, "Planning", extracted_tasks=[{"title": "Send the notes", "assignee": "Ana"}])
    browser = make_browser(factory)
    loaded(qtbot, browser)
    browser.select(f"server:{remote['id']}")
    form = browser.detail
    assert form.tasks_edit.toPlainText() == "Send the notes"
    form.title_edit.setText("Q3 planning")
    form.summary_edit.setPlainText("Budget approved.")
    form.tasks_edit.setPlainText("Send the notes\nBook the room")

    with qtbot.waitSignal(browser.action_done, timeout=10_000) as done:
        form.save_button.click()

    assert done.args == ["Saved to PostHog."]
    stored = server.state.recordings[remote["id"]]
    assert stored["meeting_title"] == "Q3 planning" and stored["summary"] == "Budget approved."
    assert stored["extracted_tasks"] == [{"title": "Send the notes", "assignee": "Ana"}, {"title": "Book the room"}]
    patches = [body for method, _, body in server.state.requests if method == "PATCH"]
    assert patches == [{"meeting_title": "Q3 planning", "summary": "Budget approved.",
                        "extracted_tasks": stored["extracted_tasks"]}]
    assert woken == [] and browser.selected_row().title == "Q3 planning"


def test_a_refused_server_edit_is_shown_and_changes_nothing(qtbot, server, make_browser):
    remote = add_remote(server, "Planning")
    browser = make_browser(lambda: PostHogClient(server.url, READ_KEY))
    loaded(qtbot, browser)
    browser.select(f"server:{remote['id']}")
    browser.detail.title_edit.setText("Renamed")

    with qtbot.waitSignal(browser.action_done, timeout=10_000) as done:
        browser.detail.save_button.click()

    assert done.args[0].startswith("Could not save") and "desktop_recording:write" in done.args[0]
    assert browser.notice.text() == done.args[0]
    assert server.state.recordings[remote["id"]]["meeting_title"] == "Planning"
    assert browser.detail.save_button.isEnabled()


# -- deleting ------------------------------------------------------------------------------------


def test_deleting_a_local_only_recording_removes_it_and_its_audio(qtbot, server, ctx, factory, make_browser,
                                                                  woken, tmp_path):
    audio = tmp_path / "standup.wav"
    audio.write_bytes(b"RIFF")
    local_id = add_local(ctx, "Standup", audio=audio)
    browser = make_browser(factory)
    loaded(qtbot, browser)
    browser.select(local_id)
    questions: list[str] = []
    browser.ask = lambda _title, question: questions.append(question) is not None  # says no

    browser.detail.delete_button.click()
    assert len(questions) == 1 and "Standup" in questions[0]
    assert audio.exists() and ctx.store.get_recording(local_id) and woken == []

    browser.delete_selected(confirm=False)
    assert not audio.exists() and woken == [1]
    assert [r.id for r in ctx.store.list_recordings()] == []
    assert browser.rows() == [] and browser.detail.title_label.text() == "No recording selected"


def test_a_recording_still_running_is_not_deleted(qtbot, ctx, make_browser, woken):
    live = ctx.store.create_recording(platform="zoom", title="Live call", participants=[], audio_path=None)
    browser = make_browser(lambda: PostHogClient("http://127.0.0.1:9", WRITE_KEY))
    browser.select(live.id)

    with recording_lock(ctx.paths.data_dir, live.id):  # held by the session recording it
        browser.delete_selected(confirm=False)

    assert "still running" in browser.notice.text() and woken == []
    assert [op.op for op in ctx.store.pending_ops(live.id)] == ["create", "patch"]


def test_deleting_a_synced_local_recording_queues_the_server_delete(qtbot, server, ctx, factory, make_browser,
                                                                    woken):
    local_id = add_local(ctx, "Standup")
    sync_all(ctx, server)
    server_id = ctx.store.get_recording(local_id).server_id
    browser = make_browser(factory)
    loaded(qtbot, browser)
    browser.select(local_id)

    browser.delete_selected(confirm=False)

    assert [op.op for op in ctx.store.pending_ops(local_id)] == ["delete"] and woken == [1]
    assert browser.rows() == []  # its server copy is not listed as "server only" either
    sync_all(ctx, server)
    assert server_id not in server.state.recordings and ctx.store.list_recordings() == []
    browser.reload_local()  # the local row is gone now: the page loaded before must not bring it back
    assert browser.rows() == []


def test_deleting_a_server_only_recording(qtbot, server, factory, make_browser):
    keep = add_remote(server, "Keep")
    drop = add_remote(server, "Drop", minutes=1)
    browser = make_browser(factory)
    loaded(qtbot, browser)
    browser.select(f"server:{drop['id']}")

    with qtbot.waitSignal(browser.action_done, timeout=10_000) as done:
        browser.delete_selected(confirm=False)

    assert done.args == ["Deleted on PostHog."]
    assert list(server.state.recordings) == [keep["id"]]
    assert titles(browser) == ["Keep"]


# -- export and audio ----------------------------------------------------------------------------

EXPECTED_EXPORTS = {
    "txt": "[00:01] Me: Hello there\n[00:03] Ana: Shall we start\n",
    "srt": "1\n00:00:01,500 --> 00:00:03,000\nMe: Hello there\n\n"
           "2\n00:00:03,500 --> 00:00:05,000\nAna: Shall we start\n",
    "vtt": "WEBVTT\n\n00:00:01.500 --> 00:00:03.000\n<v Me>Hello there\n\n00:00:03.500 --> 00:00:05.000\n"
           "<v Ana>Shall we start\n",
    "md": "# Standup\n\n- **00:01** *Me*: Hello there\n- **00:03** *Ana*: Shall we start\n",
}


@pytest.mark.parametrize("fmt", ["txt", "srt", "vtt", "md", "json"])
def test_export_of_a_local_transcript(fmt, ctx, make_browser, tmp_path):
    local_id = add_local(ctx, "Standup")
    browser = make_browser(lambda: PostHogClient("http://127.0.0.1:9", WRITE_KEY))  # never called: no refresh
    browser.select(local_id)
    target = tmp_path / f"standup.{fmt}"

    browser.export(target, fmt)

    content = target.read_text(encoding="utf-8")
    if fmt == "json":
        assert json.loads(content) == {"title": "Standup", "segments": [
            {"start_ms": 1500.0, "end_ms": 3000.0, "speaker": "Me", "text": "Hello there"},
            {"start_ms": 3500.0, "end_ms": 5000.0, "speaker": "Ana", "text": "Shall we start"}]}
    else:
        assert content == EXPECTED_EXPORTS[fmt]
    assert str(target) in browser.notice.text()


def test_export_of_a_server_transcript_ends_each_cue_at_the_next(qtbot, server, factory, make_browser, tmp_path):
    segments = [{"timestamp": 1500.0, "speaker": "Ana", "text": "Welcome", "confidence": None, "is_final": True},
                {"timestamp": 4000.0, "speaker": "Bo", "text": "Bye", "confidence": None, "is_final": True}]
    remote = add_remote(server, "Planning", transcript_segments=segments)
    browser = make_browser(factory)
    loaded(qtbot, browser)
    browser.select(f"server:{remote['id']}")

    browser.export(tmp_path / "planning.srt", "srt")

    assert (tmp_path / "planning.srt").read_text() == (
        "1\n00:00:01,500 --> 00:00:04,000\nAna: Welcome\n\n2\n00:00:04,000 --> 00:00:14,000\nBo: Bye\n")


class UrlCatcher(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


def test_open_audio_file_hands_the_file_to_the_desktop(ctx, make_browser, tmp_path):
    audio = tmp_path / "call.wav"
    audio.write_bytes(b"RIFF")
    local_id = add_local(ctx, "Call", audio=audio)
    missing_id = add_local(ctx, "Lost", audio=tmp_path / "gone.wav")
    browser = make_browser(lambda: PostHogClient("http://127.0.0.1:9", WRITE_KEY))
    catcher = UrlCatcher()
    QDesktopServices.setUrlHandler("file", catcher, "open")
    try:
        browser.select(local_id)
        assert browser.detail.audio_button.isEnabled()
        browser.detail.audio_button.click()
        browser.select(missing_id)
        browser.detail.audio_button.click()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert catcher.urls == [QUrl.fromLocalFile(str(audio))]
    assert "missing" in browser.notice.text() and "gone.wav" in browser.notice.text()


# -- offline -------------------------------------------------------------------------------------


def test_unreachable_server_shows_a_banner_and_the_local_recordings(qtbot, ctx, make_browser):
    local_id = add_local(ctx, "Offline standup")
    browser = make_browser(lambda: PostHogClient("http://127.0.0.1:9", WRITE_KEY, retry=RetryPolicy(max_attempts=1)))
    browser.show()
    assert browser.banner.isHidden()

    with qtbot.waitSignal(browser.load_failed, timeout=10_000) as failed:
        browser.refresh()

    assert browser.banner.isVisible() and browser.banner.text() == failed.args[0]
    assert "PostHog is unreachable" in failed.args[0] and "127.0.0.1:9" in failed.args[0]
    assert [row.key for row in browser.rows()] == [local_id]
    browser.select(local_id)
    assert "Hello there" in browser.detail.transcript_view.toPlainText()
    assert browser.recording_list.load_more_button.isHidden()


def test_sync_not_configured_shows_why(qtbot, ctx, make_browser):
    add_local(ctx, "Standup")
    browser = make_browser(ctx.make_client)  # app_home: no host, no key
    browser.show()

    with qtbot.waitSignal(browser.load_failed, timeout=10_000) as failed:
        browser.refresh()

    assert failed.args[0].startswith("PostHog sync is off: no host configured. Connect PostHog in Settings")
    assert browser.banner.isVisible() and len(browser.rows()) == 1


def test_banner_goes_away_once_the_server_answers(qtbot, server, ctx, make_browser):
    settings_host = {"url": "http://127.0.0.1:9"}
    browser = make_browser(lambda: PostHogClient(settings_host["url"], WRITE_KEY, retry=RetryPolicy(max_attempts=1)))
    browser.show()
    with qtbot.waitSignal(browser.load_failed, timeout=10_000):
        browser.refresh()
    assert browser.banner.isVisible()

    settings_host["url"] = server.url
    loaded(qtbot, browser, browser.refresh_button.click)

    assert browser.banner.isHidden()


def test_a_save_the_full_database_refuses_is_said_and_the_edit_stays_in_the_form(qtbot, server, ctx, factory,
                                                                                  make_browser):
    """The disk is full: the Save button used to raise into Qt's event loop and show nothing."""
    local_id = add_local(ctx, "Standup")
    browser = make_browser(factory)
    loaded(qtbot, browser)
    browser.select(local_id)
    pages = ctx.store._db.execute("PRAGMA page_count").fetchone()[0]
    ctx.store._db.execute(f"PRAGMA max_page_count = {pages}")  # as full as a full disk: SQLITE_FULL
    browser.detail.notes_edit.setPlainText("Decisions: " + "ship it. " * 20_000)

    browser.detail.save_button.click()

    assert "Could not save the changes" in browser.notice.text() and "full" in browser.notice.text()
    assert browser.detail.notes_edit.toPlainText().startswith("Decisions: ship it.")
    assert "notes" not in ctx.store.get_recording(local_id).details
