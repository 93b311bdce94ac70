"""The CLI as a user runs it (subprocesses, real model, real test server, virtual devices)."""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import re
import signal
import struct
import subprocess
import sys
import termios

import pytest

from tests.conftest import DATA, JFK_TEXT, LEFT_TEXT, READ_KEY, RIGHT_TEXT, cli_env, damaged_database, run_cli, wer


@pytest.mark.slow
def test_transcribe_prints_the_jfk_sentence(app_home):
    result = run_cli("transcribe", str(DATA / "jfk.flac"), env=cli_env(app_home, None))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[00:00] ")
    assert wer(JFK_TEXT, result.stdout.replace("[00:00]", "").replace("[00:08]", "")) == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["json", "srt", "vtt", "md"])
def test_transcribe_formats(app_home, fmt):
    result = run_cli("transcribe", str(DATA / "jfk.flac"), "--format", fmt, env=cli_env(app_home, None))
    assert result.returncode == 0, result.stderr
    if fmt == "json":
        assert "country" in json.loads(result.stdout)["segments"][-1]["text"]
    else:
        assert {"srt": "00:00:00,000 --> ", "vtt": "WEBVTT", "md": "# jfk.flac"}[fmt] in result.stdout


def test_transcribe_bad_file_is_a_clear_error(app_home, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    result = run_cli("transcribe", str(bad), env=cli_env(app_home, None))
    assert result.returncode == 2 and "Cannot read" in result.stderr and "Traceback" not in result.stderr
    assert "[Errno" not in result.stderr, result.stderr  # FFmpeg's error number means nothing to a user


def test_transcribing_a_file_without_speech_says_so(app_home, tmp_path):
    import numpy as np
    import soundfile as sf

    sf.write(tmp_path / "quiet.wav", np.zeros(3 * 16_000, np.float32), 16_000)
    result = run_cli("transcribe", str(tmp_path / "quiet.wav"), env=cli_env(app_home, None))
    assert result.returncode == 0 and result.stdout == "", result.stdout
    assert f"No speech found in {tmp_path / 'quiet.wav'}." in result.stderr, result.stderr


@pytest.mark.audio
def test_devices_marks_the_mic_and_the_system_source(audio_rig, app_home):
    result = run_cli("devices", env=cli_env(app_home, None))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("SYSTEM") and "[meet_speakers.monitor]" in line for line in lines)
    assert any(line.startswith("MIC") and "[meet_mic]" in line for line in lines)


def test_no_sound_server_is_a_clear_error(app_home):
    env = cli_env(app_home, None)
    env["PULSE_SERVER"] = "unix:/nonexistent/native"
    result = run_cli("record", "--duration", "1", env=env)
    assert result.returncode == 2
    assert "Nothing to record" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.audio
def test_doctor_against_the_test_server(audio_rig, server, app_home):
    good = run_cli("doctor", env=cli_env(app_home, server))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "desktop_recording:write granted" in good.stdout and "project 1" in good.stdout
    assert re.search(r"\[ok\] portaudio: PortAudio V19\S* .*\(/\S+/libportaudio\.so\S*\)", good.stdout), good.stdout
    read_only = run_cli("doctor", env=cli_env(app_home, server, key=READ_KEY))
    assert read_only.returncode == 1 and "MISSING desktop_recording:write" in read_only.stdout
    revoked = run_cli("doctor", env=cli_env(app_home, server, key="phx_revoked"))
    assert revoked.returncode == 1 and "rejected the personal API key" in revoked.stdout
    assert server.state.recordings == {}  # the scope probe changed nothing
    (app_home / "config").mkdir(parents=True, exist_ok=True)
    (app_home / "config" / "settings.json").write_text(json.dumps({"mic": "usb headset"}))
    unplugged = run_cli("doctor", env=cli_env(app_home, server))
    assert unplugged.returncode == 1
    assert "[FAIL] mic: Microphone 'usb headset' matches no input.\n" in unplugged.stdout, unplugged.stdout


