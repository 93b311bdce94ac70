"""Finding the microphone and the system-audio source.

On Linux the sound server (PulseAudio, or PipeWire's pulse service) is asked directly: the mic
is its default source, the system audio the monitor of its **default sink** (what the user
hears). Debian's PortAudio has no PulseAudio host API, so such a source is opened through the
ALSA ``pulse`` device with ``PULSE_SOURCE`` naming it; no custom ALSA configuration is needed.
Without a sound server, PortAudio's own inputs are offered.

Elsewhere PortAudio's device list is classified (``table_from_portaudio``, pure):
- Windows: the WASAPI host API; the system audio is the ``<default output> [Loopback]`` input
  that PortAudio builds with WASAPI loopback list for every output, else a "Stereo Mix" input,
  else a virtual cable (VB-Audio) the user routes the call to.
- macOS: Core Audio; the system audio is a virtual device the user installed (BlackHole,
  Loopback Audio, Soundflower…), found by name, with guidance when there is none.
Both are unit-tested on device tables only: this code has not run on Windows or macOS.
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

Role = Literal["mic", "system"]
Kind = Literal["mic", "system", "virtual"]
NO_SOURCE = 0xFFFFFFFF  # PA_INVALID_INDEX: "this source is not a monitor"
# The rate sources of a sound server are opened at. The server converts any source to the rate a
# client asks for, so the source's own rate is not needed, and it cannot be read safely: pulsectl
# keeps ``sample_spec`` as a ctypes view into the info struct libpulse passes to its callback, a
# stack variable gone once the callback returns. Read later, every source showed the rate of the
# last one listed, and in CI a garbage rate that no retry could open ("Invalid sample rate").
PULSE_CAPTURE_RATE_HZ = 48_000


class NoAudioDevice(Exception):
    """The requested source does not exist; the message lists what does.

    ``problem`` is the first sentence alone, for one-line reports (``doctor``)."""

    def __init__(self, problem: str, details: str = "") -> None:
        super().__init__(f"{problem}{details}")
        self.problem = problem


PORTAUDIO_HELP = "install the PortAudio library (Debian/Ubuntu: sudo apt install libportaudio2)"


# PortAudio is not thread-safe: its calls (open, start, stop, close, device queries) must not run
# at the same time. They did, in the settings page (one meter opening, one starting, the dialog
# stopping a third), and the ALSA pulse plugin aborted the process. Every call takes this lock;
# the stream callback does not, so holding it while a stream stops cannot deadlock.
PORTAUDIO_LOCK = threading.RLock()


def load_sounddevice() -> Any:
    """The sounddevice module, which loads the PortAudio library as it is imported.

    Raises OSError with what to install when the library is missing (sounddevice says only
    "PortAudio library not found")."""
    try:
        import sounddevice
    except (ImportError, OSError) as exc:
        raise OSError(f"Cannot use PortAudio ({exc}): {PORTAUDIO_HELP}") from exc
    return sounddevice


def loaded_library(stem: str) -> str | None:
    """Where a shared library this process has loaded lies (Linux; for ``doctor``), else None."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split(maxsplit=5)[-1].strip() for line in maps if line.count(" ") >= 5}
    except OSError:
        return None
    return next((p for p in sorted(paths) if Path(p).name.startswith(stem)), None)


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
    system_hint: str | None = None  # how to get a system-audio source (or any input), when there is none


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
            # Classify while connected. Plain fields (names, indexes) are copied; nested structs are not
            # (see PULSE_CAPTURE_RATE_HZ).
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
            sample_rate_hz=PULSE_CAPTURE_RATE_HZ,
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


LOOPBACK_SUFFIX = " [Loopback]"  # PortAudio's WASAPI loopback inputs: "<output name> [Loopback]"
SYSTEM_MIX_NAMES = ("stereo mix", "what u hear", "wave out mix", "monitor of")  # drivers' own loopback inputs
ROUTING_NAMES = ("blackhole", "loopback audio", "soundflower", "background music", "cable output", "vb-audio",
                 "voicemeeter")  # virtual devices a user sends the call's sound to: system-audio candidates
