#!/usr/bin/env bash
# Install the test dependencies (system packages included), start the virtual audio devices, build
# the Linux bundle, then run the linters and the whole test suite (real model, real audio, real
# local PostHog server, real Qt widgets, the bundle's smoke test). Arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
ensure_system_packages "${APP_PACKAGES[@]}" pulseaudio pulseaudio-utils pipewire pipewire-pulse wireplumber \
  dbus-daemon xvfb xauth trayer x11-utils
ensure_venv "test"
cd "$ROOT"

eval "$(bash tests/rig/audio.sh up)"  # PulseAudio; tests/rig/pipewire.sh is started by its test
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"

log "building the Linux bundle (tests/test_bundle.py smoke-tests it)"; bash packaging/build.sh
log "ruff"; "$VENV/bin/ruff" check .
log "mypy --strict (core)"; "$VENV/bin/mypy"
log "pytest"; exec "$VENV/bin/python" -m pytest "$@"