def test_doctor_says_when_no_key_can_be_kept(app_home):
    """A failure where sync is set up (a host); a remark where nothing needs a key (local only)."""
    env = {**cli_env(app_home, None), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
           "POSTHOG_HOST": "https://eu.posthog.com"}
    result = run_cli("doctor", env=env)
    assert result.returncode == 1 and "[FAIL] keyring: no OS keyring" in result.stdout, result.stdout
    local = run_cli("doctor", env={k: v for k, v in env.items() if k != "POSTHOG_HOST"})
    assert "[--] keyring: no OS keyring" in local.stdout and "(only sync needs it)" in local.stdout, local.stdout
    failed = [line for line in local.stdout.splitlines() if line.startswith("[FAIL]")]  # no rig: the devices
    assert local.returncode == (1 if failed else 0) and not any("keyring" in line for line in failed), local.stdout
    env["POSTHOG_PERSONAL_API_KEY"] = "phx_x"  # headless use: the key comes from the environment
    assert "[ok] keyring: no OS keyring" in run_cli("doctor", env=env).stdout


def test_plain_http_hosts_are_refused_except_localhost(app_home):
    env = cli_env(app_home, None)
    env.update(POSTHOG_HOST="http://posthog.example.com", POSTHOG_PERSONAL_API_KEY="phx_x")
    result = run_cli("sync", env=env)
    assert "must be an https:// URL" in result.stderr
    doctor = run_cli("doctor", env=env)  # sync is asked for and cannot work: a failure, not "off"
    failed = [line for line in doctor.stdout.splitlines() if line.startswith("[FAIL] sync: ")]
    assert doctor.returncode == 1 and len(failed) == 1 and "must be an https:// URL" in failed[0], doctor.stdout


def test_list_and_sync_with_nothing_recorded(app_home, server):
    assert json.loads(run_cli("list", "--json", env=cli_env(app_home, None)).stdout) == []
    assert run_cli("sync", env=cli_env(app_home, server)).returncode == 0


def test_ctrl_c_ends_a_sync_at_once_even_mid_request_and_says_what_is_left(app_home, server):
    import signal

    from desktop_recorder.context import AppContext

    ctx = AppContext.open()
    rid = ctx.store.create_recording(platform="zoom", title="Call", participants=[], audio_path=None).id
    ctx.store.add_segment(rid, start_ms=0, end_ms=900, source="mic", speaker="Ana", text="hello", confidence=0.9)
    ctx.store.finish_recording(rid, status="ready", duration_s=10.0, title="Call", participants=[])
    ctx.close()
    server.state.faults.hold = lambda *_request: True  # the first answer never comes (until released)
    proc = subprocess.Popen([sys.executable, "-m", "desktop_recorder", "sync"], env=cli_env(app_home, server),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.state.faults.held.wait(30)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=10)
    finally:
        server.state.faults.release.set()
        proc.kill()
    assert proc.returncode == 130, err
    assert f"Syncing 1 recording with {server.url} (Ctrl-C stops)…\n" in err, err  # a slow host is no hang
    assert re.search(r"Still pending: 1 recording \(\d+ operations, 1 segments\)\. You stopped it\.", err), err
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_after_a_stop_by_the_duration_the_first_signal_ends_the_wait_for_the_server(monkeypatch):
    """...but not the terminal closing: only a person asks to stop waiting."""
    import signal

    from desktop_recorder import cli

    monkeypatch.setattr(cli, "_detach_from_terminal", lambda: None)  # keep pytest's output
    stop = cli.StopSignal()
    stop.wait(0.01)
    assert stop.reason == "duration reached" and not stop.signalled
    stop.listen_again()
    stop._handler(signal.SIGHUP, None)
    stop.poll()
    assert stop.signalled and not stop.again.is_set()
    stop._handler(signal.SIGINT, None)
    stop.poll()
    assert stop.again.is_set()


