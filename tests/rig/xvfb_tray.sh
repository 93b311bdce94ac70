#!/usr/bin/env bash
# Run a command on a virtual X screen with a real XEmbed system tray (trayer).
#   bash tests/rig/xvfb_tray.sh -- CMD ARGS...      (DISPLAY and QT_QPA_PLATFORM=xcb are set for CMD)
#   bash tests/rig/xvfb_tray.sh --late-tray -- CMD  (no tray yet: CMD starts one with $XVFB_TRAY_START)
# CMD can end the tray started before it (a panel that quits) with $XVFB_TRAY_STOP (not with --late-tray).
# Needs: xvfb trayer x11-utils, and Qt's xcb dependencies (scripts/_setup.sh installs them).
set -euo pipefail
MODE=now
case "${1:-}" in
  --late-tray) MODE=late; shift ;;
  --start-tray) MODE=start ;;  # on $DISPLAY, for a CMD run with --late-tray; trayer ends with the X server
esac
[ "${1:-}" = "--" ] && shift
[ $MODE = start ] || [ $# -gt 0 ] || { echo "usage: $0 [--late-tray] -- cmd..." >&2; exit 2; }
# Ready once trayer owns the tray selection, which Qt checks at start-up; its window comes before
# that (on a busy machine, long enough for the app to find no tray).
tray_owned() {
  python3 - <<'PY'
import ctypes, sys
x11 = ctypes.cdll.LoadLibrary("libX11.so.6")
x11.XOpenDisplay.restype = ctypes.c_void_p
x11.XInternAtom.argtypes, x11.XInternAtom.restype = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int], ctypes.c_ulong
x11.XGetSelectionOwner.argtypes, x11.XGetSelectionOwner.restype = [ctypes.c_void_p, ctypes.c_ulong], ctypes.c_ulong
x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
display = x11.XOpenDisplay(None)
owner = display and x11.XGetSelectionOwner(display, x11.XInternAtom(display, b"_NET_SYSTEM_TRAY_S0", 0))
if display:
    x11.XCloseDisplay(display)
sys.exit(0 if owner else 1)
PY
}
start_tray() {
  for attempt in 1 2 3; do  # in one full test run the app found no tray and trayer was gone by the end
    trayer --edge top --align right --widthtype request --height 32 --SetDockType true --transparent false \
      >>"$LOGS/trayer.log" 2>&1 &
    TRAYER=$!
    for _ in $(seq 1 50); do tray_owned && break; sleep 0.1; done
    tray_owned && break
    echo "xvfb_tray: trayer did not take the system tray (attempt $attempt): $(tail -n 3 "$LOGS/trayer.log")" >&2
    kill "$TRAYER" 2>/dev/null || true
  done
  tray_owned || { echo "xvfb_tray: no system tray; giving up" >&2; return 1; }
}
if [ $MODE = start ]; then
  LOGS="$(mktemp -d)"
  trap 'rm -rf "$LOGS"' EXIT
  start_tray
  exit
fi
for n in $(seq 90 130); do [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ] || break; done
export DISPLAY=":$n"
LOGS="$(mktemp -d)"
Xvfb "$DISPLAY" -screen 0 1280x800x24 -nolisten tcp >"$LOGS/xvfb.log" 2>&1 &
XVFB=$!
TRAYER=""
# Each step may fail (trayer already gone): under set -e a failing kill ended the trap early and
# left Xvfb running.
cleanup() { [ -z "$TRAYER" ] || kill "$TRAYER" 2>/dev/null || true; kill "$XVFB" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$LOGS"; }
trap cleanup EXIT
for _ in $(seq 1 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.1; done
[ $MODE = late ] || start_tray
[ -z "$TRAYER" ] || export XVFB_TRAY_STOP="kill $TRAYER"  # the first tray only
export QT_QPA_PLATFORM=xcb XVFB_TRAY_START="bash $(cd "$(dirname "$0")" && pwd)/$(basename "$0") --start-tray"
"$@"