APP_DEVICE_NAMES = ("teams audio", "zoomaudiodevice")  # meeting apps' own virtual devices: neither mic nor system
SYSTEM_HINTS = {
    "win32": ("No system-audio source: this PortAudio build lists no WASAPI loopback inputs and there is no "
              "'Stereo Mix' input. Enable 'Stereo Mix' under Sound settings > Recording devices, or install a "
              "virtual cable (VB-Audio) and send the call's output to it."),
    "darwin": ("No system-audio source: macOS needs a virtual audio device for it. Install BlackHole 2ch "
               "(https://existential.audio/blackhole/), then in Audio MIDI Setup create a Multi-Output Device with "
               "your speakers or headphones and BlackHole, and select it as the output of the call."),
}


def portaudio_table() -> DeviceTable:
    try:
        sd = load_sounddevice()
    except OSError as exc:
        log.warning("%s", exc)
        return DeviceTable((), None, None, None, system_hint=str(exc))
    with PORTAUDIO_LOCK:
        devices, hostapis = list(sd.query_devices()), list(sd.query_hostapis())
    return table_from_portaudio(devices, hostapis, sys.platform)


def table_from_portaudio(devices: list[dict[str, Any]], hostapis: list[dict[str, Any]], platform: str) -> DeviceTable:
    """Pure: classify PortAudio's inputs (unit-tested with device tables of each OS)."""
    api = next((i for i, h in enumerate(hostapis) if h["name"] == "Windows WASAPI"), 0) if hostapis else -1
    host = hostapis[api] if api >= 0 else {"default_input_device": -1, "default_output_device": -1}
    out = host["default_output_device"]
    out_name = str(devices[out]["name"]) if 0 <= out < len(devices) else None
    inputs: list[InputDevice] = []
    for index, dev in enumerate(devices):
        if dev["max_input_channels"] <= 0 or (api >= 0 and dev.get("hostapi", api) != api):
            continue
        name = str(dev["name"])
        inputs.append(InputDevice(
            name=name, description=name, kind=_portaudio_kind(name), backend="portaudio",
            sample_rate_hz=int(dev["default_samplerate"]), is_default=index == host["default_input_device"],
            portaudio_index=index,
        ))
    mics = [d for d in inputs if d.kind == "mic"]
    default_mic = next((d.name for d in mics if d.is_default), mics[0].name if mics else None)
    loopback_of_output = f"{out_name}{LOOPBACK_SUFFIX}" if out_name else None
    candidates = (  # best first: the loopback of what the user hears, any loopback, a virtual device
        [d for d in inputs if d.name == loopback_of_output]
        + [d for d in inputs if d.kind == "system"]
        + [d for d in inputs if d.kind == "virtual" and any(v in d.name.lower() for v in ROUTING_NAMES)]
    )
    default_system = candidates[0].name if candidates else None
    if default_system:
        inputs = [replace(d, is_default=d.is_default or d.name == default_system) for d in inputs]
    hint = None if default_system else SYSTEM_HINTS.get(platform)
    return DeviceTable(tuple(inputs), default_mic, default_system, None, hint)


def _portaudio_kind(name: str) -> Kind:
    lower = name.lower()
    if name.endswith(LOOPBACK_SUFFIX) or lower.startswith(SYSTEM_MIX_NAMES):
        return "system"
    if any(v in lower for v in ROUTING_NAMES + APP_DEVICE_NAMES):
        return "virtual"
    return "mic"


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
            hint = f"\n{table.system_hint}" if (role == "system" or not table.devices) and table.system_hint else ""
            raise NoAudioDevice(f"No {_role_name(role)} found ({where}).",
                                f"{hint} Available inputs:\n{_listing(table)}")
        spec = wanted
    for dev in table.devices:
        if spec in (dev.name, str(dev.portaudio_index)):
            return dev
    matches = [d for d in table.devices if spec.lower() in d.description.lower() or spec.lower() in d.name.lower()]
    if len(matches) == 1:
        return matches[0]
    problem = "matches several inputs" if matches else "matches no input"
    raise NoAudioDevice(f"{_role_name(role).capitalize()} {spec!r} {problem}.",
                        f" Available inputs:\n{_listing(table)}")


def _role_name(role: Role) -> str:
    return "microphone" if role == "mic" else "system-audio source"


def _listing(table: DeviceTable) -> str:
    if not table.devices:
        return "  (none: is PulseAudio/PipeWire running, and is a microphone connected?)"
    return "\n".join(f"  {d.label}" for d in table.devices)