def test_echo_lists_the_lines_left_out_and_restores_one_which_then_syncs(app_home, server):
    from desktop_recorder.context import AppContext

    ctx = AppContext.open()
    store = ctx.store
    rid = store.create_recording(platform="zoom", title="Call", participants=[], audio_path=None).id
    for ms, text in ((2000, "heard from the speakers"), (6000, "actually said by me")):
        store.add_echo_segment(rid, start_ms=ms, end_ms=ms + 900, text=text, speaker="Ana", confidence=0.8,
                               audio_share=0.7, text_share=0.5)
    store.finish_recording(rid, status="ready", duration_s=10.0, title="Call", participants=[])
    ctx.close()
    env = cli_env(app_home, server)
    listed = run_cli("echo", rid, env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ["   1  [00:02] heard from the speakers", "   2  [00:06] actually said by me"]
    bad = run_cli("echo", rid, "--restore", "3", env=env)
    assert bad.returncode == 2 and "no line 3" in bad.stderr
    restored = run_cli("echo", rid, "--restore", "2", env=env)
    assert restored.returncode == 0, restored.stderr
    assert run_cli("echo", rid, env=env).stdout.splitlines() == ["   1  [00:02] heard from the speakers"]
    assert run_cli("echo", rid, "--restore", "2", env=env).returncode == 2  # put back already: not twice
    (remote,) = server.state.recordings.values()
    assert [(s["text"], s["speaker"]) for s in remote["transcript_segments"]] == [("actually said by me", "Ana")]


def test_putting_an_echo_line_back_in_a_refined_recording_says_how_to_include_it_there(app_home):
    """`export` prints the improved transcript, made before the line was put back."""
    from desktop_recorder.context import AppContext
    from desktop_recorder.store import StoredSegment

    ctx = AppContext.open()
    rid = ctx.store.create_recording(platform="zoom", title="Call", participants=[], audio_path=None).id
    ctx.store.add_echo_segment(rid, start_ms=6000, end_ms=6900, text="actually said by me", speaker="Ana",
                               confidence=0.8, audio_share=0.7, text_share=0.5)
    ctx.store.finish_recording(rid, status="ready", duration_s=10.0, title="Call", participants=[])
    ctx.store.replace_refined(rid, [StoredSegment(0, rid, 1000.0, 2000.0, "system", "Others", "Improved.", 0.9,
                                                  True)])
    ctx.close()
    env = cli_env(app_home, None)
    restored = run_cli("echo", rid, "--restore", "1", env=env)
    assert restored.returncode == 0, restored.stderr
    assert f"run 'desktop-recorder refine {rid}' to include it" in restored.stderr, restored.stderr
    assert "actually said by me" in run_cli("export", rid, "--live", env=env).stdout


def test_list_and_export_tell_an_interrupted_recording_from_a_running_one(app_home):
    """A `record` killed with -9 leaves its recording live in the store; until `sync` or the app
    finishes it, `list` and `export` say so instead of showing it as still recording."""
    from desktop_recorder.context import AppContext
    from desktop_recorder.store import recording_lock

    ctx = AppContext.open()
    killed = ctx.store.create_recording(platform="zoom", title="Killed", participants=[], audio_path=None).id
    running = ctx.store.create_recording(platform="zoom", title="Running", participants=[], audio_path=None).id
    data_dir = ctx.paths.data_dir
    ctx.close()
    lock = recording_lock(data_dir, running)  # held as its recorder holds it
    lock.acquire()
    try:
        env = cli_env(app_home, None)
        listed = {r["id"]: r for r in json.loads(run_cli("list", "--json", env=env).stdout)}
        assert (listed[killed]["status"], listed[killed]["interrupted"]) == ("recording", True)
        assert (listed[running]["status"], listed[running]["interrupted"]) == ("recording", False)
        text = run_cli("list", env=env)
        header, *lines = text.stdout.splitlines()
        assert header.split()[:3] == ["ID", "STARTED", "(UTC)"], text.stdout
        shown = {line.split()[0]: line.split()[2] for line in lines}
        assert shown == {killed: "interrupted", running: "recording"}, text.stdout
        assert "'desktop-recorder sync' finishes it" in text.stderr
        assert "'desktop-recorder sync' finishes it" in run_cli("export", killed, env=env).stderr
        assert "sync" not in run_cli("export", running, env=env).stderr
    finally:
        lock.release()


def test_export_prints_the_transcript_shown_in_the_app(app_home):
    """The improved transcript once refined (as the app shows and exports it), the live one
    with --live; any format; what went wrong with the recording is said on stderr."""
    from desktop_recorder.context import AppContext
    from desktop_recorder.store import StoredSegment

    ctx = AppContext.open()
    store = ctx.store
    rid = store.create_recording(platform="zoom", title="Weekly", participants=[], audio_path=None).id
    store.add_segment(rid, start_ms=1000, end_ms=2500, source="mic", speaker="Ana", text="Live words.",
                      confidence=0.8)
    store.finish_recording(rid, status="ready", duration_s=9.0, title="Weekly", participants=[],
                           error_message="Transcription stopped at 00:03 (CUDA failed).")
    empty = store.create_recording(platform="zoom", title=None, participants=[], audio_path=None).id
    ctx.close()
    env = cli_env(app_home, None)

    live = run_cli("export", rid, env=env)
    assert live.returncode == 0, live.stderr
    assert live.stdout == "[00:01] Ana: Live words.\n" and "CUDA failed" in live.stderr

    ctx = AppContext.open()
    ctx.store.replace_refined(rid, [StoredSegment(0, rid, 1000.0, 2600.0, "mic", "Ana", "Improved words.", 0.9,
                                                  True)])
    ctx.close()
    assert run_cli("export", rid, env=env).stdout == "[00:01] Ana: Improved words.\n"
    assert run_cli("export", rid, "--live", env=env).stdout == "[00:01] Ana: Live words.\n"
    srt = run_cli("export", rid, "--format", "srt", env=env).stdout
    assert srt == "1\n00:00:01,000 --> 00:00:02,600\nAna: Improved words.\n"
    md = run_cli("export", rid, "--format", "md", env=env).stdout
    assert md.startswith("# Weekly\n") and "Improved words." in md

    none = run_cli("export", empty, env=env)
    assert none.returncode == 0 and none.stdout == "" and "no transcript lines yet" in none.stderr
    missing = run_cli("export", "nope", env=env)
    assert missing.returncode == 2 and "no recording 'nope'" in missing.stderr


def test_a_recording_is_found_by_the_start_of_its_id_when_only_one_has_it(app_home):
    from desktop_recorder.context import AppContext

    ctx = AppContext.open()
    for rid, text in (("5e1a0c1d-0000-4000-8000-000000000001", "First."),
                      ("5e1a0c1d-0000-4000-8000-000000000002", "Second."),
                      ("77aa0000-0000-4000-8000-000000000003", "Third.")):
        ctx.store.create_recording(platform="zoom", title=None, participants=[], audio_path=None, recording_id=rid)
        ctx.store.add_segment(rid, start_ms=1000, end_ms=2000, source="mic", speaker="Ana", text=text,
                              confidence=0.9)
    ctx.close()
    env = cli_env(app_home, None)
    third = run_cli("export", "77aa", env=env)
    assert third.stdout == "[00:01] Ana: Third.\n"
    assert "Recording 77aa0000-0000-4000-8000-000000000003 (" in third.stderr  # which one it took
    assert run_cli("export", "5E1A0C1D-0000-4000-8000-000000000002", env=env).stdout == "[00:01] Ana: Second.\n"
    both = run_cli("export", "5e1a0c1d", env=env)
    assert both.returncode == 2 and both.stdout == ""
    assert "2 recordings have ids starting with '5e1a0c1d'" in both.stderr
    short = run_cli("delete", "77a", env=env)  # too short to pick one: nothing is deleted
    assert short.returncode == 2 and "no recording '77a'" in short.stderr
    assert run_cli("export", "77aa", env=env).stdout == "[00:01] Ana: Third.\n"


def test_delete_of_a_recording_whose_create_answer_was_lost_deletes_the_server_copy(app_home, server):
    """`record` was killed after sending the create, before storing its answer: the server holds
    an empty copy nobody here knows the id of. `delete` finds it and deletes it too."""
    from desktop_recorder.context import AppContext
    from tests.posthog_server import PostHogState

    ctx = AppContext.open()
    rid = ctx.store.create_recording(platform="zoom", title="Call", participants=[], audio_path=None).id
    ctx.store.finish_recording(rid, status="ready", duration_s=10.0, title="Call", participants=[])
    ctx.store.mark_attempt(ctx.store.pending_ops(rid)[0].id)
    ctx.close()
    with server.state.lock:
        PostHogState(server.state).new_recording("zoom")  # made by that create
    deleted = run_cli("delete", rid, env=cli_env(app_home, server))
    assert deleted.returncode == 0, deleted.stderr
    assert "Deleted here and on the server." in deleted.stderr
    assert server.state.recordings == {}
    assert json.loads(run_cli("list", "--json", env=cli_env(app_home, None)).stdout) == []


def test_configure_saves_settings_without_the_key(app_home):
    env = cli_env(app_home, None)
    result = run_cli("configure", "--host", "https://eu.posthog.com", "--project", "42", "--name", "Ana", env=env)
    assert result.returncode == 0, result.stderr
    saved = json.loads((app_home / "config" / "settings.json").read_text())
    assert saved["host"] == "https://eu.posthog.com" and saved["project_id"] == "42" and saved["user_name"] == "Ana"
    assert "phx" not in (app_home / "config" / "settings.json").read_text()


@pytest.mark.parametrize(("args", "says"), [
    (["--host", "garbage"], "must be an https:// URL"),
    (["--host", "http://example.com"], "must be an https:// URL"),
    (["--project", "abc"], "must be a number"),
    (["--project", "0"], "must be a number"),
])
def test_configure_refuses_what_sync_could_not_use_and_saves_nothing(app_home, args, says):
    result = run_cli("configure", *args, "--name", "Ana", env=cli_env(app_home, None))
    assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr
    assert re.search(r"\w'?\. Nothing was saved\.$", result.stderr.strip()), result.stderr  # one sentence each
    assert not (app_home / "config" / "settings.json").exists()


def test_configure_saves_the_host_and_project_as_sync_uses_them(app_home):
    """A key stored under "https://eu.posthog.com/" was never found again (looked up without the slash)."""
    env = cli_env(app_home, None)
    assert run_cli("configure", "--host", "https://eu.posthog.com/", "--project", " 042 ", env=env).returncode == 0
    saved = json.loads((app_home / "config" / "settings.json").read_text())
    assert (saved["host"], saved["project_id"]) == ("https://eu.posthog.com", "42")


def test_configure_sets_and_clears_the_name(app_home):
    env = cli_env(app_home, None)
    settings = app_home / "config" / "settings.json"
    assert run_cli("configure", "--name", " Ana ", env=env).returncode == 0
    assert json.loads(settings.read_text())["user_name"] == "Ana"
    assert run_cli("configure", "--project", "7", env=env).returncode == 0  # other settings keep it
    assert json.loads(settings.read_text())["user_name"] == "Ana"
    assert run_cli("configure", "--name", "", env=env).returncode == 0
    assert json.loads(settings.read_text())["user_name"] is None  # the microphone is "Me" again


def _configure_on_a_terminal(env: dict[str, str], answer: str) -> tuple[str, str]:
    """Run ``configure --host …`` with a terminal as its input; returns what it said up to its prompt
    and after ``answer`` was typed. No controlling terminal: getpass asks on stderr and reads that terminal."""
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "desktop_recorder", "configure", "--host", "https://eu.posthog.com"],
                            env=env, stdin=slave, stderr=subprocess.PIPE, text=True, start_new_session=True)
    os.close(slave)
    assert proc.stderr is not None
    prompt = ""
    while not prompt.endswith("): "):
        char = proc.stderr.read(1)
        assert char, prompt
        prompt += char
    os.write(master, answer.encode() + b"\n")  # only now: getpass drops what was typed before it asked
    rest = proc.stderr.read()
    assert proc.wait(60) == 0, rest
    proc.stderr.close()
    os.close(master)
    return prompt, rest


