# Runtime hook of the frozen app on Linux: sounddevice finds PortAudio with ctypes.util.find_library,
# which looks only in the system's library cache, so the copy the bundle carries was used only when
# the system had one too. Point it at the bundled copy: the bundle then needs no libportaudio2.
import ctypes.util
import os
import sys

_bundled = os.path.join(getattr(sys, "_MEIPASS", ""), "libportaudio.so.2")
if sys.platform.startswith("linux") and os.path.isfile(_bundled):
    _system_find_library = ctypes.util.find_library

    def _find_library(name):
        return _bundled if name == "portaudio" else _system_find_library(name)

    ctypes.util.find_library = _find_library
