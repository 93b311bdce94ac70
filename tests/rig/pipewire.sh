#!/usr/bin/env bash
# A second virtual sound server for tests: PipeWire with its pulse service (what current desktops
# run), in its own runtime dir so it sits beside the PulseAudio rig (tests/rig/audio.sh) without
# touching it. Same devices: meet_speakers (default sink), meet_mic_in fed into meet_mic (default
# source). pipewire-pulse has no module-null-source, and needs no silence loopback: the recorder's
# timeline fills the gaps of an idle monitor itself.
#
#   eval "$(bash tests/rig/pipewire.sh up)"   # idempotent; prints export lines
#   bash tests/rig/pipewire.sh down
set -euo pipefail

DIR="${DESKTOP_RECORDER_PIPEWIRE_DIR:-/tmp/desktop-recorder-pipewire}"
export XDG_RUNTIME_DIR="$DIR/xdg"
export PULSE_SERVER="unix:$XDG_RUNTIME_DIR/pulse/native"
unset PULSE_RUNTIME_PATH

say() { echo "[pipewire-rig] $*" >&2; }
running() { pactl info 2>/dev/null | grep -q "on PipeWire"; }
has() { pactl list short "$1" 2>/dev/null | awk '{print $2}' | grep -qx "$2"; }

up() {
  command -v pipewire-pulse >/dev/null || { say "pipewire-pulse is not installed"; exit 1; }
  mkdir -p "$DIR" && mkdir -p -m 700 "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
  if ! running; then
    # A private D-Bus session for WirePlumber (the session manager that links streams to devices).
    setsid dbus-run-session -- bash -c "
      pipewire >'$DIR/pipewire.log' 2>&1 &
      sleep 0.5
      wireplumber >'$DIR/wireplumber.log' 2>&1 &
      pipewire-pulse >'$DIR/pipewire-pulse.log' 2>&1 &
      echo \$\$ >'$DIR/session.pid'
      wait" >"$DIR/session.log" 2>&1 < /dev/null &
    for _ in $(seq 1 50); do running && break; sleep 0.1; done
    running || { say "pipewire-pulse did not start:"; tail -5 "$DIR"/*.log >&2; exit 1; }
  fi
  has sinks meet_speakers || pactl load-module module-null-sink sink_name=meet_speakers rate=48000 \
    channels=2 sink_properties=device.description=Meet_Speakers >/dev/null
  has sinks meet_mic_in || pactl load-module module-null-sink sink_name=meet_mic_in rate=48000 \
    channels=1 sink_properties=device.description=Meet_Mic_Feed >/dev/null
  has sources meet_mic || pactl load-module module-remap-source master=meet_mic_in.monitor \
    source_name=meet_mic rate=48000 channels=1 source_properties=device.description=Meet_Virtual_Mic >/dev/null
  pactl set-default-sink meet_speakers
  pactl set-default-source meet_mic
  say "ready: $(pactl info | grep 'Server Name')"
  env_lines
}

env_lines() {
  echo "export XDG_RUNTIME_DIR='$XDG_RUNTIME_DIR'"
  echo "export PULSE_SERVER='$PULSE_SERVER'"
}

down() {
  if [ -f "$DIR/session.pid" ]; then
    pkill -P "$(cat "$DIR/session.pid")" 2>/dev/null || true
    kill "$(cat "$DIR/session.pid")" 2>/dev/null || true
  fi
  rm -rf "$XDG_RUNTIME_DIR" "$DIR/session.pid"
  say "down"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  env) env_lines ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