def test_the_key_prompt_says_what_enter_does(app_home):
    """It said "Enter keeps the current one" with no key kept, and Enter then left sync off unsaid."""
    empty_keyring = {**cli_env(app_home, None), "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    prompt, after = _configure_on_a_terminal(empty_keyring, "")
    assert prompt == "Personal API key (Enter skips): "  # nothing before it
    assert "No API key is kept for https://eu.posthog.com: sync stays off" in after

    prompt, after = _configure_on_a_terminal({**empty_keyring, "POSTHOG_PERSONAL_API_KEY": "phx_env"}, "")
    assert prompt == "Personal API key (Enter keeps the current one): "
    assert "No API key" not in after and "Settings saved" in after

    unreadable = {**empty_keyring, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}  # or a locked one
    said, after = _configure_on_a_terminal(unreadable, "")
    assert said.startswith("WARNING: OS keyring unavailable") and said.endswith("\nPersonal API key (Enter skips): ")
    assert "No API key" not in after  # it cannot tell: it said why, and claims no more


def test_an_empty_key_on_stdin_is_refused_and_nothing_is_saved(app_home):
    result = subprocess.run([sys.executable, "-m", "desktop_recorder", "configure", "--host", "https://eu.posthog.com",
                             "--api-key-stdin"], env=cli_env(app_home, None), input="\n", capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "no API key on standard input. Nothing was saved." in result.stderr
    assert not (app_home / "config" / "settings.json").exists()


def test_a_key_that_no_keyring_can_keep_says_what_was_saved_and_what_was_not(app_home):
    env = {**cli_env(app_home, None), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    result = subprocess.run([sys.executable, "-m", "desktop_recorder", "configure", "--host", "https://eu.posthog.com",
                             "--project", "2", "--api-key-stdin"], env=env, input="phx_key\n", capture_output=True,
                            text=True, timeout=60)
    settings = app_home / "config" / "settings.json"
    assert result.returncode == 1 and "No OS keyring is available" in result.stderr, result.stderr
    assert f"The other settings were saved to {settings}; the key was not." in result.stderr, result.stderr
    saved = json.loads(settings.read_text())
    assert (saved["host"], saved["project_id"]) == ("https://eu.posthog.com", "2") and "phx_key" not in str(saved)


def test_a_bad_host_in_a_hand_edited_file_is_said_before_anything_is_saved(app_home):
    settings = app_home / "config" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"host": "http://posthog.example.com"}))
    result = run_cli("configure", "--name", "Ana", env=cli_env(app_home, None))
    assert result.returncode == 2 and "must be an https:// URL" in result.stderr, result.stderr
    assert "Nothing was saved." in result.stderr and json.loads(settings.read_text()) == {"host": "http://posthog.example.com"}


