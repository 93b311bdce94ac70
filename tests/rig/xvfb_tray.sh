#!/usr/bin/env bash
# Run a command on a virtual X screen with a real XEmbed system tray (trayer).
#   bash tests/rig/xvfb_tray.sh -- CMD ARGS...      (DISPLAY and QT_QPA_PLATFORM=xcb are set for CMD)
# Needs: xvfb trayer x11-utils, and Qt's xcb dependencies (scripts/_setup.sh installs them).
set -euo pipefail
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "usage: $0 -- cmd..." >&2; exit 2; }
for n in $(seq 90 130); do [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ] || break; done
export DISPLAY=":$n"
LOGS="$(mktemp -d)"
Xvfb "$DISPLAY" -screen 0 1280x800x24 -nolisten tcp >"$LOGS/xvfb.log" 2>&1 &
XVFB=$!
TRAYER=""
cleanup() { [ -n "$TRAYER" ] && kill "$TRAYER" 2>/dev/null; kill "$XVFB" 2>/dev/null; wait 2>/dev/null; rm -rf "$LOGS"; }
trap cleanup EXIT
for _ in $(seq 1 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.1; done
trayer --edge top --align right --widthtype request --height 32 --SetDockType true --transparent false \
  >"$LOGS/trayer.log" 2>&1 &
TRAYER=$!
for _ in $(seq 1 50); do xwininfo -root -tree 2>/dev/null | grep -qi trayer && break; sleep 0.1; done
export QT_QPA_PLATFORM=xcb
"$@"
