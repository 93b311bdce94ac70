#!/usr/bin/env bash
# Install everything (system packages included) and start recording on the embedded default
# (tiny.en, local store). Arguments go to `desktop-recorder record`, e.g. --duration 60 --title "Standup".
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
ensure_system_packages "${APP_PACKAGES[@]}"
ensure_venv ""
log "ready: $VENV/bin/desktop-recorder (Ctrl-C stops and finalises the recording)"
exec "$VENV/bin/desktop-recorder" record "$@"