def test_a_key_with_no_host_to_keep_it_for_is_refused(app_home):
    result = subprocess.run([sys.executable, "-m", "desktop_recorder", "configure", "--api-key-stdin"],
                            env=cli_env(app_home, None), input="phx_key\n", capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--host" in result.stderr


def test_a_bad_project_in_the_environment_is_a_clear_error(app_home):
    env = {**cli_env(app_home, None), "POSTHOG_HOST": "https://eu.posthog.com", "POSTHOG_PROJECT_ID": "abc",
           "POSTHOG_PERSONAL_API_KEY": "phx_x"}
    result = run_cli("sync", env=env)
    assert "must be a number" in result.stderr and "Traceback" not in result.stderr


def test_environment_overrides_are_not_written_into_the_settings_file(app_home):
    env = cli_env(app_home, None)
    assert run_cli("configure", "--host", "https://eu.posthog.com", "--project", "42", env=env).returncode == 0
    env["POSTHOG_HOST"] = "http://localhost:8010"  # a headless run pointed elsewhere for a while
    env["POSTHOG_PROJECT_ID"] = "7"
    assert run_cli("configure", "--name", "Ana", env=env).returncode == 0
    saved = json.loads((app_home / "config" / "settings.json").read_text())
    assert (saved["host"], saved["project_id"], saved["user_name"]) == ("https://eu.posthog.com", "42", "Ana")
    assert run_cli("configure", "--project", "9", env=env).returncode == 0  # changed by the user: saved
    assert json.loads((app_home / "config" / "settings.json").read_text())["project_id"] == "9"


def test_corrupt_settings_are_set_aside_not_fatal(app_home):
    (app_home / "config").mkdir(parents=True)
    (app_home / "config" / "settings.json").write_text("{not json")
    result = run_cli("list", env=cli_env(app_home, None))
    assert result.returncode == 0 and "unreadable" in result.stderr
    assert list((app_home / "config").glob("settings.corrupt-*.json"))


def test_a_corrupt_database_or_an_unusable_home_is_a_clear_error_and_nothing_is_touched(app_home, tmp_path):
    (app_home / "data").mkdir(parents=True)
    db = app_home / "data" / "recordings.sqlite3"
    db.write_bytes(b"not a database" * 100)
    result = run_cli("list", env=cli_env(app_home, None))
    assert result.returncode == 2 and "not a readable recordings database" in result.stderr
    assert "Traceback" not in result.stderr and db.read_bytes() == b"not a database" * 100
    home_file = tmp_path / "home-file"
    home_file.write_text("")
    result = run_cli("list", env=cli_env(home_file, None))
    assert result.returncode == 2 and "Not a directory" in result.stderr and "Traceback" not in result.stderr


def test_a_database_damaged_past_its_first_page_is_a_clear_error_and_nothing_is_touched(app_home):
    """Opening it reads only the schema; the damage shows at the first query of a command."""
    data = damaged_database(app_home)
    db = app_home / "data" / "recordings.sqlite3"
    for command in ("list", "sync", "record"):
        result = run_cli(command, env=cli_env(app_home, None))
        assert result.returncode == 2 and "is not a readable recordings database" in result.stderr
        assert "move it aside" in result.stderr and "Traceback" not in result.stderr
    assert db.read_bytes() == bytes(data)


@pytest.mark.parametrize("duration", ["0", "-5", "nan", "inf", "soon"])
def test_record_refuses_a_duration_that_is_not_a_positive_number(app_home, duration):
    result = run_cli("record", "--duration", duration, env=cli_env(app_home, None))
    assert result.returncode == 2 and "must be a number of seconds above 0" in result.stderr


def test_output_into_a_closed_pipe_ends_quietly(app_home):
    """`desktop-recorder list | head -1`: the reader went away; no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "desktop_recorder", "list"], env=cli_env(app_home, None),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(60) in (0, 1) and "BrokenPipeError" not in err and "Traceback" not in err, err


def test_version_and_help(app_home):
    env = cli_env(app_home, None)
    assert run_cli("--version", env=env).stdout.startswith("desktop-recorder ")
    assert "record" in run_cli("--help", env=env).stdout


def test_no_arguments_without_any_display_explains_instead_of_crashing(app_home):
    env = {k: v for k, v in cli_env(app_home, None).items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = run_cli(env=env, timeout=60)
    assert result.returncode == 2 and "desktop-recorder record" in result.stderr
    assert "Traceback" not in result.stderr


def test_devices_without_a_sound_server(app_home):
    env = cli_env(app_home, None)
    env["PULSE_SERVER"] = "unix:/nonexistent/native"
    result = run_cli("devices", env=env)
    assert result.returncode == 1 and "No input devices" in result.stdout and "Traceback" not in result.stderr


@pytest.mark.parametrize("when", ["while it waits", "while it sets the event"])
def test_a_signal_at_any_point_of_the_main_threads_wait_is_answered(when):
    """The signal handler runs between two of the main thread's bytecodes. It is run here at the
    first line the thread executes while it holds the lock of the event a signal means (as in
    ``Event.wait`` or ``set``), else a few turns into the wait's loop: it must never wait for a
    lock its own thread holds (once in CI a Ctrl-C was never answered)."""
    import signal
    import threading

    from desktop_recorder.cli import StopSignal

    stop = StopSignal()
    done = threading.Event()

    def main_thread() -> None:
        lines = [0]

        def trace(frame, event, _arg):
            target = stop.again if stop.event.is_set() else stop.event
            if event == "line" and not lines[0] < 0:
                lines[0] += frame.f_code is StopSignal.wait.__code__
                if target._cond._is_owned() or lines[0] >= 10:  # the handler runs at this bytecode
                    lines[0] = -1
                    stop._handler(signal.SIGINT, None)
            return trace

        if when == "while it sets the event":
            stop._handler(signal.SIGINT, None)  # the first signal, and the wait it ends
            stop.wait(None)
            stop.listen_again()
            stop._handler(signal.SIGINT, None)  # "stop waiting"; one more comes as it is turned into the event
        sys.settrace(trace)
        try:
            stop.wait(None) if when == "while it waits" else stop.poll()
        finally:
            sys.settrace(None)
        done.set()

    thread = threading.Thread(target=main_thread, daemon=True)
    thread.start()
    assert done.wait(5), "the handler waited for a lock its own thread holds"
    assert stop.event.is_set() and stop.again.is_set() == (when == "while it sets the event")
    assert stop._signals == (1 if when == "while it waits" else 3)  # the one run inside was counted


@pytest.mark.slow
def test_ctrl_c_while_sync_transcribes_an_interrupted_recording_says_what_happens_next(app_home):
    """It ended with exit 130 and not a word; the lines transcribed before it are kept, and the
    next sync goes on after them, with nothing lost or twice."""
    import numpy as np
    from faster_whisper.audio import decode_audio

    from desktop_recorder.store import Store
    from tests.test_recovery import interrupted
    from tests.test_refine import speech

    (app_home / "data" / "audio").mkdir(parents=True)
    store = Store(app_home / "data" / "recordings.sqlite3")
    left, right = decode_audio(str(DATA / "stereo_diarization.wav"), split_stereo=True)
    pause = np.zeros(16_000, np.float32)
    # Not one sentence again and again: said three times in 30 s, it is dropped as a decoding loop.
    turns = np.concatenate([speech("jfk"), pause, left, pause, right, pause]).astype(np.float32)
    meeting = np.tile(turns, 8)  # 3.2 minutes that no line covers: seconds to transcribe
    rid = interrupted(store, app_home / "data" / "audio", 0 * meeting, meeting)
    store.close()
    env = cli_env(app_home, None)
    master, slave = os.openpty()  # a terminal: the progress bar shows, so the stop lands in the transcription
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 wide
    proc = subprocess.Popen([sys.executable, "-m", "desktop_recorder", "sync"], env=env, stderr=slave)
    os.close(slave)
    screen = b""
    # 10 % shown: the first lines are decoded (JFK, 6 % of it, ends before the first pause).
    while not any(int(done) >= 10 for done in re.findall(rb"Transcribing the end of \w+: +(\d+)%", screen)):
        chunk = os.read(master, 4096)
        assert chunk, screen
        screen += chunk
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 130
    with contextlib.suppress(OSError):  # the terminal is closed once the process is gone
        while chunk := os.read(master, 4096):
            screen += chunk
    os.close(master)
    err = screen.decode()
    assert "Stopped: an interrupted recording is not finished yet. Its audio and the lines transcribed so far are " \
           "kept; the next 'desktop-recorder sync' (or the app) goes on from there." in err, err
    assert "Traceback" not in err, err
    (listed,) = json.loads(run_cli("list", "--json", env=env).stdout)
    assert listed["id"] == rid and listed["interrupted"]
    kept = json.loads(run_cli("export", rid, "--format", "json", env=env).stdout)["segments"]
    assert kept, screen.decode()  # what was decoded before the stop

    again = run_cli("sync", env=env)
    assert "Recovered an interrupted recording" in again.stderr and "Traceback" not in again.stderr, again.stderr
    segments = json.loads(run_cli("export", rid, "--format", "json", env=env).stdout)["segments"]
    assert segments[:len(kept)] == kept  # as they were, and the rest after them, none twice:
    assert all(later["start_ms"] >= earlier["end_ms"] for earlier, later in itertools.pairwise(segments)), segments
    text = " ".join(segment["text"] for segment in segments)
    assert wer(" ".join([f"{JFK_TEXT} {LEFT_TEXT} {RIGHT_TEXT}"] * 8), text) <= 0.1, text
