"""Device selection on Windows and macOS, from PortAudio device tables (the code cannot run here).

Two tables are real (printed by `python -m sounddevice` in public bug reports), the others are
constructed in the same format; each file says which (``provenance``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recorder.devices import NoAudioDevice, resolve, table_from_portaudio

TABLES = Path(__file__).parent / "data" / "device_tables"


def table(name: str):  # type: ignore[no-untyped-def]
    data = json.loads((TABLES / f"{name}.json").read_text())
    return table_from_portaudio(data["devices"], data["hostapis"], data["platform"])


def test_windows_records_the_loopback_of_the_output_the_user_hears():
    t = table("windows_wasapi_loopback")
    mic, system = resolve(t, "mic", "auto"), resolve(t, "system", "auto")
    assert mic is not None and mic.name == "Microphone Array (Realtek(R) Audio)" and mic.portaudio_index == 4
    # The headphones are the default output, so their loopback, not the laptop speakers'.
    assert system is not None and system.name == "Headphones (WH-1000XM4 Stereo) [Loopback]"
    assert system.kind == "system" and system.portaudio_index == 9
    assert {d.name for d in t.devices} >= {"Headset Microphone (WH-1000XM4 Hands-Free)"}  # WASAPI inputs only:
    assert all(d.portaudio_index is not None and d.portaudio_index >= 4 for d in t.devices)  # no MME duplicates
    assert resolve(t, "system", "Speakers").name == "Speakers (Realtek(R) Audio) [Loopback]"  # by name part


def test_windows_without_loopback_inputs_uses_stereo_mix_or_a_virtual_cable():
    t = table("windows_stereo_mix")
    assert resolve(t, "system", "auto").name == "Stereo Mix (Realtek(R) Audio)"
    assert resolve(t, "mic", "auto").name == "Microphone (USB Audio Device)"
    cable = next(d for d in t.devices if d.name.startswith("CABLE Output"))
    assert cable.kind == "virtual"


def test_windows_stock_portaudio_explains_how_to_get_system_audio():
    t = table("windows_stock_no_inputs")
    assert t.devices == ()
    with pytest.raises(NoAudioDevice, match="Stereo Mix") as err:
        resolve(t, "system", "auto")
    assert "WASAPI loopback" in str(err.value)
    with pytest.raises(NoAudioDevice, match="No microphone found"):
        resolve(t, "mic", "auto")


def test_macos_offers_blackhole_as_system_audio_and_never_as_the_microphone():
    t = table("macos_blackhole_as_default_input")
    assert resolve(t, "system", "auto").name == "BlackHole 2ch"
    assert resolve(t, "mic", "auto").name == "MacBook Pro Microphone"  # though BlackHole is the default input
    kinds = {d.name: d.kind for d in t.devices}
    assert kinds == {"MacBook Pro Microphone": "mic", "BlackHole 2ch": "virtual", "Microsoft Teams Audio": "virtual"}


def test_macos_without_a_virtual_device_says_what_to_install():
    t = table("macos_stock")
    assert resolve(t, "mic", "auto").name == "MacBook Air Microphone"
    with pytest.raises(NoAudioDevice, match="BlackHole") as err:
        resolve(t, "system", "auto")
    assert "Multi-Output Device" in str(err.value)
    assert resolve(t, "system", "none") is None  # recording the mic alone stays possible


def test_windows_streams_ask_wasapi_to_convert_formats(monkeypatch):
    import sounddevice as sd

    from recorder import capture

    assert capture._platform_settings(sd) is None  # Linux: nothing special
    monkeypatch.setattr(capture.sys, "platform", "win32")
    settings = capture._platform_settings(sd)
    assert isinstance(settings, sd.WasapiSettings)
