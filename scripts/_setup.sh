# Shared by scripts/run.sh and scripts/test.sh: system packages and the virtualenv.
# Usage: source scripts/_setup.sh; ensure_system_packages PKG...; ensure_venv EXTRAS
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DESKTOP_RECORDER_VENV:-$ROOT/.venv}"

# Audio: PortAudio, the ALSA->PulseAudio/PipeWire route, libpulse (source discovery).
# Qt's xcb platform plugin (tray and windows) needs the xcb/xkb/GL libraries.
APP_PACKAGES=(libportaudio2 libasound2-plugins libpulse0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1
  libxcb-xinerama0 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3)

log() { echo "[setup] $*" >&2; }

ensure_system_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    log "not a Debian/Ubuntu system: install the equivalents of: ${missing[*]}"
    return 0
  fi
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_venv() {
  local extras="${1:-}"
  local py="${PYTHON:-python3}"
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    log "Python 3.11 or newer is needed (found $("$py" --version 2>&1))"; exit 1; }
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    if ! "$py" -m venv "$VENV" 2>/dev/null; then
      ensure_system_packages python3-venv
      "$py" -m venv "$VENV"
    fi
  fi
  log "installing desktop-recorder${extras:+[$extras]} into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT${extras:+[$extras]}"
}
