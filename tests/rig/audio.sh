#!/usr/bin/env bash
# Virtual audio for tests on a headless machine (root, no sound card):
#   a PulseAudio daemon in user mode with
#   * meet_speakers : null sink, the DEFAULT SINK = "system audio" (its monitor is what we record)
#   * meet_mic_in   : null sink to play "what the user says" into
#   * meet_mic      : remap-source of meet_mic_in.monitor, the DEFAULT SOURCE = virtual microphone
#   * a clocked silent source looped into both sinks, so their monitors deliver frames continuously.
# No custom ALSA configuration: the recorder must find its sources as on a stock desktop.
#
#   eval "$(bash tests/rig/audio.sh up)"   # idempotent; prints export lines
#   bash tests/rig/audio.sh down
set -euo pipefail

DIR="${DESKTOP_RECORDER_AUDIO_DIR:-/tmp/desktop-recorder-audio}"
export XDG_RUNTIME_DIR="$DIR/xdg"
export PULSE_RUNTIME_PATH="$XDG_RUNTIME_DIR/pulse"
export PULSE_STATE_PATH="$DIR/state"
export PULSE_SERVER="unix:$PULSE_RUNTIME_PATH/native"
RATE=48000

say() { echo "[audio-rig] $*" >&2; }
running() { pactl info >/dev/null 2>&1; }
has() { pactl list short "$1" 2>/dev/null | awk '{print $2}' | grep -qx "$2"; }

up() {
  mkdir -p "$PULSE_STATE_PATH" && mkdir -p -m 700 "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
  if ! running; then
    printf 'load-module module-native-protocol-unix auth-anonymous=1 socket=%s\n' \
      "$PULSE_RUNTIME_PATH/native" >"$DIR/rig.pa"
    # -n: no default.pa (no hardware modules); never exit when idle (CI steps have gaps).
    pulseaudio --daemonize=yes -n -F "$DIR/rig.pa" --exit-idle-time=-1 --use-pid-file=yes \
      --log-target="file:$DIR/pulseaudio.log" 2>>"$DIR/pulseaudio.log" || true
    for _ in $(seq 1 50); do running && break; sleep 0.1; done
    running || { say "pulseaudio did not start:"; tail -20 "$DIR/pulseaudio.log" >&2; exit 1; }
  fi
  has sinks meet_speakers || pactl load-module module-null-sink sink_name=meet_speakers rate=$RATE \
    channels=2 sink_properties=device.description=Meet_Speakers >/dev/null
  has sinks meet_mic_in || pactl load-module module-null-sink sink_name=meet_mic_in rate=$RATE \
    channels=1 sink_properties=device.description=Meet_Mic_Feed >/dev/null
  has sources meet_mic || pactl load-module module-remap-source master=meet_mic_in.monitor \
    source_name=meet_mic rate=$RATE channels=1 source_properties=device.description=Meet_Virtual_Mic >/dev/null
  local added=0
  has sources meet_silence || pactl load-module module-null-source source_name=meet_silence rate=$RATE \
    channels=2 >/dev/null
  for sink in meet_speakers meet_mic_in; do
    if ! pactl list short modules | grep module-loopback | grep -q "sink=$sink "; then
      pactl load-module module-loopback source=meet_silence sink="$sink" latency_msec=20 \
        source_dont_move=true sink_dont_move=true >/dev/null
      added=1
    fi
  done
  # An idle null sink may sit in a 2 s sleep before it takes the loopback's low latency.
  [ "$added" = 1 ] && sleep 2.1
  pactl set-default-sink meet_speakers
  pactl set-default-source meet_mic
  say "ready: default sink meet_speakers, default source meet_mic (feed: meet_mic_in)"
  env_lines
}

env_lines() {
  echo "export XDG_RUNTIME_DIR='$XDG_RUNTIME_DIR'"
  echo "export PULSE_RUNTIME_PATH='$PULSE_RUNTIME_PATH'"
  echo "export PULSE_SERVER='$PULSE_SERVER'"
}

down() {
  running && { pactl exit 2>/dev/null || true; }
  for _ in $(seq 1 30); do running || break; sleep 0.1; done
  rm -rf "$XDG_RUNTIME_DIR"
  say "down"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  env) env_lines ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
