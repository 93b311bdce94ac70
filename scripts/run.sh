#!/usr/bin/env bash
# Install everything (system packages included) and start Desktop Recorder on the embedded default
# (tiny.en, local store): the tray app on a desktop, the command-line recorder without a display.
# Arguments go to `desktop-recorder`, e.g. `bash scripts/run.sh record --duration 60 --title Standup`.
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
ensure_system_packages "${APP_PACKAGES[@]}"
ensure_venv ""
if [ $# -gt 0 ]; then
  exec "$VENV/bin/desktop-recorder" "$@"
fi
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  log "starting the tray app ($VENV/bin/desktop-recorder)"
  exec "$VENV/bin/desktop-recorder"
fi
log "no display: recording from the command line instead (Ctrl-C stops and finalises)"
exec "$VENV/bin/desktop-recorder" record
