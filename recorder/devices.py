"""Finding the microphone and the system-audio source.

On Linux the sound server (PulseAudio, or PipeWire's pulse service) is asked directly: the mic
is its default source, the system audio the monitor of its **default sink** (what the user
hears). Debian's PortAudio has no PulseAudio host API, so such a source is opened through the
ALSA ``pulse`` device with ``PULSE_SOURCE`` naming it; no custom ALSA configuration is needed.
Without a sound server, PortAudio's own inputs are offered.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)

Role = Literal["mic", "system"]
Kind = Literal["mic", "system", "virtual"]
NO_SOURCE = 0xFFFFFFFF  # PA_INVALID_INDEX: "this source is not a monitor"


class NoAudioDevice(Exception):
    """The requested source does not exist; the message lists what does."""


@dataclass(frozen=True)
class InputDevice:
    """An input the recorder can open, and what it is."""

    name: str
    description: str
    kind: Kind
    backend: Literal["pulse", "portaudio"]
    sample_rate_hz: int
    is_default: bool = False
    portaudio_index: int | None = None  # for backend "portaudio"

    @property
    def label(self) -> str:
        role = {"mic": "microphone", "system": "system audio (loopback)", "virtual": "virtual device"}[self.kind]
        return f"{self.description} [{self.name}] - {role}{', default' if self.is_default else ''}"


@dataclass(frozen=True)
class DeviceTable:
    devices: tuple[InputDevice, ...]
    default_mic: str | None
    default_system: str | None
    server: str | None  # e.g. "PulseAudio 16.1" / "PulseAudio (on PipeWire 1.0)"; None = no sound server


def pulse_table() -> DeviceTable | None:
    """Sources of the running PulseAudio/PipeWire server, or None if there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import pulsectl
    except (ImportError, OSError):  # no libpulse on this machine
        return None
    try:
        with pulsectl.Pulse("desktop-recorder-probe", connect=False) as pulse:
            pulse.connect(autospawn=False)  # fails at once without a server (a timeout here waits it out)
            # Classify while connected: the info objects read libpulse memory freed on disconnect.
            return table_from_pulse(pulse.server_info(), pulse.source_list(), pulse.sink_list())
    except pulsectl.PulseError as exc:
        log.info("no PulseAudio/PipeWire server: %s", exc)
        return None


def table_from_pulse(info: Any, sources: list[Any], sinks: list[Any]) -> DeviceTable:
    """Pure: classify the server's sources (unit-tested with recorded tables)."""
    monitor_of_default = next((s.monitor_source_name for s in sinks if s.name == info.default_sink_name), None)
    devices = []
    for src in sources:
        is_monitor = src.monitor_of_sink != NO_SOURCE
        kind: Kind = "system" if is_monitor else ("virtual" if _looks_virtual(src) else "mic")
        devices.append(InputDevice(
            name=src.name,
            description=src.description,
            kind=kind,
            backend="pulse",
            sample_rate_hz=int(src.sample_spec.rate),
            is_default=src.name in (info.default_source_name, monitor_of_default),
        ))
    default_mic = info.default_source_name
    if default_mic and default_mic.endswith(".monitor"):  # a monitor as default source is not a mic
        default_mic = next((d.name for d in devices if d.kind != "system"), None)
    name = getattr(info, "server_name", "") or "sound server"
    version = getattr(info, "server_version", "")
    return DeviceTable(tuple(devices), default_mic, monitor_of_default, f"{name} {version}".strip())


def _looks_virtual(src: Any) -> bool:
    driver = str(getattr(src, "driver", "") or "")
    return src.name.startswith(("null", "remap")) or "null" in driver


def portaudio_table() -> DeviceTable:
    import sounddevice as sd

    devices = []
    default_in = sd.default.device[0] if sd.default.device else -1
    for index, dev in enumerate(sd.query_devices()):
        if dev["max_input_channels"] <= 0:
            continue
        lower = dev["name"].lower()
        kind: Kind = "system" if any(k in lower for k in ("loopback", "blackhole", "stereo mix", "monitor")) else "mic"
        devices.append(InputDevice(
            name=str(dev["name"]), description=str(dev["name"]), kind=kind, backend="portaudio",
            sample_rate_hz=int(dev["default_samplerate"]), is_default=index == default_in, portaudio_index=index,
        ))
    default_mic = next((d.name for d in devices if d.is_default and d.kind == "mic"), None)
    default_mic = default_mic or next((d.name for d in devices if d.kind == "mic"), None)
    default_system = next((d.name for d in devices if d.kind == "system"), None)
    return DeviceTable(tuple(devices), default_mic, default_system, None)


def device_table() -> DeviceTable:
    """The sound server's sources when there is one, else PortAudio's inputs."""
    table = pulse_table()
    if table is not None:
        return table
    return portaudio_table()


def resolve(table: DeviceTable, role: Role, spec: str) -> InputDevice | None:
    """``none`` → None; ``auto`` → the default for the role; else a name, index or description part."""
    if spec == "none":
        return None
    if spec == "auto":
        wanted = table.default_mic if role == "mic" else table.default_system
        if wanted is None:
            where = "no sound server and no input device" if not table.devices else "no default for it"
            raise NoAudioDevice(f"No {_role_name(role)} found ({where}). Available inputs:\n{_listing(table)}")
        spec = wanted
    for dev in table.devices:
        if spec in (dev.name, str(dev.portaudio_index)):
            return dev
    matches = [d for d in table.devices if spec.lower() in d.description.lower() or spec.lower() in d.name.lower()]
    if len(matches) == 1:
        return matches[0]
    problem = "matches several inputs" if matches else "matches no input"
    raise NoAudioDevice(f"{_role_name(role).capitalize()} {spec!r} {problem}. Available inputs:\n{_listing(table)}")


def _role_name(role: Role) -> str:
    return "microphone" if role == "mic" else "system-audio source"


def _listing(table: DeviceTable) -> str:
    if not table.devices:
        return "  (none: is PulseAudio/PipeWire running, and is a microphone connected?)"
    return "\n".join(f"  {d.label}" for d in table.devices)
